"""Symbols: kernel (/proc/kallsyms), user (ELF .symtab/.dynsym through /proc/PID/maps), stacks.

BCC's conveniences are here: ``ksym(addr, show_module, show_offset)``, ``ksymname(name)``,
``sym(addr, pid, show_module, show_offset)``; stack trace maps are symbolized with
``stack_symbols(stack_map, stack_id, pid=None)``. Everything loads lazily and is cached per process.
"""

from __future__ import annotations

from typing import Dict

from ebpf.lazy import lazy_exports

_LAZY: Dict[str, str] = {
    "SymbolError": "ebpf.symbols.elf",
    "ElfFile": "ebpf.symbols.elf",
    "ElfSymbol": "ebpf.symbols.elf",
    "elf_file": "ebpf.symbols.elf",
    "KernelSymbols": "ebpf.symbols.kallsyms",
    "KernelSymbol": "ebpf.symbols.kallsyms",
    "kernel_symbols": "ebpf.symbols.kallsyms",
    "ProcessMaps": "ebpf.symbols.procmaps",
    "Mapping": "ebpf.symbols.procmaps",
    "ProcessSymbols": "ebpf.symbols.process",
    "UserSymbol": "ebpf.symbols.process",
    "process_symbols": "ebpf.symbols.process",
    "find_library": "ebpf.symbols.libraries",
    "resolve_binary": "ebpf.symbols.libraries",
    "ksym": "ebpf.symbols.resolve",
    "ksymname": "ebpf.symbols.resolve",
    "sym": "ebpf.symbols.resolve",
    "format_frame": "ebpf.symbols.resolve",
    "kernel_stack": "ebpf.symbols.resolve",
    "user_stack": "ebpf.symbols.resolve",
    "stack_symbols": "ebpf.symbols.resolve",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
