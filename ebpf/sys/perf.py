"""perf_event_open(2) and the perf ioctls: how tracepoints, probes and samplers get a BPF program.

Only the fields our callers set are parameters; ``flags`` is the kernel's bitfield word
(see :class:`PerfFlag`). Failures become :mod:`ebpf.errors` exceptions with a hint.
"""

from __future__ import annotations

import errno
import fcntl
from enum import IntEnum, IntFlag

from ebpf.errors import PermissionDenied, SyscallError
from ebpf.sys.bpf import SYS_PERF_EVENT_OPEN
from ebpf.sys.ffi import ffi, libc

PERF_ATTR_SIZE = 136  # PERF_ATTR_SIZE_VER8: every field we declare


class PerfType(IntEnum):
    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class PerfSwConfig(IntEnum):
    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10
    CGROUP_SWITCHES = 11


class PerfFlag(IntFlag):
    """Bits of perf_event_attr's bitfield word (little-endian bit order)."""

    NONE = 0
    DISABLED = 1 << 0
    INHERIT = 1 << 1
    PINNED = 1 << 2
    EXCLUSIVE = 1 << 3
    EXCLUDE_USER = 1 << 4
    EXCLUDE_KERNEL = 1 << 5
    EXCLUDE_HV = 1 << 6
    EXCLUDE_IDLE = 1 << 7
    MMAP = 1 << 8
    COMM = 1 << 9
    FREQ = 1 << 10
    INHERIT_STAT = 1 << 11
    ENABLE_ON_EXEC = 1 << 12
    TASK = 1 << 13
    WATERMARK = 1 << 14


PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# _IO('$', n) and _IOW('$', n, __u32)
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408

_HINTS = {
    errno.EPERM: "needs root or CAP_PERFMON (or lower kernel.perf_event_paranoid)",
    errno.EACCES: "needs root or CAP_PERFMON (or lower kernel.perf_event_paranoid)",
    errno.ENOENT: "no such event on this kernel (missing PMU or hardware counters?)",
    errno.ENODEV: "the CPU is offline or the PMU does not exist",
    errno.EINVAL: "the kernel rejected the event attributes",
    errno.EMFILE: "too many open files (raise ulimit -n)",
    errno.EOPNOTSUPP: "not supported by this PMU",
}


def perf_event_open(
    type: int,
    config: int,
    *,
    pid: int = -1,
    cpu: int = 0,
    group_fd: int = -1,
    sample_period: int = 0,
    sample_type: int = 0,
    wakeup_events: int = 0,
    flags: int = 0,
    config1: int = 0,
    config2: int = 0,
    bp_type: int = 0,
    open_flags: int = PERF_FLAG_FD_CLOEXEC,
) -> int:
    """perf_event_open(2); returns the event fd."""
    attr = ffi.new("struct perf_event_attr *")
    attr.type = type
    attr.size = PERF_ATTR_SIZE
    attr.config = config
    attr.sample_period = sample_period
    attr.sample_type = sample_type
    attr.wakeup_events = wakeup_events
    attr.flags = flags
    attr.config1 = config1
    attr.config2 = config2
    attr.bp_type = bp_type
    ret = libc.syscall(
        ffi.cast("long", SYS_PERF_EVENT_OPEN),
        attr,
        ffi.cast("long", pid),
        ffi.cast("long", cpu),
        ffi.cast("long", group_fd),
        ffi.cast("long", open_flags),
    )
    if ret < 0:
        err = ffi.errno
        cls = PermissionDenied if err in (errno.EPERM, errno.EACCES) else SyscallError
        raise cls("perf_event_open", err, _HINTS.get(err, ""))
    return int(ret)


def _ioctl(fd: int, request: int, arg: int, name: str) -> None:
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as e:
        raise SyscallError(name, e.errno or errno.EINVAL, _HINTS.get(e.errno or 0, "")) from None


def perf_event_enable(fd: int) -> None:
    """PERF_EVENT_IOC_ENABLE."""
    _ioctl(fd, PERF_EVENT_IOC_ENABLE, 0, "PERF_EVENT_IOC_ENABLE")


def perf_event_disable(fd: int) -> None:
    """PERF_EVENT_IOC_DISABLE."""
    _ioctl(fd, PERF_EVENT_IOC_DISABLE, 0, "PERF_EVENT_IOC_DISABLE")


def perf_event_set_bpf(fd: int, prog_fd: int) -> None:
    """PERF_EVENT_IOC_SET_BPF: the pre-BPF-link way to hang a program on a perf event."""
    _ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd, "PERF_EVENT_IOC_SET_BPF")
