"""Register allocation: virtual registers to r0..r9 (or stack slots), then real instructions.

Linear scan over live intervals computed from a proper liveness analysis of the control-flow
graph (so loops keep their variables alive around the back edge). The ABI is expressed as
occupancy of the machine registers: a helper call writes r0..r5, so any interval that spans a
call cannot take them and lands in the callee-saved r6..r9; argument set-up and result moves
occupy r1..r5 and r0 only for the few instructions between the move and the call. Moves give
hints, so a value computed for an argument is computed in that argument's register and the
move disappears. When registers run out the interval that ends last is spilled to an 8-byte
stack slot and allocation runs again on the rewritten code.

Unreachable blocks are removed first: the verifier refuses programs with dead instructions.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Dict, List, Set, Tuple

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, Label, ProgramItem
from ebpf.lang.ir import FIRST_VREG, FP, LABEL, Function, Op, defs_uses

__all__ = ["allocate"]

_CALL = o.JMP | o.CALL
_EXIT = o.JMP | o.EXIT
_MOV64X = o.ALU64 | o.MOV | o.X
_ALLOCATABLE = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
_CALLEE_SAVED = (6, 7, 8, 9)
MAX_ROUNDS = 12


def _is_terminator(op: Op) -> bool:
    code = op.code
    if code == LABEL:
        return False
    cls = code & 7
    if code == _EXIT:
        return True
    return (cls == o.JMP or cls == o.JMP32) and code != _CALL


def _blocks(ops: List[Op]) -> List[Tuple[int, int]]:
    """[start, end) index ranges of the basic blocks."""
    out: List[Tuple[int, int]] = []
    start = 0
    for i, op in enumerate(ops):
        if op.code == LABEL and i > start:
            out.append((start, i))
            start = i
        if _is_terminator(op):
            out.append((start, i + 1))
            start = i + 1
    if start < len(ops):
        out.append((start, len(ops)))
    return out


def _successors(ops: List[Op], blocks: List[Tuple[int, int]]) -> List[List[int]]:
    label_block: Dict[str, int] = {}
    for b, (s, e) in enumerate(blocks):
        for i in range(s, e):
            if ops[i].code == LABEL:
                label_block[ops[i].target or ""] = b
            else:
                break
    succ: List[List[int]] = []
    for b, (_s, e) in enumerate(blocks):
        last = ops[e - 1]
        nxt = [b + 1] if b + 1 < len(blocks) else []
        code = last.code
        if code == _EXIT:
            succ.append([])
        elif _is_terminator(last):
            target = label_block.get(last.target or "")
            if target is None:
                raise ValueError(f"jump to undefined label {last.target!r}")
            if code & 0xF0 == o.JA and code & 7 == o.JMP:
                succ.append([target])
            else:
                succ.append([target] + nxt)
        else:
            succ.append(nxt)
    return succ


def _prune_unreachable(ops: List[Op]) -> List[Op]:
    blocks = _blocks(ops)
    if not blocks:
        return ops
    succ = _successors(ops, blocks)
    seen = {0}
    work = [0]
    while work:
        b = work.pop()
        for s in succ[b]:
            if s not in seen:
                seen.add(s)
                work.append(s)
    if len(seen) == len(blocks):
        return ops
    out: List[Op] = []
    for b, (s, e) in enumerate(blocks):
        if b in seen:
            out.extend(ops[s:e])
    return out


def _drop_jumps_to_next(ops: List[Op]) -> List[Op]:
    """``ja L`` immediately followed by ``L:`` (possibly among other labels) goes away."""
    out: List[Op] = []
    n = len(ops)
    for i, op in enumerate(ops):
        if op.code == o.JMP | o.JA and op.target is not None:
            j = i + 1
            found = False
            while j < n and ops[j].code == LABEL:
                if ops[j].target == op.target:
                    found = True
                    break
                j += 1
            if found:
                continue
        out.append(op)
    return out


Segments = List[Tuple[int, int]]


def _overlap(a: Segments, b: Segments) -> bool:
    """Whether two sorted lists of closed [start, end] segments intersect."""
    i = j = 0
    while i < len(a) and j < len(b):
        s1, e1 = a[i]
        s2, e2 = b[j]
        if s1 <= e2 and s2 <= e1:
            return True
        if e1 < e2:
            i += 1
        else:
            j += 1
    return False


class _Analysis:
    """Liveness, live segments (intervals with holes) of every register, calls and move hints.

    Positions: op ``i`` reads its operands at ``2i`` and writes its results at ``2i + 1``, so
    a value whose last use is an op can share a register with the value that op defines.
    """

    def __init__(self, ops: List[Op]) -> None:
        self.ops = ops
        blocks = _blocks(ops)
        succ = _successors(ops, blocks)
        du = [defs_uses(op) for op in ops]
        nb = len(blocks)
        use: List[Set[int]] = []
        kill: List[Set[int]] = []
        for s, e in blocks:
            u: Set[int] = set()
            k: Set[int] = set()
            for i in range(s, e):
                d, us = du[i]
                for r in us:
                    if r not in k and r != FP:
                        u.add(r)
                for r in d:
                    k.add(r)
            use.append(u)
            kill.append(k)
        live_in: List[Set[int]] = [set() for _ in range(nb)]
        live_out: List[Set[int]] = [set() for _ in range(nb)]
        changed = True
        while changed:
            changed = False
            for b in range(nb - 1, -1, -1):
                out: Set[int] = set()
                for s in succ[b]:
                    out |= live_in[s]
                inn = use[b] | (out - kill[b])
                if out != live_out[b] or inn != live_in[b]:
                    live_out[b] = out
                    live_in[b] = inn
                    changed = True
        segs: Dict[int, Segments] = {}
        calls: List[int] = []
        for b, (s, e) in enumerate(blocks):
            live = {r for r in live_out[b] if r != FP}
            end_of = {r: 2 * (e - 1) + 1 for r in live}
            for i in range(e - 1, s - 1, -1):
                d, us = du[i]
                if ops[i].code == _CALL:
                    calls.append(2 * i + 1)
                for r in d:
                    if r == FP:
                        continue
                    if r in live:
                        segs.setdefault(r, []).append((2 * i + 1, end_of[r]))
                        live.discard(r)
                    else:
                        segs.setdefault(r, []).append((2 * i + 1, 2 * i + 1))
                for r in us:
                    if r != FP and r not in live:
                        live.add(r)
                        end_of[r] = 2 * i
            for r in live:
                segs.setdefault(r, []).append((2 * s, end_of[r]))
        for r in segs:
            segs[r].sort()
        calls.sort()
        self.segs = segs
        self.fixed = {r: segs.get(r, []) for r in _ALLOCATABLE}
        self.vregs = [r for r in segs if r >= FIRST_VREG]
        self.calls = calls
        hint_phys: Dict[int, List[int]] = {}
        hint_v: Dict[int, List[int]] = {}
        for op in ops:
            if op.code == _MOV64X and op.off == 0:
                a, b_ = op.dst, op.src
                if a >= FIRST_VREG and b_ >= FIRST_VREG:
                    hint_v.setdefault(a, []).append(b_)
                    hint_v.setdefault(b_, []).append(a)
                elif a >= FIRST_VREG and b_ != FP:
                    hint_phys.setdefault(a, []).append(b_)
                elif b_ >= FIRST_VREG and a != FP:
                    hint_phys.setdefault(b_, []).append(a)
        self.hint_phys = hint_phys
        self.hint_v = hint_v

    def crosses_call(self, v: int) -> bool:
        for a, b in self.segs[v]:
            i = bisect_left(self.calls, a + 1)
            if i < len(self.calls) and self.calls[i] < b:
                return True
        return False


def _merge(a: Segments, b: Segments) -> Segments:
    return sorted(a + b)


def _coalesce(an: _Analysis) -> Dict[int, int]:
    """Merge the two sides of ``mov a, b`` into one value when their lives do not intersect
    (the move then disappears). Returns member -> representative; ``an`` is updated so the
    representative carries the union of the segments and hints."""
    rep: Dict[int, int] = {}

    def find(v: int) -> int:
        while v in rep:
            v = rep[v]
        return v

    for op in an.ops:
        if op.code != _MOV64X or op.off != 0 or op.dst < FIRST_VREG or op.src < FIRST_VREG:
            continue
        a, b = find(op.dst), find(op.src)
        if a == b or a not in an.segs or b not in an.segs:
            continue
        if _overlap(an.segs[a], an.segs[b]):
            continue
        an.segs[a] = _merge(an.segs[a], an.segs.pop(b))
        rep[b] = a
        an.hint_phys.setdefault(a, []).extend(an.hint_phys.pop(b, []))
        an.hint_v.setdefault(a, []).extend(an.hint_v.pop(b, []))
    if rep:
        an.vregs = [v for v in an.vregs if v not in rep]
        for v, hints in an.hint_v.items():
            an.hint_v[v] = [find(w) for w in hints if find(w) != v]
    return {v: find(v) for v in rep}


def _linear_scan(an: _Analysis) -> Tuple[Dict[int, int], Set[int]]:
    """Assign registers in order of first definition; a register holds several values whose
    live segments do not intersect (so a value dead in an early-return block leaves its
    register free there)."""
    start = {v: an.segs[v][0][0] for v in an.vregs}
    end = {v: an.segs[v][-1][1] for v in an.vregs}
    order = sorted(an.vregs, key=lambda v: (start[v], end[v]))
    assign: Dict[int, int] = {}
    holders: Dict[int, List[int]] = {r: [] for r in _ALLOCATABLE}
    spilled: Set[int] = set()
    for v in order:
        vs = an.segs[v]
        prefs: List[int] = []
        for r in an.hint_phys.get(v, ()):
            if r in _ALLOCATABLE and r not in prefs:
                prefs.append(r)
        for w in an.hint_v.get(v, ()):
            r = assign.get(w, -1)
            if r >= 0 and r not in prefs:
                prefs.append(r)
        base = _CALLEE_SAVED if an.crosses_call(v) else _ALLOCATABLE
        prefs.extend(r for r in base if r not in prefs)
        chosen = -1
        best_evict: List[int] = []
        best_reg = -1
        for r in prefs:
            if _overlap(vs, an.fixed[r]):
                continue
            conflicts = [w for w in holders[r] if _overlap(vs, an.segs[w])]
            if not conflicts:
                chosen = r
                break
            if all(end[w] > end[v] for w in conflicts) and (best_reg < 0 or len(conflicts) < len(best_evict)):
                best_reg, best_evict = r, conflicts
        if chosen < 0 and best_reg >= 0:
            for w in best_evict:
                holders[best_reg].remove(w)
                del assign[w]
                spilled.add(w)
            chosen = best_reg
        if chosen < 0:
            spilled.add(v)
            continue
        assign[v] = chosen
        holders[chosen].append(v)
    return assign, spilled


def _spill_slots(fn: Function, an: _Analysis, spilled: Set[int], members: Dict[int, int]) -> Dict[int, int]:
    """A stack slot for each spilled register; registers whose lives do not intersect share one
    (the eBPF stack is 512 bytes for the whole call chain). Coalesced members take their
    representative's slot: they are one value split by moves."""
    slots: Dict[int, int] = {}
    taken: List[Tuple[int, Segments]] = []  # (offset, the segments living in it)
    reps = sorted((v for v in spilled if v in an.segs), key=lambda v: an.segs[v][0])
    for v in reps:
        segs = an.segs[v]
        for i, (off, used) in enumerate(taken):
            if not _overlap(segs, used):
                taken[i] = (off, _merge(used, segs))
                slots[v] = off
                break
        else:
            slots[v] = fn.frame.alloc(8, fresh=True)
            taken.append((slots[v], list(segs)))
    for v in spilled:
        if v not in slots:
            rep = members.get(v, v)
            slots[v] = slots[rep] if rep in slots else fn.frame.alloc(8, fresh=True)
    return slots


