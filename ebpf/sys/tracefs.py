"""Finding tracefs, mounting it when absent, and reading tracepoint ids and formats.

A fresh machine may have no tracefs mounted: we look in /proc/self/mountinfo first (any
tracefs mount will do), then at the usual places. If there is none, root gets a *detached* mount
(fsopen/fsconfig/fsmount, Linux 5.2+): a mount fd attached nowhere in the mount tree, used through
``/proc/self/fd/N``. It is visible to no other process, changes no mount namespace (threads and
an embedding application see the same tree as before), and the kernel drops it when the fd
closes, at exit or when the process is killed: nothing to unmount, so nothing is left behind
even after SIGKILL. (Unmounting at exit would be skipped by SIGKILL and would pull the mount from
under another tool that found it meanwhile; a private mount namespace would change the mount
view of the whole embedding process, and of only the calling thread.) Kernels without the new
mount API get the old way, a mount at /sys/kernel/tracing that stays, as systemd's does.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional

from ebpf.errors import PermissionDenied, TracefsError

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


# fsopen, fsconfig, fsmount: the same numbers on every architecture of the generic syscall table
_SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 430, 431, 432
_FSOPEN_CLOEXEC = _FSMOUNT_CLOEXEC = 1
_FSCONFIG_CMD_CREATE = 6
_MOUNT_ATTR_NOSUID, _MOUNT_ATTR_NODEV, _MOUNT_ATTR_NOEXEC = 0x2, 0x4, 0x8
_detached_fd: Optional[int] = None  # held for the life of the process


def _mount_detached() -> Optional[str]:
    """A tracefs mount attached nowhere; its path through /proc/self/fd, or None when the
    kernel (or a seccomp filter) refuses the new mount API or /proc cannot reach it."""
    global _detached_fd
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    fs_fd = syscall(ctypes.c_long(_SYS_FSOPEN), ctypes.c_char_p(b"tracefs"), ctypes.c_uint(_FSOPEN_CLOEXEC))
    if fs_fd < 0:
        return None
    try:
        if syscall(ctypes.c_long(_SYS_FSCONFIG), ctypes.c_int(fs_fd), ctypes.c_uint(_FSCONFIG_CMD_CREATE),
                   None, None, ctypes.c_int(0)) != 0:
            return None
        mnt_fd = syscall(ctypes.c_long(_SYS_FSMOUNT), ctypes.c_int(fs_fd), ctypes.c_uint(_FSMOUNT_CLOEXEC),
                         ctypes.c_uint(_MOUNT_ATTR_NOSUID | _MOUNT_ATTR_NODEV | _MOUNT_ATTR_NOEXEC))
    finally:
        os.close(fs_fd)
    if mnt_fd < 0:
        return None
    path = f"/proc/self/fd/{mnt_fd}"
    if not os.path.isdir(os.path.join(path, "events")):
        os.close(mnt_fd)
        return None
    _detached_fd = int(mnt_fd)
    return path


def tracefs_path() -> str:
    """Where tracefs is: a mount point, or a detached mount of ours when none exists."""
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
        found = _mount_detached()
    if found is None:
        _mount(_CANDIDATES[0])
        found = _CANDIDATES[0]
    _cached = found
    return found


def tracepoint_dir(group: str, name: str) -> str:
    """``<tracefs>/events/GROUP/NAME``, checked to exist."""
    if not group or not name or "/" in group or "/" in name or group.startswith("."):
        raise TracefsError(f"bad tracepoint name {group}:{name}")
    root = tracefs_path()
    path = os.path.join(root, "events", group, name)
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except PermissionError as e:  # tracefs is mode 0700: capabilities other than root's do not open it
        raise _denied(root, path, e.errno or errno.EACCES) from None
    except OSError:
        is_dir = False
    if not is_dir:
        raise TracefsError(f"no tracepoint {group}:{name} on this kernel ({path} does not exist)")
    return path


def _denied(root: str, path: str, err: int) -> PermissionDenied:
    """Which directory on the way to ``path`` this user may not search, with its mode and owner."""
    here = root
    for part in [""] + os.path.relpath(path, root).split(os.sep):
        here = os.path.join(here, part) if part else here
        if not os.access(here, os.X_OK):
            break
    try:
        st = os.stat(here)
        owner = f"is mode {stat.S_IMODE(st.st_mode):04o}, owned by uid {st.st_uid}"
    except OSError:
        owner = "cannot be searched by this user"
    return PermissionDenied(f"looking up {path}", err, f"{here} {owner}")


def tracepoint_id(group: str, name: str) -> int:
    """The perf event id of tracepoint GROUP:NAME."""
    path = os.path.join(tracepoint_dir(group, name), "id")
    text = read_text(path)
    try:
        return int(text)
    except ValueError:
        raise TracefsError(f"{path} holds {text.strip()[:40]!r}, not a tracepoint id") from None


def tracepoint_format(group: str, name: str) -> str:
    """The text of the tracepoint's ``format`` file (field names, offsets, sizes)."""
    return read_text(os.path.join(tracepoint_dir(group, name), "format"))


def read_text(path: str) -> str:
    """A tracefs file's text: UTF-8 (what the kernel writes), else a TracefsError naming the
    first bad byte; whatever the locale's encoding is."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TracefsError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TracefsError(f"{path} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None


def tracepoint_exists(group: str, name: str) -> bool:
    """True when the kernel has tracepoint GROUP:NAME."""
    try:
        tracepoint_dir(group, name)
    except TracefsError:
        return False
    return True
