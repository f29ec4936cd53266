"""The reference emulator: kernel arithmetic rules, branches, stack memory, calls."""

from __future__ import annotations

from typing import List

import pytest

from ebpf.asm import FP, R0, R1, R2, R6, Emulator, EmulatorError, Instruction, assemble, encode, label, run
from ebpf.asm import builder as b

M64 = (1 << 64) - 1
INT64_MIN = 1 << 63
INT32_MIN = 1 << 31


def calc(*body: Instruction, r1: int = 0, r2: int = 0) -> int:
    return run([*body, b.exit_()], r1, r2)


def asm(text: str, r1: int = 0, r2: int = 0) -> int:
    return run(assemble(text + "\nexit").instructions, r1, r2)


# -- division and modulo ---------------------------------------------------------------------


def test_division_by_zero_gives_zero() -> None:
    assert calc(b.mov64(R0, 7), b.div64(R0, R1), r1=0) == 0
    assert calc(b.mov64(R0, 7), b.div32(R0, R1), r1=0) == 0
    assert calc(b.mov64(R0, 7), b.sdiv64(R0, 0)) == 0
    assert calc(b.mov64(R0, 7), b.sdiv32(R0, R1), r1=0) == 0


def test_modulo_by_zero_keeps_dst() -> None:
    assert calc(b.mov64(R0, -5), b.mod64(R0, R1), r1=0) == M64 - 4
    # 32-bit: dst is kept but truncated to 32 bits and zero-extended
    assert calc(b.mov64(R0, -5), b.mod32(R0, R1), r1=0) == 0xFFFFFFFB
    assert calc(b.mov64(R0, -5), b.smod64(R0, 0)) == M64 - 4
    assert calc(b.mov64(R0, -5), b.smod32(R0, R1), r1=0) == 0xFFFFFFFB


def test_signed_division_overflow() -> None:
    assert calc(b.ld_imm64(R0, INT64_MIN), b.sdiv64(R0, -1)) == INT64_MIN
    assert calc(b.ld_imm64(R0, INT64_MIN), b.smod64(R0, -1)) == 0
    assert calc(b.mov32(R0, INT32_MIN), b.sdiv32(R0, -1)) == INT32_MIN
    assert calc(b.mov32(R0, INT32_MIN), b.smod32(R0, -1)) == 0


def test_signed_division_truncates_toward_zero() -> None:
    assert calc(b.mov64(R0, -7), b.sdiv64(R0, 2)) == (-3) & M64
    assert calc(b.mov64(R0, -7), b.smod64(R0, 2)) == (-1) & M64
    assert calc(b.mov64(R0, 7), b.smod64(R0, -2)) == 1
    assert calc(b.mov32(R0, -7), b.sdiv32(R0, 2)) == 0xFFFFFFFD
    assert calc(b.mov32(R0, -7), b.smod32(R0, 2)) == 0xFFFFFFFF


def test_unsigned_division_uses_unsigned_operands() -> None:
    assert calc(b.mov64(R0, -1), b.div64(R0, 2)) == M64 // 2
    assert calc(b.mov64(R0, -1), b.div32(R0, 2)) == 0x7FFFFFFF
    # ALU64 immediates are sign-extended: -1 is 2**64 - 1
    assert calc(b.mov64(R0, 100), b.div64(R0, -1)) == 0
    assert calc(b.mov64(R0, 100), b.mod64(R0, -1)) == 100


# -- shifts, 32-bit results, moves ---------------------------------------------------------------


def test_shift_amounts_are_masked() -> None:
    assert calc(b.mov64(R0, 1), b.lsh64(R0, R1), r1=65) == 2
    assert calc(b.mov64(R0, 1), b.lsh32(R0, R1), r1=33) == 2
    assert calc(b.mov64(R0, 8), b.rsh64(R0, R1), r1=67) == 1
    assert calc(b.mov64(R0, -16), b.arsh64(R0, 2)) == (-4) & M64
    assert calc(b.mov64(R0, -16), b.arsh32(R0, 2)) == 0xFFFFFFFC
    assert calc(b.mov64(R0, -16), b.rsh32(R0, 2)) == 0x3FFFFFFC


