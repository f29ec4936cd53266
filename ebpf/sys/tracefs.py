"""Finding tracefs, mounting it when absent, and reading tracepoint ids and formats.

A fresh machine may have no tracefs mounted: we look in /proc/self/mountinfo first (any
tracefs mount will do), then at the usual places, and as root mount it at /sys/kernel/tracing.
"""

from __future__ import annotations

import os
from typing import Optional

from ebpf.errors import TracefsError

_cached: Optional[str] = None

_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, ch)
    return path


def _from_mountinfo(mountinfo: str = "/proc/self/mountinfo") -> Optional[str]:
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fstype = right.split(" ", 1)[0]
        if fstype == "tracefs":
            return _unescape(left.split(" ")[4])
    return None


def _mount(target: str) -> None:
    import ctypes  # only to mount tracefs, which is rarely needed

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tracefs", target.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise TracefsError(
            f"tracefs is not mounted and mounting it at {target} failed: {os.strerror(err)}"
            + (" (needs root)" if err == 1 else "")
        )


def tracefs_path() -> str:
    """The tracefs mount point, mounting tracefs at /sys/kernel/tracing if none exists."""
    global _cached
    if _cached is not None:
        return _cached
    found = _from_mountinfo()
    if found is None:
        for cand in _CANDIDATES:
            if os.path.exists(os.path.join(cand, "events")):
                found = cand
                break
    if found is None:
        if not os.path.isdir(_CANDIDATES[0]):
            raise TracefsError("tracefs is not available: the kernel has no /sys/kernel/tracing")
        _mount(_CANDIDATES[0])
        found = _CANDIDATES[0]
    _cached = found
    return found


def tracepoint_dir(group: str, name: str) -> str:
    """``<tracefs>/events/GROUP/NAME``, checked to exist."""
    if not group or not name or "/" in group or "/" in name or group.startswith("."):
        raise TracefsError(f"bad tracepoint name {group}:{name}")
    path = os.path.join(tracefs_path(), "events", group, name)
    if not os.path.isdir(path):
        raise TracefsError(f"no tracepoint {group}:{name} on this kernel ({path} does not exist)")
    return path


def tracepoint_id(group: str, name: str) -> int:
    """The perf event id of tracepoint GROUP:NAME."""
    path = os.path.join(tracepoint_dir(group, name), "id")
    try:
        with open(path) as f:
            return int(f.read())
    except OSError as e:
        raise TracefsError(f"cannot read {path}: {e.strerror}") from None


def tracepoint_format(group: str, name: str) -> str:
    """The text of the tracepoint's ``format`` file (field names, offsets, sizes)."""
    path = os.path.join(tracepoint_dir(group, name), "format")
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise TracefsError(f"cannot read {path}: {e.strerror}") from None


def tracepoint_exists(group: str, name: str) -> bool:
    """True when the kernel has tracepoint GROUP:NAME."""
    try:
        tracepoint_dir(group, name)
    except TracefsError:
        return False
    return True
