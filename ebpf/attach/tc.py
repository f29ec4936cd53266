"""tc (BPF_PROG_TYPE_SCHED_CLS) programs on a device's ingress or egress.

Kernels 6.6+ have tcx links: ``BPF_LINK_CREATE`` with ``BPF_TCX_INGRESS``/``BPF_TCX_EGRESS`` and
the ifindex; the program detaches when the link fd closes. Older kernels get the classic path
through netlink (pyroute2, imported only here): a ``clsact`` qdisc (created if absent, removed
again if we created it) and a ``cls_bpf`` filter in direct-action mode. Filters are not held by
an fd, so their removal is an undo action run on close, at exit and on SIGTERM.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from typing import Any, Dict, Optional, Union

from ebpf.attach.link import HookUnavailable, Link, prog_fd_of
from ebpf.attach.xdp import ifindex_of
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.bpf import ENOTSUPP
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType

TC_H_CLSACT = 0xFFFFFFF1
PARENT = {"ingress": "ffff:fff2", "egress": "ffff:fff3"}
ETH_P_ALL = 0x0003
MISSING_MODULE = ("this kernel has no tcx links (6.6+) and no {0} (module {0} neither loaded, built in nor "
                  "installed for the kernel to load)")

_qdisc_lock = threading.Lock()
_qdisc_users: Dict[int, int] = {}  # ifindex -> filters of ours on a clsact qdisc we created


def _direction(direction: str) -> str:
    d = direction.lower()
    if d in ("in", "ingress"):
        return "ingress"
    if d in ("out", "egress"):
        return "egress"
    raise AttachError(f"tc direction must be 'ingress' or 'egress', not {direction!r}")


def attach_tc(program: Any, dev: Union[str, int], direction: str = "ingress", *, mode: Optional[str] = None,
              priority: int = 1, handle: Optional[int] = None) -> Link:
    """Attach a SCHED_CLS program to ``dev``'s ``direction``: a tcx link where the kernel has
    them (``mode`` None or "tcx"), else (or with ``mode="cls_bpf"``) a clsact cls_bpf filter."""
    where = _direction(direction)
    ifindex = ifindex_of(dev)
    if mode not in (None, "tcx", "cls_bpf", "classic"):
        raise AttachError(f"unknown tc attach mode {mode!r} (tcx or cls_bpf)")
    if mode in (None, "tcx"):
        at = AttachType.TCX_INGRESS if where == "ingress" else AttachType.TCX_EGRESS
        try:
            fd = FD(bpf.link_create(prog_fd_of(program), ifindex, at, 0, tcx={"relative_fd": 0,
                                                                                "expected_revision": 0}))
            return Link([fd], f"{dev}:{where}", via="bpf_link", link_fd=fd, kind="tcx")
        except SyscallError as e:
            if mode == "tcx" or e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
                raise AttachError(f"cannot attach tc program to {dev} {where}: {e}") from None
    return attach_cls_bpf(program, dev, where, priority=priority, handle=handle)


def attach_cls_bpf(program: Any, dev: Union[str, int], direction: str = "ingress", *, priority: int = 1,
                   handle: Optional[int] = None) -> Link:
    """The classic path: clsact qdisc + cls_bpf filter (direct action) through netlink."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    where = _direction(direction)
    ifindex = ifindex_of(dev)
    prog_fd = prog_fd_of(program)
    name = getattr(program, "name", "") or "ebpf"
    ipr = IPRoute()
    created = False
    try:
        with _qdisc_lock:
            try:
                ipr.tc("add", "clsact", ifindex)
                created = True
            except NetlinkError as e:
                if e.code == errno.ENOENT:  # the kernel knows no qdisc of that kind
                    raise HookUnavailable(f"cannot add a clsact qdisc to {dev}: "
                                          f"{MISSING_MODULE.format('sch_ingress')}: {e}") from None
                if e.code != errno.EEXIST:
                    raise AttachError(f"cannot add a clsact qdisc to {dev}: {e}") from None
            if created or ifindex in _qdisc_users:
                _qdisc_users[ifindex] = _qdisc_users.get(ifindex, 0) + 1
        chosen = handle if handle is not None else random.randint(1, 0xFFFF)
        info = (priority << 16) | socket.htons(ETH_P_ALL)
        try:
            ipr.tc("add-filter", "bpf", ifindex, chosen, fd=prog_fd, name=f"{name}[{prog_fd}]",
                   parent=PARENT[where], info=info, direct_action=True)
        except NetlinkError as e:
            if e.code == errno.ENOENT:
                raise HookUnavailable(f"cannot add a cls_bpf filter to {dev} {where}: "
                                      f"{MISSING_MODULE.format('cls_bpf')}: {e}") from None
            raise AttachError(f"cannot add a cls_bpf filter to {dev} {where}: {e}") from None
    except BaseException:
        _release_qdisc(ipr, ifindex)
        ipr.close()
        raise

    def undo() -> None:
        try:
            ipr.tc("del-filter", "bpf", ifindex, chosen, parent=PARENT[where], info=info)
        except Exception:
            pass
        _release_qdisc(ipr, ifindex)
        ipr.close()

    link = Link([], f"{dev}:{where}", via="cls_bpf", undo=[undo], kind="tc")
    link.handle = chosen  # type: ignore[attr-defined]
    link.priority = priority  # type: ignore[attr-defined]
    return link


def _release_qdisc(ipr: Any, ifindex: int) -> None:
    with _qdisc_lock:
        users = _qdisc_users.get(ifindex)
        if users is None:
            return
        if users > 1:
            _qdisc_users[ifindex] = users - 1
            return
        del _qdisc_users[ifindex]
    try:
        ipr.tc("del", "clsact", ifindex)
    except Exception:
        pass
