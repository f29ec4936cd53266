"""The BTF sections of an ELF file (a vmlinux, a kernel module, a BPF object).

pyelftools is imported here only, so reading raw blobs and kernel BTF never pays for it.
"""

from __future__ import annotations

import io
from typing import Optional, Tuple

from ebpf.btf.errors import BTFError

ELF_MAGIC = b"\x7fELF"


def btf_sections(data: bytes, what: str) -> Tuple[bytes, Optional[bytes]]:
    """The ``.BTF`` section of the ELF image *data* and its ``.BTF.base`` (a module's distilled
    base, Linux >= 6.12), or None when it has none."""
    from elftools.common.exceptions import ELFError  # a run-time dependency, imported only for ELF input
    from elftools.elf.elffile import ELFFile
    try:
        elf = ELFFile(io.BytesIO(data))
        section = elf.get_section_by_name(".BTF")
        if section is None:
            raise BTFError(f"{what}: this ELF file has no .BTF section")
        btf = section.data()
        base = elf.get_section_by_name(".BTF.base")
        return btf, (base.data() if base is not None else None)
    except BTFError:
        raise
    except ELFError as e:
        raise BTFError(f"{what}: malformed ELF file: {e}") from None
    except Exception as e:  # pyelftools reports some malformations as whatever it tripped on
        raise BTFError(f"{what}: malformed ELF file ({type(e).__name__}: {e})") from None
