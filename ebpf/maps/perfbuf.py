"""The perf buffer: per-CPU rings behind a BPF_MAP_TYPE_PERF_EVENT_ARRAY, and one loop for
several event readers.

For every online CPU the reader opens a ``PERF_COUNT_SW_BPF_OUTPUT`` software event
(``sample_type = PERF_SAMPLE_RAW``), maps 1 + 2^n pages (the ``perf_event_mmap_page`` header, then
the data ring) and stores the event's fd in the map at index = CPU, where
``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, data, size)`` finds it. One epoll waits
on all rings.

A ring is read from ``data_tail`` to ``data_head`` (header words at offsets 1024/1032); each
record is a ``perf_event_header {u32 type; u16 misc; u16 size}``: ``PERF_RECORD_SAMPLE`` carries
``u32 size`` and the raw bytes (padded to 8), ``PERF_RECORD_LOST`` ``{u64 id; u64 lost}`` — how
many samples the kernel dropped because the ring was full. A record may wrap around the end of
the ring: it is copied in two parts. Lost counts are kept per CPU (:attr:`PerfBuffer.lost`) and
handed to ``lost_callback(cpu, count)``. The kernel reports a drop only with the next record
that fits *in the same CPU's ring*, so counts are exact once a sample has been written on every
CPU that dropped after the reader caught up (benchmarks/bench_events.py writes one per CPU).

Records are decoded like the ring buffer's (see :func:`ebpf.maps.ringbuf.record_decoder`): a
codec compiled once, not per event.

Exactness, as the ring buffer reader's: samples leave the pending queue one at a time as they are
handed out, so an iterator abandoned halfway or a callback that raises loses nothing (the rest
comes with the next read), and :attr:`PerfBuffer.received` counts what was handed out. The
kernel updates ``data_head`` on every sample whatever the wakeup setting, so samples below the
wakeup threshold are read by any ``poll``/``consume``/``stream``; only the wakeup is batched.
"""

from __future__ import annotations

import collections
import mmap
import select
import struct
import threading
import time
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ebpf.errors import MapError, SyscallError
from ebpf.maps.live import Map, fd_of, map_info
from ebpf.maps.ringbuf import Decoder, _Waker, record_decoder
from ebpf.uapi import MapType

__all__ = ["PerfBuffer", "EventPoller", "PERF_RECORD_SAMPLE", "PERF_RECORD_LOST"]

PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_DATA_HEAD = 1024  # offsetof(struct perf_event_mmap_page, data_head)
_DATA_TAIL = 1032
_HDR = struct.Struct("=IHH")
_U32 = struct.Struct("=I")
_LOST = struct.Struct("=QQ")

Callback = Callable[[Any], Any]
LostCallback = Callable[[int, int], Any]


