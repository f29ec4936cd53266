"""BPF_MAP_*_BATCH: many elements per syscall, for reading or draining a whole map.

One lookup syscall costs about as much as copying hundreds of elements, so reading a map
element by element (get_next_key + lookup, two syscalls per key) is what makes BCC's interval
output slow. The kernel offers batches for hash-like maps (and generic ones for arrays); kinds
without them answer EINVAL/ENOTSUPP, and callers fall back to per-key iteration (:class:`NoBatch`).
"""

from __future__ import annotations

import errno
from typing import Any, Iterator, Tuple

from ebpf.errors import SyscallError
from ebpf.sys.bpf import ENOTSUPP, map_batch
from ebpf.sys.ffi import ffi
from ebpf.uapi import BpfCmd

UNSUPPORTED = (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP, errno.ENOSYS)


class NoBatch(Exception):
    """This map kind (or kernel) has no batch command: iterate key by key instead."""


def lookup_batches(
    fd: int, key_size: int, value_size: int, max_entries: int, *, delete: bool = False, chunk: int = 1024
) -> Iterator[Tuple[Any, Any, int]]:
    """Yield ``(keys, values, n)`` chunks: cffi buffers holding ``n`` packed keys and values.

    The buffers are reused between chunks, so decode a chunk before asking for the next. With
    ``delete`` the elements are removed as they are read (LOOKUP_AND_DELETE_BATCH), which is how
    interval tools read and reset counters without losing increments in between. Raises
    :class:`NoBatch` on the first call if the kind has no batch support.
    """
    cmd = BpfCmd.MAP_LOOKUP_AND_DELETE_BATCH if delete else BpfCmd.MAP_LOOKUP_BATCH
    count = max(1, min(chunk, max_entries or 1))
    keys = ffi.new("char[]", count * key_size or 1)
    values = ffi.new("char[]", count * value_size or 1)
    token = max(key_size, 8)
    in_batch = None
    out_batch = ffi.new("char[]", token)
    first = True
    while True:
        try:
            result = map_batch(cmd, fd, in_batch, out_batch, keys, values, count)
        except SyscallError as e:
            if e.errno == errno.ENOSPC and count < max(max_entries, 1) * 2:
                # a hash bucket holds more elements than fit in one chunk: grow and retry
                count *= 2
                keys = ffi.new("char[]", count * key_size or 1)
                values = ffi.new("char[]", count * value_size or 1)
                continue
            if first and e.errno in UNSUPPORTED:
                raise NoBatch(str(e)) from None
            raise
        first = False
        if result.count:
            yield (ffi.buffer(keys, result.count * key_size), ffi.buffer(values, result.count * value_size),
                   result.count)
        if result.done:
            return
        if in_batch is None:
            in_batch = ffi.new("char[]", token)
        ffi.memmove(in_batch, out_batch, token)


def update_batch(fd: int, keys: bytes, values: bytes, count: int, flags: int = 0) -> int:
    """BPF_MAP_UPDATE_BATCH of ``count`` packed keys and values; returns how many were written.

    Raises :class:`NoBatch` when the kind has no batch update.
    """
    kbuf = ffi.from_buffer(keys)
    vbuf = ffi.from_buffer(values)
    try:
        return map_batch(BpfCmd.MAP_UPDATE_BATCH, fd, None, None, kbuf, vbuf, count, elem_flags=flags).count
    except SyscallError as e:
        if e.errno in UNSUPPORTED:
            raise NoBatch(str(e)) from None
        raise
