"""Syscall numbers and names of this machine, for syscount.

Where the numbers come from: the running kernel does not publish its syscall table. Its
tracefs events (``syscalls/sys_enter_NAME``) name every syscall it can trace, but their
``format`` files only declare the ``__syscall_nr`` *field*, not its value; the
``__syscalls_metadata`` section that pairs names with numbers is init data, freed after boot;
``sys_call_table`` and ``syscalls_metadata`` are neither in kallsyms (no KALLSYMS_ALL) nor in
BTF. The numbers are ABI, though: they never change once assigned, so the system's uapi header
(``asm/unistd_64.h`` and friends, ``#define __NR_read 0``) is exact for every syscall it knows.
A number missing from it (a syscall newer than the header) prints as ``[unknown: N]``, as
BCC prints the numbers its table lacks.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional

__all__ = ["syscall_table", "syscall_name", "syscall_number", "parse_unistd", "list_lines", "HEADERS"]

# multiarch include directories first (Debian/Ubuntu), then the plain ones (Fedora, Arch...)
_ARCH = {
    "x86_64": ("x86_64-linux-gnu", "unistd_64.h"),
    "aarch64": ("aarch64-linux-gnu", "unistd.h"),
    "ppc64le": ("powerpc64le-linux-gnu", "unistd_64.h"),
    "s390x": ("s390x-linux-gnu", "unistd_64.h"),
    "riscv64": ("riscv64-linux-gnu", "unistd.h"),
}


def _headers() -> List[str]:
    triplet, name = _ARCH.get(os.uname().machine, ("", "unistd_64.h"))
    out = []
    if triplet:
        out.append(f"/usr/include/{triplet}/asm/{name}")
    out.append(f"/usr/include/asm/{name}")
    if name != "unistd.h":
        out.append("/usr/include/asm/unistd.h")
    return out


HEADERS = _headers()

_DEFINE = re.compile(r"^#define\s+__NR_([A-Za-z0-9_]+)\s+(\d+)\s*$", re.M)

_table: Optional[Dict[int, str]] = None


def parse_unistd(text: str) -> Dict[int, str]:
    """Number -> name from the ``#define __NR_name N`` lines of a uapi unistd header."""
    out: Dict[int, str] = {}
    for name, number in _DEFINE.findall(text):
        out.setdefault(int(number), name)
    return out


def syscall_table(paths: Optional[List[str]] = None) -> Dict[int, str]:
    """This machine's syscall table (number -> name), read once; empty when no header exists."""
    global _table
    if _table is not None and paths is None:
        return _table
    found: Dict[int, str] = {}
    for path in paths or HEADERS:
        try:
            with open(path) as f:
                found = parse_unistd(f.read())
        except OSError:
            continue
        if found:
            break
    if paths is None:
        _table = found
    return found


def syscall_name(nr: int) -> str:
    """The name of syscall ``nr``, or ``[unknown: nr]`` (BCC's spelling)."""
    name = syscall_table().get(nr)
    return name if name is not None else "[unknown: %d]" % nr


def syscall_number(name: str) -> Optional[int]:
    """The number of syscall ``name`` (``openat``), or None."""
    for nr, known in syscall_table().items():
        if known == name:
            return nr
    return None


def list_lines(names: List[str]) -> List[str]:
    """``syscount -l``: the names sorted, four to a line, each padded to 22 like BCC."""
    ordered = sorted(names)
    lines = []
    for i in range(0, len(ordered), 4):
        lines.append("   ".join("%-22s" % s for s in ordered[i:i + 4]))
    return lines
