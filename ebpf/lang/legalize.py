"""Rewriting a function's IR into the instructions an older instruction set (ISA level) has.

The front end emits the newest instructions that express what it means (``movsx`` for sign
extension, ``sdiv`` for C's signed division, ``jmp32`` for compares of 32-bit values...). This
pass runs before register allocation, so a replacement may take fresh virtual registers and
labels, and rewrites each instruction the target level lacks (see :mod:`ebpf.lang.isa`):

* ``movsx``/``ldsx`` -> move or load, then ``<<`` and arithmetic ``>>``;
* ``sdiv``/``smod`` -> unsigned division of the magnitudes, the sign put back (C's truncation,
  and eBPF's answers: ``x / 0 == 0``, ``x % 0 == x``, ``MIN / -1 == MIN``);
* ``bswap`` -> the byte-order instruction that swaps on this host's (the kernel's) byte order;
* ``jmp32`` -> a 64-bit compare of the zero- (unsigned tests) or sign-extended (signed tests)
  low halves;
* ``jlt``/``jle``/``jslt``/``jsle`` (v1) -> the mirrored compare, or the negated one over a ``ja``;
* ``lock or/and/xor`` (v3, no fetch) -> load, operate, store: not atomic, as the DSL's other
  compound assignments are on a kernel without the instruction.

Each replacement is itself legalized again (a v4 rewrite may produce ``jmp32`` for a v2 target).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional

from ebpf.asm import opcodes as o
from ebpf.errors import CompileError
from ebpf.lang.ir import LABEL, Function, Op
from ebpf.lang.isa import LATEST, level_of

__all__ = ["legalize"]

_SIGNED_JUMPS = frozenset({o.JSGT, o.JSGE, o.JSLT, o.JSLE})
_MIRROR = {o.JLT: o.JGT, o.JLE: o.JGE, o.JSLT: o.JSGT, o.JSLE: o.JSGE}
_NEGATE = {o.JLT: o.JGE, o.JLE: o.JGT, o.JSLT: o.JSGE, o.JSLE: o.JSGT}
_SWAP_ON_HOST = o.TO_BE if sys.byteorder == "little" else o.TO_LE
_DEPTH = 4  # rewrites of rewrites (sdiv -> jmp32 -> jlt at the deepest)


def legalize(fn: Function, level: int) -> None:
    """Rewrite ``fn.ops`` in place so that every instruction exists at ISA ``level``."""
    if level >= LATEST:
        return
    out: List[Op] = []
    for op in fn.ops:
        _lower(fn, op, level, out, 0)
    fn.ops = out


def _lower(fn: Function, op: Op, level: int, out: List[Op], depth: int) -> None:
    if op.code == LABEL or level_of(op.code, op.src, op.off, op.imm) <= level:
        out.append(op)
        return
    rewrite = _rewrite_for(op)
    if rewrite is None or depth >= _DEPTH:
        raise _error(op, f"instruction {op.code:#04x} needs eBPF ISA v{level_of(op.code, op.src, op.off, op.imm)}"
                         f" and has no replacement at v{level}")
    for new in rewrite(_Emit(fn, op)):
        _lower(fn, new, level, out, depth + 1)


def _error(op: Op, message: str) -> CompileError:
    pos = op.pos
    if pos is None:
        return CompileError(message)
    return CompileError(message, pos.file, pos.line, pos.col, pos.text)


class _Emit:
    """Builds a replacement: new ops carry the source position of the one they replace."""

    def __init__(self, fn: Function, op: Op) -> None:
        self.fn = fn
        self.op = op
        self.ops: List[Op] = []

    def __call__(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
                 target: Optional[str] = None, meta: Optional[Dict[str, Any]] = None) -> None:
        self.ops.append(Op(code, dst, src, off, imm, target, self.op.pos, meta))

    def vreg(self) -> int:
        return self.fn.vreg()

    def label(self, hint: str) -> str:
        return self.fn.new_label(hint)

    def place(self, name: str) -> None:
        self.ops.append(Op(LABEL, target=name))

    def sign_extend(self, dst: int, bits: int, w64: bool = True) -> None:
        """Sign-extend the low ``bits`` of ``dst`` in place (to 64 bits, or to 32 with ``w64`` off)."""
        cls = o.ALU64 if w64 else o.ALU
        shift = (64 if w64 else 32) - bits
        self(cls | o.LSH, dst, imm=shift)
        self(cls | o.ARSH, dst, imm=shift)


Rewrite = Callable[[_Emit], List[Op]]


def _rewrite_for(op: Op) -> Optional[Rewrite]:
    code = op.code
    cls = code & 0x07
    if cls in (o.ALU, o.ALU64):
        opn = code & 0xF0
        if opn == o.MOV:
            return _movsx
        if opn in (o.DIV, o.MOD):
            return _signed_divide
        if opn == o.END:
            return _bswap
    elif cls == o.LDX:
        return _ldsx
    elif cls == o.JMP32 and code & 0xF0 != o.JA:
        return _jmp32
    elif cls == o.JMP and code & 0xF0 in _MIRROR:
        return _v2_jump
    elif cls == o.STX and code & 0xE0 == o.ATOMIC and not op.imm & o.FETCH:
        return _atomic_without_fetch
    return None


def _movsx(e: _Emit) -> List[Op]:
    op = e.op
    w64 = op.code & 0x07 == o.ALU64
    e((o.ALU64 if w64 else o.ALU) | o.MOV | o.X, op.dst, op.src)
    e.sign_extend(op.dst, op.off, w64)
    return e.ops


def _ldsx(e: _Emit) -> List[Op]:
    op = e.op
    size = op.code & 0x18
    e(o.LDX | o.MEM | size, op.dst, op.src, op.off, op.imm, meta=op.meta)
    e.sign_extend(op.dst, 8 * o.SIZE_BYTES[size])
    return e.ops


def _bswap(e: _Emit) -> List[Op]:
    op = e.op
    e(o.ALU | o.END | _SWAP_ON_HOST, op.dst, imm=op.imm)
    return e.ops


def _signed_divide(e: _Emit) -> List[Op]:
    """``dst s/= src`` or ``dst s%= src`` from magnitudes: the quotient's sign is the operands'
    signs xored, the remainder's the dividend's. 32-bit forms run on the sign-extended values
    and keep the low half (MIN32 / -1 gives 2**31, whose low half is MIN32 again)."""
    op = e.op
    w64 = op.code & 0x07 == o.ALU64
    div = op.code & 0xF0 == o.DIV
    a, b, sign = e.vreg(), e.vreg(), e.vreg()
    e(o.ALU64 | o.MOV | o.X, a, op.dst)
    if op.code & o.X:
        e(o.ALU64 | o.MOV | o.X, b, op.src)
        if not w64:
            e.sign_extend(b, 32)
    else:
        e(o.ALU64 | o.MOV, b, imm=op.imm)  # the immediate is sign-extended as the instruction's is
    if not w64:
        e.sign_extend(a, 32)
    e(o.ALU64 | o.MOV | o.X, sign, a)
    if div:
        e(o.ALU64 | o.XOR | o.X, sign, b)
    for reg in (a, b):
        positive = e.label("abs")
        e(o.JMP | o.JSGE, reg, imm=0, target=positive)
        e(o.ALU64 | o.NEG, reg)
        e.place(positive)
    e(o.ALU64 | (o.DIV if div else o.MOD) | o.X, a, b)
    done = e.label("sgn")
    e(o.JMP | o.JSGE, sign, imm=0, target=done)
    e(o.ALU64 | o.NEG, a)
    e.place(done)
    e((o.ALU64 if w64 else o.ALU) | o.MOV | o.X, op.dst, a)
    return e.ops


def _jmp32(e: _Emit) -> List[Op]:
    """A 32-bit compare as a 64-bit one on copies extended the way the test reads them."""
    op = e.op
    test = op.code & 0xF0
    signed = test in _SIGNED_JUMPS

    def extended(reg: int) -> int:
        r = e.vreg()
        if signed:
            e(o.ALU64 | o.MOV | o.X, r, reg)
            e.sign_extend(r, 32)
        else:
            e(o.ALU | o.MOV | o.X, r, reg)  # a 32-bit move zero-extends
        return r

    a = extended(op.dst)
    if op.code & o.X:
        e(o.JMP | test | o.X, a, extended(op.src), target=op.target)
    elif signed or op.imm >= 0 or test == o.JSET:
        e(o.JMP | test, a, imm=op.imm, target=op.target)  # the immediate's 64-bit reading agrees
    else:
        b = e.vreg()
        e(o.ALU | o.MOV, b, imm=op.imm)  # the unsigned 32-bit value, zero-extended
        e(o.JMP | test | o.X, a, b, target=op.target)
    return e.ops


def _v2_jump(e: _Emit) -> List[Op]:
    op = e.op
    test = op.code & 0xF0
    if op.code & o.X:
        e(o.JMP | _MIRROR[test] | o.X, op.src, op.dst, target=op.target)  # a < b is b > a
        return e.ops
    skip = e.label("nj")
    e(o.JMP | _NEGATE[test], op.dst, imm=op.imm, target=skip)
    e(o.JMP | o.JA, target=op.target)
    e.place(skip)
    return e.ops


def _atomic_without_fetch(e: _Emit) -> List[Op]:
    op = e.op
    size = op.code & 0x18
    cls = o.ALU64 if size == o.DW else o.ALU
    t = e.vreg()
    e(o.LDX | o.MEM | size, t, op.dst, op.off, meta=op.meta)
    e(cls | op.imm | o.X, t, op.src)
    e(o.STX | o.MEM | size, op.dst, t, op.off, meta=op.meta)
    return e.ops