def test_32_bit_results_are_zero_extended() -> None:
    assert calc(b.mov64(R0, -1), b.add32(R0, 1)) == 0
    assert calc(b.mov64(R0, -1), b.mov32(R0, R0)) == 0xFFFFFFFF
    assert calc(b.mov32(R0, -1)) == 0xFFFFFFFF
    assert calc(b.mov64(R0, -1)) == M64
    assert calc(b.mov64(R0, 5), b.neg32(R0)) == 0xFFFFFFFB
    assert calc(b.mov64(R0, 5), b.neg64(R0)) == M64 - 4
    assert calc(b.ld_imm64(R0, 0x1_0000_0003), b.mul32(R0, 2)) == 6


def test_sign_extending_moves() -> None:
    assert calc(b.mov64(R1, 0x80), b.movsx64(R0, R1, 8)) == M64 - 0x7F
    assert calc(b.mov64(R1, 0x8000), b.movsx32(R0, R1, 16)) == 0xFFFF8000
    assert calc(b.ld_imm64(R1, 0x1_8000_0000), b.movsx64(R0, R1, 32)) == (M64 << 31) & M64


def test_byte_order() -> None:
    assert calc(b.ld_imm64(R0, 0x1122334455667788), b.to_be(R0, 16)) == 0x8877
    assert calc(b.ld_imm64(R0, 0x1122334455667788), b.to_be(R0, 32)) == 0x88776655
    assert calc(b.ld_imm64(R0, 0x1122334455667788), b.to_be(R0, 64)) == 0x8877665544332211
    assert calc(b.ld_imm64(R0, 0x1122334455667788), b.to_le(R0, 16)) == 0x7788
    assert calc(b.ld_imm64(R0, 0x1122334455667788), b.to_le(R0, 64)) == 0x1122334455667788
    assert calc(b.ld_imm64(R0, 0x1122334455667788), b.bswap(R0, 32)) == 0x88776655


# -- jumps -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cond,a,bv,taken",
    [
        ("r1 > r2", -1, 1, True),        # unsigned: 2**64-1 > 1
        ("r1 s> r2", -1, 1, False),      # signed: -1 > 1 is false
        ("r1 s< r2", -1, 1, True),
        ("r1 < r2", -1, 1, False),
        ("r1 >= r2", 5, 5, True),
        ("r1 s<= r2", 5, 5, True),
        ("r1 != r2", 5, 5, False),
        ("r1 & r2", 4, 3, False),
        ("r1 & r2", 6, 3, True),
        ("w1 == w2", 0x1_0000_0005, 5, True),     # JMP32 looks at the low half only
        ("r1 == r2", 0x1_0000_0005, 5, False),
        ("w1 s< w2", 0xFFFF_FFFF, 0, True),       # low half is -1
        ("r1 s< r2", 0xFFFF_FFFF, 0, False),
        ("r1 s> -2", -1, 0, True),                # 64-bit immediates are sign-extended
        ("w1 > -2", 0xFFFF_FFFF, 0, True),        # JMP32 immediate is 0xfffffffe
        ("r1 > -2", 0xFFFF_FFFF, 0, False),       # 0xffffffff > 0xfffffffffffffffe is false
    ],
)
def test_conditions(cond: str, a: int, bv: int, taken: bool) -> None:
    text = f"r0 = 0\nif {cond} goto yes\nexit\nyes:\nr0 = 1"
    assert asm(text, r1=a & M64, r2=bv & M64) == int(taken)


def test_loop_with_labels() -> None:
    prog = [b.mov64(R0, 0), b.mov64(R1, 0), label("loop"), b.add64(R0, R1), b.add64(R1, 1),
            b.jle(R1, 10, "loop"), b.exit_()]
    assert run(prog) == 55


