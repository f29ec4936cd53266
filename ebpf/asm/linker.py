"""Resolving symbols: labels to pc-relative offsets (:func:`link`), map names to fds (:func:`bind_maps`).

Two stages because they happen at different times. Labels are known when a program is
assembled, so :func:`link` runs right after building or parsing. Map fds exist only once the
loader has created the maps, so map loads keep their map's *name* in ``reference`` until then.

Map-reference contract (for the loader): an instruction with ``is_map_load`` (LD_IMM64 with
src PSEUDO_MAP_FD, MAP_VALUE, MAP_IDX or MAP_IDX_VALUE) and a ``reference`` names a map. The
loader writes the map's fd (or, for the _IDX forms, its fd_array index) into the *low* 32 bits of
``imm`` and keeps ``src`` and the high 32 bits (the value offset of MAP_VALUE); that is what
:func:`bind_maps` does. PSEUDO_BTF_ID loads and kfunc calls (JMP|CALL src=2) with a
``reference`` name kernel symbols the loader resolves through BTF the same way (low 32 bits of
``imm`` = BTF id, ``off`` of a kfunc call = fd_array index of its module BTF).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, Label, ProgramItem
from ebpf.errors import AssemblerError, LoadError

__all__ = ["link", "bind_maps", "resolves_pc_relative"]

_JMP_CALL = o.JMP | o.CALL
_GOTOL = o.JMP32 | o.JA


def _error(message: str, insn: Optional[Instruction]) -> AssemblerError:
    if insn is not None and insn.source is not None:
        return AssemblerError(message, line=insn.source.line, text=insn.source.text)
    return AssemblerError(message)


def resolves_pc_relative(insn: Instruction) -> bool:
    """True if the instruction's ``reference`` is a label in the same program.

    Jumps (incl. gotol and may_goto), bpf-to-bpf calls (src=1) and PSEUDO_FUNC loads; map
    loads, BTF-id loads and kfunc/helper calls refer to things outside the program.
    """
    code = insn.opcode
    cls = code & 0x07
    if cls == o.JMP:
        op = code & 0xF0
        if op == o.CALL:
            return code == _JMP_CALL and insn.src == o.CALL_PSEUDO
        return op != o.EXIT
    if cls == o.JMP32:
        return True
    return code == o.LD_IMM64 and insn.src == o.PSEUDO_FUNC


def link(items: Iterable[ProgramItem]) -> List[Instruction]:
    """Resolve label references to offsets; return the instructions (Label markers removed).

    Offsets count 8-byte slots from the instruction after the jump (``target - pc - 1``; an
    LD_IMM64 counts 2). Jumps get ``off`` (``imm`` for gotol), bpf-to-bpf calls and
    PSEUDO_FUNC loads get ``imm``. A :class:`Label` marker names the next instruction (which
    gets it as ``label`` if it has none). Instructions are copied where they change, never
    mutated, and keep their ``reference`` so linking again after edits is safe.
    Raises :class:`AssemblerError` for an undefined or duplicate label, a marker at the end,
    or a jump whose offset does not fit its field.
    """
    seq = items if isinstance(items, list) else list(items)
    out: List[Instruction] = []
    table: Dict[str, int] = {}
    pending: List[str] = []
    fixups: List[int] = []  # indexes into out
    pcs: List[int] = []
    pc = 0
    for item in seq:
        if isinstance(item, Label):
            name = item.name
            if name in table or name in pending:
                raise AssemblerError(f"duplicate label {name!r}")
            pending.append(name)
            continue
        if not isinstance(item, Instruction):
            raise TypeError(f"cannot link {item!r}: expected an Instruction or a Label")
        insn = item
        if pending:
            if insn.label is None:
                insn = insn.copy()
                insn.label = pending[0]
            for name in pending:
                table[name] = pc
            pending = []
        own = insn.label
        if own is not None:
            if table.get(own, pc) != pc:
                raise _error(f"duplicate label {own!r}", insn)
            table[own] = pc
        if insn.reference is not None and resolves_pc_relative(insn):
            fixups.append(len(out))
        out.append(insn)
        pcs.append(pc)
        pc += 2 if insn.opcode == o.LD_IMM64 else 1
    if pending:
        raise AssemblerError(f"label {pending[0]!r} is not followed by an instruction")
    for index in fixups:
        insn = out[index]
        ref = insn.reference or ""
        target = table.get(ref)
        if target is None:
            raise _error(f"undefined label {ref!r}", insn)
        delta = target - pcs[index] - 1
        code = insn.opcode
        if code == _GOTOL or code == _JMP_CALL or code == o.LD_IMM64:
            if not -0x80000000 <= delta <= 0x7FFFFFFF:
                raise _error(f"jump to {ref!r} out of range: offset {delta} does not fit in 32 bits", insn)
            if code == o.LD_IMM64:
                delta &= 0xFFFFFFFF  # the offset is the low half of the 64-bit immediate
            if insn.imm != delta:
                insn = out[index] = insn.copy()
                insn.imm = delta
        else:
            if not -0x8000 <= delta <= 0x7FFF:
                raise _error(
                    f"jump to {ref!r} out of range: offset {delta} does not fit in 16 bits (use gotol)", insn
                )
            if insn.off != delta:
                insn = out[index] = insn.copy()
                insn.off = delta
    return out


def bind_maps(insns: Iterable[Instruction], fds: Mapping[str, int]) -> List[Instruction]:
    """Write map fds (or fd_array indexes) into the map loads that name a map in ``reference``.

    Returns a new list; changed instructions are copies. Raises :class:`LoadError` naming the
    first map reference that ``fds`` does not cover.
    """
    out: List[Instruction] = []
    for insn in insns:
        if insn.reference is not None and insn.opcode == o.LD_IMM64 and insn.src in o.MAP_PSEUDOS:
            fd = fds.get(insn.reference)
            if fd is None:
                where = f" (line {insn.source.line})" if insn.source is not None else ""
                raise LoadError(f"instruction refers to unknown map {insn.reference!r}{where}")
            insn = insn.copy()
            insn.imm = (insn.imm >> 32) << 32 | (fd & 0xFFFFFFFF)
        out.append(insn)
    return out
