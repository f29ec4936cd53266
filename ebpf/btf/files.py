"""Opening BTF from a file or from bytes: raw ``.btf`` blobs (either byte order) and ELF files.

Files are mmapped read-only and private, so opening the 5 MiB vmlinux BTF copies nothing
and only the pages a lookup touches are read; files that cannot be mapped (module BTF in
sysfs, pipes) are read whole.
"""

from __future__ import annotations

import mmap
import os
from typing import Optional, Union

from ebpf.btf.elf import ELF_MAGIC, btf_sections
from ebpf.btf.errors import BTFError
from ebpf.btf.header import Blob
from ebpf.btf.spec import BTF

PathLike = Union[str, "os.PathLike[str]"]


def read_blob(path: PathLike) -> Blob:
    """The bytes of *path*: an mmap when the file allows it, else its contents."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise BTFError(f"cannot open {os.fspath(path)}: {e.strerror}") from None
    try:
        try:
            size = os.fstat(fd).st_size
            if size > 0:
                return mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            pass
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise BTFError(f"cannot read {os.fspath(path)}: {e.strerror}") from None
    finally:
        os.close(fd)


def from_bytes(data: Blob, base: Optional[BTF] = None, name: str = "BTF") -> BTF:
    """Parse *data*: a raw BTF blob, or an ELF file whose ``.BTF`` section is read.

    A module's ELF file that carries a distilled base (``.BTF.base``) is parsed on that
    base unless *base* is given.
    """
    if bytes(data[:4]) == ELF_MAGIC:
        section, distilled = btf_sections(bytes(data), name)
        if base is None and distilled is not None:
            base = BTF(distilled, name=f"{name}:.BTF.base")
        return BTF(section, base=base, name=name)
    return BTF(data, base=base, name=name)


def load(path: PathLike, base: Optional[BTF] = None) -> BTF:
    """Parse the BTF file at *path* (raw or ELF); *base* for split BTF such as a module's."""
    return from_bytes(read_blob(path), base=base, name=os.fspath(path))
