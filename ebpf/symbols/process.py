"""A process's symbols: ``/proc/PID/maps`` to find the file behind an address, then the file's
ELF symbols (or a JIT's ``/tmp/perf-PID.map``)."""

from __future__ import annotations

import bisect
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from ebpf.symbols.elf import ElfFile, SymbolError, elf_file
from ebpf.symbols.procmaps import ProcessMaps


class UserSymbol(NamedTuple):
    name: str
    offset: int  # from the start of the function
    module: str  # path of the file (or "[perf-map]")
    address: int  # the address looked up


class PerfMap:
    """``/tmp/perf-PID.map``: ``START SIZE NAME`` lines written by JITs (hex start and size)."""

    def __init__(self, path: str):
        rows: List[Tuple[int, int, str]] = []
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    try:
                        rows.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
                    except ValueError:
                        continue
        rows.sort()
        self.rows = rows
        self._starts = [r[0] for r in rows]

    def lookup(self, addr: int) -> Optional[Tuple[str, int]]:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            start, size, name = self.rows[i]
            if addr < start + size:
                return name, addr - start
        return None


class ProcessSymbols:
    """Resolves addresses of process ``pid`` (a snapshot of its mappings taken at creation)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.maps = ProcessMaps(pid)
        self._files: Dict[str, Optional[ElfFile]] = {}
        self._perf_map: Optional[PerfMap] = None
        perf_path = f"/tmp/perf-{pid}.map"
        if os.path.exists(perf_path):
            try:
                self._perf_map = PerfMap(perf_path)
            except OSError:
                pass

    def _elf(self, path: str) -> Optional[ElfFile]:
        if path in self._files:
            return self._files[path]
        found: Optional[ElfFile] = None
        for cand in (f"/proc/{self.pid}/root{path}", path):
            try:
                found = elf_file(cand)
                break
            except SymbolError:
                continue
        self._files[path] = found
        return found

    def resolve(self, addr: int) -> Optional[UserSymbol]:
        m = self.maps.find(addr)
        if m is None or not m.path.startswith("/"):
            if self._perf_map is not None:
                hit = self._perf_map.lookup(addr)
                if hit is not None:
                    return UserSymbol(hit[0], hit[1], "[perf-map]", addr)
            return None
        path = m.path[:-len(" (deleted)")] if m.path.endswith(" (deleted)") else m.path
        elf = self._elf(path)
        if elf is None:
            return None
        vaddr = elf.offset_to_vaddr(m.file_offset(addr))
        if vaddr is None:
            return None
        hit2 = elf.lookup(vaddr)
        if hit2 is None:
            return UserSymbol("", vaddr, path, addr)
        return UserSymbol(hit2[0].name, hit2[1], path, addr)

    def module_of(self, addr: int) -> str:
        m = self.maps.find(addr)
        return m.path if m is not None else ""


_cache: Dict[int, ProcessSymbols] = {}


def process_symbols(pid: int, refresh: bool = False) -> ProcessSymbols:
    """The (cached) symbols of ``pid``; ``refresh`` re-reads its mappings."""
    found = _cache.get(pid)
    if found is None or refresh:
        found = ProcessSymbols(pid)
        _cache[pid] = found
    return found


def forget(pid: Optional[int] = None) -> None:
    if pid is None:
        _cache.clear()
    else:
        _cache.pop(pid, None)
