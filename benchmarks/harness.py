"""Measuring a tracing tool the same way whatever it is written in.

One run of a tool: start it on a pseudo-terminal (C stdio is line-buffered there and fully
buffered on a pipe, so a pty is the fair choice), timestamp the first output line that proves
the probes are attached (the tool's header, or bpftrace's attach notification), optionally keep
generating an event until the tool prints it, then send SIGINT and time the exit. The peak RSS
is the tool's own ``VmHWM`` read from /proc while it runs: ``ru_maxrss`` of a child would count
the harness's memory inherited through fork (the kernel folds the old mm's high-water mark into
``maxrss`` at exec, and with vfork the old mm is the parent's). CPU time is the child's own
``utime + stime`` from ``wait4``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence

# Variables of this session that a user's shell does not have and that change how Python runs:
# no byte-code caching (every import would recompile) and unbuffered stdio.
SESSION_ONLY_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")


class RunResult(NamedTuple):
    ready_ms: Optional[float]  # process start -> ready line
    event_ms: Optional[float]  # process start -> the first generated event seen
    peak_rss_kib: Optional[int]  # the tool's own VmHWM
    exit_ms: Optional[float]  # SIGINT -> process gone
    returncode: Optional[int]
    output: str
    error: str = ""
    cpu_ms: Optional[float] = None  # user + system CPU of the whole run (wait4)


def clean_env(extra: Optional[Dict[str, str]] = None, drop: Iterable[str] = SESSION_ONLY_ENV) -> Dict[str, str]:
    """This process's environment without the session-only variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra or {})
    return env


def vm_hwm(pid: int) -> Optional[int]:
    """The peak resident set size (KiB) of ``pid``'s current address space, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class StatusReader:
    """``VmHWM`` of one process, re-read from a /proc/PID/status descriptor kept open.

    Polling every millisecond must not open a file each time: opensnoop would report (and pay
    for) every one of those opens.
    """

    def __init__(self, pid: int):
        try:
            self.fd: Optional[int] = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:
            self.fd = None

    def vm_hwm(self) -> Optional[int]:
        if self.fd is None:
            return None
        try:
            data = os.pread(self.fd, 4096, 0)
        except OSError:
            return None
        at = data.find(b"VmHWM:")
        if at < 0:
            return None
        return int(data[at + 6:data.index(b"kB", at)])

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def cpu_ticks_ms(pid: int) -> Optional[float]:
    """utime + stime of ``pid`` so far (ms), from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted after "(comm)"
    return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


class _Child:
    """A started process reaped with wait4 (for its rusage) instead of Popen.poll."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid
        self.status: Optional[int] = None
        self.cpu_ms: Optional[float] = None

    def poll(self) -> Optional[int]:
        if self.status is None:
            try:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.status = -1
                return self.status
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                self.cpu_ms = (usage.ru_utime + usage.ru_stime) * 1e3
                self.proc.returncode = self.status  # keep Popen from reaping it again
        return self.status

    def kill_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass


def run_tool(
    argv: Sequence[str],
    ready: str,
    *,
    event: Optional[str] = None,
    make_event: Optional[Callable[[], None]] = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 20.0,
    linger: float = 0.1,
    stderr_path: Optional[str] = None,
    cwd: Optional[str] = None,
    on_ready: Optional[Callable[[int], None]] = None,
    exit_timeout: float = 10.0,
) -> RunResult:
    """Run ``argv`` on a pty; ``ready`` and ``event`` are regexes searched in its output.

    ``env`` is the whole environment of the tool (default: :func:`clean_env`). ``make_event`` is
    called about every millisecond after ready until ``event`` shows up. ``linger`` keeps the
    tool running a little after ready so its steady-state memory counts. ``stderr_path`` sends
    the tool's stderr to a file instead of the pty (e.g. for ``-X importtime``). ``on_ready``
    is called with the tool's pid once it is ready (e.g. to look at its BPF programs). A tool still
there ``exit_timeout`` seconds after SIGINT is killed and the run reports it.
    """
    master, slave = pty.openpty()
    ready_re = re.compile(ready, re.M)
    event_re = re.compile(event, re.M) if event else None
    err_file = open(stderr_path, "wb") if stderr_path else None  # noqa: SIM115 - closed below
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=err_file if err_file is not None else slave,
                                env=env if env is not None else clean_env(), cwd=cwd, close_fds=True,
                                start_new_session=True)
    except OSError as e:
        os.close(master)
        os.close(slave)
        if err_file is not None:
            err_file.close()
        return RunResult(None, None, None, None, None, "", f"cannot start: {e}")
    os.close(slave)
    if err_file is not None:
        err_file.close()
    child = _Child(proc)
    status = StatusReader(child.pid)
    chunks: List[bytes] = []
    text = ""
    ready_ms = event_ms = None
    ready_at = 0.0
    peak = 0
    deadline = t0 + timeout
    error = ""
    next_event = 0.0
    exit_ms = None
    try:
        while True:
            now = time.perf_counter()
            if now >= deadline:
                error = "timed out"
                break
            r, _, _ = select.select([master], [], [], 0.001)
            now = time.perf_counter()
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if chunk:
                    chunks.append(chunk)
                    text = b"".join(chunks).decode(errors="replace")
                    if ready_ms is None and ready_re.search(text):
                        ready_ms = (now - t0) * 1e3
                        ready_at = now
                        if on_ready is not None:
                            on_ready(child.pid)
                    if ready_ms is not None and event_re is not None and event_ms is None and event_re.search(text):
                        event_ms = (now - t0) * 1e3
            hwm = status.vm_hwm()
            if hwm:
                peak = max(peak, hwm)
            if child.poll() is not None:
                error = "exited before it was stopped"
                break
            if ready_ms is not None and make_event is not None and event_ms is None and now >= next_event:
                make_event()
                next_event = now + 0.001
            if ready_ms is not None and (event_re is None or event_ms is not None) and now >= ready_at + linger:
                break
        if child.poll() is None:
            t_int = time.perf_counter()
            child.kill_group(signal.SIGINT)
            while child.poll() is None:
                hwm = status.vm_hwm()
                if hwm:
                    peak = max(peak, hwm)
                _drain(master, chunks, 0)
                if time.perf_counter() - t_int > exit_timeout:
                    child.kill_group(signal.SIGKILL)
                    error = error or f"did not exit within {exit_timeout:g} s of SIGINT"
                    proc.wait()
                    break
                time.sleep(0.0002)
            else:
                exit_ms = (time.perf_counter() - t_int) * 1e3
        _drain(master, chunks, 0.05)
    finally:
        os.close(master)
        status.close()
        if child.poll() is None:
            child.kill_group(signal.SIGKILL)
            proc.wait()
    output = b"".join(chunks).decode(errors="replace")
    return RunResult(ready_ms, event_ms, peak or None, exit_ms, child.status, output, error, child.cpu_ms)


def _drain(fd: int, chunks: List[bytes], wait: float) -> None:
    """Read what the tool has written so far (waiting up to ``wait`` s for the first bytes)."""
    while True:
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        chunks.append(chunk)
        wait = 0


def drop_caches() -> None:
    """Cold start: write back and drop the page cache, dentries and inodes (needs root)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def median(values: Iterable[Optional[float]]) -> Optional[float]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def time_command(argv: Sequence[str], rounds: int, env: Optional[Dict[str, str]] = None) -> List[float]:
    """Wall-clock ms of running ``argv`` to completion (output discarded), ``rounds`` times."""
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=env if env is not None else clean_env(), check=False)
        out.append((time.perf_counter() - t) * 1e3)
    return out
