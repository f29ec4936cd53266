"""ELF symbol tables (``.symtab`` and ``.dynsym``) and address <-> file offset translation.

pyelftools reads the file once per path (cached by path, size and mtime); the function symbols
are kept as a sorted array for bisecting. Uprobes need *file offsets* (what the kernel's
``uprobe`` PMU and ``uprobe_events`` take), symbols give *virtual addresses*: the PT_LOAD
program header containing an address translates one into the other.
"""

from __future__ import annotations

import bisect
import os
import threading
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ebpf.errors import EbpfError

STT_FUNC = 2
STT_GNU_IFUNC = 10
_CODE_TYPES = ("STT_FUNC", "STT_GNU_IFUNC")
PF_X = 1


class SymbolError(EbpfError, LookupError):
    """A symbol, file or address that cannot be resolved."""


class ElfSymbol(NamedTuple):
    name: str
    address: int  # st_value: the link-time virtual address
    size: int
    binding: str  # STB_GLOBAL, STB_LOCAL, STB_WEAK


class Segment(NamedTuple):
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int


class ElfFile:
    """The symbols and loadable segments of one ELF file."""

    def __init__(self, path: str):
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = path
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                self.elf_type = elf.header["e_type"]
                self.machine = elf.header["e_machine"]
                self.segments = [
                    Segment(s["p_vaddr"], s["p_memsz"], s["p_offset"], s["p_filesz"], s["p_flags"])
                    for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"
                ]
                self.build_id = _build_id(elf)
                syms: Dict[Tuple[str, int], ElfSymbol] = {}
                for section_name in (".symtab", ".dynsym"):
                    section = elf.get_section_by_name(section_name)
                    if section is None or not hasattr(section, "iter_symbols"):
                        continue
                    for sym in section.iter_symbols():
                        info = sym["st_info"]
                        if info["type"] not in _CODE_TYPES or not sym.name or sym["st_shndx"] == "SHN_UNDEF":
                            continue
                        name = sym.name
                        value = sym["st_value"]
                        syms.setdefault((name, value), ElfSymbol(name, value, sym["st_size"], info["bind"]))
                self.sections = {s.name: (s["sh_addr"], s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()}
        except (OSError, ELFError) as e:
            raise SymbolError(f"cannot read ELF file {path}: {e}") from None
        ordered = sorted(syms.values(), key=lambda s: (s.address, s.binding != "STB_GLOBAL", s.name))
        self.symbols: List[ElfSymbol] = ordered
        self._addrs = [s.address for s in ordered]
        self._by_name: Dict[str, List[ElfSymbol]] = {}
        for s in ordered:
            self._by_name.setdefault(s.name, []).append(s)

    @property
    def is_shared(self) -> bool:
        """ET_DYN: a shared library or a PIE executable (addresses are relative to the load base)."""
        return bool(self.elf_type == "ET_DYN")

    def symbols_named(self, name: str) -> List[ElfSymbol]:
        found = self._by_name.get(name)
        if found:
            return list(found)
        # versioned names in .dynsym are plain; accept "name@VERSION" from the user
        base = name.split("@", 1)[0]
        return list(self._by_name.get(base, ()))

    def address_of(self, name: str) -> int:
        """The virtual address of function ``name``; SymbolError if absent or ambiguous."""
        found = self.symbols_named(name)
        if not found:
            raise SymbolError(f"no function {name!r} in {self.path}")
        addresses = {s.address for s in found}
        if len(addresses) > 1:
            globals_ = {s.address for s in found if s.binding != "STB_LOCAL"}
            if len(globals_) == 1:
                return globals_.pop()
            raise SymbolError(f"{name!r} names {len(addresses)} functions in {self.path}: give an address")
        return found[0].address

    def offset_of(self, name: str) -> int:
        """The file offset of function ``name`` (what a uprobe takes)."""
        return self.vaddr_to_offset(self.address_of(name))

    def vaddr_to_offset(self, vaddr: int, executable: bool = True) -> int:
        """Translate a link-time virtual address into a file offset through the PT_LOAD headers."""
        for seg in self.segments:
            if executable and not seg.flags & PF_X:
                continue
            if seg.vaddr <= vaddr < seg.vaddr + seg.memsz:
                return vaddr - seg.vaddr + seg.offset
        if executable:
            return self.vaddr_to_offset(vaddr, executable=False)
        raise SymbolError(f"address {vaddr:#x} is in no loadable segment of {self.path}")

    def offset_to_vaddr(self, offset: int) -> Optional[int]:
        """The link-time virtual address of file offset ``offset`` (None if not loaded)."""
        for seg in self.segments:
            if seg.offset <= offset < seg.offset + max(seg.filesz, 1):
                return offset - seg.offset + seg.vaddr
        return None

    def lookup(self, vaddr: int) -> Optional[Tuple[ElfSymbol, int]]:
        """The function containing link-time address ``vaddr`` and the offset into it."""
        i = bisect.bisect_right(self._addrs, vaddr) - 1
        if i < 0:
            return None
        start = self._addrs[i]
        fallback = None
        for j in range(bisect.bisect_left(self._addrs, start), i + 1):  # aliases: globals first
            sym = self.symbols[j]
            if vaddr < sym.address + sym.size:
                return sym, vaddr - sym.address
            if sym.size == 0 and fallback is None:
                fallback = sym
        return (fallback, vaddr - fallback.address) if fallback is not None else None

    def __iter__(self) -> Iterator[ElfSymbol]:
        return iter(self.symbols)


def _build_id(elf: Any) -> str:
    for section in elf.iter_sections():
        if section["sh_type"] != "SHT_NOTE":
            continue
        for note in section.iter_notes():
            if note["n_type"] == "NT_GNU_BUILD_ID":
                return str(note["n_desc"])
    return ""


_cache: Dict[Tuple[str, int, int], ElfFile] = {}
_cache_lock = threading.Lock()


def elf_file(path: str) -> ElfFile:
    """The parsed symbols of ``path``, cached by (path, size, mtime)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise SymbolError(f"cannot read ELF file {path}: {e.strerror}") from None
    key = (path, st.st_size, st.st_mtime_ns)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = ElfFile(path)
        with _cache_lock:
            _cache[key] = found
    return found
