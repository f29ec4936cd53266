"""Finding a binary or shared library by name: a path, ``/proc/PID/maps``, the ld.so cache, PATH.

``"c"``, ``"libc"``, ``"libc.so.6"`` and ``"/lib/x86_64-linux-gnu/libc.so.6"`` all name libc.
The ld.so cache (``/etc/ld.so.cache``, format ``glibc-ld.so.cache1.1``) is parsed directly;
``ldconfig -p`` is the fallback for formats we do not read.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from typing import List, Optional, Tuple

from ebpf.symbols.elf import SymbolError
from ebpf.symbols.procmaps import read_maps

LD_SO_CACHE = "/etc/ld.so.cache"
_NEW_MAGIC = b"glibc-ld.so.cache1.1"
_OLD_MAGIC = b"ld.so-1.7.0"
FLAG_X8664_LIB64 = 0x0300
FLAG_AARCH64_LIB64 = 0x0a00
FLAG_ELF_LIBC6 = 0x0003

_cache: Optional[List[Tuple[str, str, int]]] = None


def _parse_new(data: bytes, base: int) -> List[Tuple[str, str, int]]:
    nlibs, _len_strings = struct.unpack_from("<II", data, base + 20)
    out = []
    entries = base + 48
    for i in range(nlibs):
        flags, key, value, _osv, _hwcap = struct.unpack_from("<iIIIQ", data, entries + 24 * i)
        name = data[base + key:data.index(b"\0", base + key)].decode(errors="replace")
        path = data[base + value:data.index(b"\0", base + value)].decode(errors="replace")
        out.append((name, path, flags))
    return out


def parse_ld_cache(data: bytes) -> List[Tuple[str, str, int]]:
    """(soname, path, flags) entries of an ld.so.cache image."""
    if data.startswith(_NEW_MAGIC):
        return _parse_new(data, 0)
    if data.startswith(_OLD_MAGIC):
        nlibs = struct.unpack_from("<I", data, 12)[0]
        base = 16 + nlibs * 12
        base = (base + 7) & ~7
        if data[base:base + len(_NEW_MAGIC)] == _NEW_MAGIC:
            return _parse_new(data, base)
    raise SymbolError("unknown ld.so.cache format")


def _ldconfig_p() -> List[Tuple[str, str, int]]:
    exe = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        text = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    out = []
    for line in text.splitlines()[1:]:
        left, sep, path = line.strip().partition(" => ")
        if not sep:
            continue
        name = left.split(" (", 1)[0]
        flags = FLAG_X8664_LIB64 | FLAG_ELF_LIBC6 if "x86-64" in left else 0
        out.append((name, path.strip(), flags))
    return out


def ld_cache() -> List[Tuple[str, str, int]]:
    """The ld.so cache entries, read once per process."""
    global _cache
    if _cache is None:
        try:
            with open(LD_SO_CACHE, "rb") as f:
                _cache = parse_ld_cache(f.read())
        except (OSError, SymbolError, struct.error, ValueError):
            _cache = _ldconfig_p()
    return _cache


def _native_flags() -> int:
    machine = os.uname().machine
    if machine == "x86_64":
        return FLAG_X8664_LIB64
    if machine in ("aarch64", "arm64"):
        return FLAG_AARCH64_LIB64
    return -1


def _candidates(name: str) -> List[str]:
    if name.startswith("lib") and ".so" in name:
        return [name]
    if name.startswith("lib"):
        return [name + ".so"]
    return [name, "lib" + name + ".so"]


def _matches(soname: str, wanted: str) -> bool:
    return soname == wanted or soname.startswith(wanted + ".")


def find_library(name: str, pid: Optional[int] = None) -> Optional[str]:
    """The path of library ``name`` ("c", "libc", "libc.so.6"), preferring what ``pid`` maps."""
    wanted = _candidates(name)
    if pid is not None and pid > 0:
        try:
            mappings = read_maps(pid)
        except SymbolError:
            mappings = []
        for m in mappings:
            base = os.path.basename(m.path)
            if m.path.startswith("/") and any(_matches(base, w) for w in wanted):
                return f"/proc/{pid}/root{m.path}" if os.path.exists(f"/proc/{pid}/root{m.path}") else m.path
    native = _native_flags()
    best: Optional[str] = None
    for soname, path, flags in ld_cache():
        if any(_matches(soname, w) for w in wanted):
            if native < 0 or (flags & 0xFF00) == native:
                return path
            best = best or path
    return best


def resolve_binary(name: str, pid: Optional[int] = None) -> str:
    """An absolute path for a binary or library given by path or name."""
    if "/" in name:
        path = os.path.abspath(name)
        if not os.path.exists(path):
            raise SymbolError(f"no such file {path}")
        return os.path.realpath(path)
    lib = find_library(name, pid)
    if lib is not None:
        return os.path.realpath(lib)
    exe = shutil.which(name)
    if exe is not None:
        return os.path.realpath(exe)
    raise SymbolError(f"cannot find {name!r}: not a path, not in the ld.so cache"
                      + (f" nor mapped by pid {pid}" if pid else "") + ", not in PATH")
