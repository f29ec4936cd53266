"""The live attachment of a program to a hook.

A :class:`Link` owns the file descriptors that keep an attachment alive (a BPF link fd, and
for perf-event based hooks the perf event fd too). Closing them detaches the program. Hooks
whose attachment is not held by an fd (tracefs probe events, classic tc filters, legacy cgroup
attachments) add *undo* actions, run after the fds are closed; those are also registered with
:mod:`ebpf.attach.cleanup` so that they run at exit and on SIGTERM/SIGHUP.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

from ebpf.errors import AttachError, NotSupported
from ebpf.sys.fd import FD


class HookUnavailable(AttachError, NotSupported):
    """The running kernel lacks the hook (no kprobes, trampolines refused, no tcx...)."""


def prog_fd_of(program: Any) -> int:
    """The fd of anything that is a loaded program (``Program``, ``FD`` or int)."""
    fd = getattr(program, "fd", program)
    try:
        return int(fd)
    except (TypeError, ValueError):
        raise AttachError(f"not a loaded program: {program!r}") from None


def spec_of(program: Any) -> Any:
    """The :class:`ebpf.program.ProgramSpec` behind a loaded program, or None."""
    return getattr(program, "spec", None)


class Link:
    """An attachment; ``close()`` (or leaving ``with``) detaches."""

    kind = "link"

    def __init__(self, fds: List[FD], target: str, *, via: str, link_fd: Optional[FD] = None,
                 undo: Optional[Sequence[Callable[[], None]]] = None, kind: Optional[str] = None):
        self._fds = fds
        self.target = target
        self.via = via  # how the kernel was asked: "bpf_link", "perf_ioctl", "raw_tracepoint_open"...
        self.link_fd = link_fd
        self._undo: List[Callable[[], None]] = list(undo or ())
        self._tokens: List[int] = []
        if kind is not None:
            self.kind = kind
        if self._undo:
            from ebpf.attach import cleanup

            for action in self._undo:
                self._tokens.append(cleanup.register(action, self._fds))

    @property
    def closed(self) -> bool:
        return all(fd.closed for fd in self._fds) and not self._undo

    @property
    def fds(self) -> List[FD]:
        return list(self._fds)

    def pin(self, path: str) -> None:
        """Keep the link (and so the attachment) alive in bpffs beyond this process."""
        if self.link_fd is None:
            raise AttachError(f"{self.kind} {self.target} attached via {self.via} has no BPF link to pin")
        from ebpf.sys import bpf

        bpf.obj_pin(int(self.link_fd), path)

    def info(self) -> Dict[str, Any]:
        """What the kernel says about the BPF link: ``type`` (LinkType), ``id``, ``prog_id``."""
        if self.link_fd is None or self.link_fd.closed:
            raise AttachError(f"{self.kind} {self.target} attached via {self.via} has no open BPF link")
        return link_info(int(self.link_fd))

    @property
    def id(self) -> int:
        return int(self.info()["id"])

    def detach(self) -> None:
        """BPF_LINK_DETACH: detach now, even if other fds (pins, dups) keep the link object."""
        if self.link_fd is None:
            self.close()
            return
        from ebpf.sys import bpf

        bpf.link_detach(int(self.link_fd))

    def close(self) -> None:
        # the BPF link goes first so that the perf event is no longer referenced when it closes
        for fd in reversed(self._fds):
            fd.close()
        undo, self._undo = self._undo, []
        tokens, self._tokens = self._tokens, []
        if tokens:
            from ebpf.attach import cleanup

            for token in tokens:
                cleanup.unregister(token)
        for action in undo:
            try:
                action()
            except Exception:  # detaching is best effort: the next run sweeps what remains
                pass

    @classmethod
    def from_pin(cls, path: str) -> Link:
        """Open a link pinned in bpffs (the attachment stays until the pin is removed)."""
        from ebpf.errors import SyscallError
        from ebpf.sys import bpf

        try:
            fd = FD(bpf.obj_get(path))
        except SyscallError as e:
            raise AttachError(f"cannot open pinned link {path}: {e}") from None
        link = cls([fd], path, via="pin", link_fd=fd)
        try:
            info = link.info()
        except Exception:
            fd.close()
            raise AttachError(f"{path} is not a pinned BPF link") from None
        link.kind = str(getattr(info["type"], "name", info["type"])).lower()
        return link

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<{type(self).__name__} {self.kind} {self.target} via {self.via} {state}>"


class MultiLink(Link):
    """Several attachments made as one (a probe on every CPU, a USDT probe at every site)."""

    def __init__(self, links: Sequence[Link], target: str, *, kind: str, via: Optional[str] = None):
        self.links = list(links)
        vias = sorted({link.via for link in self.links})
        super().__init__([], target, via=via or "+".join(vias) or "none", kind=kind)

    @property
    def closed(self) -> bool:
        return all(link.closed for link in self.links)

    @property
    def fds(self) -> List[FD]:
        return [fd for link in self.links for fd in link.fds]

    def pin(self, path: str) -> None:
        raise AttachError(f"{self.kind} {self.target} is {len(self.links)} attachments: pin them one by one")

    def info(self) -> Dict[str, Any]:
        raise AttachError(f"{self.kind} {self.target} is {len(self.links)} attachments: ask each of .links")

    def detach(self) -> None:
        for link in self.links:
            link.detach()

    def close(self) -> None:
        for link in reversed(self.links):
            link.close()

    def __len__(self) -> int:
        return len(self.links)


def link_info(link_fd: int) -> Dict[str, Any]:
    """BPF_OBJ_GET_INFO_BY_FD on a link: ``type`` (LinkType when known), ``id``, ``prog_id``."""
    from ebpf.sys import bpf
    from ebpf.sys.ffi import ffi
    from ebpf.uapi import LinkType

    i = bpf.obj_get_info_by_fd(link_fd, ffi.new("struct bpf_link_info_head *"))
    ltype: Any = LinkType(i.type) if i.type in LinkType._value2member_map_ else int(i.type)
    return {"type": ltype, "id": int(i.id), "prog_id": int(i.prog_id)}
