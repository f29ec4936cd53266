"""USDT argument specs (x86_64) and the instructions that read them, checked in the emulator-free
way: the exact instruction sequence; plus note parsing on a hand-made note."""

from __future__ import annotations

import pytest

from ebpf import asm as A
from ebpf.attach.usdt import PT_REGS_X86_64, UsdtArg, parse_arg, parse_args
from ebpf.errors import AttachError


@pytest.mark.parametrize("text,expected", [
    ("-4@%edi", UsdtArg(4, True, "reg", "rdi", text="-4@%edi")),
    ("8@%rax", UsdtArg(8, False, "reg", "rax", text="8@%rax")),
    ("1@%ah", UsdtArg(1, False, "reg", "rax", shift=8, text="1@%ah")),
    ("-2@%r9w", UsdtArg(2, True, "reg", "r9", text="-2@%r9w")),
    ("8@-16(%rbp)", UsdtArg(8, False, "deref", "rbp", -16, text="8@-16(%rbp)")),
    ("-4@(%rsp)", UsdtArg(4, True, "deref", "rsp", 0, text="-4@(%rsp)")),
    ("4@$5", UsdtArg(4, False, "const", offset=5, text="4@$5")),
    ("-8@$-1", UsdtArg(8, True, "const", offset=-1, text="-8@$-1")),
    ("8@0x10(%rax,%rdx,8)", UsdtArg(8, False, "sib", "rax", 16, "rdx", 8, text="8@0x10(%rax,%rdx,8)")),
])
def test_parse_arg(text: str, expected: UsdtArg) -> None:
    assert parse_arg(text) == expected


def test_parse_args_and_errors() -> None:
    assert [a.kind for a in parse_args("-4@%edi 8@-16(%rbp) 4@$5")] == ["reg", "deref", "const"]
    assert parse_args("") == []
    for bad in ("4@%xyz", "3@%eax", "4@foo", "%eax"):
        with pytest.raises(AttachError):
            parse_arg(bad)


def test_register_argument_instructions() -> None:
    assert parse_arg("-4@%edi").load(7, 6) == [
        A.ldx(8, A.R7, A.R6, PT_REGS_X86_64["rdi"]), A.lsh64(A.R7, 32), A.arsh64(A.R7, 32)]
    assert parse_arg("8@%rax").load(2, 1) == [A.ldx(8, A.R2, A.R1, 80)]
    assert parse_arg("1@%ah").load(2, 1) == [A.ldx(8, A.R2, A.R1, 80), A.rsh64(A.R2, 8), A.lsh64(A.R2, 56),
                                              A.rsh64(A.R2, 56)]


def test_memory_argument_instructions() -> None:
    assert parse_arg("-4@-16(%rbp)").load(8, 6, stack_off=-16) == [
        A.ldx(8, A.R3, A.R6, PT_REGS_X86_64["rbp"]), A.add64(A.R3, -16),
        A.mov64(A.R1, A.R10), A.add64(A.R1, -16), A.mov64(A.R2, 4), A.call("probe_read_user"),
        A.ldx(4, A.R8, A.R10, -16), A.lsh64(A.R8, 32), A.arsh64(A.R8, 32)]
    with pytest.raises(AttachError, match="r6-r9"):
        parse_arg("8@(%rax)").load(2, 1)


def test_constant_argument_instructions() -> None:
    assert parse_arg("4@$5").load(9, 6) == [A.mov64(A.R9, 5)]
    assert parse_arg("8@$0x123456789").load(9, 6) == [A.ld_imm64(A.R9, 0x123456789)]