def test_gotol_and_ja() -> None:
    assert asm("r0 = 1\ngotol skip\nr0 = 2\nskip:\nr0 += 10") == 11


def test_may_goto_falls_through_while_budget_lasts() -> None:
    assert asm("r0 = 0\nmay_goto +1\nr0 = 1") == 1


# -- memory, atomics, calls ------------------------------------------------------------------------


def test_stack_memory_and_sign_extending_loads() -> None:
    prog = [
        b.st(8, FP, -8, -2), b.ldx(1, R0, FP, -8), b.ldsx(1, R1, FP, -8), b.stx(4, FP, R1, -16),
        b.ldx(8, R2, FP, -16), b.add64(R0, R2),
    ]
    assert calc(*prog) == (0xFE + 0xFFFFFFFE) & M64


def test_atomics() -> None:
    prog = [
        b.st(8, FP, -8, 10), b.mov64(R1, 5), b.atomic_add(8, FP, R1, -8, fetch=True),  # r1 = 10, mem 15
        b.mov64(R0, 15), b.mov64(R2, 99), b.atomic_cmpxchg(8, FP, R2, -8),            # mem 99, r0 = 15
        b.ldx(8, R0, FP, -8), b.add64(R0, R1),                                        # 99 + 10
        b.mov64(R2, 1), b.atomic_xchg(4, FP, R2, -8), b.add64(R0, R2),                # r2 = 99
        b.mov64(R2, 0xF0), b.atomic_or(4, FP, R2, -8), b.ldx(4, R2, FP, -8), b.add64(R0, R2),
    ]
    assert calc(*prog) == 99 + 10 + 99 + 0xF1


def test_ctx_buffer() -> None:
    emu = Emulator([b.ldx(4, R0, R1, 4), b.st(1, R1, 0, 0x7F), b.exit_()])
    assert emu.run(ctx=bytes(range(8))) == 0x07060504
    assert emu.ctx is not None and emu.ctx[0] == 0x7F


def test_local_call_preserves_callee_saved_and_frames() -> None:
    prog = [
        b.mov64(R6, 7), b.st(8, FP, -8, 1), b.call_local("f"), b.add64(R0, R6),
        b.ldx(8, R1, FP, -8), b.add64(R0, R1), b.exit_(),
        label("f"), b.mov64(R6, 100), b.st(8, FP, -8, 50), b.mov64(R0, 1000), b.exit_(),
    ]
    assert run(prog) == 1000 + 7 + 1


def test_helpers() -> None:
    calls: List[int] = []

    def ktime(*args: int) -> int:
        calls.append(args[0])
        return 42

    assert run([b.mov64(R1, 3), b.call("ktime_get_ns"), b.exit_()], helpers={5: ktime}) == 42
    assert calls == [3]


def test_runs_bytes_and_returns_u64() -> None:
    assert run(encode([b.mov64(R0, -1), b.exit_()])) == M64


@pytest.mark.parametrize(
    "prog,message",
    [
        ([b.ja(-1)], "step limit"),
        ([b.mov64(R0, 0)], "outside the program"),
        ([b.ldx(8, R0, R1, 0), b.exit_()], "invalid memory access"),
        ([b.ld_map_fd(R1, 3), b.exit_()], "pseudo LD_IMM64"),
        ([b.call(1), b.exit_()], "without an implementation"),
        ([b.call_kfunc(5), b.exit_()], "kfunc"),
        ([b.ld_abs(4, 0), b.exit_()], "not emulated"),
        ([b.mov64(10, 0), b.exit_()], "r10 is read-only"),
    ],
)
def test_emulator_errors(prog: List[Instruction], message: str) -> None:
    with pytest.raises(EmulatorError, match=message):
        run(prog, max_steps=1000)


def test_r0_and_args() -> None:
    assert calc(b.mov64(R0, R1), b.add64(R0, R2), r1=2, r2=3) == 5
