"""Symbols without privileges: ld.so.cache parsing, /proc/PID/maps parsing, ELF symbol lookup
and offsets (on the running Python's libc), frame formatting, kallsyms parsing from a file."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest

from ebpf.symbols import libraries
from ebpf.symbols.elf import SymbolError, elf_file
from ebpf.symbols.kallsyms import KernelSymbols
from ebpf.symbols.procmaps import ProcessMaps, parse_maps
from ebpf.symbols.resolve import format_frame, sym


def ld_cache_blob(entries: list) -> bytes:
    strings = b""
    offsets = []
    header = 48
    table = 24 * len(entries)
    for name, path in entries:
        offsets.append((header + table + len(strings), header + table + len(strings) + len(name) + 1))
        strings += name.encode() + b"\0" + path.encode() + b"\0"
    out = b"glibc-ld.so.cache1.1" + struct.pack("<II", len(entries), len(strings)) + bytes(header - 28)
    for (k, v) in offsets:
        out += struct.pack("<iIIIQ", 0x0303, k, v, 0, 0)
    return out + strings


def test_parse_ld_cache() -> None:
    blob = ld_cache_blob([("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"), ("libz.so.1", "/lib/libz.so.1")])
    assert libraries.parse_ld_cache(blob) == [("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0x0303),
                                              ("libz.so.1", "/lib/libz.so.1", 0x0303)]
    with pytest.raises(SymbolError):
        libraries.parse_ld_cache(b"garbage")


def test_find_library_by_short_names(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [("libfoo.so.2", "/x/libfoo.so.2", 0x0303), ("libc.so.6", "/x/libc", 0x0303)]
    monkeypatch.setattr(libraries, "_cache", entries)
    monkeypatch.setattr(libraries, "_native_flags", lambda: 0x0300)
    assert libraries.find_library("foo") == "/x/libfoo.so.2"
    assert libraries.find_library("libfoo") == "/x/libfoo.so.2"
    assert libraries.find_library("libfoo.so.2") == "/x/libfoo.so.2"
    assert libraries.find_library("c") == "/x/libc"
    assert libraries.find_library("bar") is None


def test_parse_maps() -> None:
    text = ("7f0000000000-7f0000001000 r--p 00000000 08:01 42 /usr/lib/libx.so\n"
            "7f0000001000-7f0000003000 r-xp 00001000 08:01 42 /usr/lib/libx.so\n"
            "7ffc00000000-7ffc00001000 r-xp 00000000 00:00 0 [vdso]\n")
    m = parse_maps(text)
    pm = ProcessMaps(1, m)
    hit = pm.find(0x7F0000001234)
    assert hit is not None and hit.executable and hit.file_offset(0x7F0000001234) == 0x1234
    assert pm.find(0x7F0000004000) is None and pm.files() == ["/usr/lib/libx.so"]


def test_elf_symbols_of_libc_and_our_own_addresses() -> None:
    path = libraries.resolve_binary("c")
    elf = elf_file(path)
    assert elf.is_shared and elf_file(path) is elf  # cached
    off = elf.offset_of("getpid")
    vaddr = elf.address_of("getpid")
    assert elf.offset_to_vaddr(off) == vaddr
    hit = elf.lookup(vaddr + 1)
    assert hit is not None and hit[1] == 1
    with pytest.raises(SymbolError, match="no function"):
        elf.offset_of("no_such_function_xyz")
    addr = ctypes.cast(ctypes.CDLL("libc.so.6").getpid, ctypes.c_void_p).value
    assert addr is not None
    assert sym(addr, os.getpid()) == hit[0].name
    assert sym(addr + 2, os.getpid(), show_module=True, show_offset=True) == f"{hit[0].name}+0x2 [libc.so.6]"


def test_format_frame() -> None:
    assert format_frame("f", 0x12, "mod") == "f+0x12 [mod]"
    assert format_frame("f", 0x12, "mod", show_offset=False, show_module=False) == "f"
    assert format_frame("", 0, "mod") == "[unknown] [mod]"


def test_kallsyms_parsing_and_bisect(tmp_path: object) -> None:
    p = os.path.join(str(tmp_path), "kallsyms")
    with open(p, "w") as f:
        f.write("ffffffff81000000 T _stext\n"
                "ffffffff81000100 t helper\n"
                "ffffffff81000200 D some_data\n"
                "ffffffffc0000000 t mod_fn\t[mymod]\n")
    k = KernelSymbols(p)
    assert len(k) == 3  # text symbols only
    assert k.lookup(0xFFFFFFFF81000150) == ("helper", 0xFFFFFFFF81000100, "", 0x50)
    assert k.lookup(0xFFFFFFFFC0000010) == ("mod_fn", 0xFFFFFFFFC0000000, "mymod", 0x10)
    assert k.lookup(0x1000) is None
    assert k.address_of("helper") == 0xFFFFFFFF81000100 and "mod_fn" in k and "nope" not in k
    with open(p, "w") as f:
        f.write("0000000000000000 T _stext\n")
    with pytest.raises(SymbolError, match="needs root"):
        KernelSymbols(p)
