"""Field values of the eBPF instruction encoding and the set of valid opcodes.

The numbers are the ISA's (Documentation/bpf/standardization/instruction-set.rst and
include/uapi/linux/bpf_common.h), spelled without the ``BPF_`` prefix. They are plain ints
rather than IntEnums because every hot path (encoding, assembling, emulating) touches them and
``import ebpf.asm`` has to stay cheap; the pseudo source values mirror
:class:`ebpf.uapi.PseudoSrc` / :class:`ebpf.uapi.PseudoCall` (a unit test checks they agree)
without importing the uapi module.
"""

from __future__ import annotations

# Instruction classes (low 3 bits of the opcode).
LD = 0x00
LDX = 0x01
ST = 0x02
STX = 0x03
ALU = 0x04
JMP = 0x05
JMP32 = 0x06
ALU64 = 0x07

# Source operand (bit 3) of ALU and JMP instructions.
K = 0x00
X = 0x08

# Size (bits 3-4) and mode (bits 5-7) of load and store instructions.
W = 0x00
H = 0x08
B = 0x10
DW = 0x18
IMM = 0x00
ABS = 0x20
IND = 0x40
MEM = 0x60
MEMSX = 0x80
ATOMIC = 0xC0

# ALU operations (high 4 bits).
ADD = 0x00
SUB = 0x10
MUL = 0x20
DIV = 0x30
OR = 0x40
AND = 0x50
LSH = 0x60
RSH = 0x70
NEG = 0x80
MOD = 0x90
XOR = 0xA0
MOV = 0xB0
ARSH = 0xC0
END = 0xD0

# Byte-order direction of END (uses the source bit).
TO_LE = 0x00
TO_BE = 0x08

# Jump operations (high 4 bits).
JA = 0x00
JEQ = 0x10
JGT = 0x20
JGE = 0x30
JSET = 0x40
JNE = 0x50
JSGT = 0x60
JSGE = 0x70
CALL = 0x80
EXIT = 0x90
JLT = 0xA0
JLE = 0xB0
JSLT = 0xC0
JSLE = 0xD0
JCOND = 0xE0

# Atomic operations (in imm of STX|ATOMIC); ADD/OR/AND/XOR reuse the ALU values.
FETCH = 0x01
XCHG = 0xE0 | FETCH
CMPXCHG = 0xF0 | FETCH
ATOMIC_OPS = frozenset({ADD, OR, AND, XOR, ADD | FETCH, OR | FETCH, AND | FETCH, XOR | FETCH, XCHG, CMPXCHG})

# The one 16-byte instruction.
LD_IMM64 = LD | IMM | DW

# src_reg of LD_IMM64 (mirrors ebpf.uapi.PseudoSrc).
PSEUDO_NONE = 0
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6
MAP_PSEUDOS = frozenset({PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE})

# src_reg of JMP|CALL (mirrors ebpf.uapi.PseudoCall).
CALL_HELPER = 0
CALL_PSEUDO = 1
CALL_KFUNC = 2

# off of ALU64|MOV|X that turns it into addr_space_cast (arena pointers, kernel 6.9).
ADDR_SPACE_CAST = 1

SIZE_BYTES = {B: 1, H: 2, W: 4, DW: 8}
BYTES_SIZE = {1: B, 2: H, 4: W, 8: DW}

MAX_REG = 10  # r10 is the read-only frame pointer; r0..r9 are general purpose


def _valid_opcodes() -> frozenset:
    """Every opcode byte some kernel accepts (through cpu v4, plus may_goto and callx).

    Computed rather than listed so the rules stay visible: which ALU ops have no register
    form, which load modes exist for which sizes.
    """
    codes = set()
    for cls in (ALU, ALU64):
        for op in (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR, MOV, ARSH):
            codes.add(cls | op | K)
            codes.add(cls | op | X)
        codes.add(cls | NEG | K)
    codes.update({ALU | END | TO_LE, ALU | END | TO_BE, ALU64 | END | TO_LE})
    for cls in (JMP, JMP32):
        for op in (JEQ, JGT, JGE, JSET, JNE, JSGT, JSGE, JLT, JLE, JSLT, JSLE):
            codes.add(cls | op | K)
            codes.add(cls | op | X)
        codes.add(cls | JA | K)
    codes.update({JMP | CALL | K, JMP | CALL | X, JMP | EXIT | K, JMP | JCOND | K})
    codes.add(LD_IMM64)
    for size in (B, H, W):
        codes.add(LD | ABS | size)
        codes.add(LD | IND | size)
        codes.add(LDX | MEMSX | size)
    for size in (B, H, W, DW):
        codes.add(LDX | MEM | size)
        codes.add(ST | MEM | size)
        codes.add(STX | MEM | size)
    codes.update({STX | ATOMIC | W, STX | ATOMIC | DW})
    return frozenset(codes)


VALID_OPCODES = _valid_opcodes()