class _Ring:
    __slots__ = ("cpu", "fd", "mm", "size", "mask", "view")

    def __init__(self, cpu: int, fd: Any, pages: int):
        page = mmap.PAGESIZE
        self.cpu = cpu
        self.fd = fd
        self.mm = mmap.mmap(int(fd), (1 + pages) * page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.size = pages * page
        self.mask = self.size - 1
        self.view = memoryview(self.mm).cast("Q")

    def close(self) -> None:
        self.view.release()
        self.mm.close()
        self.fd.close()


class PerfBuffer:
    """Reads the per-CPU rings of a perf event array map.

    ``page_count`` (a power of two) pages of data per CPU. ``wakeup_events`` wakes the reader
    every N samples (default 1); ``watermark`` (bytes) instead wakes it when that much is
    waiting. Styles as the ring buffer reader: ``poll(callback, timeout_ms)``,
    ``consume(callback)``, ``read()``, ``stream(timeout)``. With ``with_cpu=True`` callbacks get
    ``(cpu, record)``. The map must stay open while the reader is used (the reader empties its
    slots on close).
    """

    def __init__(self, perf_map: Union[Map, int], *, page_count: int = 8, decode: Any = None,
                 lost_callback: Optional[LostCallback] = None, wakeup_events: int = 1, watermark: int = 0,
                 cpus: Optional[Sequence[int]] = None, with_cpu: bool = False):
        from ebpf.attach.perf_event import online_cpus
        from ebpf.sys import bpf, perf
        from ebpf.sys.fd import FD

        self._closed = True
        if page_count < 1 or page_count & (page_count - 1):
            raise MapError(f"page_count must be a power of two, not {page_count}")
        self._map_fd = fd_of(perf_map)
        info = map_info(self._map_fd)
        if info.type != MapType.PERF_EVENT_ARRAY:
            raise MapError(f"fd {self._map_fd} is not a perf event array map (map type {info.type})")
        self.page_count = page_count
        self._decode = record_decoder(decode)
        self.lost_callback = lost_callback
        self.with_cpu = with_cpu
        self.lost: Dict[int, int] = {}
        self.received = 0
        self._lock = threading.RLock()
        self._rings: List[_Ring] = []
        self._pending: Deque[Tuple[int, bytes]] = collections.deque()
        self._epoll = select.epoll()
        self._waker = _Waker()
        self._epoll.register(self._waker.rfd, select.EPOLLIN)
        chosen = list(cpus) if cpus is not None else [c for c in online_cpus() if c < info.max_entries]
        flags = perf.PerfFlag.WATERMARK if watermark else perf.PerfFlag.NONE
        key = bytearray(4)
        val = bytearray(4)
        try:
            for cpu in chosen:
                try:
                    fd = FD(perf.perf_event_open(perf.PerfType.SOFTWARE, perf.PerfSwConfig.BPF_OUTPUT, pid=-1,
                                                 cpu=cpu, sample_period=1, sample_type=perf.PERF_SAMPLE_RAW,
                                                 wakeup_events=watermark or wakeup_events, flags=int(flags)))
                except SyscallError as e:
                    if e.errno == 19:  # ENODEV: offline CPU
                        continue
                    raise
                try:
                    ring = _Ring(cpu, fd, page_count)
                except BaseException:
                    fd.close()
                    raise
                self._rings.append(ring)
                self.lost[cpu] = 0
                _U32.pack_into(key, 0, cpu)
                _U32.pack_into(val, 0, int(fd))
                bpf.map_update_elem(self._map_fd, bpf.ffi.from_buffer(key), bpf.ffi.from_buffer(val))
                self._epoll.register(int(fd), select.EPOLLIN)
        except BaseException:
            self._closed = False
            self.close()
            raise
        self._by_fd = {int(r.fd): r for r in self._rings}
        self._closed = False

    # --- rings --------------------------------------------------------------------------------

    def _drain(self, ring: _Ring) -> int:
        """Move the ring's samples into the pending list; count lost records. Returns samples."""
        view, mm, size, mask = ring.view, ring.mm, ring.size, ring.mask
        base = mmap.PAGESIZE
        head = view[_DATA_HEAD // 8]
        tail = view[_DATA_TAIL // 8]
        n = 0
        pending = self._pending
        cpu = ring.cpu
        while tail < head:
            off = tail & mask
            if off + 8 <= size:
                rtype, _misc, rsize = _HDR.unpack_from(mm, base + off)
            else:
                rtype, _misc, rsize = _HDR.unpack(self._copy(ring, off, 8))
            if rsize < 8:
                raise MapError(f"corrupt perf ring record (size {rsize}) on CPU {cpu}")
            if off + rsize <= size:
                record = mm[base + off + 8:base + off + rsize]
            else:
                record = self._copy(ring, off, rsize)[8:]
            tail += rsize
            if rtype == PERF_RECORD_SAMPLE:
                length = _U32.unpack_from(record, 0)[0]
                pending.append((cpu, record[4:4 + length]))
                n += 1
            elif rtype == PERF_RECORD_LOST:
                lost = _LOST.unpack_from(record, 0)[1]
                self.lost[cpu] = self.lost.get(cpu, 0) + lost
                if self.lost_callback is not None:
                    self.lost_callback(cpu, lost)
        view[_DATA_TAIL // 8] = tail
        return n

    @staticmethod
    def _copy(ring: _Ring, off: int, length: int) -> bytes:
        """A record that wraps around the end of the ring: its two parts joined."""
        base = mmap.PAGESIZE
        first = ring.size - off
        if length <= first:
            return ring.mm[base + off:base + off + length]
        return ring.mm[base + off:base + ring.size] + ring.mm[base:base + length - first]

    def _fill(self) -> int:
        n = 0
        for ring in self._rings:
            n += self._drain(ring)
        return n

    def _deliver(self, callback: Callback, decode: Decoder) -> int:
        pending = self._pending
        n = 0
        with_cpu = self.with_cpu
        try:
            while pending and not self._closed:
                cpu, data = pending.popleft()
                n += 1  # handed out, even if the callback then raises
                value = decode(data) if decode is not None else data
                if with_cpu:
                    callback(cpu, value)  # type: ignore[call-arg]
                else:
                    callback(value)
        finally:
            self.received += n
        return n

    # --- reading ------------------------------------------------------------------------------

    def fileno(self) -> int:
        """The epoll fd: readable when some ring has data (to poll several readers together)."""
        return self._epoll.fileno()

    def poll(self, callback: Callback, timeout_ms: int = -1, *, decode: Any = None) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for samples, then deliver all; returns how many."""
        dec = self._decode if decode is None else record_decoder(decode)
        with self._lock:
            if self._closed:
                return 0
            if not self._pending and not self._fill():
                self._epoll.poll(-1 if timeout_ms < 0 else timeout_ms / 1000)
                if self._closed:
                    return 0
                self._fill()
            return self._deliver(callback, dec)

    def consume(self, callback: Callback, *, decode: Any = None) -> int:
        """Deliver every sample available now, without waiting; returns how many."""
        dec = self._decode if decode is None else record_decoder(decode)
        with self._lock:
            if self._closed:
                return 0
            self._fill()
            return self._deliver(callback, dec)

    def read(self, *, decode: Any = None) -> List[Any]:
        out: List[Any] = []
        if self.with_cpu:
            self.consume(lambda cpu, rec: out.append((cpu, rec)), decode=decode)  # type: ignore[arg-type, misc]
        else:
            self.consume(out.append, decode=decode)
        return out

    def stream(self, decode: Any = None, *, timeout: Optional[float] = None) -> Iterator[Any]:
        """Yield samples (``(cpu, record)`` with ``with_cpu``) until none comes for ``timeout`` s."""
        dec = self._decode if decode is None else record_decoder(decode)
        deadline: Optional[float] = None
        while True:
            with self._lock:
                if self._closed:
                    return
                if not self._pending:
                    self._fill()
                if not self._pending:
                    remaining = None
                    if timeout is not None:
                        now = time.monotonic()
                        deadline = deadline if deadline is not None else now + timeout
                        remaining = deadline - now
                        if remaining <= 0:
                            return
                    self._epoll.poll(-1 if remaining is None else remaining)
                    continue
            deadline = None
            # one record at a time: what an abandoned iterator did not take stays pending
            while not self._closed:
                try:
                    cpu, data = self._pending.popleft()
                except IndexError:
                    break
                self.received += 1
                value = dec(data) if dec is not None else data
                yield (cpu, value) if self.with_cpu else value

    def __iter__(self) -> Iterator[Any]:
        return self.stream()

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())

    @property
    def cpus(self) -> List[int]:
        return [r.cpu for r in self._rings]

    # --- lifetime -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Empty the map's slots, unmap the rings, close the events. Safe from another thread."""
        if self._closed:
            return
        self._closed = True
        self._waker.wake()
        from ebpf.sys import bpf

        with self._lock:
            key = bytearray(4)
            for ring in self._rings:
                _U32.pack_into(key, 0, ring.cpu)
                try:
                    bpf.map_delete_elem(self._map_fd, bpf.ffi.from_buffer(key))
                except Exception:
                    pass  # the map may already be closed
                ring.close()
            self._rings = []
            self._epoll.close()
            self._waker.close()
            self._pending = collections.deque()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def __enter__(self) -> PerfBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventPoller:
    """One loop over several readers (ring buffers and perf buffers): a shared epoll on their
    fds, then every ready reader's records to its callback.

    ::

        with EventPoller() as loop:
            loop.add(ring_reader, on_event)
            loop.add(perf_buffer, on_event)
            while running:
                loop.poll(100)
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._entries: Dict[int, Tuple[Any, Callback]] = {}
        self._closed = False

    @staticmethod
    def _fd_of(reader: Any) -> int:
        fileno = getattr(reader, "fileno", None)
        if fileno is None:
            raise MapError(f"{reader!r} has no fd to poll")
        return int(fileno())

    def add(self, reader: Any, callback: Callback) -> None:
        fd = self._fd_of(reader)
        self._epoll.register(fd, select.EPOLLIN)
        self._entries[fd] = (reader, callback)

    def remove(self, reader: Any) -> None:
        for fd, (r, _) in list(self._entries.items()):
            if r is reader:
                self._epoll.unregister(fd)
                del self._entries[fd]

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait for any reader, then deliver every available record; returns how many."""
        if self._closed:
            return 0
        n = self.consume()
        if n:
            return n
        ready = self._epoll.poll(-1 if timeout_ms < 0 else timeout_ms / 1000)
        if not ready:
            return 0
        return self.consume()

    def consume(self) -> int:
        n = 0
        for reader, callback in list(self._entries.values()):
            n += reader.consume(callback)
        return n

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._epoll.close()
            self._entries.clear()

    def __enter__(self) -> EventPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
