"""The compiler's intermediate form: eBPF instructions over virtual registers.

The front end emits :class:`Op` records that are eBPF instructions in every respect but one:
``dst``/``src`` may name *virtual* registers (numbers >= ``FIRST_VREG``) as well as the
machine's r0..r10. Keeping the machine's two-address form means the register allocator is
the only pass between front end and bytes: it maps virtual registers to r0..r9 (or stack
slots), drops the moves it made redundant and hands :mod:`ebpf.asm` real instructions.
Machine registers appear in the IR only where the ABI fixes them: helper arguments r1..r5,
results in r0, the context in r1 on entry, the frame pointer r10.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ebpf.asm import opcodes as o

FIRST_VREG = 16
FP = 10
LABEL = -1  # pseudo opcode of a label marker

__all__ = ["Op", "Function", "Frame", "FIRST_VREG", "FP", "LABEL", "defs_uses"]


class Op:
    """One IR instruction (or a label when ``code == LABEL``, named by ``target``)."""

    __slots__ = ("code", "dst", "src", "off", "imm", "target", "pos", "meta", "nargs")

    def __init__(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
                 target: Optional[str] = None, pos: Any = None, meta: Optional[Dict[str, Any]] = None,
                 nargs: int = 0) -> None:
        self.code = code
        self.dst = dst
        self.src = src
        self.off = off
        self.imm = imm
        self.target = target
        self.pos = pos
        self.meta = meta
        self.nargs = nargs

    def __repr__(self) -> str:
        if self.code == LABEL:
            return f"{self.target}:"
        return (f"Op({self.code:#04x}, dst={self.dst}, src={self.src}, off={self.off}, imm={self.imm}"
                f"{', ' + self.target if self.target else ''})")


_CALL = o.JMP | o.CALL
_EXIT = o.JMP | o.EXIT


def defs_uses(op: Op) -> tuple:
    """(registers written, registers read) by ``op``; calls write r0..r5 (clobbers)."""
    code = op.code
    cls = code & 0x07
    if code == LABEL:
        return (), ()
    if cls == o.ALU or cls == o.ALU64:
        opn = code & 0xF0
        if opn == o.MOV:
            return (op.dst,), ((op.src,) if code & o.X else ())
        if opn == o.NEG or opn == o.END:
            return (op.dst,), (op.dst,)
        return (op.dst,), ((op.dst, op.src) if code & o.X else (op.dst,))
    if cls == o.LDX:
        return (op.dst,), (op.src,)
    if cls == o.ST:
        return (), (op.dst,)
    if cls == o.STX:
        if code & 0xE0 == o.ATOMIC:
            if op.imm == o.CMPXCHG:
                return (0,), (op.dst, op.src, 0)
            if op.imm & o.FETCH:
                return (op.src,), (op.dst, op.src)
        return (), (op.dst, op.src)
    if code == o.LD_IMM64:
        return (op.dst,), ()
    if code == _CALL:
        return (0, 1, 2, 3, 4, 5), tuple(range(1, op.nargs + 1))
    if code == _EXIT:
        return (), (0,)
    if cls == o.JMP or cls == o.JMP32:
        if code & 0xF0 == o.JA:
            return (), ()
        return (), ((op.dst, op.src) if code & o.X else (op.dst,))
    return (), ()


class Frame:
    """Stack slots below r10 (the 512-byte eBPF stack): named objects and reusable temporaries.

    Objects (locals of struct/array type) keep their slot until the function (or the inlined
    body that made them) ends; temporaries (map keys, helper buffers) are released at the end
    of the statement that needed them and reused by later statements. Register spill slots are
    always fresh: they are allocated after the code exists and must not alias anything.
    """

    LIMIT = 512

    def __init__(self) -> None:
        self.depth = 0
        self._free: List[tuple] = []  # (offset, size) of released slots, reusable
        self._temps: List[tuple] = []  # live temporaries (released per statement)
        self._objects: List[tuple] = []  # live objects (released per inlined body)

    def alloc(self, size: int, align: int = 8, temp: bool = False, fresh: bool = False) -> int:
        """A slot of ``size`` bytes; returns its (negative) offset from r10. ``fresh`` slots
        never reuse released ones (register spill slots, allocated after the code exists)."""
        size = (size + 7) // 8 * 8
        if fresh:
            pass
        elif temp:
            for i, (off, sz) in enumerate(self._free):
                if sz == size:
                    del self._free[i]
                    self._temps.append((off, sz))
                    return off
        else:
            for i, (off, sz) in enumerate(self._free):
                if sz == size:
                    del self._free[i]
                    self._objects.append((off, sz))
                    return off
        self.depth = (self.depth + size + max(align, 8) - 1) // max(align, 8) * max(align, 8)
        off = -self.depth
        if temp:
            self._temps.append((off, size))
        elif not fresh:
            self._objects.append((off, size))
        return off

    def temp_mark(self) -> int:
        return len(self._temps)

    def release_temps(self, mark: int = 0) -> None:
        """Free the temporaries allocated since ``mark`` (a statement's own, not its caller's)."""
        self._free.extend(self._temps[mark:])
        del self._temps[mark:]

    def scope(self) -> int:
        """A checkpoint: objects allocated after it can be released together (inlined bodies)."""
        return len(self._objects)

    def end_scope(self, mark: int) -> None:
        self._free.extend(self._objects[mark:])
        del self._objects[mark:]


class Function:
    """One eBPF function being compiled: its ops, virtual register counter and frame."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ops: List[Op] = []
        self.frame = Frame()
        self._next = FIRST_VREG
        self._labels = 0

    def vreg(self) -> int:
        n = self._next
        self._next += 1
        return n

    def new_label(self, hint: str = "L") -> str:
        self._labels += 1
        return f"{self.name}.{hint}{self._labels}"
