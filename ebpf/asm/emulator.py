"""A reference model of eBPF execution: the oracle side of differential tests against the kernel.

It runs a program over registers r0..r10 with the kernel's arithmetic rules (the ones the
interpreter and the verifier's rewrites give, on a little-endian host):

* division by zero gives 0; modulo by zero leaves dst unchanged (truncated to 32 bits and
  zero-extended for ALU32); signed division of INT_MIN by -1 gives INT_MIN and the matching
  signed modulo gives 0; signed results truncate toward zero (C semantics);
* shift amounts are masked to 63 (ALU64) or 31 (ALU32); every ALU32 result is zero-extended;
* ALU64 immediates are sign-extended, ALU32 and JMP32 ones used as 32-bit values;
* ``le``/``be`` convert to/from a little-endian host (``le16`` truncates, ``be16`` swaps),
  ``bswap`` swaps unconditionally.

Memory is only what is easy to model: a 512-byte stack per frame under r10 (bpf-to-bpf calls
get their own frame and keep r6-r9) and an optional ``ctx`` buffer whose address is passed in
r1. Helpers run only if given as Python callables. Map, BTF-id and func loads, packet loads,
kfuncs, callx and addr_space_cast raise :class:`EmulatorError`.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, ProgramItem
from ebpf.errors import EbpfError

__all__ = ["Emulator", "EmulatorError", "run", "STACK_SIZE", "MAX_CALL_DEPTH"]

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
STACK_SIZE = 512
MAX_CALL_DEPTH = 8
STACK_BASE = 0x10000000
CTX_BASE = 0x20000000
MAY_GOTO_BUDGET = 1 << 23

Helper = Callable[[int, int, int, int, int], int]


class EmulatorError(EbpfError):
    """The program did something the model does not (or the kernel would not) run."""


def _s64(x: int) -> int:
    return x - (1 << 64) if x >> 63 else x


def _s32(x: int) -> int:
    x &= M32
    return x - (1 << 32) if x >> 31 else x


def _sext(x: int, bits: int) -> int:
    """Sign-extend the low ``bits`` of x (as a Python int)."""
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def _swap(x: int, bits: int) -> int:
    return int.from_bytes((x & ((1 << bits) - 1)).to_bytes(bits // 8, "little"), "big")


def alu(op: int, dst: int, src: int, off: int, wide: bool) -> int:
    """One ALU operation on unsigned operands; returns the unsigned (zero-extended) result.

    ``src`` is already the operand value (register or extended immediate). Exposed so that
    tests and other oracles can check single operations.
    """
    mask = M64 if wide else M32
    bits = 64 if wide else 32
    signed = _s64 if wide else _s32
    a = dst & mask
    b = src & mask
    if op == o.ADD:
        return (a + b) & mask
    if op == o.SUB:
        return (a - b) & mask
    if op == o.MUL:
        return (a * b) & mask
    if op == o.DIV:
        if off == 1:
            sa, sb = signed(a), signed(b)
            if sb == 0:
                return 0
            q = abs(sa) // abs(sb)
            return (q if (sa < 0) == (sb < 0) else -q) & mask
        return a // b if b else 0
    if op == o.MOD:
        if off == 1:
            sa, sb = signed(a), signed(b)
            if sb == 0:
                return a
            r = abs(sa) % abs(sb)
            return (-r if sa < 0 else r) & mask
        return a % b if b else a
    if op == o.OR:
        return a | b
    if op == o.AND:
        return a & b
    if op == o.XOR:
        return a ^ b
    if op == o.LSH:
        return (a << (b & (bits - 1))) & mask
    if op == o.RSH:
        return a >> (b & (bits - 1))
    if op == o.ARSH:
        return (signed(a) >> (b & (bits - 1))) & mask
    if op == o.NEG:
        return (-a) & mask
    if op == o.MOV:
        if off == 0:
            return b
        if off in (8, 16, 32):
            return _sext(b, off) & mask
    raise EmulatorError(f"unsupported ALU operation {op:#x} (off={off})")


def _condition(op: int, a: int, b: int, wide: bool) -> bool:
    signed = _s64 if wide else _s32
    if op == o.JEQ:
        return a == b
    if op == o.JNE:
        return a != b
    if op == o.JGT:
        return a > b
    if op == o.JGE:
        return a >= b
    if op == o.JLT:
        return a < b
    if op == o.JLE:
        return a <= b
    if op == o.JSET:
        return bool(a & b)
    if op == o.JSGT:
        return signed(a) > signed(b)
    if op == o.JSGE:
        return signed(a) >= signed(b)
    if op == o.JSLT:
        return signed(a) < signed(b)
    if op == o.JSLE:
        return signed(a) <= signed(b)
    raise EmulatorError(f"unsupported jump operation {op:#x}")


class Emulator:
    """A loaded program; :meth:`run` executes it and leaves the final registers in ``regs``."""

    def __init__(
        self,
        program: Union[bytes, Sequence[ProgramItem]],
        *,
        helpers: Optional[Mapping[int, Helper]] = None,
        max_steps: int = 1_000_000,
    ) -> None:
        if isinstance(program, (bytes, bytearray, memoryview)):
            from ebpf.asm.encoding import decode

            insns = decode(bytes(program))
        else:
            from ebpf.asm.linker import link

            insns = link(list(program))
        self.slots: List[Optional[Instruction]] = []
        for insn in insns:
            self.slots.append(insn)
            if insn.opcode == o.LD_IMM64:
                self.slots.append(None)
        self.helpers: Dict[int, Helper] = dict(helpers or {})
        self.max_steps = max_steps
        self.regs: List[int] = [0] * 11
        self.stack = bytearray(STACK_SIZE * MAX_CALL_DEPTH)
        self.ctx: Optional[bytearray] = None
        self.steps = 0

    # -- memory --

    def _region(self, addr: int, size: int) -> Tuple[bytearray, int]:
        top = STACK_BASE + len(self.stack)
        if STACK_BASE <= addr and addr + size <= top:
            return self.stack, addr - STACK_BASE
        ctx = self.ctx
        if ctx is not None and CTX_BASE <= addr and addr + size <= CTX_BASE + len(ctx):
            return ctx, addr - CTX_BASE
        raise EmulatorError(f"invalid memory access: {size} bytes at {addr:#x}")

    def load(self, addr: int, size: int) -> int:
        mem, at = self._region(addr, size)
        return int.from_bytes(mem[at:at + size], "little")

    def store(self, addr: int, size: int, value: int) -> None:
        mem, at = self._region(addr, size)
        mem[at:at + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    # -- execution --

    def run(self, r1: int = 0, r2: int = 0, r3: int = 0, r4: int = 0, r5: int = 0,
            ctx: Optional[Union[bytes, bytearray]] = None) -> int:
        """Run from the first instruction; returns r0 as an unsigned 64-bit int.

        With ``ctx`` the buffer is mapped (writable; read back from ``self.ctx``) and r1 holds
        its address.
        """
        regs = self.regs = [0, r1 & M64, r2 & M64, r3 & M64, r4 & M64, r5 & M64, 0, 0, 0, 0, 0]
        if ctx is not None:
            self.ctx = bytearray(ctx)
            regs[1] = CTX_BASE
        self.stack = bytearray(STACK_SIZE * MAX_CALL_DEPTH)
        regs[10] = STACK_BASE + len(self.stack)
        frames: List[Tuple[int, List[int]]] = []
        budget = MAY_GOTO_BUDGET
        slots = self.slots
        pc = 0
        steps = 0
        limit = self.max_steps
        while True:
            if not 0 <= pc < len(slots) or slots[pc] is None:
                raise EmulatorError(f"pc {pc} is outside the program or inside an LD_IMM64")
            steps += 1
            if steps > limit:
                self.steps = steps
                raise EmulatorError(f"step limit of {limit} exceeded at pc {pc}")
            insn = slots[pc]
            assert insn is not None
            code = insn.opcode
            cls = code & 0x07
            pc += 1
            if cls == o.ALU64 or cls == o.ALU:
                wide = cls == o.ALU64
                op = code & 0xF0
                dst = insn.dst
                if op == o.END:
                    regs[dst] = self._end(code, regs[dst], insn.imm)
                    continue
                if code & o.X:
                    if op == o.MOV and wide and insn.off == o.ADDR_SPACE_CAST:
                        raise EmulatorError("addr_space_cast is not emulated")
                    src = regs[insn.src]
                else:
                    src = insn.imm & (M64 if wide else M32)
                regs[dst] = alu(op, regs[dst], src, insn.off, wide)
            elif cls == o.JMP or cls == o.JMP32:
                op = code & 0xF0
                if op == o.JA:
                    pc += insn.imm if cls == o.JMP32 else insn.off
                elif cls == o.JMP and op == o.EXIT:
                    if not frames:
                        self.steps = steps
                        return regs[0]
                    pc, saved = frames.pop()
                    regs[6:11] = saved
                elif cls == o.JMP and op == o.CALL:
                    pc = self._call(insn, pc, regs, frames)
                elif cls == o.JMP and op == o.JCOND:
                    if budget == 0:
                        pc += insn.off
                    else:
                        budget -= 1
                else:
                    wide = cls == o.JMP
                    mask = M64 if wide else M32
                    a = regs[insn.dst] & mask
                    b = regs[insn.src] & mask if code & o.X else insn.imm & mask
                    if _condition(op, a, b, wide):
                        pc += insn.off
            elif code == o.LD_IMM64:
                if insn.src != o.PSEUDO_NONE:
                    raise EmulatorError(f"pseudo LD_IMM64 (src={insn.src}) at pc {pc - 1} is not emulated")
                regs[insn.dst] = insn.imm & M64
                pc += 1
            elif cls == o.LDX:
                size = o.SIZE_BYTES[code & 0x18]
                value = self.load((regs[insn.src] + insn.off) & M64, size)
                if code & 0xE0 == o.MEMSX:
                    value = _sext(value, 8 * size) & M64
                regs[insn.dst] = value
            elif cls == o.ST:
                self.store((regs[insn.dst] + insn.off) & M64, o.SIZE_BYTES[code & 0x18], insn.imm)
            elif cls == o.STX:
                size = o.SIZE_BYTES[code & 0x18]
                addr = (regs[insn.dst] + insn.off) & M64
                if code & 0xE0 == o.MEM:
                    self.store(addr, size, regs[insn.src])
                elif code & 0xE0 == o.ATOMIC:
                    self._atomic(insn, addr, size, regs)
                else:
                    raise EmulatorError(f"unsupported store mode at pc {pc - 1}")
            else:
                raise EmulatorError(f"instruction {code:#04x} at pc {pc - 1} is not emulated")
            if regs[10] != STACK_BASE + len(self.stack) - STACK_SIZE * len(frames):
                raise EmulatorError(f"r10 is read-only (written at pc {pc - 1})")

    @staticmethod
    def _end(code: int, value: int, bits: int) -> int:
        if bits not in (16, 32, 64):
            raise EmulatorError(f"byte-swap width {bits} is not 16, 32 or 64")
        if code & 0x07 == o.ALU64 or code & o.X:  # bswap, or to_be on a little-endian host
            return _swap(value, bits)
        return value & ((1 << bits) - 1)

    def _call(self, insn: Instruction, pc: int, regs: List[int], frames: List[Tuple[int, List[int]]]) -> int:
        if insn.opcode & o.X:
            raise EmulatorError("callx is not emulated")
        if insn.src == o.CALL_PSEUDO:
            if len(frames) + 1 >= MAX_CALL_DEPTH:
                raise EmulatorError(f"call depth exceeds {MAX_CALL_DEPTH}")
            frames.append((pc, regs[6:11]))
            regs[10] -= STACK_SIZE
            return pc + insn.imm
        if insn.src == o.CALL_HELPER:
            fn = self.helpers.get(insn.imm)
            if fn is None:
                raise EmulatorError(f"call to helper {insn.imm} without an implementation (pass helpers=)")
            regs[0] = int(fn(regs[1], regs[2], regs[3], regs[4], regs[5])) & M64
            return pc
        raise EmulatorError(f"call with src={insn.src} (kfunc) is not emulated")

    def _atomic(self, insn: Instruction, addr: int, size: int, regs: List[int]) -> None:
        wide = size == 8
        mask = M64 if wide else M32
        old = self.load(addr, size)
        op = insn.imm
        src = regs[insn.src] & mask
        if op == o.XCHG:
            self.store(addr, size, src)
            regs[insn.src] = old
            return
        if op == o.CMPXCHG:
            if old == regs[0] & mask:
                self.store(addr, size, src)
            regs[0] = old
            return
        base = op & ~o.FETCH
        if base not in (o.ADD, o.OR, o.AND, o.XOR):
            raise EmulatorError(f"unknown atomic operation {op:#x}")
        self.store(addr, size, alu(base, old, src, 0, wide))
        if op & o.FETCH:
            regs[insn.src] = old


def run(
    program: Union[bytes, Sequence[ProgramItem]],
    r1: int = 0,
    r2: int = 0,
    r3: int = 0,
    r4: int = 0,
    r5: int = 0,
    *,
    ctx: Optional[Union[bytes, bytearray]] = None,
    helpers: Optional[Mapping[int, Helper]] = None,
    max_steps: int = 1_000_000,
) -> int:
    """Run a program (bytes, or instructions and labels, linked here) and return r0 as u64."""
    return Emulator(program, helpers=helpers, max_steps=max_steps).run(r1, r2, r3, r4, r5, ctx=ctx)
