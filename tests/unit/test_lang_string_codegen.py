"""String comparisons compile to loop-free word compares; misuse is a compile error with the cause."""

from __future__ import annotations

from typing import Any, Callable, List

import pytest

from ebpf import lang as L
from ebpf.asm import opcodes as o
from ebpf.errors import CompileError
from ebpf.lang import Struct, char, u8, u32


class Rec(Struct):
    comm: char[16]
    data: u8[16]
    n: u32


def _compile(fn: Callable[..., Any]) -> List[Any]:
    coll = L.Collection("s")
    coll.socket_filter(fn)
    return list(coll.spec().programs[fn.__name__].instructions)


def _error(fn: Callable[..., Any]) -> str:
    with pytest.raises(CompileError) as info:
        _compile(fn)
    return str(info.value)


def _loads(insns: List[Any]) -> List[int]:
    sizes = {v: k for k, v in o.BYTES_SIZE.items()}
    return [sizes[i.opcode & 0x18] for i in insns if i.opcode & 0x07 == o.LDX]


def _backward_jumps(insns: List[Any]) -> int:
    return sum(1 for i in insns if i.opcode & 0x07 in (o.JMP, o.JMP32) and i.opcode & 0xF0 not in (o.CALL, o.EXIT)
               and i.off < 0)


def test_literal_compare_is_one_word_per_aligned_chunk() -> None:
    def prog(ctx):
        comm = char[16]()
        L.get_current_comm(comm)
        if comm == "bash":  # "bash\0": a 4-byte and a 1-byte compare
            return 1
        if comm == "systemd-journal":  # 15 bytes and the NUL: two 8-byte compares
            return 2
        return 0

    insns = _compile(prog)
    assert _loads(insns) == [4, 1, 8, 8]
    assert _backward_jumps(insns) == 0


def test_array_compare_uses_8_byte_words_and_no_loop() -> None:
    def prog(ctx):
        a = char[16]()
        b = char[16]()
        L.get_current_comm(a)
        if a == b:
            return 1
        return L.startswith(a, b)

    insns = _compile(prog)
    assert _loads(insns) == [8] * 8
    assert _backward_jumps(insns) == 0


def test_a_literal_longer_than_the_array_is_an_error() -> None:
    def eq(ctx):
        comm = char[4]()
        return comm == "abcde"

    def prefix(ctx):
        comm = char[4]()
        return L.startswith(comm, "abcde")

    assert "has 5 bytes and the array holds at most 4: it can never be equal" in _error(eq)
    assert "it can never be a prefix" in _error(prefix)


def test_string_misuse_is_explained() -> None:
    def ordering(ctx):
        comm = char[16]()
        return comm < "dd"

    def number(ctx):
        n = 3
        return n == "dd"

    def not_chars(ctx):
        r = Rec()
        return r.data == "dd"

    def nul(ctx):
        comm = char[16]()
        return comm == "a\0b"

    assert "strings compare with == and != only" in _error(ordering)
    assert "cannot compare a i64 with a string" in _error(number)
    assert "strings are char arrays; a u8[16] is not one" in _error(not_chars)
    assert "contains a NUL byte" in _error(nul)


def test_a_pointer_compared_with_a_literal_says_to_read_the_string() -> None:
    coll = L.Collection("s")

    @coll.tracepoint("syscalls/sys_enter_openat")
    def prog(ctx):
        return ctx.filename == "/etc/passwd"

    with pytest.raises(CompileError, match=r"read the string first, e\.g\. L\.str\(p\) =="):
        coll.spec()


def test_literals_fold_and_membership_in_a_tuple_of_names() -> None:
    def prog(ctx):
        comm = char[16]()
        L.get_current_comm(comm)
        if comm in ("bash", "zsh", "sh"):
            return 1
        if comm not in ("dd",):
            return 2
        return ("a" == "a") + ("a" != "b")

    insns = _compile(prog)
    assert _loads(insns) == [4, 1, 4, 2, 1, 2, 1]  # "bash\0" "zsh\0" "sh\0" "dd\0"


def test_l_str_is_not_star_exported_over_the_builtin() -> None:
    namespace: dict = {}
    exec("from ebpf.lang import *", namespace)
    assert "str" not in namespace and "startswith" in namespace
    assert L.str._ebpf_intrinsic == "str"
