"""C strings in the DSL, run in the kernel: ``==``/``!=`` on char arrays and literals, ``L.startswith``.

The oracle is C: a ``char[N]`` holds the bytes up to its first NUL, or all N bytes when it has
none; bytes after the NUL do not count. A differential test feeds random arrays (stale bytes
after the NUL, full arrays, shared prefixes, fields at odd offsets) to one program through a
map and checks every predicate against Python; the others filter real processes by name.
"""

from __future__ import annotations

import ctypes
import os
import random
import subprocess
import threading
import time
from typing import Any, Dict, List

import pytest

from ebpf import lang as L
from ebpf.lang import Struct, char, u8, u32, u64


class Pair(Struct):
    a: char[16]      # offset 0: 8-byte words
    b: char[16]      # 16
    c: char[11]      # 32: 8 + 2 + 1
    d: char[16]      # 43: an odd offset, byte by byte


class Stack(Struct):
    pad: u8
    a: char[16]      # offset 1 on the stack


def _cstr(raw: bytes) -> bytes:
    return raw.split(b"\0", 1)[0]


#: (bit, predicate in Python) in the order the program sets the bits
ORACLE = [
    lambda p: _cstr(p["a"]) == _cstr(p["b"]),
    lambda p: _cstr(p["a"]) != _cstr(p["b"]),
    lambda p: _cstr(p["a"]) == _cstr(p["c"]),
    lambda p: _cstr(p["c"]) == _cstr(p["a"]),
    lambda p: _cstr(p["d"]) == _cstr(p["a"]),
    lambda p: _cstr(p["a"]).startswith(_cstr(p["b"])),
    lambda p: _cstr(p["a"]).startswith(_cstr(p["c"])),
    lambda p: _cstr(p["c"]).startswith(_cstr(p["a"])),
    lambda p: _cstr(p["d"]).startswith(_cstr(p["c"])),
    lambda p: _cstr(p["a"]) == b"dd",
    lambda p: _cstr(p["a"]) != b"dd",
    lambda p: _cstr(p["a"]) == b"kworker/0:1",
    lambda p: _cstr(p["a"]).startswith(b"kworker"),
    lambda p: _cstr(p["c"]) == b"0123456789",
    lambda p: _cstr(p["c"]) == b"0123456789X",
    lambda p: _cstr(p["d"]) == b"dd",
    lambda p: _cstr(p["d"]).startswith(b"ab"),
    lambda p: _cstr(p["a"]) == b"",
    lambda p: _cstr(p["a"]) == _cstr(p["b"]),      # stack copy (odd offset) against the map
    lambda p: _cstr(p["b"]) == b"dd",               # literal on the left
    lambda p: _cstr(p["a"]) == _cstr(p["b"]),       # as a value, not a branch
]


def _strings_collection(isa: int = 4) -> Any:
    coll = L.Collection("strings", isa=isa)
    pairs = coll.array_map("pairs", value=Pair, max_entries=1)

    @coll.socket_filter
    def prog(ctx):
        p = pairs.get(0)
        if p is None:
            return 0
        r = 0
        if p.a == p.b:
            r |= 1 << 0
        if p.a != p.b:
            r |= 1 << 1
        if p.a == p.c:
            r |= 1 << 2
        if p.c == p.a:
            r |= 1 << 3
        if p.d == p.a:
            r |= 1 << 4
        if L.startswith(p.a, p.b):
            r |= 1 << 5
        if L.startswith(p.a, p.c):
            r |= 1 << 6
        if L.startswith(p.c, p.a):
            r |= 1 << 7
        if L.startswith(p.d, p.c):
            r |= 1 << 8
        if p.a == "dd":
            r |= 1 << 9
        if p.a != "dd":
            r |= 1 << 10
        if p.a == "kworker/0:1":
            r |= 1 << 11
        if L.startswith(p.a, "kworker"):
            r |= 1 << 12
        if p.c == "0123456789":
            r |= 1 << 13
        if p.c == "0123456789X":
            r |= 1 << 14
        if p.d == b"dd":
            r |= 1 << 15
        if L.startswith(p.d, "ab"):
            r |= 1 << 16
        if p.a == "":
            r |= 1 << 17
        s = Stack()
        s.a = p.a
        if s.a == p.b:
            r |= 1 << 18
        if "dd" == p.b:
            r |= 1 << 19
        same = p.a == p.b
        r |= same << 20
        return r

    return coll


