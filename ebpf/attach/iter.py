"""BPF iterators: a TRACING program with ``BPF_TRACE_ITER`` (attach_btf_id = ``bpf_iter_<target>``)
is linked with ``BPF_LINK_CREATE``; every ``BPF_ITER_CREATE`` on the link gives an fd whose
``read()`` runs the program over the target's objects (tasks, maps, map elements, cgroups...)
and returns what it wrote with ``bpf_seq_write``/``bpf_seq_printf``.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Iterator, Optional

from ebpf.attach.link import Link, prog_fd_of
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType

# union bpf_iter_link_info: map { u32 map_fd }; cgroup { u32 order; u32 cgroup_fd; u64 cgroup_id };
# task { u32 tid; u32 pid; u32 pid_fd }
ITER_INFO_SIZE = 16


def iter_info(*, map_fd: int = 0, cgroup_fd: int = 0, cgroup_id: int = 0, order: int = 0, tid: int = 0,
              pid: int = 0, pid_fd: int = 0) -> bytes:
    """The ``bpf_iter_link_info`` bytes for one of its variants (b"" when nothing is set)."""
    if map_fd:
        return struct.pack("=I12x", map_fd)
    if cgroup_fd or cgroup_id or order:
        return struct.pack("=IIQ", order, cgroup_fd, cgroup_id)
    if tid or pid or pid_fd:
        return struct.pack("=III4x", tid, pid, pid_fd)
    return b""


class IterLink(Link):
    """An iterator link; :meth:`read` runs the iterator once and returns its output."""

    kind = "iter"

    def open(self) -> FD:
        """A new iterator instance (an fd to read until EOF)."""
        if self.link_fd is None or self.link_fd.closed:
            raise AttachError(f"iterator {self.target} is closed")
        try:
            return FD(bpf.iter_create(int(self.link_fd)))
        except SyscallError as e:
            raise AttachError(f"cannot create an iterator for {self.target}: {e}") from None

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        with self.open() as fd:
            while True:
                data = os.read(int(fd), size)
                if not data:
                    return
                yield data

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def text(self) -> str:
        return self.read().decode(errors="replace")


def attach_iter(program: Any, target: Optional[str] = None, *, map: Any = None, cgroup_fd: int = 0,
                order: int = 0, tid: int = 0, pid: int = 0) -> IterLink:
    """Link an iterator program; ``map`` parameterises map-element iterators, ``tid``/``pid``
    task iterators, ``cgroup_fd``/``order`` cgroup iterators."""
    info = iter_info(map_fd=int(getattr(map, "fd", map) or 0), cgroup_fd=cgroup_fd, order=order, tid=tid, pid=pid)
    label = target or getattr(getattr(program, "spec", None), "attach_to", "") or "iter"
    variant: dict = {}
    buf = None
    if info:
        from ebpf.sys.ffi import ffi

        buf = ffi.new("char[]", info)
        variant["iter"] = {"iter_info": buf, "iter_info_len": len(info)}
    try:
        fd = FD(bpf.link_create(prog_fd_of(program), 0, AttachType.TRACE_ITER, 0, **variant))
    except SyscallError as e:
        raise AttachError(f"cannot attach iterator {label}: {e}") from None
    del buf
    return IterLink([fd], label, via="bpf_link", link_fd=fd, kind="iter")
