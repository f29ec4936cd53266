"""Measuring a tracing tool the same way whatever it is written in.

One run of a tool: start it on a pseudo-terminal (C stdio is line-buffered there and fully
buffered on a pipe, so a pty is the fair choice), timestamp the first output line that proves
the probes are attached (the tool's header, or bpftrace's attach notification), optionally keep
generating an event until the tool prints it, then send SIGINT and time the exit. The peak RSS
is the tool's own ``VmHWM`` read from /proc while it runs: ``ru_maxrss`` of a child would count
the harness's memory inherited through fork.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence


class RunResult(NamedTuple):
    ready_ms: Optional[float]  # process start -> ready line
    event_ms: Optional[float]  # process start -> the first generated event seen
    peak_rss_kib: Optional[int]
    exit_ms: Optional[float]  # SIGINT -> process gone
    returncode: Optional[int]
    output: str
    error: str = ""


def _vm_hwm(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_tool(
    argv: Sequence[str],
    ready: str,
    *,
    event: Optional[str] = None,
    make_event: Optional[Callable[[], None]] = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 20.0,
    linger: float = 0.2,
) -> RunResult:
    """Run ``argv`` on a pty; ``ready`` and ``event`` are regexes searched in its output.

    ``make_event`` is called about every millisecond after ready until ``event`` shows up.
    ``linger`` keeps the tool running a little after ready so its steady-state memory counts.
    """
    master, slave = pty.openpty()
    ready_re = re.compile(ready, re.M)
    event_re = re.compile(event, re.M) if event else None
    full_env = dict(os.environ)
    full_env.update(env or {})
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=full_env,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    buf = b""
    ready_ms = event_ms = None
    peak = 0
    deadline = t0 + timeout
    error = ""
    next_event = 0.0
    try:
        while time.perf_counter() < deadline:
            r, _, _ = select.select([master], [], [], 0.001)
            now = time.perf_counter()
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
                text = buf.decode(errors="replace")
                if ready_ms is None and ready_re.search(text):
                    ready_ms = (now - t0) * 1e3
                if ready_ms is not None and event_re is not None and event_ms is None and event_re.search(text):
                    event_ms = (now - t0) * 1e3
            hwm = _vm_hwm(proc.pid)
            if hwm:
                peak = max(peak, hwm)
            if proc.poll() is not None:
                error = "exited before it was stopped"
                break
            if ready_ms is not None and make_event is not None and event_ms is None and now >= next_event:
                make_event()
                next_event = now + 0.001
            if ready_ms is not None and (event_re is None or event_ms is not None):
                if now - t0 >= ready_ms / 1e3 + linger:
                    break
        else:
            error = "timed out"
        exit_ms = None
        if proc.poll() is None:
            t_int = time.perf_counter()
            os.killpg(proc.pid, signal.SIGINT)
            while proc.poll() is None:
                hwm = _vm_hwm(proc.pid)
                if hwm:
                    peak = max(peak, hwm)
                if time.perf_counter() - t_int > 10:
                    os.killpg(proc.pid, signal.SIGKILL)
                    error = error or "did not exit within 10 s of SIGINT"
                    proc.wait()
                    break
                time.sleep(0.0005)
            else:
                exit_ms = (time.perf_counter() - t_int) * 1e3
        while True:  # drain what is left
            r, _, _ = select.select([master], [], [], 0)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return RunResult(ready_ms, event_ms, peak or None, exit_ms, proc.returncode, buf.decode(errors="replace"), error)


def drop_caches() -> None:
    """Cold start: write back and drop the page cache (needs root)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def median(values: List[float]) -> Optional[float]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
