"""The shared path of kprobes and uprobes: a perf event from the PMU (or a tracefs event),
then the program hung on it with a BPF link (or the perf ioctl on old kernels)."""

from __future__ import annotations

from typing import Any, Optional

from ebpf.attach import probe_events
from ebpf.attach.link import HookUnavailable, Link
from ebpf.attach.tracepoint import perf_event_link
from ebpf.errors import AttachError, SyscallError, TracefsError
from ebpf.sys import perf
from ebpf.sys.fd import FD
from ebpf.sys.ffi import ffi

RETPROBE_BIT_DEFAULT = 0
REF_CTR_SHIFT_DEFAULT = 32


def _pid_cpu(pid: int) -> tuple:
    # one event for all processes is opened on CPU 0 only: it fires on every CPU
    return (-1, 0) if pid is None or pid < 0 else (pid, -1)


def open_pmu_probe(pmu: str, pmu_type: int, target: str, offset: int, *, retprobe: bool, pid: int,
                   ref_ctr_offset: int = 0) -> FD:
    """perf_event_open on the ``kprobe``/``uprobe`` PMU; ``target`` is the symbol or the path."""
    config = 0
    if retprobe:
        config |= 1 << probe_events.pmu_format_bit(pmu, "retprobe", RETPROBE_BIT_DEFAULT)
    if ref_ctr_offset:
        config |= ref_ctr_offset << probe_events.pmu_format_bit(pmu, "ref_ctr_offset", REF_CTR_SHIFT_DEFAULT)
    name = ffi.new("char[]", target.encode())
    ppid, cpu = _pid_cpu(pid)
    fd = perf.perf_event_open(pmu_type, config, pid=ppid, cpu=cpu,
                              config1=int(ffi.cast("uintptr_t", name)), config2=offset)
    del name
    return FD(fd)


def open_tracefs_probe(event: probe_events.ProbeEvent, pid: int) -> FD:
    ppid, cpu = _pid_cpu(pid)
    return FD(perf.perf_event_open(perf.PerfType.TRACEPOINT, event.id, pid=ppid, cpu=cpu, sample_period=1,
                                   sample_type=perf.PERF_SAMPLE_RAW, wakeup_events=1))


def attach_probe(program: Any, *, kind: str, label: str, pmu_target: str, offset: int, retprobe: bool,
                 pid: int, tracefs_spec: str, cookie: int = 0, ref_ctr_offset: int = 0, maxactive: int = 0,
                 legacy: Optional[bool] = None, missing: str = "") -> Link:
    """Attach a KPROBE-type program to a kprobe/uprobe: PMU first, else tracefs.

    ``legacy`` True forces tracefs, False forbids it. ``missing`` is the message when the kernel
    has neither (it names the reason).
    """
    link_kind = ("kret" if kind == "kprobe" else "uret") + "probe" if retprobe else kind
    pmu = probe_events.pmu_type(kind)
    use_pmu = pmu is not None and not legacy and not maxactive
    if use_pmu:
        assert pmu is not None
        try:
            pfd = open_pmu_probe(kind, pmu, pmu_target, offset, retprobe=retprobe, pid=pid,
                                 ref_ctr_offset=ref_ctr_offset)
        except SyscallError as e:
            raise AttachError(f"cannot attach {link_kind} to {label}: {e}") from e
        return perf_event_link(program, pfd, label, link_kind, cookie)
    if legacy is False:
        raise HookUnavailable(missing or f"cannot attach {link_kind} to {label}: the kernel has no {kind} PMU")
    if probe_events.events_file(kind) is None:
        raise HookUnavailable(missing or f"cannot attach {link_kind} to {label}: the kernel has neither the "
                              f"{kind} PMU ({probe_events.EVENT_SOURCE}/{kind}) nor tracefs {kind}_events")
    prefix = ("r" if retprobe else "p") + ("k" if kind == "kprobe" else "u")
    try:
        event = probe_events.add_event(kind, prefix, label, tracefs_spec, retprobe=retprobe, maxactive=maxactive)
    except TracefsError as e:
        raise AttachError(f"cannot attach {link_kind} to {label}: {e}") from None
    try:
        pfd = open_tracefs_probe(event, pid)
    except (SyscallError, TracefsError) as e:
        event.remove()
        raise AttachError(f"cannot attach {link_kind} to {label}: {e}") from None
    try:
        inner = perf_event_link(program, pfd, label, link_kind, cookie)
    except Exception:
        event.remove()
        raise
    return Link(inner.fds, label, via=inner.via + "+tracefs", link_fd=inner.link_fd, undo=[event.remove],
                kind=link_kind)
