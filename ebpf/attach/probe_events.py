"""Dynamic probes: the perf PMUs (``kprobe``, ``uprobe``) and the tracefs fallbacks.

The PMU path opens a perf event of the PMU's dynamic type with the probe in the attributes
(``config1`` = pointer to the symbol or path, ``config2`` = offset, the retprobe bit of
``config`` as the PMU's ``format/retprobe`` says); the probe lives exactly as long as the fd.

The tracefs path writes ``p:GROUP/NAME TARGET`` into ``kprobe_events``/``uprobe_events``, opens
the new event as a tracepoint (``events/GROUP/NAME/id``) and removes it with ``-:GROUP/NAME``
when the link closes, at exit and on SIGTERM (:mod:`ebpf.attach.cleanup`). Every process uses
its own group ``ebpf_<pid>_<hex>``; groups of dead processes (killed with SIGKILL) are swept by
:func:`remove_stale`, which runs before we add events.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import threading
from typing import Dict, Iterator, List, Optional, Tuple

from ebpf.errors import AttachError, TracefsError
from ebpf.sys import tracefs

EVENT_SOURCE = "/sys/bus/event_source/devices"
GROUP_PREFIX = "ebpf_"
_GROUP_RE = re.compile(r"^ebpf_(\d+)_[0-9a-f]+$")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_]")

_lock = threading.Lock()
_group: Optional[str] = None
_counter = 0
_pmu_cache: Dict[str, Optional[int]] = {}


# --- PMUs -------------------------------------------------------------------------------------


def pmu_type(name: str) -> Optional[int]:
    """The perf type number of dynamic PMU ``name`` ("kprobe", "uprobe"), or None if absent."""
    if name in _pmu_cache:
        return _pmu_cache[name]
    try:
        with open(os.path.join(EVENT_SOURCE, name, "type")) as f:
            value: Optional[int] = int(f.read().strip())
    except (OSError, ValueError):
        value = None
    _pmu_cache[name] = value
    return value


def pmu_format_bit(pmu: str, field: str, default: int) -> int:
    """The first bit of ``config`` that PMU format ``field`` occupies (``config:0`` -> 0)."""
    try:
        with open(os.path.join(EVENT_SOURCE, pmu, "format", field)) as f:
            text = f.read().strip()
    except OSError:
        return default
    m = re.match(r"config:(\d+)", text)
    return int(m.group(1)) if m else default


def clear_cache() -> None:
    _pmu_cache.clear()


# --- tracefs events ---------------------------------------------------------------------------


def events_file(kind: str) -> Optional[str]:
    """``<tracefs>/kprobe_events`` or ``uprobe_events`` when the kernel has it, else None."""
    try:
        base = tracefs.tracefs_path()
    except TracefsError:
        return None
    path = os.path.join(base, f"{kind}_events")
    return path if os.path.exists(path) else None


def group_name() -> str:
    """This process's tracefs group: ``ebpf_<pid>_<8 hex>`` (new after a fork)."""
    global _group
    pid = os.getpid()
    if _group is None or not _group.startswith(f"{GROUP_PREFIX}{pid}_"):
        _group = f"{GROUP_PREFIX}{pid}_{secrets.token_hex(4)}"
    return _group


def event_name(prefix: str, what: str) -> str:
    """A tracefs-safe event name, unique within this process (< 64 characters)."""
    global _counter
    with _lock:
        _counter += 1
        n = _counter
    clean = _NAME_BAD.sub("_", what).strip("_")[:40] or "probe"
    return f"{prefix}_{clean}_{n}"


def _write(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


class ProbeEvent:
    """One event we added to ``kprobe_events``/``uprobe_events``; :meth:`remove` deletes it."""

    def __init__(self, kind: str, group: str, name: str, definition: str):
        self.kind = kind
        self.group = group
        self.name = name
        self.definition = definition
        self.removed = False
        self.token = 0

    @property
    def id(self) -> int:
        """The tracepoint id of the event (for perf_event_open(PERF_TYPE_TRACEPOINT))."""
        return tracefs.tracepoint_id(self.group, self.name)

    def remove(self) -> None:
        if self.token:
            from ebpf.attach import cleanup

            cleanup.unregister(self.token)
            self.token = 0
        if self.removed:
            return
        path = events_file(self.kind)
        if path is None:
            return
        try:
            _write(path, f"-:{self.group}/{self.name}")
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.EINVAL):
                raise
        self.removed = True

    def __repr__(self) -> str:
        return f"<ProbeEvent {self.kind} {self.group}/{self.name}: {self.definition}>"


def add_event(kind: str, prefix: str, what: str, spec: str, retprobe: bool = False,
              maxactive: int = 0) -> ProbeEvent:
    """Add ``p:GROUP/NAME SPEC`` (``r[MAXACTIVE]:...`` for return probes) to ``<kind>_events``."""
    path = events_file(kind)
    if path is None:
        raise TracefsError(f"tracefs has no {kind}_events on this kernel")
    remove_stale(kind)
    group = group_name()
    name = event_name(prefix, what)
    head = ("r" + (str(maxactive) if maxactive else "")) if retprobe else "p"
    definition = f"{head}:{group}/{name} {spec}"
    from ebpf.attach import cleanup

    event = ProbeEvent(kind, group, name, definition)
    with _signals_blocked():  # no window between adding the event and registering its removal
        try:
            _write(path, definition)
        except OSError as e:
            raise AttachError(f"cannot add {kind} event {definition!r} to {path}: {os.strerror(e.errno or 0)}"
                              + _error_log_tail()) from None
        event.token = cleanup.register(event.remove)
    return event


_BLOCKED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for the block (they are delivered right after)."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _error_log_tail() -> str:
    try:
        with open(os.path.join(tracefs.tracefs_path(), "error_log")) as f:
            lines = [line.rstrip() for line in f.read().splitlines() if line.strip()]
    except (OSError, TracefsError):
        return ""
    return ("; tracefs error_log: " + " | ".join(lines[-3:])) if lines else ""


def list_events(kind: str) -> List[Tuple[str, str, str]]:
    """(group, name, definition) of every event in ``<kind>_events``."""
    path = events_file(kind)
    if path is None:
        return []
    out = []
    with open(path) as f:
        for line in f.read().splitlines():
            head, _, _ = line.partition(" ")
            _, _, full = head.partition(":")
            group, _, name = full.partition("/")
            if group and name:
                out.append((group, name, line))
    return out


def ours(kind: str) -> List[Tuple[str, str, str]]:
    """Events of any ``ebpf_<pid>_*`` group (this process's and others')."""
    return [e for e in list_events(kind) if _GROUP_RE.match(e[0])]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(kind: Optional[str] = None) -> int:
    """Remove events of ``ebpf_<pid>_*`` groups whose process is gone; returns how many."""
    removed = 0
    for k in ((kind,) if kind else ("kprobe", "uprobe")):
        path = events_file(k)
        if path is None:
            continue
        for group, name, _ in ours(k):
            m = _GROUP_RE.match(group)
            if m is None or _alive(int(m.group(1))):
                continue
            try:
                _write(path, f"-:{group}/{name}")
                removed += 1
            except OSError:
                pass  # in use (a pid reused by a process holding it?) or already gone
    return removed
