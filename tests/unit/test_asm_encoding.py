"""Instruction model and byte encoding: layout, normalization, errors with byte offsets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ebpf.asm import R0, R1, R2, R10, Instruction, decode, encode
from ebpf.asm import builder as b
from ebpf.asm import opcodes as o
from ebpf.errors import EncodingError
from ebpf.uapi import PseudoCall, PseudoSrc


def test_slot_layout_little_endian() -> None:
    insn = b.stx(8, R10, R1, -8)
    assert encode([insn]) == bytes([0x7B, 0x1A, 0xF8, 0xFF, 0, 0, 0, 0])


def test_slot_layout_big_endian_swaps_register_nibbles() -> None:
    insn = b.stx(8, R10, R1, -8)
    assert encode([insn], byteorder="big") == bytes([0x7B, 0xA1, 0xFF, 0xF8, 0, 0, 0, 0])
    assert decode(encode([insn], byteorder="big"), byteorder="big") == [insn]


def test_big_endian_matches_llvm_bpfeb() -> None:
    """Vectors from `llvm-mc-19 -triple=bpfeb -mcpu=v4 -show-encoding`."""
    insns = [b.stx(8, R10, R1, -8), b.ld_imm64(R1, 0x1234567890), b.jgt(R1, 5, -3)]
    expected = "7ba1fff800000000" "18100000345678900000000000000012" "2510fffd00000005"
    assert encode(insns, byteorder="big").hex() == expected
    assert decode(bytes.fromhex(expected), byteorder="big") == insns


def test_ld_imm64_uses_two_slots_with_high_half_in_second() -> None:
    insn = b.ld_imm64(R1, 0x1234567890)
    assert insn.size == 2
    data = encode([insn])
    assert data == bytes.fromhex("18010000907856340000000012000000")
    assert decode(data) == [insn]


def test_unsigned_forms_are_normalized() -> None:
    assert Instruction(0xB7, 0, 0, 0, 0xFFFFFFFF).imm == -1
    assert Instruction(0x15, 0, 0, 0xFFFF, 0).off == -1
    assert Instruction(o.LD_IMM64, 0, 0, 0, (1 << 64) - 1).imm == -1
    assert b.mov64(R0, 0xFFFFFFFF) == b.mov64(R0, -1)


def test_out_of_range_fields_raise() -> None:
    with pytest.raises(EncodingError, match="32 bits"):
        Instruction(0xB7, 0, 0, 0, 1 << 32)
    with pytest.raises(EncodingError, match="16 bits"):
        Instruction(0x05, 0, 0, 0x10000)
    with pytest.raises(EncodingError, match="64-bit"):
        Instruction(o.LD_IMM64, 0, 0, 0, 1 << 64)
    with pytest.raises(EncodingError, match="bad instruction fields"):
        Instruction(0xB7, 16)


def test_encode_reports_fields_set_out_of_range_later() -> None:
    insn = b.mov64(R0, 1)
    insn.imm = 1 << 40
    with pytest.raises(EncodingError, match="instruction 1"):
        encode([b.exit_(), insn])


def test_equality_ignores_metadata() -> None:
    a = b.mov64(R0, 1)
    c = b.mov64(R0, 1)
    c.label, c.comment, c.meta["x"] = "start", "hello", 1
    assert a == c
    assert a != b.mov64(R0, 2)
    with pytest.raises(TypeError):
        hash(a)


def test_opcode_properties() -> None:
    insn = b.ldx(4, R0, R1, 8)
    assert (insn.cls, insn.mode, insn.width, insn.size) == (o.LDX, o.MEM, 4, 1)
    assert b.add64(R0, R1).uses_src_reg and not b.add64(R0, 1).uses_src_reg
    assert b.jeq(R0, 0, 1).is_jump and b.gotol(5).is_jump and not b.call(1).is_jump
    assert b.call(1).is_call and b.exit_().is_exit
    assert b.ld_map_fd(R1, "m").is_map_load and not b.ld_imm64(R1, 0).is_map_load
    assert str(b.ldx(4, R0, R1, 8)) == "w0 = *(u32 *)(r1 + 8)"
    assert "label='x'" in repr(Instruction(0x95, label="x"))


def test_copy_is_independent() -> None:
    a = b.mov64(R0, 1)
    a.meta["k"] = [1]
    c = a.copy()
    c.meta["other"] = 2
    assert "other" not in a.meta and c == a


def test_pseudo_constants_match_uapi() -> None:
    assert [o.PSEUDO_MAP_FD, o.PSEUDO_MAP_VALUE, o.PSEUDO_BTF_ID, o.PSEUDO_FUNC, o.PSEUDO_MAP_IDX,
            o.PSEUDO_MAP_IDX_VALUE] == [PseudoSrc.MAP_FD, PseudoSrc.MAP_VALUE, PseudoSrc.BTF_ID,
                                        PseudoSrc.FUNC, PseudoSrc.MAP_IDX, PseudoSrc.MAP_IDX_VALUE]
    assert [o.CALL_HELPER, o.CALL_PSEUDO, o.CALL_KFUNC] == list(PseudoCall)


# -- decode errors carry the byte offset -------------------------------------------------------


def test_decode_length_not_multiple_of_8() -> None:
    with pytest.raises(EncodingError, match=r"length 12 .* offset 8"):
        decode(bytes(12))


def test_decode_unknown_opcode() -> None:
    data = encode([b.exit_()]) + bytes([0xFF, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(EncodingError, match=r"unknown opcode 0xff at byte offset 8"):
        decode(data)


def test_decode_truncated_ld_imm64() -> None:
    data = encode([b.exit_(), b.ld_imm64(R1, 1)])[:16]
    with pytest.raises(EncodingError, match=r"truncated LD_IMM64 at byte offset 8"):
        decode(data)


def test_decode_nonzero_second_slot_header() -> None:
    data = bytearray(encode([b.ld_imm64(R2, 1)]))
    data[9] = 0x01
    with pytest.raises(EncodingError, match=r"byte offset 0: second slot \(byte offset 8\)"):
        decode(bytes(data))


def test_bad_byteorder() -> None:
    with pytest.raises(ValueError):
        encode([], byteorder="middle")


def _python(code: str) -> str:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    return done.stdout


def test_import_is_cheap() -> None:
    """`import ebpf.asm` must not pull in the uapi enums or the text assembler."""
    code = (
        "import sys, ebpf.asm; "
        "print(sorted(m for m in sys.modules if m.startswith('ebpf')))"
    )
    out = _python(code)
    assert out.strip() == "['ebpf', 'ebpf.asm', 'ebpf.lazy']"
    code = (
        "import sys; from ebpf.asm import encode, mov64; "
        "print('ebpf.uapi' in sys.modules, 'ebpf.asm.text' in sys.modules)"
    )
    out = _python(code)
    assert out.split() == ["False", "False"]


def test_builder_registers_are_plain_ints() -> None:
    assert R2 == 2 and isinstance(R2, int) and f"r{R2}" == "r2" and repr(R2) == "R2"
