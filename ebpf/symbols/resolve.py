"""BCC-style conveniences: ``ksym``, ``ksymname``, ``sym``, and stack symbolization.

Frames print as ``func+0x12 [module]``: the module is the kernel module's name (``kernel``
for the kernel image) or the file of a user address; ``[unknown]`` when nothing matches.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List, Optional

from ebpf.symbols.elf import SymbolError
from ebpf.symbols.kallsyms import kernel_symbols
from ebpf.symbols.process import process_symbols

UNKNOWN = "[unknown]"


def format_frame(name: str, offset: int, module: str, *, show_offset: bool = True,
                 show_module: bool = True) -> str:
    out = name or UNKNOWN
    if name and show_offset:
        out += f"+{offset:#x}"
    if show_module and module:
        out += f" [{module}]"
    return out


def ksym(addr: int, show_module: bool = False, show_offset: bool = False) -> str:
    """The kernel function containing ``addr`` (BCC's ``BPF.ksym``)."""
    try:
        hit = kernel_symbols().lookup(addr)
    except SymbolError:
        hit = None
    if hit is None:
        return UNKNOWN
    return format_frame(hit.name, hit.offset, hit.module or "kernel", show_offset=show_offset,
                        show_module=show_module)


def ksymname(name: str) -> int:
    """The address of kernel symbol ``name``, or -1 (BCC's ``BPF.ksymname``)."""
    try:
        return kernel_symbols().address_of(name)
    except SymbolError:
        return -1


def sym(addr: int, pid: int, show_module: bool = False, show_offset: bool = False) -> str:
    """The function at ``addr`` in process ``pid`` (``pid`` < 0: the kernel), BCC's ``BPF.sym``."""
    if pid is None or pid < 0:
        return ksym(addr, show_module, show_offset)
    try:
        hit = process_symbols(pid).resolve(addr)
    except SymbolError:
        hit = None
    if hit is None or not hit.name:
        module = os.path.basename(hit.module) if hit is not None else ""
        return UNKNOWN + (f" [{module}]" if show_module and module else "")
    return format_frame(hit.name, hit.offset, os.path.basename(hit.module), show_offset=show_offset,
                        show_module=show_module)


def kernel_stack(addrs: Iterable[int], *, show_offset: bool = True, show_module: bool = True) -> List[str]:
    """One line per frame of a kernel stack (innermost first)."""
    return [ksym(a, show_module, show_offset) for a in addrs]


def user_stack(addrs: Iterable[int], pid: int, *, show_offset: bool = True, show_module: bool = True) -> List[str]:
    """One line per frame of a user stack of process ``pid`` (innermost first)."""
    return [sym(a, pid, show_module, show_offset) for a in addrs]


def stack_symbols(stack_map: Any, stack_id: int, pid: Optional[int] = None, *, show_offset: bool = True,
                  show_module: bool = True) -> List[str]:
    """Walk stack ``stack_id`` of a stack trace map and symbolize it: a kernel stack when ``pid``
    is None, else a user stack of ``pid``. A negative ``stack_id`` (the helper's error) gives []."""
    if stack_id < 0:
        return []
    addrs = stack_map.stack(stack_id)
    if pid is None:
        return kernel_stack(addrs, show_offset=show_offset, show_module=show_module)
    return user_stack(addrs, pid, show_offset=show_offset, show_module=show_module)
