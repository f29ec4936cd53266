"""The ISA fallbacks of :mod:`ebpf.lang.legalize`, instruction by instruction, without a kernel.

Each newer instruction (``movsx``, ``ldsx``, ``sdiv``/``smod``, ``bswap``, ``jmp32``, v2 jumps,
bitwise atomics) is put in a tiny IR function, lowered for every older level, register-allocated
and run in :mod:`ebpf.asm.emulator` on edge values (0, +-1, the limits of every width) and random
ones; the answer must be the original instruction's, and no instruction may be above the level.
The kernel-side proof is tests/kernel/test_lang_differential.py at v2, v3 and v4.
"""

from __future__ import annotations

import random
from typing import Callable, List, Tuple

import pytest

from ebpf.asm import opcodes as o
from ebpf.asm.emulator import run
from ebpf.asm.linker import link
from ebpf.errors import CompileError, EbpfError
from ebpf.lang.ir import FP, LABEL, Function, Op
from ebpf.lang.isa import check_level, level_of
from ebpf.lang.legalize import legalize
from ebpf.lang.regalloc import allocate

M64 = (1 << 64) - 1
EDGES = [0, 1, 2, 3, 7, -1, -2, -3, -7, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
         0xFFFFFFFF, -0x80000000, -0x80000001, 1 << 32, (1 << 63) - 1, -(1 << 63), 0x123456789ABCDEF0,
         0xFFFFFFFF80000000, 0x80000000FFFFFFFF]

Body = Callable[[Function, int, int], List[Op]]  # (fn, a, b) -> ops leaving the answer in a


def _program(body: Body, level: int) -> List[object]:
    fn = Function("t")
    a, b = fn.vreg(), fn.vreg()
    fn.ops = [Op(o.ALU64 | o.MOV | o.X, a, 1), Op(o.ALU64 | o.MOV | o.X, b, 2), *body(fn, a, b),
              Op(o.ALU64 | o.MOV | o.X, 0, a), Op(o.JMP | o.EXIT)]
    legalize(fn, level)
    return link(allocate(fn))


def _alu(code: int, off: int = 0, imm: int = 0) -> Body:
    return lambda fn, a, b: [Op(code, a, b, off, imm)]


def _jump(code: int, imm: int = 0) -> Body:
    def body(fn: Function, a: int, b: int) -> List[Op]:
        return [Op(code, a, b, 0, imm, target="yes"), Op(o.ALU64 | o.MOV, a, 0, 0, 0), Op(o.JMP | o.JA, target="end"),
                Op(LABEL, target="yes"), Op(o.ALU64 | o.MOV, a, 0, 0, 1), Op(LABEL, target="end")]
    return body


def _ldsx(size: int) -> Body:
    return lambda fn, a, b: [Op(o.STX | o.MEM | o.DW, FP, a, -8), Op(o.LDX | o.MEMSX | o.BYTES_SIZE[size], a, FP, -8)]


def _atomic(size: int, imm: int) -> Body:
    return lambda fn, a, b: [Op(o.STX | o.MEM | o.DW, FP, a, -8),
                             Op(o.STX | o.ATOMIC | o.BYTES_SIZE[size], FP, b, -8, imm),
                             Op(o.LDX | o.MEM | o.DW, a, FP, -8)]


CASES: List[Tuple[str, Body]] = [
    *[(f"movsx64/{bits}", _alu(o.ALU64 | o.MOV | o.X, bits)) for bits in (8, 16, 32)],
    *[(f"movsx32/{bits}", _alu(o.ALU | o.MOV | o.X, bits)) for bits in (8, 16)],
    *[(f"ldsx{size}", _ldsx(size)) for size in (1, 2, 4)],
    *[(f"{name}{w}{form}", _alu(cls | op | x, 1, imm))
      for name, op in (("sdiv", o.DIV), ("smod", o.MOD)) for w, cls in (("64", o.ALU64), ("32", o.ALU))
      for form, x, imm in (("x", o.X, 0), ("k7", 0, 7), ("k-3", 0, -3), ("k-1", 0, -1), ("k0", 0, 0))],
    *[(f"bswap{bits}", _alu(o.ALU64 | o.END, imm=bits)) for bits in (16, 32, 64)],
    *[(f"jmp32-{test:#x}{form}", _jump(o.JMP32 | test | x, imm))
      for test in (o.JEQ, o.JNE, o.JGT, o.JGE, o.JLT, o.JLE, o.JSET, o.JSGT, o.JSGE, o.JSLT, o.JSLE)
      for form, x, imm in (("x", o.X, 0), ("k5", 0, 5), ("k-2", 0, -2), ("kmin", 0, -(1 << 31)))],
    *[(f"jmp-{test:#x}{form}", _jump(o.JMP | test | x, imm))
      for test in (o.JLT, o.JLE, o.JSLT, o.JSLE) for form, x, imm in (("x", o.X, 0), ("k5", 0, 5), ("k-2", 0, -2))],
    *[(f"atomic{size}-{imm:#x}", _atomic(size, imm)) for size in (4, 8) for imm in (o.OR, o.AND, o.XOR)],
]


def _inputs() -> List[Tuple[int, int]]:
    rng = random.Random(11)
    values = EDGES + [rng.getrandbits(64) for _ in range(8)] + [rng.getrandbits(32) for _ in range(4)]
    pairs = [(x, y) for x in EDGES for y in EDGES[:10]]
    pairs += [(rng.choice(values), rng.choice(values)) for _ in range(60)]
    return [(x & M64, y & M64) for x, y in pairs]


