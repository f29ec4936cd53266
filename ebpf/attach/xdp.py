"""XDP: a BPF link on a network device (``BPF_LINK_CREATE`` with the ifindex, kernel 5.9+).

The link detaches when its fd closes, so an XDP program never outlives the process unless the
link is pinned. ``mode`` picks generic (skb), native (driver) or offloaded XDP; the default
lets the kernel use native XDP where the driver has it and generic XDP otherwise.
"""

from __future__ import annotations

import socket
from typing import Any, Union

from ebpf.attach.link import Link, prog_fd_of
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType

XDP_FLAGS_UPDATE_IF_NOEXIST = 1
XDP_FLAGS_SKB_MODE = 2
XDP_FLAGS_DRV_MODE = 4
XDP_FLAGS_HW_MODE = 8
XDP_FLAGS_REPLACE = 16
MODES = {"": 0, "auto": 0, "skb": XDP_FLAGS_SKB_MODE, "generic": XDP_FLAGS_SKB_MODE, "native": XDP_FLAGS_DRV_MODE,
         "drv": XDP_FLAGS_DRV_MODE, "driver": XDP_FLAGS_DRV_MODE, "hw": XDP_FLAGS_HW_MODE,
         "offload": XDP_FLAGS_HW_MODE}


def ifindex_of(dev: Union[str, int]) -> int:
    """The index of network device ``dev`` (a name or an index) in this network namespace."""
    if isinstance(dev, int):
        return dev
    if dev.isdigit():
        return int(dev)
    try:
        return socket.if_nametoindex(dev)
    except OSError:
        raise AttachError(f"no network device {dev!r} in this network namespace") from None


def attach_xdp(program: Any, dev: Union[str, int], *, mode: str = "", flags: int = 0) -> Link:
    """Attach an XDP program to ``dev`` through a BPF link."""
    ifindex = ifindex_of(dev)
    if mode not in MODES:
        raise AttachError(f"unknown XDP mode {mode!r} (one of {', '.join(m for m in MODES if m)})")
    flags |= MODES[mode]
    try:
        fd = FD(bpf.link_create(prog_fd_of(program), ifindex, AttachType.XDP, flags))
    except SyscallError as e:
        raise AttachError(f"cannot attach XDP program to {dev}: {e}") from None
    return Link([fd], str(dev), via="bpf_link", link_fd=fd, kind="xdp")
