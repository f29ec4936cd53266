"""Running a tool (ours with ``python -m ebpf.tools.NAME``, or a C tool by path) and reading
its output line by line in a thread, for the tools' kernel tests."""

from __future__ import annotations

import contextlib
import os
import pathlib
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence

ROOT = pathlib.Path(__file__).parents[2]


class ToolRun:
    """``python -m ebpf.tools.NAME args`` with its stdout read line by line in a thread."""

    def __init__(self, name: str, *args: str) -> None:
        """``name`` is one of our tools, or the path of a C tool (run with line-buffered stdout:
        libbpf-tools use stdio, fully buffered on a pipe, and do not call setvbuf)."""
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        argv = ["stdbuf", "-oL", name, *args] if name.startswith("/") else \
            [sys.executable, "-m", f"ebpf.tools.{name}", *args]
        self.proc = subprocess.Popen(argv, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.lines: queue.Queue[Optional[str]] = queue.Queue()
        self.seen: List[str] = []
        self.stderr = ""
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, match: Callable[[str], bool], timeout: float = 10.0,
                 poke: Optional[Callable[[], None]] = None) -> str:
        """The first line (seen or to come) that ``match``es; ``poke`` is called every 0.2 s until."""
        for line in self.seen:
            if match(line):
                return line
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poke is not None:
                poke()
            try:
                line = self.lines.get(timeout=0.2 if poke is not None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if match(line):
                return line
        self.stop(signal.SIGKILL)
        raise AssertionError(f"no matching line; output: {self.seen[-20:]}; stderr: {self.stderr}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        while True:
            try:
                line = self.lines.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return rc


class Tool:
    """One run of ``python -m ebpf.tools.NAME ARGS`` with its banner, output and status."""

    def __init__(self, name: str, args: List[str], prefix: Sequence[str] = ()) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.args = args
        self.json = "--json" in args
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", f"ebpf.tools.{name}", *args], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.banner = self.out = self.err = ""
        self.rc: int = -1

    def wait_ready(self, deadline: float) -> None:
        """Read the banner line (stderr with --json) byte by byte, so that nothing is buffered."""
        stream = self.proc.stderr if self.json else self.proc.stdout
        assert stream is not None
        fd = stream.fileno()
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"{self.args}: no banner in time")
            ch = os.read(fd, 1)
            if not ch:
                self.finish(interrupt=False)
                raise AssertionError(f"{self.args}: exited before its banner: {self.err}")
            line += ch
        self.banner = line.decode().rstrip("\n")

    def finish(self, interrupt: bool = True, timeout: float = 30) -> Tool:
        if interrupt and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=timeout)
        self.out, self.err, self.rc = out.decode(), err.decode(), self.proc.returncode
        return self


@contextlib.contextmanager
def run_all(tools: Dict[str, Tool], workload: Callable[[], None], *,
            ends_alone: Sequence[str] = ("interval",)) -> Iterator[Dict[str, Tool]]:
    """Start every tool, wait for all banners, run ``workload``, then stop them with SIGINT (those
    named in ``ends_alone`` end by themselves) and hand over their output; kill what is left."""
    try:
        deadline = time.monotonic() + 30
        for t in tools.values():
            t.wait_ready(deadline)
        workload()
        for name, t in tools.items():
            t.finish(interrupt=name not in ends_alone)
        yield tools
    finally:
        for t in tools.values():
            if t.proc.poll() is None:
                t.proc.kill()
                t.proc.wait()


def table(text: str, column: str) -> Dict[str, int]:
    """The ``name value`` rows under the last ``column`` header of an irq tool's output."""
    rows: Dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(column):
            rows = {}
        elif re.match(r"^\S+ +\d+$", line):
            name, value = line.split()
            rows[name] = int(value)
    return rows
