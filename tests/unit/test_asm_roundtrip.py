"""Property tests: decode(encode(x)) == x and assemble(disassemble(x)) == x for random programs."""

from __future__ import annotations

import shutil
import subprocess
from typing import Callable, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpf.asm import Instruction, assemble, decode, disassemble, encode, format_instruction
from ebpf.asm import builder as b
from ebpf.asm import opcodes as o
from ebpf.asm.registers import Reg

regs = st.integers(0, 10)
src_regs = st.builds(Reg, regs)
imm32 = st.integers(-(1 << 31), (1 << 31) - 1)
imm32_any = st.integers(-(1 << 31), (1 << 32) - 1)
off16 = st.integers(-(1 << 15), (1 << 15) - 1)
imm64 = st.integers(-(1 << 63), (1 << 64) - 1)
sizes = st.sampled_from([1, 2, 4, 8])
operand = st.one_of(src_regs, imm32_any)

ALU = [b.add64, b.add32, b.sub64, b.sub32, b.mul64, b.mul32, b.div64, b.div32, b.sdiv64, b.sdiv32,
       b.mod64, b.mod32, b.smod64, b.smod32, b.or64, b.or32, b.and64, b.and32, b.lsh64, b.lsh32,
       b.rsh64, b.rsh32, b.arsh64, b.arsh32, b.xor64, b.xor32, b.mov64, b.mov32]
JUMPS = [b.jeq, b.jgt, b.jge, b.jset, b.jne, b.jsgt, b.jsge, b.jlt, b.jle, b.jslt, b.jsle,
         b.jeq32, b.jgt32, b.jge32, b.jset32, b.jne32, b.jsgt32, b.jsge32, b.jlt32, b.jle32, b.jslt32,
         b.jsle32]
ATOMICS = [b.atomic_add, b.atomic_or, b.atomic_and, b.atomic_xor]


def _apply(fn: Callable[..., Instruction], *args: object) -> Instruction:
    return fn(*args)


# Instructions llvm-mc-19 can express (its own syntax, no extensions).
llvm_insns = st.one_of(
    st.builds(_apply, st.sampled_from(ALU), regs, operand),
    st.builds(b.neg64, regs),
    st.builds(b.neg32, regs),
    st.builds(b.movsx64, regs, src_regs, st.sampled_from([8, 16, 32])),
    st.builds(b.movsx32, regs, src_regs, st.sampled_from([8, 16])),
    st.builds(_apply, st.sampled_from([b.to_le, b.to_be, b.bswap]), regs, st.sampled_from([16, 32, 64])),
    st.builds(b.ldx, sizes, regs, src_regs, off16),
    st.builds(b.ldsx, st.sampled_from([1, 2, 4]), regs, src_regs, off16),
    st.builds(b.stx, sizes, regs, src_regs, off16),
    st.builds(b.st, sizes, regs, off16, imm32_any),
    st.builds(_apply, st.sampled_from(ATOMICS), st.sampled_from([4, 8]), regs, src_regs, off16,
              st.booleans()),
    st.builds(b.atomic_xchg, st.sampled_from([4, 8]), regs, src_regs, off16),
    st.builds(b.atomic_cmpxchg, st.sampled_from([4, 8]), regs, src_regs, off16),
    st.builds(_apply, st.sampled_from(JUMPS), regs, operand, off16),
    st.builds(b.ja, off16),
    st.builds(b.gotol, off16),  # llvm-mc-19 only parses 16-bit gotol offsets
    st.builds(b.may_goto, off16),
    st.builds(b.call, imm32),
    st.builds(b.callx, regs),
    st.just(b.exit_()),
    st.builds(b.ld_imm64, regs, imm64),
    st.builds(b.ld_abs, st.sampled_from([1, 2, 4]), imm32),
    st.builds(b.ld_ind, st.sampled_from([1, 2, 4]), src_regs, st.just(0)),
    st.builds(b.addr_space_cast, regs, src_regs, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
)

# Instructions that need our syntax extensions.
extension_insns = st.one_of(
    st.builds(b.gotol, imm32),
    st.builds(b.call_local, imm32),
    st.builds(b.call_kfunc, imm32, off16),
    st.builds(b.ld_map_fd, regs, imm32),
    st.builds(b.ld_map_value, regs, imm32, imm32),
    st.builds(b.ld_map_idx, regs, imm32),
    st.builds(b.ld_map_idx_value, regs, imm32, imm32),
    st.builds(b.ld_btf_id, regs, imm32, imm32),
    st.builds(b.ld_func, regs, imm32),
    st.builds(b.ld_ind, st.sampled_from([1, 2, 4]), src_regs, imm32),
)

canonical_insns = st.one_of(llvm_insns, extension_insns)


@st.composite
def raw_insns(draw: st.DrawFn) -> Instruction:
    """Any decodable instruction: a valid opcode with arbitrary register and field values."""
    code = draw(st.sampled_from(sorted(o.VALID_OPCODES)))
    imm = draw(imm64 if code == o.LD_IMM64 else imm32)
    return Instruction(code, draw(st.integers(0, 15)), draw(st.integers(0, 15)), draw(off16), imm)


any_insns = st.one_of(canonical_insns, raw_insns())
FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(any_insns, max_size=20))
def test_decode_encode_round_trip(insns: List[Instruction]) -> None:
    data = encode(insns)
    assert len(data) == 8 * sum(i.size for i in insns)
    assert decode(data) == insns
    assert encode(decode(data)) == data


@FAST
@given(st.lists(any_insns, max_size=20))
def test_big_endian_round_trip(insns: List[Instruction]) -> None:
    data = encode(insns, byteorder="big")
    assert decode(data, byteorder="big") == insns


@FAST
@given(st.lists(any_insns, min_size=1, max_size=20))  # no instructions is an error, not a program
def test_assemble_disassemble_round_trip(insns: List[Instruction]) -> None:
    assert assemble(disassemble(insns)).instructions == insns


@FAST
@given(canonical_insns)
def test_canonical_instructions_never_print_raw(insn: Instruction) -> None:
    assert not format_instruction(insn).startswith(".insn")


@pytest.mark.skipif(shutil.which("llvm-mc-19") is None, reason="llvm-mc-19 not installed")
def test_llvm_agrees_on_random_instructions() -> None:
    """One llvm-mc-19 run over a few hundred random instructions of llvm's syntax."""
    insns: List[Instruction] = []

    @settings(max_examples=400, deadline=None, database=None)
    @given(llvm_insns)
    def collect(insn: Instruction) -> None:
        insns.append(insn)

    collect()
    listing = disassemble(insns)
    out = subprocess.run(
        ["llvm-mc-19", "-triple=bpfel", "-mcpu=v4", "-show-encoding"],
        input=listing, capture_output=True, text=True, check=True,
    ).stdout
    encoded = bytearray()
    for line in out.splitlines():
        if "encoding: [" in line:
            encoded += bytes(int(x, 16) for x in line.split("encoding: [")[1].split("]")[0].split(","))
    assert bytes(encoded) == encode(insns)
    # and llvm's disassembler prints each instruction exactly as we do
    hexlines = "\n".join(" ".join(f"0x{x:02x}" for x in encode([i])) for i in insns)
    out = subprocess.run(
        ["llvm-mc-19", "-disassemble", "-triple=bpfel", "-mcpu=v4"],
        input=hexlines, capture_output=True, text=True, check=True,
    ).stdout
    theirs = [line.strip() for line in out.splitlines() if line.strip() and line.strip() != ".text"]
    assert theirs == [format_instruction(i) for i in insns]