def _random_field(rng: random.Random, size: int, other: bytes) -> bytes:
    kind = rng.randrange(6)
    alphabet = b"ab\0"
    if kind == 0:  # random bytes, NULs anywhere
        return bytes(rng.choice(alphabet) for _ in range(size))
    if kind == 1:  # full, no NUL
        return bytes(rng.choice(b"ab") for _ in range(size))
    if kind == 2:  # a prefix of the other string, then NUL and stale bytes
        n = rng.randrange(0, min(size, len(other)) + 1)
        tail = bytes(rng.choice(alphabet) for _ in range(size - n))
        return (other[:n] + b"\0" + tail)[:size]
    if kind == 3:  # the other string with one byte changed
        raw = bytearray(other[:size].ljust(size, b"\0"))
        raw[rng.randrange(size)] = rng.choice(alphabet)
        return bytes(raw)
    if kind == 4:  # a name the literals test
        name = rng.choice([b"dd", b"ddx", b"d", b"", b"kworker/0:1", b"kworker", b"kworke", b"0123456789",
                           b"0123456789X", b"ab", b"a", b"abab"])
        stale = bytes(rng.choice(alphabet) for _ in range(size))
        return (name + b"\0" + stale)[:size]
    return bytes(size)


@pytest.mark.parametrize("isa", [4, 3, 2])
def test_char_array_comparisons_follow_c_string_semantics(isa: int) -> None:
    """At every instruction-set level: v3 and v4 compare words with jmp32, v2 with 64-bit jumps."""
    rng = random.Random(1010)
    cases: List[Dict[str, bytes]] = []
    for _ in range(1500):
        a = _random_field(rng, 16, bytes(rng.choice(b"ab") for _ in range(16)))
        b = _random_field(rng, 16, a)
        c = _random_field(rng, 11, rng.choice([a, b]))
        d = _random_field(rng, 16, rng.choice([a, c]))
        cases.append({"a": a, "b": b, "c": c, "d": d})
    from tests.kernel.test_lang_differential import need_isa

    need_isa(isa)
    with _strings_collection(isa).load() as live:
        pairs = live.maps["pairs"]
        prog = live.programs["prog"]
        for case in cases:
            pairs[0] = Pair(**case)
            got = prog.test_run(bytes(64)).retval
            want = sum(int(bool(pred(case))) << bit for bit, pred in enumerate(ORACLE))
            assert got == want, (case, bin(got), bin(want))


# ---- real processes --------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_NAME = 15


def _named_thread_syscall(name: bytes) -> int:
    """A thread that renames itself (prctl PR_SET_NAME) and calls getppid(); returns its tid."""
    out: List[int] = []

    def body() -> None:
        if _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
        out.append(threading.get_native_id())
        os.getppid()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out[0]


def test_comm_filters_see_the_right_threads() -> None:
    coll = L.Collection("commfilter")
    seen = coll.hash_map("seen", key=u32, value=u32, max_entries=64)
    me = coll.rodata("me", u32, 0)
    target = coll.rodata("target", char[16], b"")

    @coll.tracepoint("syscalls/sys_enter_getppid")
    def enter(ctx):
        if L.pid() != me:
            return 0
        comm = char[16]()
        L.get_current_comm(comm)
        bits = 0
        if comm == "dd":
            bits |= 1
        if comm != "dd":
            bits |= 2
        if L.startswith(comm, "kworker"):
            bits |= 4
        if comm == target:
            bits |= 8
        if comm == "fifteen_chars_x":
            bits |= 16
        seen[L.tid()] = bits
        return 0

    names = [b"dd", b"ddx", b"d", b"kworker/u8:2", b"kworke", b"target-name", b"fifteen_chars_x"]
    with coll.load(me=os.getpid(), target=b"target-name") as live:
        live.attach()
        tids = {name: _named_thread_syscall(name) for name in names}
        got = {name: live.maps["seen"].get(tid) for name, tid in tids.items()}
    assert got == {b"dd": 1, b"ddx": 2, b"d": 2, b"kworker/u8:2": 2 | 4, b"kworke": 2,
                   b"target-name": 2 | 8, b"fifteen_chars_x": 2 | 16}


