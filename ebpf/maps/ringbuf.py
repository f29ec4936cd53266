"""BPF ring buffers (BPF_MAP_TYPE_RINGBUF): the map and its reader.

Layout shared with the kernel (kernel/bpf/ringbuf.c): page 0 holds the consumer position and is
the only page user space may map writable; from page 1 come the producer position page and the
data area, mapped read-only and twice in a row so that a record never wraps. Each record starts
with an 8-byte header ``u32 len | BUSY(1<<31) | DISCARD(1<<30), u32 pgoff`` and takes
``round_up(len + 8, 8)`` bytes. A record is ours once BUSY is clear; DISCARDed ones are skipped
but still consumed. After each record we store the new consumer position, which frees its space
for the producer.

Ordering: positions and headers are read and the consumer position written as single aligned
8/4-byte loads and stores (``memoryview.cast`` items are copied with one machine access). On
x86 (TSO) that is all the kernel's acquire/release pairs need; weakly ordered CPUs are not
covered by anything Python can express.

Exactness: records move from the ring into a queue of the reader *before* the consumer position
is advanced past them, and leave the queue only when handed to the caller, so a callback that
raises, a stream abandoned halfway or a Ctrl-C loses nothing the kernel committed: the rest is
delivered by the next ``poll``/``consume``/``stream``.
"""

from __future__ import annotations

import collections
import mmap
import os
import select
import struct
import threading
import time
from typing import Any, Callable, Deque, Iterator, List, Optional, Union

from ebpf.errors import CodecError, MapError
from ebpf.maps.codec import Codec, VoidCodec, codec_for
from ebpf.maps.live import Map, MapInfo, fd_of, map_info
from ebpf.uapi import RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SZ, MapType

__all__ = ["RingBufMap", "RingBufReader", "record_decoder"]

_LEN_MASK = ~(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT) & 0xFFFFFFFF
_ROUND = RINGBUF_HDR_SZ + 7

Decoder = Optional[Callable[[bytes], Any]]


def record_decoder(spec: Any) -> Decoder:
    """How records are handed out: None (bytes), a ``struct.Struct`` (tuples), a codec spec
    (see :func:`ebpf.maps.codec.codec_for`; extra trailing bytes are ignored) or a callable."""
    if spec is None or isinstance(spec, VoidCodec):
        return None
    if isinstance(spec, struct.Struct):
        return spec.unpack_from
    try:
        codec = codec_for(spec)
    except CodecError:
        if callable(spec):
            return spec
        raise
    unpack, size, name = codec.unpack_from, codec.size, codec.name

    def decode(data: bytes) -> Any:
        if len(data) < size:
            raise CodecError(f"a ring buffer record of {len(data)} bytes is too short for {name} ({size})")
        return unpack(data, 0)

    return decode


