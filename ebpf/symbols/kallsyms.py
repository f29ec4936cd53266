"""Kernel symbols from ``/proc/kallsyms``: a sorted address array and bisect, loaded lazily.

Needs root (or kptr_restrict=0) to see addresses; otherwise every address reads 0 and lookups
fail with a message saying so.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from typing import Dict, List, NamedTuple, Optional

from ebpf.symbols.elf import SymbolError

KALLSYMS = "/proc/kallsyms"
_TEXT_TYPES = frozenset("tTwW")


class KernelSymbol(NamedTuple):
    name: str
    address: int
    module: str  # "" for the kernel image
    offset: int  # of the looked-up address from the symbol's start


class KernelSymbols:
    """The kernel's text symbols, sorted by address."""

    def __init__(self, path: str = KALLSYMS, text_only: bool = True):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise SymbolError(f"cannot read {path}: {e.strerror}") from None
        rows = []
        zero = 0
        for line in data.split(b"\n"):
            parts = line.split()
            if len(parts) < 3:
                continue
            kind = chr(parts[1][0])
            if text_only and kind not in _TEXT_TYPES:
                continue
            addr = int(parts[0], 16)
            if addr == 0:
                zero += 1
                continue
            module = parts[3][1:-1].decode() if len(parts) > 3 else ""
            rows.append((addr, parts[2].decode(errors="replace"), module))
        if not rows and zero:
            raise SymbolError(f"{path} shows no addresses: needs root (or kernel.kptr_restrict=0)")
        rows.sort(key=lambda r: r[0])
        self.addresses = array("Q", (r[0] for r in rows))
        self.names: List[str] = [r[1] for r in rows]
        self.modules: List[str] = [r[2] for r in rows]
        self._by_name: Optional[Dict[str, int]] = None

    def __len__(self) -> int:
        return len(self.names)

    def lookup(self, addr: int) -> Optional[KernelSymbol]:
        """The symbol at or before ``addr`` (None below the first symbol)."""
        i = bisect.bisect_right(self.addresses, addr) - 1
        if i < 0:
            return None
        start = self.addresses[i]
        return KernelSymbol(self.names[i], start, self.modules[i], addr - start)

    def address_of(self, name: str) -> int:
        """BCC's ``ksymname``: the address of symbol ``name`` (SymbolError if absent)."""
        if self._by_name is None:
            by_name: Dict[str, int] = {}
            for i, n in enumerate(self.names):
                by_name.setdefault(n, self.addresses[i])
            self._by_name = by_name
        try:
            return self._by_name[name]
        except KeyError:
            raise SymbolError(f"no kernel symbol {name!r}") from None

    def __contains__(self, name: str) -> bool:
        try:
            self.address_of(name)
        except SymbolError:
            return False
        return True


_kernel: Optional[KernelSymbols] = None
_lock = threading.Lock()


def kernel_symbols() -> KernelSymbols:
    """The kernel's symbols, read on first use and kept for the process."""
    global _kernel
    with _lock:
        if _kernel is None:
            _kernel = KernelSymbols()
        return _kernel


def refresh() -> None:
    """Forget the cached symbols (after a module load)."""
    global _kernel
    with _lock:
        _kernel = None
