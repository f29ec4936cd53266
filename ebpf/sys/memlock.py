"""RLIMIT_MEMLOCK on kernels that charge BPF memory to it (Linux < 5.11), raised as libbpf raises it.

Before 5.11 every map, program and BTF object is charged to the locked-memory limit of its
creator, whose default is 64 KiB: as root, the first map of any size fails with EPERM, which
reads as a missing privilege. From 5.11 on, BPF memory is charged to the memory cgroup instead
and the limit does not matter. libbpf tells the two apart by probing for memcg accounting with
a helper added in the same release (``bpf_ktime_get_coarse_ns`` in a socket filter) and raises
the limit to infinity only where it is charged.

We do the same, lazily: nothing is probed or changed on the way to a successful ``bpf()`` call,
so a new kernel pays nothing. Only when a charged command (map, program or BTF creation) fails
with EPERM does :func:`raise_limit` probe once, raise the limit when the kernel charges it, and
let the caller retry once. When the limit is charged and cannot be raised (a hard limit we may
not lift), :func:`refusal_hint` says so, instead of the usual "needs root".
"""

from __future__ import annotations

import errno
import struct
from typing import Optional

__all__ = ["raise_limit", "kernel_charges_memlock", "refusal_hint"]

_KTIME_GET_COARSE_NS = 160  # helper id; Linux 5.11, the release that moved BPF memory to memcg
_SOCKET_FILTER = 1

_charged: Optional[bool] = None  # probed once per process
_tried = False  # raise_limit() ran: it is never worth running twice
_stuck: Optional[int] = None  # the limit (bytes) we found charged and could not raise


def _probe_code() -> bytes:
    call = struct.pack("<BBhi", 0x85, 0, 0, _KTIME_GET_COARSE_NS)  # call bpf_ktime_get_coarse_ns
    exit_ = struct.pack("<BBhi", 0x95, 0, 0, 0)
    return call + exit_


def kernel_charges_memlock() -> bool:
    """True when the running kernel charges BPF objects to RLIMIT_MEMLOCK (no memcg accounting).

    A socket filter calling ``bpf_ktime_get_coarse_ns`` loads only on 5.11+; a refusal counts
    as charged (unknown helper, or EPERM because the limit is already exhausted: raising it is
    then the safe side, as in libbpf), except an EPERM without BPF privileges, which is theirs."""
    global _charged
    if _charged is None:
        from ebpf.sys import bpf
        from ebpf.sys.ffi import ffi
        from ebpf.uapi import BpfCmd

        attr, a, size = bpf._attr("prog_load")
        code = ffi.from_buffer(_probe_code())
        lic = ffi.new("char[]", b"GPL")
        a.prog_type = _SOCKET_FILTER
        a.insn_cnt = 2
        a.insns = bpf.addr(code)
        a.license = bpf.addr(lic)
        fd = bpf._raw(BpfCmd.PROG_LOAD, attr, size)  # no retry: this is what the retry asks
        if fd >= 0:
            import os

            os.close(fd)
        if fd == -errno.EPERM:
            from ebpf.sys.caps import has_bpf_privileges

            _charged = has_bpf_privileges()
        else:
            _charged = fd < 0
    return _charged


def raise_limit() -> bool:
    """After an EPERM from a charged command: raise RLIMIT_MEMLOCK if this kernel charges it.

    Returns True when the limit went up (the command is worth retrying). Runs its probe and
    its setrlimit at most once per process."""
    global _tried, _stuck
    if _tried:
        return False
    _tried = True
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft == resource.RLIM_INFINITY or not kernel_charges_memlock():
        return False
    for limit in ((resource.RLIM_INFINITY, resource.RLIM_INFINITY), (hard, hard)):
        if limit[0] == soft:
            continue
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, limit)
            return True
        except (ValueError, OSError):
            continue
    _stuck = soft
    return False


def refusal_hint() -> str:
    """The hint of an EPERM from a charged command: the memlock limit when that is the cause
    (charged by this kernel and not raisable), else "" (a privilege problem)."""
    if _stuck is None:
        return ""
    return (f"this kernel (before 5.11) charges BPF memory to RLIMIT_MEMLOCK, which is {_stuck // 1024} KiB "
            f"here and could not be raised: run `ulimit -l unlimited` first, or give CAP_SYS_RESOURCE")


def _reset() -> None:
    """Forget what was probed and tried (tests)."""
    global _charged, _tried, _stuck
    _charged, _tried, _stuck = None, False, None