class _Waker:
    """An fd that another thread makes readable to get a waiting reader out of epoll."""

    def __init__(self) -> None:
        make = getattr(os, "eventfd", None)
        if make is not None:
            self.rfd = self.wfd = make(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        else:  # Python 3.9
            self.rfd, self.wfd = os.pipe()
            os.set_blocking(self.wfd, False)

    def wake(self) -> None:
        try:
            os.write(self.wfd, (1).to_bytes(8, "little"))
        except (BlockingIOError, OSError):
            pass  # already readable (or closing): enough to wake the reader

    def close(self) -> None:
        for fd in {self.rfd, self.wfd}:
            try:
                os.close(fd)
            except OSError:
                pass


class RingBufReader:
    """Reads records out of a ring buffer map.

    Three styles: ``for rec in r.stream(timeout=...)``, ``r.poll(callback, timeout_ms)`` (wait,
    then deliver everything available; returns the count) and ``r.consume(callback)`` (no
    wait). ``close()`` may be called from another thread (a waiting reader returns) or from a
    callback. The map fd must stay open while the reader is used; the reader does not own it.
    """

    def __init__(self, ring: Union[Map, int], *, decode: Any = None):
        self._closed = True  # until fully set up (for __del__)
        fd = fd_of(ring)
        if isinstance(ring, Map):
            kind, size = ring.type, ring.max_entries
        else:
            info = map_info(fd)
            kind, size = info.type, info.max_entries
        if kind != MapType.RINGBUF:
            raise MapError(f"fd {fd} is not a ring buffer map (map type {kind})")
        page = mmap.PAGESIZE
        self.size = size
        self._decode = record_decoder(decode)
        self._lock = threading.RLock()
        self._pending: Deque[bytes] = collections.deque()
        self._cons_mm = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        try:
            self._prod_mm = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        except BaseException:
            self._cons_mm.close()
            raise
        self._cons_view = memoryview(self._cons_mm).cast("Q")
        self._prod_view = memoryview(self._prod_mm).cast("Q")
        self._hdr_view = memoryview(self._prod_mm).cast("I")
        self._base = page
        self._mask = size - 1
        self._cons = self._cons_view[0]
        self._waker = _Waker()
        self._epoll = select.epoll()
        self._epoll.register(fd, select.EPOLLIN)
        self._epoll.register(self._waker.rfd, select.EPOLLIN)
        self._closed = False

    # --- the ring -----------------------------------------------------------------------------

    def _fill(self) -> int:
        """Move committed records into the pending queue; stop at a BUSY one (not committed
        yet) or after one ring's worth of bytes. Returns how many records were queued."""
        prod_view, hdr, mm, cons_view = self._prod_view, self._hdr_view, self._prod_mm, self._cons_view
        pending = self._pending
        mask, base = self._mask, self._base
        cons = start = self._cons
        limit = start + self.size
        queued = 0
        prod = prod_view[0]
        while cons < prod:
            off = base + (cons & mask)
            word = hdr[off >> 2]
            if word & RINGBUF_BUSY_BIT:
                break
            length = word & _LEN_MASK
            if length > self.size:
                raise MapError(f"corrupt ring buffer record header {word:#x} at position {cons}")
            if not word & RINGBUF_DISCARD_BIT:
                pending.append(mm[off + RINGBUF_HDR_SZ:off + RINGBUF_HDR_SZ + length])
                queued += 1
            cons += (length + _ROUND) & ~7
            cons_view[0] = cons
            if cons >= prod and cons < limit:
                prod = prod_view[0]
        self._cons = cons
        return queued

    def fileno(self) -> int:
        """An fd that becomes readable when records arrive (for select/epoll loops)."""
        return self._epoll.fileno()

    def available(self) -> int:
        """Bytes the producer has written that we have not consumed (records plus headers)."""
        with self._lock:
            if self._closed:
                return 0
            return int(self._prod_view[0] - self._cons)

    def _wait(self, timeout: Optional[float]) -> None:
        self._epoll.poll(-1 if timeout is None else max(timeout, 0.0))

    def _deliver(self, callback: Callable[[Any], Any], decode: Decoder) -> int:
        pending = self._pending
        n = 0
        while pending and not self._closed:
            data = pending.popleft()
            callback(decode(data) if decode is not None else data)
            n += 1
        return n

    # --- the three reading styles -------------------------------------------------------------

    def poll(self, callback: Callable[[Any], Any], timeout_ms: int = -1, *, decode: Any = None) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for records, then hand every available one
        to ``callback``; returns how many. 0 means the timeout expired (or the reader closed)."""
        dec = self._decode if decode is None else record_decoder(decode)
        with self._lock:
            if self._closed:
                return 0
            if not self._pending and not self._fill():
                self._wait(None if timeout_ms < 0 else timeout_ms / 1000)
                if self._closed:
                    return 0
                self._fill()
            return self._deliver(callback, dec)

    def consume(self, callback: Callable[[Any], Any], *, decode: Any = None) -> int:
        """Hand every record available now to ``callback``, without waiting; returns how many."""
        dec = self._decode if decode is None else record_decoder(decode)
        with self._lock:
            if self._closed:
                return 0
            self._fill()
            return self._deliver(callback, dec)

    def read(self, *, decode: Any = None) -> List[Any]:
        """Every record available now, as a list."""
        out: List[Any] = []
        self.consume(out.append, decode=decode)
        return out

    def stream(self, decode: Any = None, *, timeout: Optional[float] = None) -> Iterator[Any]:
        """Yield records as they come. Ends when no record arrives for ``timeout`` seconds
        (None: never) or when the reader is closed."""
        dec = self._decode if decode is None else record_decoder(decode)
        pending = self._pending
        deadline: Optional[float] = None
        while True:
            with self._lock:
                if self._closed:
                    return
                if not pending:
                    self._fill()
                if not pending:
                    remaining = None
                    if timeout is not None:
                        now = time.monotonic()
                        if deadline is None:
                            deadline = now + timeout
                        remaining = deadline - now
                        if remaining <= 0:
                            return
                    self._wait(remaining)
                    continue
            deadline = None
            while not self._closed:
                try:
                    data = pending.popleft()
                except IndexError:
                    break
                yield dec(data) if dec is not None else data

    def __iter__(self) -> Iterator[Any]:
        return self.stream()

    # --- lifetime -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop reading and unmap the ring; safe from another thread or from a callback."""
        if self._closed:
            return
        self._closed = True
        self._waker.wake()
        with self._lock:  # a reader waiting in epoll in another thread returns first
            for view in (self._cons_view, self._prod_view, self._hdr_view):
                view.release()
            self._cons_mm.close()
            self._prod_mm.close()
            self._epoll.close()
            self._waker.close()
            self._pending.clear()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def __enter__(self) -> RingBufReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RingBufMap(Map):
    """BPF_MAP_TYPE_RINGBUF; ``max_entries`` is the data size. The map's ``value`` type, if
    given, is the default record type of its reader (the kernel's value size stays 0)."""

    map_types = (MapType.RINGBUF,)

    def __init__(self, fd: Any, info: MapInfo, key: Any = None, value: Any = None):
        super().__init__(fd, info, key, value)
        self._reader: Optional[RingBufReader] = None

    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return VoidCodec()

    @classmethod
    def _value_codec(cls, value: Any, info: MapInfo) -> Codec:
        return VoidCodec() if value is None else codec_for(value)

    def _element_codec(self) -> Codec:
        return VoidCodec()

    def reader(self) -> RingBufReader:
        """This map's reader (one per map, created on first use, closed with the map)."""
        if self._reader is None or self._reader.closed:
            self._reader = RingBufReader(self, decode=self.value_codec)
        return self._reader

    def poll(self, callback: Callable[[Any], Any], timeout_ms: int = -1, *, decode: Any = None) -> int:
        return self.reader().poll(callback, timeout_ms, decode=decode)

    def consume(self, callback: Callable[[Any], Any], *, decode: Any = None) -> int:
        return self.reader().consume(callback, decode=decode)

    def read(self, *, decode: Any = None) -> List[Any]:
        return self.reader().read(decode=decode)

    def stream(self, decode: Any = None, *, timeout: Optional[float] = None) -> Iterator[Any]:
        return self.reader().stream(decode, timeout=timeout)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().close()
