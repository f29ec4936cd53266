"""The BTF header: byte order, version and where the type and string sections lie.

The header is the only part read eagerly. Its checks make every later access safe to do
without bounds checks of its own: once :func:`parse_header` accepts a blob, both sections lie
inside it and the type section is a whole number of 32-bit words.
"""

from __future__ import annotations

import mmap
import struct
from typing import NamedTuple, Optional, Union

from ebpf.btf.errors import BTFError
from ebpf.btf.kinds import MAGIC, VERSION

#: What a blob can be held in: bytes, or a read-only mmap of the file.
Blob = Union[bytes, bytearray, mmap.mmap]

_BASE_LEN = 24  # magic..str_len: every BTF version has these
_LAYOUT_LEN = 32  # headers that also describe a layout section


class Header(NamedTuple):
    """Where things are, as absolute byte offsets into the blob."""

    byte_order: str  # "little" or "big"
    flags: int
    hdr_len: int
    type_start: int
    type_len: int
    str_start: int
    str_len: int
    layout_start: int
    layout_len: int

    @property
    def end(self) -> int:
        """One past the last byte any section uses (blobs cut from ELF files may have padding)."""
        return max(
            self.hdr_len,
            self.type_start + self.type_len,
            self.str_start + self.str_len,
            self.layout_start + self.layout_len,
        )


def byte_order_of(data: bytes) -> Optional[str]:
    """``"little"``/``"big"`` from the magic's byte order, or None if *data* is not BTF."""
    if len(data) < 2:
        return None
    if data[0] == 0x9F and data[1] == 0xEB:
        return "little"
    if data[0] == 0xEB and data[1] == 0x9F:
        return "big"
    return None


def parse_header(data: Blob, what: str = "BTF") -> Header:
    """Read and check the header of the blob *data* (a bytes-like object or an mmap).

    *what* names the blob in error messages (a path, ``vmlinux``...).
    """
    size = len(data)
    if size < _BASE_LEN:
        raise BTFError(f"{what}: {size} bytes is too short for a BTF header ({_BASE_LEN} bytes)")
    order = byte_order_of(bytes(data[:2]))
    if order is None:
        raise BTFError(f"{what}: not BTF: magic bytes {bytes(data[:2]).hex()} (expected 9feb or eb9f)")
    end = "<" if order == "little" else ">"
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        end + "HBBIIIII", data, 0
    )
    assert magic == MAGIC
    if version != VERSION:
        raise BTFError(f"{what}: unsupported BTF version {version} (only {VERSION} exists)")
    if hdr_len < _BASE_LEN:
        raise BTFError(f"{what}: header length {hdr_len} is shorter than the {_BASE_LEN}-byte minimum")
    if hdr_len > size:
        raise BTFError(f"{what}: header length {hdr_len} runs past the end of the {size}-byte blob")
    layout_off = layout_len = 0
    if hdr_len >= _LAYOUT_LEN:
        layout_off, layout_len = struct.unpack_from(end + "II", data, _BASE_LEN)
    _check_section(what, "type", type_off, type_len, hdr_len, size)
    _check_section(what, "string", str_off, str_len, hdr_len, size)
    if type_off % 4:
        raise BTFError(f"{what}: type section offset {type_off} is not 4-byte aligned")
    if type_len % 4:
        raise BTFError(f"{what}: type section length {type_len} is not a multiple of 4")
    if str_len and data[hdr_len + str_off + str_len - 1] != 0:
        raise BTFError(f"{what}: string section does not end with a NUL byte")
    if layout_len:
        _check_section(what, "layout", layout_off, layout_len, hdr_len, size)
        if layout_len % 4:
            raise BTFError(f"{what}: layout section length {layout_len} is not a multiple of 4")
    return Header(
        order, flags, hdr_len, hdr_len + type_off, type_len, hdr_len + str_off, str_len,
        hdr_len + layout_off if layout_len else 0, layout_len,
    )


def _check_section(what: str, name: str, off: int, length: int, hdr_len: int, size: int) -> None:
    if hdr_len + off + length > size:
        raise BTFError(
            f"{what}: {name} section (offset {off}, length {length} after the {hdr_len}-byte header) "
            f"runs past the end of the {size}-byte blob"
        )
