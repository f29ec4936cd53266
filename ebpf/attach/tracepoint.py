"""Tracepoints (perf event + BPF link) and raw tracepoints (BPF_RAW_TRACEPOINT_OPEN).

A tracepoint program is attached through a perf event of type TRACEPOINT opened for all
processes on CPU 0 only: the kernel runs the program on every CPU for that one event. The BPF
link (``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT``) is used where the kernel has it; otherwise
the older ``PERF_EVENT_IOC_SET_BPF`` ioctl.
"""

from __future__ import annotations

import errno
from typing import Any, Optional

from ebpf.attach.link import Link, prog_fd_of
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf, perf, tracefs
from ebpf.sys.bpf import ENOTSUPP
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType


def split_tracepoint(target: str) -> tuple:
    """``"syscalls/sys_enter_openat"`` or ``"syscalls:sys_enter_openat"`` -> (group, name)."""
    for sep in ("/", ":"):
        if sep in target:
            group, _, name = target.partition(sep)
            if group and name and sep not in name:
                return group, name
    raise AttachError(f"bad tracepoint {target!r}: expected GROUP/NAME, e.g. syscalls/sys_enter_openat")


def perf_event_link(program: Any, perf_fd: FD, target: str, kind: str, cookie: int = 0) -> Link:
    """Attach ``program`` to an open perf event, by BPF link or else by ioctl."""
    prog_fd = prog_fd_of(program)
    try:
        link = FD(bpf.link_create(prog_fd, int(perf_fd), AttachType.PERF_EVENT, perf_event_bpf_cookie=cookie))
    except SyscallError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP) or cookie:
            perf_fd.close()
            raise AttachError(f"cannot attach to {kind} {target}: {e}") from None
    else:
        out = Link([perf_fd, link], target, via="bpf_link", link_fd=link)
        out.kind = kind
        return out
    try:  # kernels before 5.15: no perf BPF links
        perf.perf_event_set_bpf(int(perf_fd), prog_fd)
        perf.perf_event_enable(int(perf_fd))
    except SyscallError as e:
        perf_fd.close()
        raise AttachError(f"cannot attach to {kind} {target}: {e}") from None
    out = Link([perf_fd], target, via="perf_ioctl")
    out.kind = kind
    return out


def attach_tracepoint(program: Any, target: str, *, cookie: int = 0) -> Link:
    """Attach a BPF_PROG_TYPE_TRACEPOINT program to tracepoint ``GROUP/NAME``."""
    group, name = split_tracepoint(target)
    tp_id = tracefs.tracepoint_id(group, name)
    try:
        pfd = FD(
            perf.perf_event_open(
                perf.PerfType.TRACEPOINT,
                tp_id,
                pid=-1,
                cpu=0,
                sample_period=1,
                sample_type=perf.PERF_SAMPLE_RAW,
                wakeup_events=1,
            )
        )
    except SyscallError as e:
        raise AttachError(f"cannot open tracepoint {group}:{name}: {e}") from None
    return perf_event_link(program, pfd, f"{group}:{name}", "tracepoint", cookie)


def attach_raw_tracepoint(program: Any, name: str, *, cookie: int = 0) -> Link:
    """Attach a BPF_PROG_TYPE_RAW_TRACEPOINT program to raw tracepoint ``name`` (e.g. sched_switch)."""
    if "/" in name or ":" in name:
        name = split_tracepoint(name)[1]
    try:
        fd = FD(bpf.raw_tracepoint_open(name, prog_fd_of(program), cookie))
    except SyscallError as e:
        raise AttachError(f"cannot attach to raw tracepoint {name}: {e}") from None
    out = Link([fd], name, via="raw_tracepoint_open", link_fd=fd)
    out.kind = "raw_tracepoint"
    return out


def attach_btf_raw_tracepoint(program: Any, name: Optional[str] = None) -> Link:
    """Attach a tp_btf program (its target was fixed at load time by attach_btf_id)."""
    try:
        fd = FD(bpf.raw_tracepoint_open(None, prog_fd_of(program)))
    except SyscallError as e:
        raise AttachError(f"cannot attach tp_btf program to {name or '?'}: {e}") from None
    out = Link([fd], name or "?", via="raw_tracepoint_open", link_fd=fd)
    out.kind = "tp_btf"
    return out