def test_exec_of_a_symlink_named_dd_matches_and_ddx_does_not(tmp_path: Any) -> None:
    """``comm == "dd"`` on sched_process_exec: the comm is the basename that was exec'd; the
    file name (a kernel string in the record) read with L.str and compared with a global."""
    for name in ("dd", "ddx"):
        os.symlink("/bin/true", tmp_path / name)
    coll = L.Collection("execdd")
    hits = coll.hash_map("hits", key=u32, value=u64, max_entries=64)
    path = coll.rodata("path", char[128], b"")

    @coll.tracepoint("sched/sched_process_exec")
    def on_exec(ctx):
        comm = char[16]()
        L.get_current_comm(comm)
        bits = 0
        if comm == "dd":
            bits |= 1
        elif L.startswith(comm, "dd"):
            bits |= 2
        if L.str(ctx.filename, 128) == path:
            bits |= 4
        if bits:
            hits[L.pid()] = bits
        return 0

    with coll.load(path=str(tmp_path / "ddx").encode()) as live:
        live.attach()
        dd = subprocess.Popen([str(tmp_path / "dd")])
        ddx = subprocess.Popen([str(tmp_path / "ddx")])
        dd.wait()
        ddx.wait()
        got = dict(live.maps["hits"].items())
    assert got.get(dd.pid) == 1
    assert got.get(ddx.pid) == 2 | 4


def test_task_comm_through_btf_and_through_probe_reads() -> None:
    """``task.comm == "..."``: direct BTF loads in tp_btf, a probe read into the stack in a tracepoint."""
    coll = L.Collection("taskcomm")
    out = coll.hash_map("out", key=u32, value=u32, max_entries=8)
    me = coll.rodata("me", u32, 0)

    @L.inline
    def record(slot):
        if L.tid() == me:
            task = L.current_task()
            out[slot] = (task.comm == "commtest") | L.startswith(task.comm, "commt") << 1 | \
                (task.comm == "commtes") << 2

    @coll.tp_btf("sys_enter")
    def btf(ctx):
        record(0)
        return 0

    @coll.tracepoint("syscalls/sys_enter_getppid")
    def tp(ctx):
        record(1)
        return 0

    result: Dict[int, int] = {}

    def thread() -> None:
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"commtest"), 0, 0, 0)
        with coll.load(me=threading.get_native_id()) as live:
            live.attach()
            os.getppid()
            result.update(live.maps["out"].items())

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    assert result == {0: 3, 1: 3}


def test_tracepoint_char_array_fields_compare_in_place() -> None:
    """sched_switch's ``prev_comm``/``next_comm`` (char[16] at offsets 8 and 40 of the record):
    read straight from the context with aligned loads, as the verifier requires there."""
    coll = L.Collection("switch")
    out = coll.hash_map("out", key=u32, value=u32, max_entries=4)
    me = coll.rodata("me", u32, 0)

    @coll.tracepoint("sched/sched_switch")
    def switch(ctx):
        if ctx.prev_pid == me:
            out[0] = (ctx.prev_comm == "switcher-x") | L.startswith(ctx.prev_comm, "switch") << 1 | \
                (ctx.prev_comm == ctx.next_comm) << 2 | (ctx.prev_comm in ("sh", "switcher-x")) << 3
        return 0

    result: Dict[int, int] = {}

    def thread() -> None:
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"switcher-x"), 0, 0, 0)
        with coll.load(me=threading.get_native_id()) as live:
            live.attach()
            time.sleep(0.05)  # switched out at least once
            result.update(live.maps["out"].items())

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    assert result == {0: 1 | 2 | 8}
