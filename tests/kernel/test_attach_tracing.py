"""tp_btf, BPF iterators, perf_event sampling and kernel stacks with real events; kprobes,
kprobe.multi, fentry/fexit/fmod_ret and LSM failing with the reason on kernels that lack them."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest

from ebpf import asm as A
from ebpf import features
from ebpf.attach.iter import attach_iter
from ebpf.attach.kprobe import attach_kprobe, attach_kprobe_multi, attach_kretprobe
from ebpf.attach.link import HookUnavailable
from ebpf.attach.perf_event import attach_perf_event
from ebpf.attach.tracing import attach_tp_btf, prepare_spec
from ebpf.btf import Kind, kernel_btf
from ebpf.errors import PermissionDenied
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec
from ebpf.symbols import stack_symbols
from tests.vm.hook_checks import task_iter_spec  # the VM tier's iterator program

GETPPID_NR = {"x86_64": 110, "aarch64": 173}.get(os.uname().machine, -1)


def pid_filter() -> list:
    """r0 = tgid; skip the rest unless it is ours."""
    return [A.call("get_current_pid_tgid"), A.rsh64(A.R0, 32), A.jne(A.R0, os.getpid(), "out")]


def bump(offset: int = 0) -> list:
    return [A.ld_map_value(A.R1, "count", offset), A.mov64(A.R2, 1), A.atomic_add(8, A.R1, A.R2, 0)]


def finish() -> list:
    return [A.label("out"), A.mov64(A.R0, 0), A.exit_()]


def counter() -> object:
    return MapSpec("count", "array", key="u32", value="u64", max_entries=1).create()


# --- tp_btf -----------------------------------------------------------------------------------


@pytest.mark.parametrize("via_program_attach", [False, True])
def test_tp_btf_counts_getppid(via_program_attach: bool) -> None:
    if not features.have_tp_btf("sys_enter"):
        pytest.skip("feature probe: no tp_btf sys_enter")
    insns = [A.mov64(A.R6, A.R1)] + pid_filter() + [
        A.ldx(8, A.R2, A.R6, 8),  # ctx[1]: the syscall number (sys_enter(regs, id))
        A.jne(A.R2, GETPPID_NR, "out"),
    ] + bump() + finish()
    spec = prepare_spec(ProgramSpec("tpbtf_ppid", "tracing", insns, attach_type="trace_raw_tp",
                                    attach_to="sys_enter"))
    assert spec.attach_btf_id == kernel_btf().ids_by_name("btf_trace_sys_enter", Kind.TYPEDEF)[0]
    with counter() as count, load_program(spec, {"count": count}) as prog:
        link = prog.attach() if via_program_attach else attach_tp_btf(prog)
        with link:
            assert link.kind == "tp_btf" and link.via == "bpf_link"
            assert link.info()["type"].name == "RAW_TRACEPOINT"
            for _ in range(123):
                os.getppid()
        for _ in range(10):
            os.getppid()
        assert count[0] == 123


# --- iterators --------------------------------------------------------------------------------


def test_task_iterator_lists_our_pid() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        with load_program(task_iter_spec()) as prog, prog.attach() as link:
            data = link.read()
            again = link.read()
    finally:
        stop.set()
        worker.join()
    pairs = list(struct.iter_unpack("=II", data))
    assert (os.getpid(), os.getpid()) in pairs
    assert (os.getpid(), worker.native_id) in pairs
    assert len(pairs) > 10 and len(again) > 0


def test_task_iterator_for_one_process() -> None:
    with load_program(task_iter_spec()) as prog, attach_iter(prog, pid=os.getpid()) as link:
        pairs = list(struct.iter_unpack("=II", link.read()))
    assert pairs and {tgid for tgid, _ in pairs} == {os.getpid()}


# --- kernel stacks ----------------------------------------------------------------------------


def test_kernel_stack_of_a_syscall_symbolizes() -> None:
    insns = [A.mov64(A.R6, A.R1)] + pid_filter() + [
        A.mov64(A.R1, A.R6),
        A.ld_map_fd(A.R2, "stacks"),
        A.mov64(A.R3, 0),
        A.call("get_stackid"),
        A.ld_map_value(A.R1, "ids", 0),
        A.stx(8, A.R1, A.R0, 0),
    ] + finish()
    with MapSpec("stacks", "stack_trace", key="u32", value="u64[127]", max_entries=16).create() as stacks, \
            MapSpec("ids", "array", key="u32", value="i64", max_entries=1).create() as ids:
        spec = ProgramSpec("kstack", "tracepoint", insns, attach_to="syscalls/sys_enter_getppid")
        with load_program(spec, {"stacks": stacks, "ids": ids}) as prog, prog.attach():
            os.getppid()
        frames = stack_symbols(stacks, ids[0])
    names = {f.split("+")[0] for f in frames}
    assert names & {"do_syscall_64", "entry_SYSCALL_64", "entry_SYSCALL_64_after_hwframe", "x64_sys_call"}, frames
    assert all(f.endswith("[kernel]") for f in frames), frames


# --- perf_event sampling ----------------------------------------------------------------------


def test_perf_event_sampling_sees_our_busy_loop() -> None:
    insns = pid_filter() + bump() + finish()
    with counter() as count, load_program(ProgramSpec("prof", "perf_event", insns), {"count": count}) as prog:
        with attach_perf_event(prog, "cpu-clock", sample_freq=1000) as link:
            assert link.kind == "perf_event" and len(link) >= 1
            end = time.thread_time() + 0.3  # CPU time: a loaded machine must not starve the count
            x = 0
            while time.thread_time() < end:
                x += 1
        n = count[0]
    assert n >= 100, n  # ~300 samples at 1000 Hz over 0.3 s of our CPU time


def test_perf_event_period_through_program_attach() -> None:
    insns = pid_filter() + bump() + finish()
    spec = ProgramSpec("prof2", "perf_event", insns, attach_to="software:task-clock")
    with counter() as count, load_program(spec, {"count": count}) as prog:
        with prog.attach(sample_period=1_000_000, pid=os.getpid()):  # every 1 ms of our task clock
            end = time.process_time() + 0.2
            while time.process_time() < end:
                pass
        n = count[0]
    assert n >= 50, n


# --- hooks this kernel lacks ------------------------------------------------------------------


def kprobe_counter(name: str, **kw: object) -> ProgramSpec:
    return ProgramSpec(name, "kprobe", [A.mov64(A.R0, 0), A.exit_()], **kw)


def test_kprobe_fails_saying_the_kernel_has_no_kprobes() -> None:
    if features.have_kprobes():
        pytest.skip("feature probe: this kernel has kprobes")
    with load_program(kprobe_counter("kp")) as prog:
        for attach in (lambda: attach_kprobe(prog, "vfs_read"), lambda: attach_kretprobe(prog, "vfs_read"),
                       lambda: prog.attach("kprobe/vfs_read"), lambda: prog.attach("ksyscall/openat")):
            with pytest.raises(HookUnavailable, match=r"has no kprobes \(CONFIG_KPROBES is off: neither the kprobe "
                                                      r"PMU .* nor tracefs kprobe_events exists\)"):
                attach()


def test_kprobe_multi_fails_with_the_reason() -> None:
    if features.have_kprobe_multi():
        pytest.skip("feature probe: this kernel has kprobe.multi")
    with load_program(kprobe_counter("kpm", attach_type="trace_kprobe_multi")) as prog:
        with pytest.raises(HookUnavailable, match=r"cannot attach kprobe.multi to vfs_read,vfs_write: .*"
                                                  r"no kprobes \(CONFIG_KPROBES is off\)"):
            attach_kprobe_multi(prog, ["vfs_read", "vfs_write"])


@pytest.mark.parametrize("kind,target", [("trace_fentry", "vfs_read"), ("trace_fexit", "vfs_read"),
                                         ("modify_return", "security_file_open"), ("lsm_mac", "file_open")])
def test_trampolines_fail_with_eperm_and_the_reason(kind: str, target: str) -> None:
    if features.have_fentry():
        pytest.skip("feature probe: this kernel allows trampolines")
    ptype = "lsm" if kind == "lsm_mac" else "tracing"
    spec = prepare_spec(ProgramSpec(f"t_{kind}"[:15], ptype, [A.mov64(A.R0, 0), A.exit_()], attach_type=kind,
                                    attach_to=target))
    assert spec.attach_btf_id > 0
    with pytest.raises(PermissionDenied, match="refuses BPF trampoline programs"):
        load_program(spec)


def test_fentry_feature_probe_names_the_reason() -> None:
    f = features.can_attach_fentry("vfs_read")
    if f.supported:
        pytest.skip("feature probe: fentry works here")
    assert "refuses trampolines (EPERM)" in f.detail
    assert not features.have_lsm()
