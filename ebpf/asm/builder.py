"""Constructor functions that build instructions and read like the operation they encode.

``mov64(R0, 0)``, ``ldx(8, R1, R1, 16)``, ``jeq(R0, 0, "out")``, ``call("ktime_get_ns")``: one
function per operation, returning an :class:`Instruction`. Conventions:

* a source operand is a register if it is a :class:`Reg` (``R0``..``R10``) and an immediate if
  it is a plain int; ``dst`` accepts any int 0..10;
* argument order follows the kernel's ``BPF_*`` macros (``stx(size, dst, src, off)``,
  ``st(size, dst, off, imm)``), so kernel selftests translate line by line;
* sizes are bytes (1, 2, 4, 8) or the suffixes ``"b"``, ``"h"``, ``"w"``, ``"dw"``;
* a jump/call target is a label name (resolved by :func:`ebpf.asm.linker.link`) or an int
  offset counted in slots from the next instruction;
* a map is its name (left in ``reference`` for the loader) or an int fd / fd_array index.

Invalid arguments raise :class:`AssemblerError`. Labels are placed with :func:`label` markers in
the instruction list.
"""

from __future__ import annotations

from typing import Union

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, Label
from ebpf.asm.registers import Reg
from ebpf.errors import AssemblerError

__all__ = [
    "Label", "label",
    "add64", "add32", "sub64", "sub32", "mul64", "mul32", "div64", "div32", "sdiv64", "sdiv32",
    "mod64", "mod32", "smod64", "smod32", "or64", "or32", "and64", "and32", "lsh64", "lsh32",
    "rsh64", "rsh32", "arsh64", "arsh32", "xor64", "xor32", "mov64", "mov32", "neg64", "neg32",
    "movsx64", "movsx32", "to_le", "to_be", "bswap", "addr_space_cast",
    "ldx", "ldsx", "stx", "st", "ld_abs", "ld_ind",
    "atomic_add", "atomic_or", "atomic_and", "atomic_xor", "atomic_xchg", "atomic_cmpxchg",
    "ja", "gotol", "may_goto",
    "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "jlt", "jle", "jslt", "jsle",
    "jeq32", "jgt32", "jge32", "jset32", "jne32", "jsgt32", "jsge32", "jlt32", "jle32", "jslt32", "jsle32",
    "call", "call_local", "call_kfunc", "callx", "exit_", "helper_id",
    "ld_imm64", "ld_map_fd", "ld_map_value", "ld_map_idx", "ld_map_idx_value", "ld_btf_id", "ld_func",
]

Target = Union[str, int]
MapRef = Union[str, int]
Size = Union[int, str]


def label(name: str) -> Label:
    """Mark the position of the next instruction as ``name`` (for jumps, calls, func loads)."""
    if not isinstance(name, str) or not name:
        raise AssemblerError(f"label name must be a non-empty string, not {name!r}")
    return Label(name)


# -- operand checks ------------------------------------------------------------------------------


def _reg(value: int) -> int:
    if value.__class__ is Reg:
        return value
    if isinstance(value, int) and 0 <= value <= 10:
        return value
    raise AssemblerError(f"bad register {value!r}: registers are r0..r10")


def _imm32(value: int) -> int:
    if isinstance(value, int) and -0x80000000 <= value <= 0xFFFFFFFF:
        return value
    raise AssemblerError(f"immediate {value!r} out of range for a 32-bit field")


def _off16(value: int) -> int:
    if isinstance(value, int) and -0x8000 <= value <= 0x7FFF:
        return value
    raise AssemblerError(f"offset {value!r} out of range for a signed 16-bit field")


_SIZES = {1: o.B, 2: o.H, 4: o.W, 8: o.DW, "b": o.B, "h": o.H, "w": o.W, "dw": o.DW,
          "u8": o.B, "u16": o.H, "u32": o.W, "u64": o.DW}


def _size(value: Size) -> int:
    code = _SIZES.get(value)
    if code is None:
        raise AssemblerError(f"bad access size {value!r}: use 1, 2, 4, 8 or 'b', 'h', 'w', 'dw'")
    return code


# -- ALU -----------------------------------------------------------------------------------------


def _alu(opcode: int, dst: int, src: int, off: int = 0) -> Instruction:
    if src.__class__ is Reg:
        return Instruction(opcode | o.X, _reg(dst), src, off, 0)
    return Instruction(opcode, _reg(dst), 0, off, _imm32(src))


