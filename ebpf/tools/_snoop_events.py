"""What opensnoop, execsnoop and exitsnoop share: checks before loading, the event loop over a
ring buffer or a perf buffer with lost-event accounting, and a quick detach.

The kernel side of each tool writes one record per event into a map named ``events``: a ring
buffer when the kernel has one (``have_ringbuf()``), else a perf event array. With a ring
buffer, a failed reservation or output is counted in a per-CPU array named ``lost``, and the
loop prints ``Lost N events`` when that count grows; with a perf buffer the kernel's own lost
records do the same. Lost lines go to stderr so that stdout stays one event (or one JSON
object) per line.

The loop waits in epoll on the event fds plus a pipe that receives a byte on every handled
signal (``signal.set_wakeup_fd``), so SIGINT/SIGTERM end the wait at once: PEP 475 would
otherwise restart the wait until its timeout.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ebpf.errors import EbpfError
from ebpf.tools.runtime import Stopper, lost_line

__all__ = ["NO_UID", "ring_buffer_available", "EventLoop",
           "detach", "decode_text", "add_container_args", "container_filter", "ContainerMaps"]

NO_UID = 0xFFFFFFFF  # "no UID filter" in the programs' rodata (uid_t -1 is nobody's UID)
LOST_CHECK_SECONDS = 0.25


def ring_buffer_available() -> bool:
    """Ring buffer, else perf buffer; without the privileges to probe (``--ebpf`` as a user),
    what every kernel since 5.8 has."""
    from ebpf.errors import PermissionDenied
    from ebpf.features import have_ringbuf

    try:
        return have_ringbuf()
    except PermissionDenied:
        return True


def decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --- BCC's --cgroupmap / --mntnsmap (bcc/containers.py) --------------------------------------------


def add_container_args(parser: Any) -> None:
    parser.add_argument("--cgroupmap", help="trace cgroups in this BPF map only")
    parser.add_argument("--mntnsmap", help="trace mount namespaces in this BPF map only")


def container_filter(coll: Any, cgroupmap: bool, mntnsmap: bool) -> Any:
    """An inline DSL function ``filtered() -> 1/0`` for BCC's container filters: the current
    cgroup id must be a key of the pinned hash ``cgroupset`` (u64 -> u64), the current mount
    namespace's inode number one of ``mount_ns_set`` (u64 -> u32). The maps are declared here
    and supplied at load time by :class:`ContainerMaps`; without the flags the test folds away."""
    from ebpf import lang as L
    from ebpf.lang.types import u32 as U32
    from ebpf.lang.types import u64 as U64

    cgroupset = coll.hash_map("cgroupset", key=U64, value=U64, max_entries=1024) if cgroupmap else None
    mntnsset = coll.hash_map("mount_ns_set", key=U64, value=U32, max_entries=1024) if mntnsmap else None

    @L.inline
    def filtered():
        if cgroupmap:
            if cgroupset.get(L.get_current_cgroup_id()) is None:
                return 1
        if mntnsmap:
            if mntnsset.get(U64(L.current_task().nsproxy.mnt_ns.ns.inum)) is None:
                return 1
        return 0

    return filtered


class ContainerMaps:
    """The pinned maps named by --cgroupmap / --mntnsmap, for ``load(maps=...)``; closes them.

    Each must be what BCC's ``bcc/containers.py`` pins and what the programs were compiled
    against (``spec``: the collection's spec, its ``cgroupset`` and ``mount_ns_set`` maps): same
    map type, key size and value size; anything else is refused here with the difference named,
    not left to the verifier or to a filter that silently never matches."""

    FLAGS = {"cgroupset": "--cgroupmap", "mount_ns_set": "--mntnsmap"}

    def __init__(self, args: Any, spec: Any = None) -> None:
        self.maps: Dict[str, Any] = {}
        try:
            for name, path in (("cgroupset", getattr(args, "cgroupmap", None)),
                               ("mount_ns_set", getattr(args, "mntnsmap", None))):
                if path:
                    self.maps[name] = self._open(self.FLAGS[name], path,
                                                 spec.maps[name] if spec is not None else None)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _open(flag: str, path: str, want: Any) -> Any:
        from ebpf.errors import SyscallError
        from ebpf.maps.live import Map
        from ebpf.pin import open_pinned

        try:
            found = open_pinned(path)
        except SyscallError as e:
            raise EbpfError(f"{flag}: cannot open the pinned map {path}: {e}") from None
        except EbpfError as e:
            raise EbpfError(f"{flag}: {e}") from None
        if not isinstance(found, Map):
            found.close()
            raise EbpfError(f"{flag}: {path} is a pinned BPF object but not a map")
        if want is not None:
            info = found.info()
            got = (int(info.type), info.key_size, info.value_size)
            expected = (int(want.map_type), want.key_size, want.value_size)
            if got != expected:
                found.close()
                raise EbpfError(f"{flag}: the map pinned at {path} is {_map_shape(*got)}; "
                                f"{flag} needs {_map_shape(*expected)}")
        return found

    def close(self) -> None:
        for m in self.maps.values():
            m.close()
        self.maps.clear()

    def __enter__(self) -> ContainerMaps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _map_shape(kind: int, key_size: int, value_size: int) -> str:
    from ebpf.uapi import MapType

    try:
        name = MapType(kind).name.lower()
    except ValueError:
        name = f"type {kind}"
    article = "an" if name[0] in "aeiou" else "a"
    return f"{article} {name} map with {key_size}-byte keys and {value_size}-byte values"


# --- the event loop ----------------------------------------------------------------------------------


class _SignalWake:
    """A pipe written by the interpreter on each handled signal; readable = wake up."""

    def __init__(self) -> None:
        self.rfd, self.wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.previous: Optional[int]
        try:
            self.previous = signal.set_wakeup_fd(self.wfd, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: no wake-up, the poll timeout bounds the delay
            self.previous = None

    def fileno(self) -> int:
        return self.rfd

    def consume(self, callback: Callable[[Any], Any]) -> int:
        try:
            while os.read(self.rfd, 512):
                pass
        except BlockingIOError:
            pass
        return 0

    def close(self) -> None:
        if self.previous is not None:
            signal.set_wakeup_fd(self.previous)
        os.close(self.rfd)
        os.close(self.wfd)


class EventLoop:
    """Reads the ``events`` map of a loaded collection and hands each decoded record to
    ``callback`` as soon as it is read; reports lost events through ``on_lost(count)``.

    ``ring`` says which kind the map is; ``pages`` sizes each perf ring (a power of two).
    """

    def __init__(self, live: Any, decode: Any, callback: Callable[[Any], Any], *, ring: bool, pages: int = 64,
                 on_lost: Optional[Callable[[int], None]] = None) -> None:
        self.live = live
        self.callback = callback
        self.ring = ring
        self.on_lost = on_lost or print_lost
        self.reported_lost = 0
        self.reader: Any
        from ebpf.maps.perfbuf import EventPoller  # imported now: nothing to load once attached

        self._poller_type = EventPoller
        if ring:
            from ebpf.maps.ringbuf import RingBufReader

            self.reader = RingBufReader(live.maps["events"], decode=decode)
        else:
            from ebpf.maps.perfbuf import PerfBuffer

            self.reader = PerfBuffer(live.maps["events"], page_count=pages, decode=decode,
                                     lost_callback=self._perf_lost)

    def _perf_lost(self, cpu: int, count: int) -> None:
        self.reported_lost += count
        self.on_lost(count)

    def check_lost(self) -> None:
        """Ring buffer: report the growth of the programs' per-CPU ``lost`` counter."""
        if not self.ring or "lost" not in self.live.maps:
            return
        total = int(self.live.maps["lost"].sum(0))
        if total > self.reported_lost:
            self.on_lost(total - self.reported_lost)
            self.reported_lost = total

    def run(self, stopper: Stopper, done: Optional[Callable[[], bool]] = None) -> None:
        """Deliver events until ``stopper`` says stop (signal or duration) or ``done()``."""
        wake = _SignalWake()
        poller = self._poller_type()
        try:
            poller.add(self.reader, self.callback)
            poller.add(wake, self.callback)
            next_check = time.monotonic() + LOST_CHECK_SECONDS
            while not stopper.stopped and not (done is not None and done()):
                wait = stopper.remaining(LOST_CHECK_SECONDS)
                poller.poll(int((wait if wait is not None else LOST_CHECK_SECONDS) * 1000))
                now = time.monotonic()
                if now >= next_check:
                    self.check_lost()
                    next_check = now + LOST_CHECK_SECONDS
        finally:
            poller.close()
            wake.close()

    def drain(self) -> None:
        """Deliver what is left (after the programs are detached), then the last lost count."""
        self.reader.consume(self.callback)
        self.check_lost()

    def close(self) -> None:
        self.reader.close()


def event_printer(fmt: Any, out: Any, json_mode: bool) -> Callable[[Any], None]:
    """A callback writing each event as a text line or a JSON object; the formatter returns
    None for events the user-space filters drop."""

    def show(ev: Any) -> None:
        if json_mode:
            obj = fmt.record(ev)
            if obj is not None:
                out.record(obj)
        else:
            line = fmt.text(ev)
            if line is not None:
                out.line(line)

    return show


def print_lost(count: int) -> None:
    sys.stderr.write(lost_line(count) + "\n")
    sys.stderr.flush()


def detach(live: Any) -> None:
    """Close the collection's links, all at once: closing a perf-event tracepoint link waits
    for the kernel's tracepoint grace periods (tens of ms each), and concurrent closes share
    them."""
    links = list(live.links)
    live.links.clear()
    if len(links) <= 1:
        for link in links:
            link.close()
        return
    errors: List[Tuple[Any, BaseException]] = []

    def close(link: Any) -> None:
        try:
            link.close()
        except BaseException as e:  # reported below, in the main thread
            errors.append((link, e))

    threads = [threading.Thread(target=close, args=(link,), daemon=True) for link in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0][1]
