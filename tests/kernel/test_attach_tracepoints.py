"""Tracepoints (BPF link and the older ioctl path) and raw tracepoints, with real events."""

from __future__ import annotations

import os

import pytest

from ebpf import asm as A
from ebpf.attach import tracepoint as tp
from ebpf.errors import AttachError, SyscallError
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec


def counter_program(name: str, ptype: str, attach_to: str) -> ProgramSpec:
    """Counts events of this test process (tgid filter) in array slot 0."""
    return ProgramSpec(name, ptype, [
        A.call("get_current_pid_tgid"),
        A.rsh64(A.R0, 32),
        A.jne(A.R0, os.getpid(), "out"),
        A.ld_map_value(A.R1, "count", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.label("out"),
        A.mov64(A.R0, 0),
        A.exit_(),
    ], attach_to=attach_to)


def count_getppid_calls(ptype: str, target: str, force_ioctl: bool = False,
                        monkeypatch: pytest.MonkeyPatch = None) -> tuple:  # type: ignore[assignment]
    with MapSpec("count", "array", key="u32", value="u64", max_entries=1).create() as count:
        with load_program(counter_program("tp_count", ptype, target), {"count": count}) as prog:
            if force_ioctl:
                def no_links(*a: object, **k: object) -> int:
                    raise SyscallError("BPF_LINK_CREATE", 22, "forced by the test")
                monkeypatch.setattr(tp.bpf, "link_create", no_links)
            with prog.attach() as link:
                for _ in range(250):
                    os.getppid()
                via = link.via
            for _ in range(50):  # detached: not counted
                os.getppid()
            return count[0], via


def test_tracepoint_via_bpf_link() -> None:
    n, via = count_getppid_calls("tracepoint", "syscalls/sys_enter_getppid")
    assert (n, via) == (250, "bpf_link")


def test_tracepoint_via_perf_ioctl(monkeypatch: pytest.MonkeyPatch) -> None:
    n, via = count_getppid_calls("tracepoint", "syscalls:sys_enter_getppid", True, monkeypatch)
    assert (n, via) == (250, "perf_ioctl")


def test_raw_tracepoint_counts_syscalls() -> None:
    # raw sys_enter fires for every syscall of ours; at least the 250 getppid calls
    n, via = count_getppid_calls("raw_tracepoint", "sys_enter")
    assert via == "raw_tracepoint_open" and n >= 250


def test_bad_targets() -> None:
    with pytest.raises(AttachError, match="bad tracepoint"):
        tp.split_tracepoint("nogroup")
    with MapSpec("count", "array", key="u32", value="u64", max_entries=1).create() as count:
        with load_program(counter_program("tp_bad", "raw_tracepoint", "x"), {"count": count}) as prog:
            with pytest.raises(AttachError, match="cannot attach to raw tracepoint no_such_tp"):
                tp.attach_raw_tracepoint(prog, "no_such_tp")