def _rewrite_spills(ops: List[Op], slots: Dict[int, int], fn: Function, reuse: bool = True) -> List[Op]:
    """Give each spilled register its stack slot: store after each definition, load before a use
    unless the value is still in the register it was loaded or computed in (same block, no call
    in between)."""
    out: List[Op] = []
    ldx = o.LDX | o.MEM | o.DW
    stx = o.STX | o.MEM | o.DW
    cached: Dict[int, int] = {}
    for op in ops:
        if op.code == LABEL:
            cached.clear()
            out.append(op)
            continue
        d, u = defs_uses(op)
        touched = [r for r in dict.fromkeys(tuple(u) + tuple(d)) if r in slots]
        if touched:
            tmp: Dict[int, int] = {}
            for r in touched:
                if reuse and r in u and r in cached:
                    tmp[r] = cached[r]
                    continue
                tmp[r] = fn.vreg()
                if r in u:
                    out.append(Op(ldx, tmp[r], FP, slots[r], pos=op.pos))
            op = Op(op.code, tmp.get(op.dst, op.dst), tmp.get(op.src, op.src), op.off, op.imm, op.target, op.pos,
                    op.meta, op.nargs)
            out.append(op)
            for r in touched:
                if r in d:
                    out.append(Op(stx, FP, tmp[r], slots[r], pos=op.pos))
                cached[r] = tmp[r]
        else:
            out.append(op)
        if op.code == _CALL or _is_terminator(op):
            cached.clear()
    return out