def add64(dst: int, src: int) -> Instruction:
    """dst += src"""
    return _alu(o.ALU64 | o.ADD, dst, src)


def add32(dst: int, src: int) -> Instruction:
    """w(dst) += src (the result is zero-extended to 64 bits)"""
    return _alu(o.ALU | o.ADD, dst, src)


def sub64(dst: int, src: int) -> Instruction:
    return _alu(o.ALU64 | o.SUB, dst, src)


def sub32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.SUB, dst, src)


def mul64(dst: int, src: int) -> Instruction:
    return _alu(o.ALU64 | o.MUL, dst, src)


def mul32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.MUL, dst, src)


def div64(dst: int, src: int) -> Instruction:
    """Unsigned division; division by zero gives 0."""
    return _alu(o.ALU64 | o.DIV, dst, src)


def div32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.DIV, dst, src)


def sdiv64(dst: int, src: int) -> Instruction:
    """Signed division (cpu v4: DIV with off=1)."""
    return _alu(o.ALU64 | o.DIV, dst, src, 1)


def sdiv32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.DIV, dst, src, 1)


def mod64(dst: int, src: int) -> Instruction:
    """Unsigned modulo; modulo by zero leaves dst unchanged."""
    return _alu(o.ALU64 | o.MOD, dst, src)


def mod32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.MOD, dst, src)


def smod64(dst: int, src: int) -> Instruction:
    """Signed modulo (cpu v4: MOD with off=1)."""
    return _alu(o.ALU64 | o.MOD, dst, src, 1)


def smod32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.MOD, dst, src, 1)


def or64(dst: int, src: int) -> Instruction:
    return _alu(o.ALU64 | o.OR, dst, src)


def or32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.OR, dst, src)


def and64(dst: int, src: int) -> Instruction:
    return _alu(o.ALU64 | o.AND, dst, src)


def and32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.AND, dst, src)


def lsh64(dst: int, src: int) -> Instruction:
    return _alu(o.ALU64 | o.LSH, dst, src)


def lsh32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.LSH, dst, src)


def rsh64(dst: int, src: int) -> Instruction:
    """Logical shift right."""
    return _alu(o.ALU64 | o.RSH, dst, src)


def rsh32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.RSH, dst, src)


def arsh64(dst: int, src: int) -> Instruction:
    """Arithmetic (sign-extending) shift right."""
    return _alu(o.ALU64 | o.ARSH, dst, src)


def arsh32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.ARSH, dst, src)


def xor64(dst: int, src: int) -> Instruction:
    return _alu(o.ALU64 | o.XOR, dst, src)


def xor32(dst: int, src: int) -> Instruction:
    return _alu(o.ALU | o.XOR, dst, src)


def mov64(dst: int, src: int) -> Instruction:
    """dst = src (an immediate is sign-extended to 64 bits; use ld_imm64 for wider constants)"""
    return _alu(o.ALU64 | o.MOV, dst, src)


def mov32(dst: int, src: int) -> Instruction:
    """w(dst) = src, zero-extended"""
    return _alu(o.ALU | o.MOV, dst, src)


def neg64(dst: int) -> Instruction:
    return Instruction(o.ALU64 | o.NEG, _reg(dst))


def neg32(dst: int) -> Instruction:
    return Instruction(o.ALU | o.NEG, _reg(dst))


def movsx64(dst: int, src: int, bits: int) -> Instruction:
    """dst = (s8/s16/s32) src, sign-extended to 64 bits (cpu v4)."""
    if bits not in (8, 16, 32):
        raise AssemblerError(f"movsx64 sign-extends from 8, 16 or 32 bits, not {bits!r}")
    return Instruction(o.ALU64 | o.MOV | o.X, _reg(dst), _reg(src), bits)


def movsx32(dst: int, src: int, bits: int) -> Instruction:
    """w(dst) = (s8/s16) w(src), then zero-extended (cpu v4)."""
    if bits not in (8, 16):
        raise AssemblerError(f"movsx32 sign-extends from 8 or 16 bits, not {bits!r}")
    return Instruction(o.ALU | o.MOV | o.X, _reg(dst), _reg(src), bits)


def _bits(name: str, bits: int) -> int:
    if bits not in (16, 32, 64):
        raise AssemblerError(f"{name} takes 16, 32 or 64 bits, not {bits!r}")
    return bits


