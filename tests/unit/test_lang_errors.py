"""Every kind of compile error names the file, the line and column, and shows the source line."""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable

import pytest

from ebpf import lang as L
from ebpf.errors import CompileError
from ebpf.lang import Struct, u8, u32, u64

coll_maps = L.Collection("errors")
counts = coll_maps.hash_map("counts", key=u32, value=u64, max_entries=8)
events = coll_maps.ringbuf("events")
limit = coll_maps.rodata("limit", u32, 5)


class Pair(Struct):
    a: u32
    b: u64


def compile_error(fn: Callable[..., Any]) -> CompileError:
    """Compile ``fn`` as a socket filter of a fresh collection; return the CompileError."""
    coll = L.Collection("t")
    coll.maps.update(coll_maps.maps)
    coll.socket_filter(fn)
    with pytest.raises(CompileError) as info:
        coll.spec()
    return info.value


def marked_line(fn: Callable[..., Any]) -> int:
    lines, first = inspect.getsourcelines(fn)
    for i, text in enumerate(lines):
        if "# ERR" in text:
            return first + i
    raise AssertionError("no # ERR marker")


def check(fn: Callable[..., Any], pattern: str) -> CompileError:
    err = compile_error(fn)
    assert re.search(pattern, err.message), err.message
    assert err.line == marked_line(fn), (err.line, str(err))
    assert err.file == __file__
    assert err.col >= 1
    assert "# ERR" in err.source
    assert f"{__file__}:{err.line}:{err.col}" in str(err)
    return err


# ---- unchecked optional pointers ------------------------------------------------------------


def test_map_lookup_without_none_check() -> None:
    def prog(ctx):
        p = counts.get(1)
        return p[0]  # ERR

    check(prog, r"'p' may be None: check it first")


def test_ringbuf_reserve_without_none_check() -> None:
    def prog(ctx):
        e = events.reserve(Pair)
        e.a = 1  # ERR
        events.submit(e)
        return 0

    check(prog, r"'e' may be None")


def test_none_check_narrows_and_reassignment_forgets() -> None:
    def ok(ctx):
        p = counts.get(1)
        if p is None:
            return 0
        q = counts.get(2)
        if q is not None and q[0] > 3:
            return p[0] + q[0]
        if not q:
            return 1
        return q[0]

    coll = L.Collection("ok")
    coll.maps.update(coll_maps.maps)
    coll.socket_filter(ok)
    coll.spec()

    def bad(ctx):
        p = counts.get(1)
        if p is None:
            return 0
        p = counts.get(2)
        return p[0]  # ERR

    check(bad, r"'p' may be None")


def test_possibly_unassigned_local() -> None:
    def ok(ctx):
        if ctx.len > 10:
            x = 1
        else:
            x = 2
        return x

    coll = L.Collection("ok2")
    coll.socket_filter(ok)
    coll.spec()

    def bad(ctx):
        if ctx.len > 10:
            y = 1
        return y  # ERR

    check(bad, r"'y' may be unassigned here")


# ---- unbounded loops --------------------------------------------------------------------------


def test_while_without_bound() -> None:
    def prog(ctx):
        i = 0
        while i < 10:  # ERR
            i += 1
        return i

    check(prog, r"unbounded loop: write `while L.bounded\(cond, N\)")


def test_range_with_runtime_bound() -> None:
    def prog(ctx):
        n = counts[0]
        s = 0
        for i in range(n):  # ERR
            s += i
        return s

    check(prog, r"unbounded loop: range\(\) needs compile-time constant bounds")


# ---- unsupported syntax -----------------------------------------------------------------------


def test_with_statement() -> None:
    def prog(ctx):
        with open("x"):  # ERR
            pass
        return 0

    check(prog, r"unsupported statement: With")


def test_lambda() -> None:
    def prog(ctx):
        f = lambda x: x  # noqa: E731  # ERR
        return f(1)

    check(prog, r"unsupported expression: Lambda")


def test_true_division() -> None:
    def prog(ctx):
        x = counts[0]
        return x / 2  # ERR

    check(prog, r"'/' is not supported .*use '//'")


def test_float_constant() -> None:
    def prog(ctx):
        return 1.5  # ERR

    check(prog, r"no floating point")


def test_tuple_unpacking() -> None:
    def prog(ctx):
        a, b = 1, 2  # noqa: F841  # ERR
        return a

    check(prog, r"tuple unpacking is not supported")


# ---- type errors --------------------------------------------------------------------------------


def test_unknown_struct_field() -> None:
    def prog(ctx):
        p = Pair()
        p.c = 1  # ERR
        return 0

    check(prog, r"struct Pair has no field 'c' \(fields: a, b\)")


def test_struct_used_as_number() -> None:
    def prog(ctx):
        p = Pair()
        return p + 1  # ERR

    check(prog, r"Pair is not a scalar value")


def test_rodata_is_read_only() -> None:
    def prog(ctx):
        limit.value = 3  # ERR
        return 0

    check(prog, r"\.rodata globals are read-only")


def test_undefined_name() -> None:
    def prog(ctx):
        return nothing_here  # noqa: F821  # ERR

    check(prog, r"name 'nothing_here' is not defined")


def test_helper_argument_count() -> None:
    def prog(ctx):
        return L.ktime_get_ns(1)  # ERR

    check(prog, r"too many arguments")


def test_pointer_multiplication() -> None:
    def prog(ctx):
        p = counts.get(0)
        if p is None:
            return 0
        q = p * 2  # noqa: F841  # ERR
        return 0

    check(prog, r"only pointer \+ integer")


def test_user_read_from_a_map_pointer() -> None:
    def prog(ctx):
        p = counts.get(1)
        if p is None:
            return 0
        buf = u8[16]()
        L.probe_read_user_str(buf, p)  # ERR
        return 0

    check(prog, r"'p' points to eBPF memory \(map\), not user memory: pass the user address it holds")


def test_comm_needs_memory() -> None:
    def prog(ctx):
        x = u32(0)
        L.get_current_comm(x)  # ERR
        return 0

    check(prog, r"expected memory")


def test_constant_index_out_of_range() -> None:
    def prog(ctx):
        a = u8[4]()
        return a[4]  # ERR

    check(prog, r"index 4 out of range for u8\[4\]")


def test_stack_overflow() -> None:
    def prog(ctx):
        a = u64[40]()
        b = u64[40]()  # noqa: F841 (never used: still allocated)
        return a[0]  # ERR

    err = compile_error(prog)
    assert "needs 640 bytes of stack; eBPF allows 512" in err.message
    assert err.line == marked_line(prog) - 3  # reported at the def


def test_verifier_rejection_points_at_the_python_line() -> None:
    """Not a CompileError: the kernel's refusal, with the Python line of the bad instruction."""
    import ebpf.asm as A

    coll = L.Collection("v")

    @coll.socket_filter
    def prog(ctx):
        return ctx.len

    spec = coll.spec()
    insns = spec.programs["prog"].instructions
    assert all(i.source is not None and i.source.file == __file__ for i in insns)
    assert any("ctx.len" in i.source.text for i in insns if i.source)
    assert isinstance(insns[0], A.Instruction)
