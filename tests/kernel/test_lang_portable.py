"""Programs written once for every kernel: tp_btf arguments by name where the kernel's BTF names
them (5.10 keeps the names in __traceiter_ records only), L.current_task() in a BTF-typed
program where bpf_get_current_task_btf (5.11+) is missing, and bpf_probe_read_* chosen by probe.

Run on this host and in the VM tier's guests (``python -m tests.vm 5.10 -- pytest -q THIS``).
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from ebpf import features
from ebpf import lang as L
from ebpf.lang import Struct, u32, u64
from ebpf.uapi import ProgType

CALL = 0x85


class Seen(Struct):
    pid: u32
    ppid: u32
    prev_pid: u32
    switches: u64


def _calls(spec: Any) -> set:
    return {i.imm for i in spec.instructions if i.opcode == CALL and i.src == 0}


def test_tp_btf_names_and_current_task() -> None:
    coll = L.Collection("portable_task")
    out = coll.array_map("out", value=Seen, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.tp_btf("sched_switch")
    def on_switch(ctx):
        task = L.current_task()
        if task.tgid != me:
            return 0
        r = out.get(0)
        if r is None:
            return 0
        r.pid = task.tgid
        r.ppid = task.real_parent.tgid
        r.prev_pid = ctx.prev.tgid  # by name: __bpf_trace_sched_switch, else __traceiter_sched_switch
        r.switches += 1
        return 0

    spec = coll.spec().programs["on_switch"]
    btf_task = features.have_helper(ProgType.TRACING, "get_current_task_btf")
    assert (158 in _calls(spec)) == btf_task and (35 in _calls(spec)) != btf_task
    with coll.load(me=os.getpid()) as live:
        live.attach()
        for _ in range(20):
            subprocess.run(["true"], check=True)  # waiting for a child switches us out
        r = live.maps["out"][0]
    assert r.switches > 0
    assert r.pid == os.getpid() and r.ppid == os.getppid() and r.prev_pid == os.getpid()


def test_probe_reads_are_the_ones_the_kernel_has() -> None:
    coll = L.Collection("portable_reads")
    out = coll.array_map("out", value=Seen, max_entries=1)

    @coll.tracepoint("syscalls/sys_enter_getppid")
    def reads(ctx):
        r = out.get(0)
        if r is not None:
            r.ppid = L.current_task().real_parent.tgid  # kernel memory through a probe read
        return 0

    calls = _calls(coll.spec().programs["reads"])
    modern = features.have_helper(ProgType.TRACEPOINT, "probe_read_kernel")
    assert (113 in calls) == modern and (4 in calls) != modern  # bpf_probe_read before 5.5
    with coll.load() as live:
        live.attach()
        os.getppid()
        assert live.maps["out"][0].ppid > 0


def test_member_by_name_where_the_compiling_kernel_lacks_it() -> None:
    """task_struct.state (< 5.14) vs __state: one program, whichever the kernel has; the
    absent member's read is dead code the loader poisons."""
    from ebpf.lang import i64

    coll = L.Collection("portable_state")
    out = coll.array_map("out", value=Seen, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.tracepoint("syscalls/sys_enter_getppid")
    def state(ctx):
        if L.pid() != me:
            return 0
        r = out.get(0)
        if r is None:
            return 0
        task = L.current_task()
        if L.field_exists("struct task_struct", "__state"):
            r.pid = u32(L.member(task, "__state", u32)) + 100  # 100 + TASK_RUNNING
        else:
            r.pid = u32(L.member(task, "state", i64)) + 200
        r.ppid = u32(L.member(task.real_parent, "tgid", u32))
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        os.getppid()
        r = live.maps["out"][0]
    from ebpf.btf import Kind, kernel_btf

    task_struct: Any = kernel_btf().type_by_name("task_struct", Kind.STRUCT)
    assert r.pid == (100 if task_struct.find_member("__state") is not None else 200)
    assert r.ppid == os.getppid()