def to_le(dst: int, bits: int) -> Instruction:
    """Convert the low ``bits`` of dst to little-endian (truncating/zero-extending)."""
    return Instruction(o.ALU | o.END | o.TO_LE, _reg(dst), 0, 0, _bits("to_le", bits))


def to_be(dst: int, bits: int) -> Instruction:
    """Convert the low ``bits`` of dst to big-endian (truncating/zero-extending)."""
    return Instruction(o.ALU | o.END | o.TO_BE, _reg(dst), 0, 0, _bits("to_be", bits))


def bswap(dst: int, bits: int) -> Instruction:
    """Unconditional byte swap of the low ``bits`` of dst (cpu v4)."""
    return Instruction(o.ALU64 | o.END | o.TO_LE, _reg(dst), 0, 0, _bits("bswap", bits))


def addr_space_cast(dst: int, src: int, dst_as: int, src_as: int) -> Instruction:
    """Convert a pointer between address spaces (BPF arena; kernel 6.9+)."""
    if not (0 <= dst_as <= 0xFFFF and 0 <= src_as <= 0xFFFF):
        raise AssemblerError("address spaces must be 0..65535")
    return Instruction(o.ALU64 | o.MOV | o.X, _reg(dst), _reg(src), o.ADDR_SPACE_CAST, dst_as << 16 | src_as)


# -- memory --------------------------------------------------------------------------------------


