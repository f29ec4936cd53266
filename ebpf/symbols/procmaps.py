"""``/proc/PID/maps``: which file (and which offset in it) backs an address of a process."""

from __future__ import annotations

import bisect
from typing import List, NamedTuple, Optional

from ebpf.symbols.elf import SymbolError


class Mapping(NamedTuple):
    start: int
    end: int
    perms: str
    offset: int
    inode: int
    path: str

    @property
    def executable(self) -> bool:
        return "x" in self.perms

    def file_offset(self, addr: int) -> int:
        return addr - self.start + self.offset


def parse_maps(text: str) -> List[Mapping]:
    """The lines of a maps file, in address order."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, _, hi = parts[0].partition("-")
        path = parts[5].strip() if len(parts) > 5 else ""
        out.append(Mapping(int(lo, 16), int(hi, 16), parts[1], int(parts[2], 16), int(parts[4]), path))
    out.sort()
    return out


def read_maps(pid: int) -> List[Mapping]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return parse_maps(f.read())
    except OSError as e:
        raise SymbolError(f"cannot read /proc/{pid}/maps: {e.strerror}") from None


class ProcessMaps:
    """The mappings of one process, searchable by address."""

    def __init__(self, pid: int, mappings: Optional[List[Mapping]] = None):
        self.pid = pid
        self.mappings = mappings if mappings is not None else read_maps(pid)
        self._starts = [m.start for m in self.mappings]

    def find(self, addr: int) -> Optional[Mapping]:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.mappings[i].end:
            return self.mappings[i]
        return None

    def files(self) -> List[str]:
        seen: List[str] = []
        for m in self.mappings:
            if m.path.startswith("/") and m.path not in seen:
                seen.append(m.path)
        return seen
