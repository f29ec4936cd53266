"""Kernel data through CO-RE: current->real_parent->tgid and ->comm, field/type/enum queries."""

from __future__ import annotations

import os
from typing import Any

from ebpf import lang as L
from ebpf.lang import Struct, char, u32, u64


class Parent(Struct):
    ppid: u32
    has_field: u32
    no_field: u32
    task_size: u32
    tgid_type: u64
    comm: char[16]


def _parent_comm() -> bytes:
    with open(f"/proc/{os.getppid()}/comm", "rb") as f:
        return f.read().strip()


def _collection(kind: str) -> Any:
    coll = L.Collection(f"parent_{kind}")
    out = coll.array_map("out", value=Parent, max_entries=1)
    me = coll.rodata("me", u32, 0)

    def body(ctx: Any) -> int:
        if L.pid() != me:
            return 0
        r = out.get(0)
        if r is None:
            return 0
        task = L.current_task()
        r.ppid = task.real_parent.tgid
        L.probe_read_kernel_str(r.comm, task.real_parent.comm)
        r.has_field = L.field_exists(task.real_parent)
        r.no_field = L.field_exists("struct task_struct", "no_such_member")
        r.task_size = L.type_size("struct task_struct")
        r.tgid_type = L.enum_value("enum pid_type", "PIDTYPE_TGID")
        return 0

    if kind == "tracepoint":
        coll.tracepoint("syscalls/sys_enter_getppid", name="parent")(body)
    else:
        coll.tp_btf("sys_enter", name="parent")(body)
    return coll


def _check(coll: Any) -> None:
    from ebpf.btf import kernel_btf

    with coll.load(me=os.getpid()) as live:
        live.attach()
        os.getppid()
        r = live.maps["out"][0]
    assert r.ppid == os.getppid()
    assert r.comm == _parent_comm()
    assert r.has_field == 1 and r.no_field == 0
    assert r.task_size == kernel_btf().size_of(kernel_btf().type_by_name("task_struct"))
    assert r.tgid_type == 1  # PIDTYPE_TGID


def test_real_parent_through_probe_reads_in_a_tracepoint() -> None:
    coll = _collection("tracepoint")
    prog = coll.spec().programs["parent"]
    relos = [i.meta["core"] for i in prog.instructions if i._meta and "core" in i.meta]
    paths = {(r.type_name, r.access) for r in relos}
    assert ("struct task_struct", ("real_parent",)) in paths
    assert ("struct task_struct", ("tgid",)) in paths
    assert ("struct task_struct", ("comm",)) in paths
    assert any(i.is_call and i.imm == 113 for i in prog.instructions)  # bpf_probe_read_kernel
    _check(coll)


def test_real_parent_through_direct_loads_in_tp_btf() -> None:
    from ebpf import features

    coll = _collection("tp_btf")
    prog = coll.spec().programs["parent"]
    if not features.have_helper("tracing", "get_current_task_btf"):  # Linux < 5.11: probe reads
        assert any(i.is_call and i.imm == 35 for i in prog.instructions)  # bpf_get_current_task
        _check(coll)
        return
    loads = [i for i in prog.instructions if i._meta and "core" in i.meta and i.cls == 0x01]  # LDX
    assert {i.meta["core"].access for i in loads} >= {("real_parent",), ("tgid",)}
    assert not any(i.is_call and i.imm == 113 for i in prog.instructions)
    _check(coll)


def test_tp_btf_arguments_by_name() -> None:
    coll = L.Collection("tpbtf_args")
    seen = coll.array_map("seen", value=u64, max_entries=2)
    me = coll.rodata("me", u32, 0)

    @coll.tp_btf("sys_enter")
    def on_sys_enter(ctx):
        if L.pid() != me:
            return 0
        if ctx.id == 110:  # getppid on x86_64
            seen[0] = ctx.id
            seen[1] = ctx.regs.orig_ax
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        os.getppid()
        assert live.maps["seen"][0] == 110
        assert live.maps["seen"][1] == 110


def test_raw_tracepoint_args() -> None:
    coll = L.Collection("rawtp_args")
    seen = coll.array_map("seen", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.raw_tracepoint("sys_enter")
    def on_raw(ctx):
        if L.pid() == me and ctx.args[1] == 110:
            seen[0] = ctx.args[1]
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        os.getppid()
        assert live.maps["seen"][0] == 110