def ldx(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    """dst = *(uN *)(src + off), zero-extended"""
    return Instruction(o.LDX | o.MEM | _size(size), _reg(dst), _reg(src), _off16(off))


def ldsx(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    """dst = *(sN *)(src + off), sign-extended (cpu v4; sizes 1, 2, 4)."""
    code = _size(size)
    if code == o.DW:
        raise AssemblerError("ldsx has no 8-byte form (use ldx)")
    return Instruction(o.LDX | o.MEMSX | code, _reg(dst), _reg(src), _off16(off))


def stx(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    """*(uN *)(dst + off) = src"""
    return Instruction(o.STX | o.MEM | _size(size), _reg(dst), _reg(src), _off16(off))


def st(size: Size, dst: int, off: int, imm: int) -> Instruction:
    """*(uN *)(dst + off) = imm"""
    return Instruction(o.ST | o.MEM | _size(size), _reg(dst), 0, _off16(off), _imm32(imm))


def ld_abs(size: Size, imm: int) -> Instruction:
    """Legacy socket-filter packet load: r0 = ntoh(*(uN *)(skb->data + imm))."""
    code = _size(size)
    if code == o.DW:
        raise AssemblerError("ld_abs has no 8-byte form")
    return Instruction(o.LD | o.ABS | code, 0, 0, 0, _imm32(imm))


def ld_ind(size: Size, src: int, imm: int = 0) -> Instruction:
    """Legacy socket-filter packet load: r0 = ntoh(*(uN *)(skb->data + src + imm))."""
    code = _size(size)
    if code == o.DW:
        raise AssemblerError("ld_ind has no 8-byte form")
    return Instruction(o.LD | o.IND | code, 0, _reg(src), 0, _imm32(imm))


def _atomic(size: Size, dst: int, src: int, off: int, op: int) -> Instruction:
    code = _size(size)
    if code not in (o.W, o.DW):
        raise AssemblerError(f"atomic operations are 4 or 8 bytes wide, not {size!r}")
    return Instruction(o.STX | o.ATOMIC | code, _reg(dst), _reg(src), _off16(off), op)


def atomic_add(size: Size, dst: int, src: int, off: int = 0, fetch: bool = False) -> Instruction:
    """*(uN *)(dst + off) += src; with ``fetch`` src receives the old value."""
    return _atomic(size, dst, src, off, o.ADD | (o.FETCH if fetch else 0))


def atomic_or(size: Size, dst: int, src: int, off: int = 0, fetch: bool = False) -> Instruction:
    return _atomic(size, dst, src, off, o.OR | (o.FETCH if fetch else 0))


def atomic_and(size: Size, dst: int, src: int, off: int = 0, fetch: bool = False) -> Instruction:
    return _atomic(size, dst, src, off, o.AND | (o.FETCH if fetch else 0))


def atomic_xor(size: Size, dst: int, src: int, off: int = 0, fetch: bool = False) -> Instruction:
    return _atomic(size, dst, src, off, o.XOR | (o.FETCH if fetch else 0))


def atomic_xchg(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    """src = xchg(*(uN *)(dst + off), src)"""
    return _atomic(size, dst, src, off, o.XCHG)


def atomic_cmpxchg(size: Size, dst: int, src: int, off: int = 0) -> Instruction:
    """r0 = cmpxchg(*(uN *)(dst + off), expected r0, new src)"""
    return _atomic(size, dst, src, off, o.CMPXCHG)


# -- jumps and calls -------------------------------------------------------------------------------


def _target16(opcode: int, dst: int, src: int, imm: int, target: Target) -> Instruction:
    if isinstance(target, str):
        return Instruction(opcode, dst, src, 0, imm, reference=target)
    return Instruction(opcode, dst, src, _off16(target), imm)


def ja(target: Target) -> Instruction:
    """goto target (16-bit offset)"""
    return _target16(o.JMP | o.JA, 0, 0, 0, target)


def gotol(target: Target) -> Instruction:
    """goto target with a 32-bit offset (cpu v4: JMP32|JA, offset in imm)."""
    if isinstance(target, str):
        return Instruction(o.JMP32 | o.JA, reference=target)
    if not -0x80000000 <= target <= 0x7FFFFFFF:
        raise AssemblerError(f"gotol offset {target} does not fit in 32 bits")
    return Instruction(o.JMP32 | o.JA, 0, 0, 0, target)


def may_goto(target: Target) -> Instruction:
    """Bounded-loop escape (JMP|JCOND, kernel 6.9+): jumps once the loop budget runs out."""
    return _target16(o.JMP | o.JCOND, 0, 0, 0, target)


def _cond(opcode: int, dst: int, src: int, target: Target) -> Instruction:
    if src.__class__ is Reg:
        return _target16(opcode | o.X, _reg(dst), src, 0, target)
    return _target16(opcode, _reg(dst), 0, _imm32(src), target)


def jeq(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JEQ, dst, src, target)


def jgt(dst: int, src: int, target: Target) -> Instruction:
    """Unsigned >"""
    return _cond(o.JMP | o.JGT, dst, src, target)


def jge(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JGE, dst, src, target)


def jset(dst: int, src: int, target: Target) -> Instruction:
    """Jump if dst & src != 0"""
    return _cond(o.JMP | o.JSET, dst, src, target)


def jne(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JNE, dst, src, target)


def jsgt(dst: int, src: int, target: Target) -> Instruction:
    """Signed >"""
    return _cond(o.JMP | o.JSGT, dst, src, target)


def jsge(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JSGE, dst, src, target)


def jlt(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JLT, dst, src, target)


def jle(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JLE, dst, src, target)


def jslt(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JSLT, dst, src, target)


def jsle(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP | o.JSLE, dst, src, target)


def jeq32(dst: int, src: int, target: Target) -> Instruction:
    """Compare the low 32 bits (JMP32)."""
    return _cond(o.JMP32 | o.JEQ, dst, src, target)


def jgt32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JGT, dst, src, target)


def jge32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JGE, dst, src, target)


def jset32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JSET, dst, src, target)


def jne32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JNE, dst, src, target)


def jsgt32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JSGT, dst, src, target)


def jsge32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JSGE, dst, src, target)


def jlt32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JLT, dst, src, target)


def jle32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JLE, dst, src, target)


def jslt32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JSLT, dst, src, target)


def jsle32(dst: int, src: int, target: Target) -> Instruction:
    return _cond(o.JMP32 | o.JSLE, dst, src, target)


def helper_id(helper: Union[str, int]) -> int:
    """A helper's id from its name (with or without ``bpf_``), a HelperId, or an int."""
    if isinstance(helper, int):
        return _imm32(int(helper))
    from ebpf.uapi import HelperId  # deferred: the enum costs milliseconds to import

    name = helper[4:] if helper.startswith("bpf_") else helper
    try:
        return int(HelperId[name])
    except KeyError:
        raise AssemblerError(f"unknown helper {helper!r}") from None


def call(helper: Union[str, int]) -> Instruction:
    """Call a helper by name (``"ktime_get_ns"`` or ``"bpf_ktime_get_ns"``), HelperId or id."""
    return Instruction(o.JMP | o.CALL, 0, o.CALL_HELPER, 0, helper_id(helper))


