"""The kernel is the oracle for our encoder and for the emulator's model of the ISA.

Thousands of generated ALU and JMP cases (every op, 32 and 64 bit, register and immediate
forms, signed and unsigned conditions) run in the kernel through BPF_PROG_TEST_RUN and in
:mod:`ebpf.asm.emulator`; every result must agree. Operands come from a map value written from
user space, so the verifier cannot fold them: the JIT (or interpreter) computes every case.

Layout of the one-element array map's value, per case i: inputs at 16*i and 16*i+8, result at
``OUT + 8*i``.
"""

from __future__ import annotations

import random
import struct
from typing import Callable, List, NamedTuple, Optional, Tuple

import pytest

from ebpf import asm as A
from ebpf.asm import opcodes as o
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec

CASES_PER_PROGRAM = 500
M64 = (1 << 64) - 1

INTERESTING = [
    0, 1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
    M64, M64 - 1, 0xFFFFFFFF80000000, 0x123456789ABCDEF0, 0xFEDCBA9876543210,
]


def operand(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.45:
        return rng.choice(INTERESTING)
    if r < 0.6:
        return rng.randrange(0, 64)
    if r < 0.75:
        return (-rng.randrange(1, 1 << 16)) & M64
    return rng.getrandbits(64)


def imm32(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.4:
        return rng.choice([0, 1, -1, 2, 31, 32, 63, 0x7FFFFFFF, -0x80000000, 0xFF, -2, 16, 8])
    if r < 0.6:
        return rng.randrange(0, 64)
    return rng.randrange(-(1 << 31), 1 << 31)


class Case(NamedTuple):
    name: str
    a: int
    b: int
    body: Callable[[], List[A.Instruction]]  # type: ignore[name-defined]


ALU_REG_OPS = {
    "add": (A.add64, A.add32), "sub": (A.sub64, A.sub32), "mul": (A.mul64, A.mul32),
    "div": (A.div64, A.div32), "sdiv": (A.sdiv64, A.sdiv32), "mod": (A.mod64, A.mod32),
    "smod": (A.smod64, A.smod32), "or": (A.or64, A.or32), "and": (A.and64, A.and32),
    "lsh": (A.lsh64, A.lsh32), "rsh": (A.rsh64, A.rsh32), "arsh": (A.arsh64, A.arsh32),
    "xor": (A.xor64, A.xor32), "mov": (A.mov64, A.mov32),
}
SHIFTS = {"lsh", "rsh", "arsh"}
JMP_OPS = {
    "jeq": (A.jeq, A.jeq32), "jgt": (A.jgt, A.jgt32), "jge": (A.jge, A.jge32), "jset": (A.jset, A.jset32),
    "jne": (A.jne, A.jne32), "jsgt": (A.jsgt, A.jsgt32), "jsge": (A.jsge, A.jsge32), "jlt": (A.jlt, A.jlt32),
    "jle": (A.jle, A.jle32), "jslt": (A.jslt, A.jslt32), "jsle": (A.jsle, A.jsle32),
}


def case_body(kind: str, op: str, wide: bool, imm: Optional[int], extra: int = 0) -> List:
    """Instructions computing r1 from r1 and r2 (or ``imm``)."""
    r1, r2 = A.R1, A.R2
    if kind == "alu":
        fn = ALU_REG_OPS[op][0 if wide else 1]
        return [fn(r1, r2 if imm is None else imm)]
    if kind == "neg":
        return [A.neg64(r1) if wide else A.neg32(r1)]
    if kind == "movsx":
        return [A.movsx64(r1, r2, extra) if wide else A.movsx32(r1, r2, extra)]
    if kind == "end":
        return [{"le": A.to_le, "be": A.to_be, "bswap": A.bswap}[op](r1, extra)]
    if kind == "jmp":
        fn = JMP_OPS[op][0 if wide else 1]
        return [
            A.mov64(A.R3, 1),
            fn(r1, r2 if imm is None else imm, 1),
            A.mov64(A.R3, 0),
            A.mov64(r1, A.R3),
        ]
    raise AssertionError(kind)


def generate(seed: int, count: int) -> List[Tuple[str, int, int, List]]:
    rng = random.Random(seed)
    menu: List[Tuple[str, str]] = [("alu", op) for op in ALU_REG_OPS] + [("jmp", op) for op in JMP_OPS]
    menu += [("neg", "neg"), ("movsx", "movsx"), ("end", "le"), ("end", "be"), ("end", "bswap")]
    cases = []
    for i in range(count):
        kind, op = menu[i % len(menu)]
        wide = (i // len(menu)) % 2 == 0
        use_imm = (i // (2 * len(menu))) % 2 == 1 and kind in ("alu", "jmp")
        a, b = operand(rng), operand(rng)
        imm = imm32(rng) if use_imm else None
        if op in SHIFTS:  # out-of-range shifts are undefined in the ISA; the verifier rejects constant ones
            limit = 64 if wide else 32
            if imm is not None:
                imm = rng.randrange(0, limit)
            else:
                b = rng.randrange(0, limit)
        if op in ("div", "sdiv", "mod", "smod") and imm == 0:  # the verifier refuses a constant zero divisor
            imm = rng.choice([1, -1, 3])
        extra = 0
        if kind == "movsx":
            extra = rng.choice([8, 16, 32] if wide else [8, 16])
        if kind == "end":
            extra = rng.choice([16, 32, 64])
            wide = True
        name = f"{kind}:{op}{'' if wide else '32'}{'' if imm is None else ' imm'}"
        cases.append((name, a, b, case_body(kind, op, wide, imm, extra)))
    return cases


def build_program(cases: List[Tuple[str, int, int, List]]) -> List:
    out_base = 16 * len(cases)
    insns: List = [A.ld_map_value(A.R6, "data", 0)]
    for i, (_, _, _, body) in enumerate(cases):
        insns += [A.ldx(8, A.R1, A.R6, 16 * i), A.ldx(8, A.R2, A.R6, 16 * i + 8)]
        insns += body
        insns.append(A.stx(8, A.R6, A.R1, out_base + 8 * i))
    insns += [A.mov64(A.R0, 0), A.exit_()]
    return insns


def emulate(a: int, b: int, body: List) -> int:
    program = [A.ld_imm64(A.R1, a), A.ld_imm64(A.R2, b)] + body + [A.mov64(A.R0, A.R1), A.exit_()]
    return A.run(A.link(program)) & M64


@pytest.mark.parametrize("seed", range(12))
def test_kernel_agrees_with_emulator(seed: int) -> None:
    cases = generate(seed, CASES_PER_PROGRAM)
    n = len(cases)
    spec = MapSpec("data", "array", key="u32", value=24 * n, max_entries=1)
    with spec.create() as data:
        data[0] = b"".join(struct.pack("<QQ", a, b) for _, a, b, _ in cases) + bytes(8 * n)
        prog_spec = ProgramSpec(f"isa_diff_{seed}", "socket_filter", build_program(cases))
        with load_program(prog_spec, {"data": data}) as prog:
            assert prog.test_run(bytes(64)).retval == 0
        raw = data[0]
    got = struct.unpack_from(f"<{n}Q", raw, 16 * n)
    mismatches = []
    for (name, a, b, body), kernel in zip(cases, got):
        model = emulate(a, b, body)
        if model != kernel:
            mismatches.append(f"{name} a={a:#x} b={b:#x}: kernel {kernel:#x}, emulator {model:#x}")
    assert not mismatches, f"{len(mismatches)} of {n} cases differ:\n" + "\n".join(mismatches[:20])


def test_every_alu_and_jmp_opcode_is_covered() -> None:
    seen = set()
    for seed in range(12):
        for _, _, _, body in generate(seed, CASES_PER_PROGRAM):
            for ins in body:
                seen.add(ins.opcode)
    wanted = set()
    for cls in (o.ALU, o.ALU64):
        for op in (o.ADD, o.SUB, o.MUL, o.DIV, o.OR, o.AND, o.LSH, o.RSH, o.MOD, o.XOR, o.MOV, o.ARSH):
            wanted |= {cls | op | o.X, cls | op | o.K}
        wanted.add(cls | o.NEG)
    for cls in (o.JMP, o.JMP32):
        for op in (o.JEQ, o.JGT, o.JGE, o.JSET, o.JNE, o.JSGT, o.JSGE, o.JLT, o.JLE, o.JSLT, o.JSLE):
            wanted |= {cls | op | o.X, cls | op | o.K}
    assert wanted <= seen, sorted(hex(x) for x in wanted - seen)
    assert 12 * CASES_PER_PROGRAM >= 5000
