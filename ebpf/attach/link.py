"""The live attachment of a program to a hook.

A :class:`Link` owns the file descriptors that keep an attachment alive (a BPF link fd, and
for perf-event based hooks the perf event fd too). Closing them detaches the program.
"""

from __future__ import annotations

from typing import Any, List, Optional

from ebpf.errors import AttachError
from ebpf.sys.fd import FD


def prog_fd_of(program: Any) -> int:
    """The fd of anything that is a loaded program (``Program``, ``FD`` or int)."""
    fd = getattr(program, "fd", program)
    try:
        return int(fd)
    except (TypeError, ValueError):
        raise AttachError(f"not a loaded program: {program!r}") from None


class Link:
    """An attachment; ``close()`` (or leaving ``with``) detaches."""

    kind = "link"

    def __init__(self, fds: List[FD], target: str, *, via: str, link_fd: Optional[FD] = None):
        self._fds = fds
        self.target = target
        self.via = via  # how the kernel was asked: "bpf_link", "perf_ioctl", "raw_tracepoint_open"
        self.link_fd = link_fd

    @property
    def closed(self) -> bool:
        return all(fd.closed for fd in self._fds)

    def pin(self, path: str) -> None:
        """Keep the link (and so the attachment) alive in bpffs beyond this process."""
        if self.link_fd is None:
            raise AttachError(f"{self.kind} {self.target} attached via {self.via} has no BPF link to pin")
        from ebpf.sys import bpf

        bpf.obj_pin(int(self.link_fd), path)

    def close(self) -> None:
        # the BPF link goes first so that the perf event is no longer referenced when it closes
        for fd in reversed(self._fds):
            fd.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<{type(self).__name__} {self.kind} {self.target} via {self.via} {state}>"
