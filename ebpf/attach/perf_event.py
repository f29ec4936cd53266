"""perf_event programs (BPF_PROG_TYPE_PERF_EVENT): sampling on every CPU, the basis of ``profile``.

One perf event per online CPU (or one per process with ``pid``), each with the program linked by
``BPF_LINK_CREATE(BPF_PERF_EVENT)`` (the ioctl on older kernels). Software events (``cpu-clock``,
``task-clock``, page faults...) work everywhere; hardware events need a hardware PMU.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Union

from ebpf.attach.link import Link, MultiLink
from ebpf.attach.tracepoint import perf_event_link
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import perf
from ebpf.sys.fd import FD

ONLINE_PATH = "/sys/devices/system/cpu/online"

SOFTWARE_EVENTS = {
    "cpu-clock": perf.PerfSwConfig.CPU_CLOCK, "task-clock": perf.PerfSwConfig.TASK_CLOCK,
    "page-faults": perf.PerfSwConfig.PAGE_FAULTS, "faults": perf.PerfSwConfig.PAGE_FAULTS,
    "context-switches": perf.PerfSwConfig.CONTEXT_SWITCHES, "cs": perf.PerfSwConfig.CONTEXT_SWITCHES,
    "cpu-migrations": perf.PerfSwConfig.CPU_MIGRATIONS, "minor-faults": perf.PerfSwConfig.PAGE_FAULTS_MIN,
    "major-faults": perf.PerfSwConfig.PAGE_FAULTS_MAJ, "alignment-faults": perf.PerfSwConfig.ALIGNMENT_FAULTS,
    "emulation-faults": perf.PerfSwConfig.EMULATION_FAULTS, "dummy": perf.PerfSwConfig.DUMMY,
}
HARDWARE_EVENTS = {"cpu-cycles": 0, "cycles": 0, "instructions": 1, "cache-references": 2, "cache-misses": 3,
                   "branch-instructions": 4, "branches": 4, "branch-misses": 5, "bus-cycles": 6,
                   "ref-cycles": 9}


def online_cpus() -> List[int]:
    from ebpf.maps.cpus import parse_cpu_list

    try:
        with open(ONLINE_PATH) as f:
            return parse_cpu_list(f.read())
    except OSError:
        from ebpf.maps.cpus import possible_cpus

        return possible_cpus()


def event_of(event: Union[str, int], type: Optional[int] = None) -> tuple:
    """(perf type, config) of ``"cpu-clock"``, ``"software:cpu-clock"``, ``"hardware:cycles"`` or a number."""
    if isinstance(event, int):
        return (perf.PerfType.SOFTWARE if type is None else type), event
    name = event.lower()
    group, sep, rest = name.partition(":")
    if sep:
        name = rest
    if group in ("hardware", "hw") or (not sep and name not in SOFTWARE_EVENTS and name in HARDWARE_EVENTS):
        if name not in HARDWARE_EVENTS:
            raise AttachError(f"unknown hardware event {event!r} (one of {', '.join(sorted(HARDWARE_EVENTS))})")
        return perf.PerfType.HARDWARE, HARDWARE_EVENTS[name]
    if name not in SOFTWARE_EVENTS:
        raise AttachError(f"unknown software event {event!r} (one of {', '.join(sorted(SOFTWARE_EVENTS))})")
    return perf.PerfType.SOFTWARE, SOFTWARE_EVENTS[name]


def attach_perf_event(program: Any, event: Union[str, int] = "cpu-clock", *, type: Optional[int] = None,
                      sample_period: int = 0, sample_freq: int = 0, pid: int = -1,
                      cpus: Optional[Sequence[int]] = None, cookie: int = 0) -> MultiLink:
    """Sample ``event`` (default software cpu-clock) every ``sample_period`` events or
    ``sample_freq`` times a second, on every online CPU (``pid`` -1) or for one process."""
    if bool(sample_period) == bool(sample_freq):
        raise AttachError("give exactly one of sample_period and sample_freq")
    ptype, config = event_of(event, type)
    flags = perf.PerfFlag.FREQ if sample_freq else perf.PerfFlag.NONE
    period = sample_freq or sample_period
    targets = [(pid, -1)] if pid is not None and pid >= 0 and cpus is None else [
        (pid if pid is not None and pid >= 0 else -1, cpu) for cpu in (cpus if cpus is not None else online_cpus())]
    links: List[Link] = []
    label = f"{event}@{'freq=' + str(sample_freq) if sample_freq else 'period=' + str(sample_period)}"
    try:
        for p, cpu in targets:
            try:
                pfd = FD(perf.perf_event_open(ptype, config, pid=p, cpu=cpu, sample_period=period, flags=int(flags)))
            except SyscallError as e:
                raise AttachError(f"cannot open perf event {event} on CPU {cpu}: {e}") from None
            links.append(perf_event_link(program, pfd, f"{label} cpu {cpu}" if cpu >= 0 else label,
                                         "perf_event", cookie))
    except BaseException:
        for link in links:
            link.close()
        raise
    return MultiLink(links, label, kind="perf_event")