INPUTS = _inputs()


@pytest.mark.parametrize("name,body", CASES, ids=[c[0] for c in CASES])
def test_fallbacks_compute_what_the_instruction_does(name: str, body: Body) -> None:
    reference = _program(body, 4)
    want = [run(reference, x, y) for x, y in INPUTS]
    for level in (1, 2, 3):
        insns = _program(body, level)
        assert all(level_of(i.opcode, i.src, i.off, i.imm) <= level for i in insns), (name, level)
        got = [run(insns, x, y) for x, y in INPUTS]
        bad = [(hex(x), hex(y), hex(g), hex(w)) for (x, y), g, w in zip(INPUTS, got, want) if g != w]
        assert not bad, (name, level, bad[:5])


def test_instructions_kept_where_the_level_has_them() -> None:
    """Nothing changes at v4, and a v4 instruction survives the v4 pass unrewritten."""
    insns = _program(_alu(o.ALU64 | o.DIV | o.X, 1), 4)
    assert [i.opcode for i in insns if i.off == 1] == [o.ALU64 | o.DIV | o.X]
    assert _program(_jump(o.JMP32 | o.JSGT | o.X), 3) == _program(_jump(o.JMP32 | o.JSGT | o.X), 4)


def test_levels_of_instructions() -> None:
    """The level each instruction arrived at (LLVM's -mcpu and the kernel's history)."""
    assert level_of(o.ALU64 | o.MOV | o.X) == 1
    assert level_of(o.ALU64 | o.MOV | o.X, off=32) == 4
    assert level_of(o.ALU | o.END | o.TO_BE, imm=16) == 1
    assert level_of(o.ALU64 | o.END, imm=16) == 4
    assert level_of(o.LDX | o.MEMSX | o.W) == 4
    assert level_of(o.ALU64 | o.MOD | o.X, off=1) == 4
    assert level_of(o.JMP | o.JLT | o.X) == 2
    assert level_of(o.JMP | o.JGT | o.X) == 1
    assert level_of(o.JMP32 | o.JEQ) == 3
    assert level_of(o.JMP32 | o.JA, imm=5) == 4  # gotol
    assert level_of(o.STX | o.ATOMIC | o.DW, imm=o.ADD) == 1  # the old xadd
    assert level_of(o.STX | o.ATOMIC | o.W, imm=o.OR) == 3
    assert level_of(o.STX | o.ATOMIC | o.DW, imm=o.CMPXCHG) == 3


def test_an_instruction_without_fallback_is_a_compile_error() -> None:
    fn = Function("t")
    fn.ops = [Op(o.STX | o.ATOMIC | o.DW, FP, 1, -8, o.XCHG), Op(o.JMP | o.EXIT)]
    with pytest.raises(CompileError, match="needs eBPF ISA v3 and has no replacement at v2"):
        legalize(fn, 2)


@pytest.mark.parametrize("bad", [0, 5, "v7", "x", True, 3.0])
def test_levels_outside_one_to_four_are_refused(bad: object) -> None:
    with pytest.raises(EbpfError, match="is not an eBPF instruction-set level"):
        check_level(bad)
    from ebpf import lang as L

    with pytest.raises(EbpfError, match="collection c: isa"):
        L.Collection("c", isa=bad)  # type: ignore[arg-type]


def test_levels_given_as_text() -> None:
    assert [check_level(x) for x in ("2", "v3", " V4 ", 1)] == [2, 3, 4, 1]


def test_compile_cache_keys_the_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """One cached program per level: the key holds Collection(isa=), else $EBPF_ISA, else auto."""
    from ebpf import lang as L
    from ebpf.lang.compile_cache import program_key

    def key(isa: object = None) -> str:
        coll = L.Collection("keyed", isa=isa)  # type: ignore[arg-type]
        return program_key(coll.socket_filter(_keyed_program))

    monkeypatch.delenv("EBPF_ISA", raising=False)
    keys = {key(2), key(3), key(4), key()}
    monkeypatch.setenv("EBPF_ISA", "3")
    assert len(keys) == 4 and key() == key(3) and key(2) in keys


def _keyed_program(ctx):  # type: ignore[no-untyped-def]
    return 1


def _pressure(groups: int) -> Tuple[Function, List[object]]:
    """``groups`` blocks in a row, each holding 14 values live at once (more than r0-r9)."""
    fn = Function("p")
    acc = fn.vreg()
    fn.ops = [Op(o.ALU64 | o.MOV, acc, 0, 0, 0)]
    for g in range(groups):
        regs = [fn.vreg() for _ in range(14)]
        fn.ops += [Op(o.ALU64 | o.MOV, r, 0, 0, g * 100 + i) for i, r in enumerate(regs)]
        fn.ops += [Op(o.ALU64 | o.ADD | o.X, acc, r) for r in regs]
    fn.ops += [Op(o.ALU64 | o.MOV | o.X, 0, acc), Op(o.JMP | o.EXIT)]
    return fn, link(allocate(fn))


def test_spilled_values_with_disjoint_lives_share_stack_slots() -> None:
    """The stack (512 bytes for the whole call chain) is not used up by spills that are never
    live together: the fallbacks' temporaries raise register pressure at lower ISA levels."""
    one, insns1 = _pressure(1)
    many, insns6 = _pressure(6)
    assert one.frame.depth > 0 and many.frame.depth == one.frame.depth
    want = sum(g * 100 + i for g in range(6) for i in range(14))
    assert run(insns6) == want and run(insns1) == sum(range(14))
