"""eBPF instruction-set levels (v1-v4) and the level the compiler targets.

The levels are LLVM's ``-mcpu=v1..v4`` and the kernel's: what a verifier takes grew in steps,
and a program is only loadable where every instruction it holds is known.

* v1: the base set (Linux 3.18+).
* v2: ``jlt``/``jle``/``jslt``/``jsle`` (4.14+).
* v3: ``jmp32`` compares (5.1+) and atomics beyond ``add``: ``or``/``and``/``xor``, their
  ``fetch`` forms, ``xchg``, ``cmpxchg`` (5.12+). A kernel has v3 when it has both.
* v4: sign extension (``movsx``, ``ldsx``), signed ``sdiv``/``smod``, unconditional
  ``bswap``, ``gotol`` (6.6+).

``may_goto`` (6.9+) belongs to no level; the compiler does not emit it.

The compiler targets, in order: the level a :class:`~ebpf.lang.collection.Collection` was
given (``isa=``), else ``$EBPF_ISA``, else what the running kernel takes
(:func:`ebpf.features.isa_level`, probed only when a program is actually compiled: the compile
cache's key holds the request, ``auto`` or a level, and the kernel's boot id decides the rest).
"""

from __future__ import annotations

import os
from typing import Optional

from ebpf.asm import opcodes as o
from ebpf.errors import EbpfError

__all__ = ["LATEST", "LEVELS", "level_of", "resolve", "check_level"]

LATEST = 4
LEVELS = (1, 2, 3, 4)
ENV = "EBPF_ISA"

_V2_JUMPS = frozenset({o.JLT, o.JLE, o.JSLT, o.JSLE})


def level_of(code: int, src: int = 0, off: int = 0, imm: int = 0) -> int:
    """The lowest level that has the instruction ``(code, src, off, imm)``."""
    cls = code & 0x07
    if cls == o.ALU or cls == o.ALU64:
        op = code & 0xF0
        if op == o.MOV and code & o.X and off != 0:
            return 4  # movsx (and the arena address cast, newer still)
        if op in (o.DIV, o.MOD) and off != 0:
            return 4  # sdiv / smod
        if op == o.END and cls == o.ALU64:
            return 4  # bswap
        return 1
    if cls == o.LDX:
        return 4 if code & 0xE0 == o.MEMSX else 1
    if cls == o.STX:
        if code & 0xE0 == o.ATOMIC and imm != o.ADD:
            return 3
        return 1
    if cls == o.JMP32:
        return 4 if code & 0xF0 == o.JA else 3  # gotol; jmp32 compares
    if cls == o.JMP:
        op = code & 0xF0
        if op == o.JCOND:
            return 4  # may_goto: newer than v4 (6.9): never lower
        return 2 if op in _V2_JUMPS else 1
    return 1


def check_level(level: object, what: str = "isa") -> int:
    """``level`` as a valid ISA level (1-4), else an :class:`~ebpf.errors.EbpfError`."""
    if isinstance(level, str) and level.strip().lower().lstrip("v").isdigit():
        level = int(level.strip().lower().lstrip("v"))
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise EbpfError(f"{what}: {level!r} is not an eBPF instruction-set level (1, 2, 3 or 4)")
    return level


def resolve(level: Optional[int]) -> int:
    """The level to compile for: ``level``, else ``$EBPF_ISA``, else the running kernel's."""
    if level is not None:
        return check_level(level)
    env = os.environ.get(ENV, "")
    if env:
        return check_level(env, ENV)
    from ebpf.features import isa_level

    return isa_level()
