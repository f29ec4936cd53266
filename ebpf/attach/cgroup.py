"""cgroup programs (skb, sock, sock_addr, sockopt, sysctl, device...) on a cgroup v2 directory.

``BPF_LINK_CREATE`` with the cgroup's directory fd (5.7+): the attachment dies with the link
fd. Older kernels get ``BPF_PROG_ATTACH`` with ``BPF_F_ALLOW_MULTI`` (then with
``BPF_F_ALLOW_OVERRIDE``), undone by ``BPF_PROG_DETACH`` on close, at exit and on SIGTERM.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Optional, Union

from ebpf.attach.link import Link, prog_fd_of, spec_of
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.bpf import ENOTSUPP
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType

BPF_F_ALLOW_OVERRIDE = 1 << 0
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2


def cgroup2_mount() -> Optional[str]:
    """Where the unified (v2) cgroup hierarchy is mounted, or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, sep, right = line.partition(" - ")
                if sep and right.split(" ", 1)[0] == "cgroup2":
                    return left.split(" ")[4].replace("\\040", " ")
    except OSError:
        pass
    return None


def attach_cgroup(program: Any, cgroup: Union[str, int], attach_type: Optional[Any] = None, *,
                  legacy: bool = False) -> Link:
    """Attach to ``cgroup`` (a directory path, or an open directory fd) at ``attach_type``
    (default: the program's expected attach type, e.g. BPF_CGROUP_INET_EGRESS)."""
    spec = spec_of(program)
    at = attach_type if attach_type is not None else getattr(spec, "attach_type", None)
    if at is None:
        raise AttachError(f"{program!r}: which cgroup hook? pass attach_type= (e.g. AttachType.CGROUP_INET_EGRESS)")
    if isinstance(at, str):
        from ebpf.program import attach_type_of

        at = attach_type_of(at)
    at = AttachType(int(at))  # type: ignore[arg-type]
    if isinstance(cgroup, int):
        cg_fd = FD(os.dup(cgroup))
        label = f"cgroup fd {cgroup}"
    else:
        label = cgroup
        try:
            cg_fd = FD(os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError as e:
            raise AttachError(f"cannot open cgroup {cgroup}: {e.strerror}") from None
    kind = f"cgroup {at.name.lower()}"
    prog_fd = prog_fd_of(program)
    try:
        if not legacy:
            try:
                fd = FD(bpf.link_create(prog_fd, int(cg_fd), at, 0))
                return Link([fd], label, via="bpf_link", link_fd=fd, kind=kind)
            except SyscallError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                    raise AttachError(f"cannot attach {kind} program to {label}: {e}") from None
        last: Optional[SyscallError] = None
        for flags in (BPF_F_ALLOW_MULTI, BPF_F_ALLOW_OVERRIDE):
            try:
                bpf.prog_attach(int(cg_fd), prog_fd, at, flags)
                break
            except SyscallError as e:
                last = e
        else:
            raise AttachError(f"cannot attach {kind} program to {label}: {last}") from None
        # the detach needs the program: keep our own reference to it
        own_prog = FD(os.dup(prog_fd))
        cg_keep = cg_fd.dup()

        def undo() -> None:
            try:
                bpf.prog_detach(int(cg_keep), int(own_prog), at)
            finally:
                own_prog.close()
                cg_keep.close()

        return Link([], label, via="prog_attach", undo=[undo], kind=kind)
    finally:
        cg_fd.close()
