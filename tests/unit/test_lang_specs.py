"""Program kinds produce the right ProgramSpec and context accesses (no kernel needed, BTF read)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, List

import pytest

from ebpf import lang as L
from ebpf.asm import opcodes as o
from ebpf.lang import Struct, char, i16, i32, i64, u8, u16, u32, u64
from ebpf.lang.types import common_type, literal_type, promote
from ebpf.uapi import AttachType, HelperId, ProgType

needs_btf = pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="no kernel BTF")
X86 = os.uname().machine == "x86_64"


def ctx_loads(insns: List[Any], ctx_reg: int = 1) -> List[int]:
    """Offsets of loads from the context register (r1 on entry, or wherever it was copied)."""
    regs = {ctx_reg}
    out = []
    for i in insns:
        if i.opcode == o.ALU64 | o.MOV | o.X and i.src in regs and i.off == 0:
            regs.add(i.dst)
        elif i.cls == o.LDX and i.src in regs:
            out.append(i.off)
    return out


@needs_btf
def test_fentry_and_fexit_are_typed_by_the_kernel_prototype() -> None:
    from ebpf.btf import Kind, kernel_btf

    coll = L.Collection("fe")
    out = coll.array_map("out", value=u64, max_entries=4)

    @coll.fentry("do_sys_openat2")
    def on_entry(ctx):
        out[0] = ctx.dfd
        out[1] = L.get_func_ip()
        return 0

    @coll.fexit("do_sys_openat2")
    def on_exit(ctx):
        out[2] = ctx.ret
        return 0

    spec = coll.spec()
    fid = kernel_btf().type_by_name("do_sys_openat2", Kind.FUNC).id
    entry, leave = spec.programs["on_entry"], spec.programs["on_exit"]
    assert entry.type == ProgType.TRACING and entry.attach_type == AttachType.TRACE_FENTRY
    assert leave.attach_type == AttachType.TRACE_FEXIT
    assert entry.attach_btf_id == leave.attach_btf_id == fid
    assert 0 in ctx_loads(entry.instructions)          # dfd: argument 0
    assert 24 in ctx_loads(leave.instructions)         # ret: after the 3 arguments
    assert any(i.is_call and i.imm == 173 for i in entry.instructions)  # bpf_get_func_ip


@needs_btf
def test_tp_btf_names_its_typedef() -> None:
    from ebpf.btf import Kind, kernel_btf

    coll = L.Collection("tpb")

    @coll.tp_btf("sched_switch")
    def on_switch(ctx):
        return ctx.next.pid

    spec = coll.spec().programs["on_switch"]
    assert spec.attach_btf_id == kernel_btf().type_by_name("btf_trace_sched_switch", Kind.TYPEDEF).id
    assert spec.attach_type == AttachType.TRACE_RAW_TP
    relos = [i.meta["core"] for i in spec.instructions if i._meta and "core" in i.meta]
    assert [(r.type_name, r.access) for r in relos] == [("struct task_struct", ("pid",))]
    assert 16 in ctx_loads(spec.instructions)  # next: the third argument


@needs_btf
@pytest.mark.skipif(not X86, reason="x86_64 pt_regs offsets")
def test_kprobes_read_arguments_through_pt_regs() -> None:
    coll = L.Collection("kp")
    out = coll.array_map("out", value=u64, max_entries=4)

    @coll.kprobe("do_sys_openat2")
    def enter(ctx):
        out[0] = ctx.dfd              # named, from BTF: di
        out[1] = ctx.arg(2)           # dx
        out[2] = ctx.ip
        return 0

    @coll.kretprobe("do_sys_openat2")
    def leave(ctx):
        out[3] = ctx.ret              # ax
        return 0

    @coll.uprobe("/bin/true:main")
    def u(ctx):
        out[0] = ctx.arg(1)           # si
        return 0

    spec = coll.spec()
    assert spec.programs["enter"].type == ProgType.KPROBE
    assert sorted(ctx_loads(spec.programs["enter"].instructions)) == [96, 112, 128]
    assert ctx_loads(spec.programs["leave"].instructions) == [80]
    assert spec.programs["leave"].extras["retprobe"] is True
    extras = spec.programs["u"].extras
    assert extras == {"retprobe": False, "uprobe": True, "isa": extras["isa"],
                      "compile_seconds": extras["compile_seconds"]}
    assert ctx_loads(spec.programs["u"].instructions) == [104]
    assert spec.programs["u"].attach_to == "uprobe//bin/true:main"
    assert spec.programs["enter"].attach_to == "kprobe/do_sys_openat2"
    assert spec.programs["leave"].attach_to == "kretprobe/do_sys_openat2"


def test_network_and_generic_program_types() -> None:
    coll = L.Collection("net")

    @coll.xdp("lo")
    def x(ctx):
        return ctx.ingress_ifindex

    @coll.tc("lo")
    def t(ctx):
        return ctx.mark

    @coll.cgroup_skb("/sys/fs/cgroup", egress=True)
    def c(ctx):
        return 1

    @coll.perf_event("cpu-clock", sample_freq=99)
    def pe(ctx):
        return ctx.sample_period

    @coll.program("sk_msg")
    def g(ctx):
        return 1

    @coll.xdp
    def bare(ctx):
        return 2

    spec = coll.spec().programs
    assert (spec["x"].type, spec["x"].attach_type, spec["x"].attach_to) == (ProgType.XDP, AttachType.XDP, "lo")
    assert ctx_loads(spec["x"].instructions) == [12]
    assert spec["t"].type == ProgType.SCHED_CLS and ctx_loads(spec["t"].instructions) == [8]
    assert spec["c"].type == ProgType.CGROUP_SKB and spec["c"].attach_type == AttachType.CGROUP_INET_EGRESS
    assert spec["pe"].type == ProgType.PERF_EVENT and spec["pe"].extras["attach_options"] == {"sample_freq": 99}
    assert spec["pe"].attach_to == "cpu-clock"
    if X86:
        assert ctx_loads(spec["pe"].instructions) == [168]
    assert spec["g"].type == ProgType.SK_MSG
    assert spec["bare"].type == ProgType.XDP and spec["bare"].attach_to == ""


def test_helper_table_matches_the_uapi() -> None:
    from ebpf.lang.helpers import HELPERS

    for name, sig in HELPERS.items():
        assert int(HelperId[name]) == sig.id, name


def test_integer_semantics_tables() -> None:
    assert promote(u8) is i32 and promote(i16) is i32 and promote(u32) is u32
    assert common_type(u32, i32) is u32
    assert common_type(u32, i64) is i64
    assert common_type(u64, i64) is u64
    assert common_type(u8, u16) is i32
    assert [literal_type(v) for v in (1, 2**31, 2**32, 2**63)] == [i32, u32, i64, u64]
    assert u8(-1) == 255 and i16(0x8000) == -32768 and u32(2**40 + 5) == 5


def test_struct_layout_and_codec() -> None:
    class Ev(Struct):
        a: u8
        b: u64
        c: char[3]
        d: u16[2]

    layout = Ev.layout()
    assert [(f.name, f.offset) for f in layout.fields.values()] == [("a", 0), ("b", 8), ("c", 16), ("d", 20)]
    assert layout.size == 24 and layout.align == 8
    ev = Ev.decode(Ev(a=1, b=2, c=b"xy", d=[3, 4]).encode() + b"padding")
    assert (ev.a, ev.b, ev.c, ev.d) == (1, 2, b"xy", [3, 4])
    from ebpf.maps import MapSpec

    assert MapSpec("m", "hash", key=u32, value=Ev, max_entries=1).value_size == 24


def test_importing_the_dsl_is_cheap() -> None:
    code = ("import sys, ebpf.lang as L; L.Collection; L.u32; L.Struct; L.pid; "
            "print(sorted(m for m in sys.modules if m.startswith(('ebpf.lang.frontend', 'ebpf.btf', "
            "'ebpf.lang.regalloc', 'ebpf.lang.source'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_compiled_code_carries_python_lines() -> None:
    coll = L.Collection("lines")

    @coll.socket_filter
    def prog(ctx):
        x: i64 = ctx.len
        return x * 3

    insns = coll.spec().programs["prog"].instructions
    texts = {i.source.text for i in insns if i.source is not None}
    assert {"x: i64 = ctx.len", "return x * 3"} <= texts
    assert all(i.source is not None for i in insns)
    assert i32(7) == 7
