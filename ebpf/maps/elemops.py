"""Per-map, preallocated BPF_MAP_*_ELEM calls: the hot path of every dict-style access.

The generic wrappers in :mod:`ebpf.sys.bpf` build a fresh ``union bpf_attr`` and set its fields
one attribute at a time, which costs ~2 µs on top of a ~1 µs syscall. A map's element commands
only ever differ in the key and value *contents*, so each map gets one ``bpf_attr`` per command,
filled once with the addresses of its own key/value buffers; a lookup is then "pack the key into
the buffer, one ``syscall()``, unpack the value". The buffers are shared, so callers hold
:attr:`ElemOps.lock` around pack + call + unpack (cffi releases the GIL during the syscall).

This is a maps-only helper on purpose; it could move to :mod:`ebpf.sys` if other layers want it.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from ebpf.errors import MapError, MapKeyError
from ebpf.sys.bpf import SYS_BPF, addr, error_for
from ebpf.sys.ffi import ffi, libc
from ebpf.uapi import BpfCmd

_syscall = libc.syscall
_NR = ffi.cast("long", SYS_BPF)
_SIZE = ffi.cast("long", ffi.sizeof("struct bpf_attr_map_elem"))
_LOOKUP = ffi.cast("long", int(BpfCmd.MAP_LOOKUP_ELEM))
_UPDATE = ffi.cast("long", int(BpfCmd.MAP_UPDATE_ELEM))
_DELETE = ffi.cast("long", int(BpfCmd.MAP_DELETE_ELEM))
_NEXT = ffi.cast("long", int(BpfCmd.MAP_GET_NEXT_KEY))
_LOOKUP_DELETE = ffi.cast("long", int(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM))


def _attr(fd: int, key: int, value: int) -> Any:
    attr = ffi.new("union bpf_attr *")
    a = attr.map_elem
    a.map_fd = fd
    a.key = key
    a.value = value
    return attr


class ElemOps:
    """One map's element commands with fixed buffers: ``kbuf`` (key), ``vbuf`` (value), ``nbuf``
    (next key). Methods return False for a missing key and raise for anything else."""

    __slots__ = (
        "lock", "label", "key", "value", "next_key", "kbuf", "vbuf", "nbuf",
        "_lookup", "_update", "_delete", "_next", "_first", "_lookup_delete", "_flags", "_attrs",
    )

    def __init__(self, fd: int, key_size: int, value_size: int, label: str = "map"):
        self.lock = threading.Lock()
        self.label = label
        self.key = ffi.new("char[]", max(key_size, 1))
        self.value = ffi.new("char[]", max(value_size, 1))
        self.next_key = ffi.new("char[]", max(key_size, 1))
        self.kbuf = ffi.buffer(self.key, key_size)
        self.vbuf = ffi.buffer(self.value, value_size)
        self.nbuf = ffi.buffer(self.next_key, key_size)
        k = addr(self.key) if key_size else 0
        v = addr(self.value) if value_size else 0
        n = addr(self.next_key)
        self._lookup = _attr(fd, k, v)
        self._update = _attr(fd, k, v)
        self._delete = _attr(fd, k, 0)
        self._next = _attr(fd, k, n)
        self._first = _attr(fd, 0, n)
        self._lookup_delete = _attr(fd, k, v)
        self._flags = 0
        self._attrs = (self._lookup, self._update, self._delete, self._next, self._first, self._lookup_delete)

    def invalidate(self) -> None:
        """Point every command at fd -1, so that use after close fails with EBADF instead of
        touching whatever object reuses the number."""
        for attr in self._attrs:
            attr.map_elem.map_fd = 0xFFFFFFFF

    def lookup(self) -> bool:
        """kbuf -> vbuf."""
        if _syscall(_NR, _LOOKUP, self._lookup, _SIZE) == 0:
            return True
        return self._missing("BPF_MAP_LOOKUP_ELEM", BpfCmd.MAP_LOOKUP_ELEM)

    def lookup_and_delete(self) -> bool:
        """kbuf -> vbuf, removing the element (pop for queue/stack maps)."""
        if _syscall(_NR, _LOOKUP_DELETE, self._lookup_delete, _SIZE) == 0:
            return True
        return self._missing("BPF_MAP_LOOKUP_AND_DELETE_ELEM", BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM)

    def delete(self) -> bool:
        """Remove kbuf; False when absent."""
        if _syscall(_NR, _DELETE, self._delete, _SIZE) == 0:
            return True
        return self._missing("BPF_MAP_DELETE_ELEM", BpfCmd.MAP_DELETE_ELEM)

    def next(self, first: bool = False) -> bool:
        """The key after kbuf (or the first key) -> nbuf; False after the last."""
        attr = self._first if first else self._next
        if _syscall(_NR, _NEXT, attr, _SIZE) == 0:
            return True
        return self._missing("BPF_MAP_GET_NEXT_KEY", BpfCmd.MAP_GET_NEXT_KEY)

    def update(self, flags: int = 0) -> None:
        """kbuf, vbuf -> map (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)."""
        if flags != self._flags:
            self._update.map_elem.flags = flags
            self._flags = flags
        if _syscall(_NR, _UPDATE, self._update, _SIZE) == 0:
            return
        err = ffi.errno
        cause = error_for("BPF_MAP_UPDATE_ELEM", BpfCmd.MAP_UPDATE_ELEM, err)
        if err == errno.EPERM:
            raise MapError(
                f"cannot write to {self.label}: it is frozen (BPF_MAP_FREEZE) or read-only to user space"
            ) from cause
        if err == errno.E2BIG:
            raise MapError(f"{self.label} is full, or the index is out of range") from cause
        if err == errno.ENOENT:
            raise MapKeyError(f"{self.label}: no such key (updating with BPF_EXIST)") from cause
        if err == errno.EEXIST:
            raise MapError(f"{self.label}: the key already exists (updating with BPF_NOEXIST)") from cause
        raise cause

    def _missing(self, name: str, cmd: BpfCmd) -> bool:
        err = ffi.errno
        if err == errno.ENOENT:
            return False
        raise error_for(name, cmd, err)
