"""DSL features end to end in the kernel: maps, globals, events, helpers, calls, packets."""

from __future__ import annotations

import os
import struct
from typing import Any

import pytest

from ebpf import lang as L
from ebpf.errors import VerifierError
from ebpf.lang import Struct, char, i32, i64, u8, u16, u32, u64

SCALE = 3  # a Python constant folded into the programs


def run(coll: Any, name: str = "prog", data: bytes = bytes(64), **rodata: Any) -> Any:
    live = coll.load(**rodata)
    return live, live.programs[name].test_run(data).retval


def test_map_operations_and_atomic_increments() -> None:
    coll = L.Collection("maps")
    h = coll.hash_map("h", key=u32, value=u64, max_entries=16)
    arr = coll.array_map("arr", value=u32, max_entries=4)
    pc = coll.percpu_array("pc", value=u64, max_entries=1)

    @coll.socket_filter
    def prog(ctx):
        h[1] = 10                 # update
        h[1] += 5                 # atomic add on an existing element
        h[2] += 7                 # insert-if-missing
        h.increment(3)            # insert 1
        h.increment(3, 2)         # then add 2
        h[4] = 99
        del h[4]
        arr[2] += SCALE
        pc[0] += 1
        found = 0
        if 1 in h:
            found += 1
        if 4 not in h:
            found += 2
        return h[1] + h[4] + found  # a missing key reads as 0

    live, ret = run(coll)
    with live:
        assert ret == 15 + 0 + 3
        assert dict(live.maps["h"].items()) == {1: 15, 2: 7, 3: 3}
        assert live.maps["arr"][2] == SCALE
        assert live.maps["pc"].sum(0) == 1


def test_struct_values_and_optional_pointers() -> None:
    class Stat(Struct):
        count: u64
        last: u32
        name: char[8]

    coll = L.Collection("stats")
    stats = coll.hash_map("stats", key=u32, value=Stat, max_entries=4)

    @coll.socket_filter
    def prog(ctx):
        s = stats.get(7)
        if s is None:
            stats[7] = Stat(count=1, last=ctx.len, name="first")
            return 1
        s.count += 1
        s.last = ctx.len
        return s.count

    live, ret = run(coll)
    with live:
        assert ret == 1
        assert live.programs["prog"].test_run(bytes(80)).retval == 2
        v = live.maps["stats"][7]
        assert (v.count, v.last, v.name) == (2, 80 - 14, b"first")  # skb->len lacks the Ethernet header
        assert isinstance(v, Stat)


def test_rodata_constants_prune_dead_code_and_bss_is_shared() -> None:
    coll = L.Collection("glob")
    danger = coll.rodata("danger", u32, 0)
    answer = coll.rodata("answer", u64, 0)
    runs = coll.bss("runs", u64, 0)
    hist = coll.bss("hist", u32[8], [0] * 8)

    @coll.socket_filter
    def prog(ctx):
        if danger:
            p = L.cast(12345, Cnt)  # never verified: the branch is dead
            return p.count
        runs.value += 1
        hist[L.log2(ctx.len)] += 1
        return answer

    live, ret = run(coll, answer=42)
    with live:
        assert ret == 42
        assert live.bss["runs"] == 1
        live.bss["runs"] = 10
        live.programs["prog"].test_run(bytes(64))
        assert live.bss["runs"] == 11
        assert live.bss["hist"][5] == 2  # log2(64 - 14) == 5


class Cnt(Struct):
    count: u64


def test_rodata_enabling_bad_code_is_rejected_by_the_verifier() -> None:
    coll = L.Collection("glob2")
    danger = coll.rodata("danger", u32, 0)

    @coll.socket_filter
    def prog(ctx):
        if danger:
            p = L.cast(12345, Cnt)
            return p.count
        return 0

    with coll.load() as live:
        assert live.programs["prog"].test_run(bytes(64)).retval == 0
    with pytest.raises(VerifierError) as info:
        coll.load(danger=1)
    assert "p.count" in str(info.value) or "return p.count" in str(info.value)


