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

from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, Label, ProgramItem
from ebpf.errors import AssemblerError, LoadError

__all__ = ["link", "merge_labels", "bind_maps", "resolves_pc_relative"]

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


def merge_labels(items: Iterable[ProgramItem]) -> Tuple[List[Instruction], List[str]]:
    """Give every Label marker to the instruction after it; return the instructions and the
    names left after the last one.

    An instruction carries one name (``label``); the other names of the same instruction (more
    markers before it, or markers before an instruction that already has a label) become
    aliases of that name: references to them are renamed to it, so the result is a list of
    instructions that still links, and links the same, without the markers. Instructions are
    copied where they change. Raises :class:`AssemblerError` for a duplicate label.
    """
    seq = items if isinstance(items, list) else list(items)
    out: List[Instruction] = []
    alias: Dict[str, str] = {}
    seen: Dict[str, bool] = {}
    pending: List[str] = []
    for item in seq:
        if isinstance(item, Label):
            if item.name in seen or item.name in pending:
                raise AssemblerError(f"duplicate label {item.name!r}")
            pending.append(item.name)
            continue
        if not isinstance(item, Instruction):
            raise TypeError(f"cannot link {item!r}: expected an Instruction or a Label")
        insn = item
        own = insn.label
        if own is not None:
            if own in seen or own in pending:
                raise _error(f"duplicate label {own!r}", insn)
            seen[own] = True
        if pending:
            if own is None:
                insn = insn.copy()
                insn.label = own = pending[0]
            for name in pending:
                seen[name] = True
                if name != own:
                    alias[name] = own
            pending = []
        out.append(insn)
    for name in pending:
        seen[name] = True
    if alias:
        for index, insn in enumerate(out):
            ref = insn.reference
            if ref is not None and ref in alias and resolves_pc_relative(insn):
                insn = out[index] = insn.copy()
                insn.reference = alias[ref]
    return out, pending


def link(items: Iterable[ProgramItem]) -> List[Instruction]:
    """Resolve label references to offsets; return the instructions (Label markers removed).

    Offsets count 8-byte slots from the instruction after the jump (``target - pc - 1``; an
    LD_IMM64 counts 2). Jumps get ``off`` (``imm`` for gotol), bpf-to-bpf calls and
    PSEUDO_FUNC loads get ``imm``. Label markers name the next instruction
    (:func:`merge_labels`); markers after the last instruction name the end of the program,
    where llvm-mc puts them too (the verifier then judges a jump there). Instructions are
    copied where they change, never mutated, and keep their ``reference`` (renamed to the
    label the target carries) so that linking the result again, or after edits, gives the same
    offsets; only a reference to the end of the program keeps its offset alone, since no
    instruction carries that name.
    Raises :class:`AssemblerError` for an undefined or duplicate label, or a jump whose offset
    does not fit its field.
    """
    out, trailing = merge_labels(items)
    table: Dict[str, int] = {}
    fixups: List[int] = []  # indexes into out
    pcs: List[int] = []
    pc = 0
    for insn in out:
        if insn.label is not None:
            table[insn.label] = pc
        if insn.reference is not None and resolves_pc_relative(insn):
            fixups.append(len(pcs))
        pcs.append(pc)
        pc += 2 if insn.opcode == o.LD_IMM64 else 1
    ends = frozenset(trailing)
    for name in trailing:
        table[name] = pc
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
            if insn.imm != delta or ref in ends:
                insn = out[index] = insn.copy()
                insn.imm = delta
        else:
            if not -0x8000 <= delta <= 0x7FFF:
                raise _error(
                    f"jump to {ref!r} out of range: offset {delta} does not fit in 16 bits (use gotol)", insn
                )
            if insn.off != delta or ref in ends:
                insn = out[index] = insn.copy()
                insn.off = delta
        if ref in ends:
            insn.reference = None
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