def call_local(target: Target) -> Instruction:
    """bpf-to-bpf call: imm is the pc-relative offset of the callee's first instruction."""
    if isinstance(target, str):
        return Instruction(o.JMP | o.CALL, 0, o.CALL_PSEUDO, reference=target)
    return Instruction(o.JMP | o.CALL, 0, o.CALL_PSEUDO, 0, _imm32(target))


def call_kfunc(func: Union[str, int], module: int = 0) -> Instruction:
    """Call a kernel function by BTF id (or by name, left in ``reference`` for the loader).

    ``module`` is the fd_array index of the module BTF holding it (0: vmlinux) and goes in off.
    """
    if isinstance(func, str):
        return Instruction(o.JMP | o.CALL, 0, o.CALL_KFUNC, _off16(module), reference=func)
    return Instruction(o.JMP | o.CALL, 0, o.CALL_KFUNC, _off16(module), _imm32(func))


def callx(reg: int) -> Instruction:
    """Indirect call through a register (llvm's ``callx``; not accepted by current kernels)."""
    return Instruction(o.JMP | o.CALL | o.X, _reg(reg))


def exit_() -> Instruction:
    """Return r0 (from the program or the current bpf-to-bpf function)."""
    return Instruction(o.JMP | o.EXIT)


# -- 64-bit immediates and pseudo loads ----------------------------------------------------------


def _imm64(value: int) -> int:
    if isinstance(value, int) and -(1 << 63) <= value < (1 << 64):
        return value
    raise AssemblerError(f"immediate {value!r} out of range for a 64-bit field")


def ld_imm64(dst: int, value: int) -> Instruction:
    """dst = 64-bit constant (two slots)."""
    return Instruction(o.LD_IMM64, _reg(dst), 0, 0, _imm64(value))


def _pseudo(dst: int, src: int, low: MapRef, high: int) -> Instruction:
    if not -0x80000000 <= high <= 0x7FFFFFFF:
        raise AssemblerError(f"value {high} does not fit in the 32-bit second immediate")
    if isinstance(low, str):
        return Instruction(o.LD_IMM64, _reg(dst), src, 0, high << 32, reference=low)
    return Instruction(o.LD_IMM64, _reg(dst), src, 0, high << 32 | (_imm32(low) & 0xFFFFFFFF))


def ld_map_fd(dst: int, map_ref: MapRef) -> Instruction:
    """dst = pointer to a map (PSEUDO_MAP_FD); a name stays symbolic until the loader binds it."""
    return _pseudo(dst, o.PSEUDO_MAP_FD, map_ref, 0)


def ld_map_value(dst: int, map_ref: MapRef, offset: int = 0) -> Instruction:
    """dst = &map_value[0] + offset (PSEUDO_MAP_VALUE; array maps, global data)."""
    return _pseudo(dst, o.PSEUDO_MAP_VALUE, map_ref, offset)


def ld_map_idx(dst: int, index: MapRef) -> Instruction:
    """Like ld_map_fd, with an index into the program's fd_array (PSEUDO_MAP_IDX)."""
    return _pseudo(dst, o.PSEUDO_MAP_IDX, index, 0)


def ld_map_idx_value(dst: int, index: MapRef, offset: int = 0) -> Instruction:
    """Like ld_map_value, with an index into the program's fd_array (PSEUDO_MAP_IDX_VALUE)."""
    return _pseudo(dst, o.PSEUDO_MAP_IDX_VALUE, index, offset)


def ld_btf_id(dst: int, btf_id: Union[str, int], btf_fd: int = 0) -> Instruction:
    """dst = address of a kernel variable by BTF id (PSEUDO_BTF_ID; btf_fd for module BTF)."""
    return _pseudo(dst, o.PSEUDO_BTF_ID, btf_id, btf_fd)


def ld_func(dst: int, target: Target) -> Instruction:
    """dst = address of a bpf function (PSEUDO_FUNC; callbacks for bpf_loop, timers...)."""
    if isinstance(target, str):
        return Instruction(o.LD_IMM64, _reg(dst), o.PSEUDO_FUNC, reference=target)
    return Instruction(o.LD_IMM64, _reg(dst), o.PSEUDO_FUNC, 0, _imm32(target) & 0xFFFFFFFF)