def test_log2_inline_subprogram_loop_and_closures() -> None:
    coll = L.Collection("calls")
    out = coll.array_map("out", value=u64[8], max_entries=1)
    offset = 1000

    @L.inline
    def clamp(v, hi):
        if v > hi:
            return hi
        return v

    @L.subprogram
    def tri(n: u32) -> u64:
        s: u64 = 0
        for i in range(64):
            if i > n:
                break
            s += i
        return s

    @L.subprogram
    def step(i: u32, acc: L.ptr(Cnt, "stack")) -> i64:
        acc.count += i
        return 0

    @coll.socket_filter
    def prog(ctx):
        o = out.get(0)
        if o is None:
            return 0
        n = ctx.len
        o[0] = L.log2(n)
        o[1] = L.log2l(u64(n) << 40)
        o[2] = clamp(n, 50) + offset
        o[3] = tri(10)
        acc = Cnt()
        o[4] = L.loop(5, step, acc)
        o[5] = acc.count
        k: i32 = -7
        o[6] = u64(k // 2) + u64(k % 2)  # C truncation: -3 and -1
        j = 0
        while L.bounded(j * j < n, 100):
            j += 1
        o[7] = j
        return 1

    with coll.load() as live:
        assert live.programs["prog"].test_run(bytes(64)).retval == 1
        o = live.maps["out"][0]
    assert o[0] == 5 and o[1] == 45
    assert o[2] == 50 + 1000
    assert o[3] == 55
    assert o[4] == 5 and o[5] == 0 + 1 + 2 + 3 + 4
    assert o[6] == ((-3) & (2**64 - 1)) + ((-1) & (2**64 - 1)) & (2**64 - 1)
    assert o[7] == 8  # 8 * 8 >= 50


def test_ring_buffer_output_and_stack_ids() -> None:
    class Msg(Struct):
        pid: u32
        tag: u16
        comm: char[16]

    coll = L.Collection("rb")
    rb = coll.ringbuf("rb", size=4096 * 4)
    stacks = coll.stack_trace("stacks", max_entries=64)
    ids = coll.array_map("ids", value=i64, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.tracepoint("syscalls/sys_enter_getppid")
    def prog(ctx):
        if L.pid() != me:
            return 0
        m = Msg(pid=L.pid(), tag=0xBEEF)
        L.get_current_comm(m.comm)
        rb.output(m)
        ids[0] = stacks.stackid(user=True)
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        os.getppid()
        msgs = live.maps["rb"].read(decode=Msg)
        assert [(m.pid, m.tag) for m in msgs] == [(os.getpid(), 0xBEEF)]
        assert live.maps["ids"][0] >= 0


def test_perf_event_output_printk_and_tail_call_load() -> None:
    coll = L.Collection("misc")
    perf = coll.perf_event_array("perf")
    jmp = coll.prog_array("jmp", max_entries=2)
    hits = coll.bss("hits", u64, 0)

    @coll.socket_filter
    def target(ctx):
        hits.value += 100
        return 7

    @coll.socket_filter
    def prog(ctx):
        v = u64(ctx.len)
        perf.output(v)
        L.printk("len=%d", ctx.len)
        jmp.tail_call(0)
        return 1  # reached only when the slot is empty

    with coll.load() as live:
        assert live.programs["prog"].test_run(bytes(64)).retval == 1
        live.maps["jmp"][0] = live.programs["target"]
        assert live.programs["prog"].test_run(bytes(64)).retval == 7
        assert live.bss["hits"] == 100


def test_xdp_packet_access_with_bounds_check() -> None:
    coll = L.Collection("xdp")

    @coll.xdp()
    def prog(ctx):
        data = ctx.data
        if data + 14 > ctx.data_end:
            return 1  # XDP_DROP
        ethertype = u16(data[12]) << 8 | data[13]
        if ethertype == 0x0800:
            return 2  # XDP_PASS
        return 3

    with coll.load() as live:
        ipv4 = bytes(12) + b"\x08\x00" + bytes(50)
        other = bytes(12) + b"\x86\xdd" + bytes(50)
        assert live.programs["prog"].test_run(ipv4).retval == 2
        assert live.programs["prog"].test_run(other).retval == 3


def test_tracepoint_data_loc_string() -> None:
    class Exec(Struct):
        pid: u32
        name: char[64]

    coll = L.Collection("execname")
    rb = coll.ringbuf("rb", size=4096 * 4)

    @coll.tracepoint("sched/sched_process_exec")
    def prog(ctx):
        e = rb.reserve(Exec)
        if e is None:
            return 0
        e.pid = ctx.pid
        L.probe_read_kernel_str(e.name, ctx.filename)
        rb.submit(e)
        return 0

    import subprocess

    with coll.load() as live:
        live.attach()
        child = subprocess.run(["/bin/true"], check=True)
        assert child.returncode == 0
        names = [e.name for e in live.maps["rb"].read(decode=Exec)]
    assert b"/bin/true" in names or b"/usr/bin/true" in names


def test_struct_user_space_codec_round_trip() -> None:
    class Rec(Struct):
        a: u8
        b: u64
        c: char[5]
        d: i32[2]

    raw = Rec(a=1, b=2, c=b"hi", d=[-1, 3]).encode()
    assert len(raw) == Rec.size() == 32
    back = Rec.decode(raw)
    assert back == Rec(a=1, b=2, c=b"hi", d=[-1, 3])
    assert struct.unpack_from("=B7xQ5s3xii", raw) == (1, 2, b"hi\0\0\0", -1, 3)
    assert u8(300) == 44 and i32(0xFFFFFFFF) == -1 and u64(-1) == 2**64 - 1
    assert i64(1) == 1


def test_kfunc_calls_and_bare_global_updates() -> None:
    coll = L.Collection("kf")
    out = coll.array_map("out", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)
    calls = coll.bss("calls", u64, 0)

    @coll.tp_btf("sys_enter")
    def prog(ctx):
        nonlocal calls  # a .bss global from the enclosing scope: `+=` is an atomic add
        if L.pid() != me:
            return 0
        calls += 1
        t = L.kfunc("bpf_task_from_pid", L.pid())
        if t is None:
            return 0
        out[0] = t.tgid
        L.kfunc("bpf_task_release", t)
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        os.getppid()
        assert live.maps["out"][0] == os.getpid()
        assert live.bss["calls"] >= 1


def test_queue_push_and_pop() -> None:
    coll = L.Collection("q")
    q = coll.queue("q", value=u32, max_entries=8)

    @coll.socket_filter
    def prog(ctx):
        q.push(5)
        q.push(ctx.len)
        got = u32[1]()
        if q.pop(got) != 0:
            return 0
        return got[0]

    with coll.load() as live:
        assert live.programs["prog"].test_run(bytes(64)).retval == 5
        assert live.programs["prog"].test_run(bytes(64)).retval == 64 - 14  # pushed by the first run


def _libc() -> str:
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "/libc.so" in path or "/libc-" in path:
                return path
    pytest.skip("no libc mapped")
    return ""


def test_uprobe_and_uretprobe_read_pt_regs() -> None:
    import ctypes

    libc_path = _libc()
    coll = L.Collection("up")
    seen = coll.array_map("seen", value=u64[2], max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.uprobe(f"{libc_path}:abs")
    def on_abs(ctx):
        if L.pid() == me:
            s = seen.get(0)
            if s is not None:
                s[0] = ctx.arg(0, i32)
        return 0

    @coll.uretprobe(f"{libc_path}:abs")
    def on_abs_ret(ctx):
        if L.pid() == me:
            s = seen.get(0)
            if s is not None:
                s[1] = ctx.ret
        return 0

    libc = ctypes.CDLL(libc_path)
    with coll.load(me=os.getpid()) as live:
        live.attach()
        assert libc.abs(-4242) == 4242
        got = live.maps["seen"][0]
    assert got[0] == (-4242) & (2**64 - 1)  # an i32 argument, widened to u64 by the store
    assert got[1] == 4242
