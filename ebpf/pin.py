"""Pinning: keep maps, programs and links alive in bpffs, and open them again.

``pin(obj, path)`` works for anything with an fd (:class:`~ebpf.maps.live.Map`,
:class:`~ebpf.program.Program`, :class:`~ebpf.attach.link.Link`, an ``FD`` or an int), creating
missing directories and mounting bpffs at /sys/fs/bpf when nothing is mounted there;
``open_pinned(path)`` gives back the right live object, told apart by the kernel's fdinfo.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Dict, Optional

from ebpf.errors import EbpfError

BPFFS = "/sys/fs/bpf"
BPF_FS_MAGIC = 0xCAFE4A11


def is_bpffs(path: str) -> bool:
    """Is ``path`` on a bpf filesystem? (statfs f_type)"""
    buf = ctypes.create_string_buffer(128)  # struct statfs; f_type is the first long
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.statfs(os.fsencode(path), buf) != 0:
        return False
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF == BPF_FS_MAGIC


def ensure_bpffs(path: str = BPFFS) -> str:
    """Make sure bpffs is mounted at ``path`` (mounting it as root if needed); returns ``path``."""
    if is_bpffs(path):
        return path
    os.makedirs(path, exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"bpf", os.fsencode(path), b"bpf", 0, None) != 0:
        err = ctypes.get_errno()
        raise EbpfError(f"cannot mount bpffs at {path}: {os.strerror(err)}" + (" (needs root)" if err == 1 else ""))
    return path


def _fd(obj: Any) -> int:
    for attr in ("link_fd", "fd", "_fd"):
        value = getattr(obj, attr, None)
        if value is not None:
            return int(value)
    return int(obj)


def pin(obj: Any, path: str) -> str:
    """Pin ``obj`` at ``path`` (relative paths are under /sys/fs/bpf); returns the full path."""
    from ebpf.sys import bpf

    full = path if os.path.isabs(path) else os.path.join(BPFFS, path)
    if full.startswith(BPFFS + "/") or full == BPFFS:
        ensure_bpffs(BPFFS)
    parent = os.path.dirname(full)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    bpf.obj_pin(_fd(obj), full)
    return full


def unpin(path: str, missing_ok: bool = True) -> None:
    """Remove a pin (the object dies when nothing else holds it)."""
    full = path if os.path.isabs(path) else os.path.join(BPFFS, path)
    try:
        os.unlink(full)
    except FileNotFoundError:
        if not missing_ok:
            raise EbpfError(f"nothing pinned at {full}") from None


def fdinfo(fd: int) -> Dict[str, str]:
    """The kernel's ``/proc/self/fdinfo/FD`` as a dict (``map_type``, ``prog_type``, ``link_type``...)."""
    out: Dict[str, str] = {}
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
    return out


def _not_pinned(path: str) -> Optional[EbpfError]:
    """Why BPF_OBJ_GET cannot open ``path`` when the reason is the path itself: the kernel says
    EACCES for a file outside bpffs, which reads as a privilege problem and is not one."""
    if not os.path.lexists(path):
        return EbpfError(f"{path}: no such file (no object is pinned there)")
    if os.path.isdir(path):
        return EbpfError(f"{path} is a directory, not a pinned BPF object")
    if not is_bpffs(path):
        return EbpfError(f"{path} is not a pinned BPF object: it is not on a bpf filesystem (bpffs)")
    return None


def open_pinned(path: str, **codecs: Any) -> Any:
    """Open the object pinned at ``path`` as a Map (``key=``/``value=`` codecs), Program or Link."""
    from ebpf.errors import SyscallError
    from ebpf.sys import bpf
    from ebpf.sys.fd import FD

    full = path if os.path.isabs(path) else os.path.join(BPFFS, path)
    try:
        fd = FD(bpf.obj_get(full))
    except SyscallError as e:
        raise _not_pinned(full) or e from None
    info = fdinfo(int(fd))
    if "map_type" in info:
        from ebpf.maps.live import Map

        return Map.from_fd(fd, **codecs)
    if "link_type" in info:
        from ebpf.attach.link import Link

        link = Link([fd], full, via="pin", link_fd=fd)
        try:
            link.kind = str(getattr(link.info()["type"], "name", "link")).lower()
        except EbpfError:
            pass
        return link
    if "prog_type" in info:
        from ebpf.program import Program

        prog = Program(fd, None)
        try:
            prog.name = str(prog.info()["name"])
        except EbpfError:
            pass
        return prog
    fd.close()
    raise EbpfError(f"{full} is not a pinned map, program or link")