def allocate(fn: Function) -> List[ProgramItem]:
    """Allocate ``fn``'s registers; returns instructions and label markers for the linker."""
    ops = _drop_jumps_to_next(_prune_unreachable(fn.ops))
    for round_ in range(MAX_ROUNDS):
        an = _Analysis(ops)
        members = _coalesce(an)
        assign, spilled = _linear_scan(an)
        if not spilled:
            for v, r in members.items():
                assign[v] = assign[r]
            return _emit(ops, assign)
        spilled |= {v for v, r in members.items() if r in spilled}
        slots = _spill_slots(fn, an, spilled, members)
        # reusing reloaded values lengthens their lives: only on the first round, so that
        # later rounds (spilling what the first left) always shrink register pressure
        ops = _rewrite_spills(ops, slots, fn, reuse=round_ == 0)
    raise RuntimeError(f"register allocation of {fn.name} did not converge")


def _emit(ops: List[Op], assign: Dict[int, int]) -> List[ProgramItem]:
    out: List[ProgramItem] = []
    for op in ops:
        if op.code == LABEL:
            out.append(Label(op.target or ""))
            continue
        dst = assign.get(op.dst, 0) if op.dst >= FIRST_VREG else op.dst
        src = assign.get(op.src, 0) if op.src >= FIRST_VREG else op.src
        if op.code == _MOV64X and dst == src and op.off == 0:
            continue
        out.append(Instruction(op.code, dst, src, op.off, op.imm, reference=op.target, source=op.pos,
                               meta=dict(op.meta) if op.meta else None))
    return out
