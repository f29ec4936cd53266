"""runqlat in the kernel: busy processes pinned to one CPU wait for each other on its run queue
while the tool runs; their waits are found in its histograms, by process, thread and PID
namespace, on every hook path (tp_btf, raw tracepoints, classic tracepoints)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import pytest

import ebpf
from ebpf.tools import runqlat as R
from ebpf.tools.runtime import choose_hooks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(ebpf.__file__)))
ROW = re.compile(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|[*+ ]*\|$")


class Busy:
    """``n`` processes pinned to one CPU, spinning for ``seconds`` once released by :meth:`go`."""

    def __init__(self, n: int = 4, seconds: float = 0.5) -> None:
        cpu = min(os.sched_getaffinity(0))
        self.r, self.w = os.pipe()
        self.pids: List[int] = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    os.close(self.w)
                    os.sched_setaffinity(0, {cpu})
                    os.read(self.r, 1)
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        pass
                finally:
                    os._exit(0)
            self.pids.append(pid)

    def go(self) -> None:
        os.write(self.w, b"x" * len(self.pids))
        for pid in self.pids:
            os.waitpid(pid, 0)
        os.close(self.r)
        os.close(self.w)


class Tool:
    """``python -m ebpf.tools.runqlat ARGS`` with its output collected."""

    def __init__(self, *args: str, preexec_fn: object = None) -> None:
        env = dict(os.environ, PYTHONPATH=REPO)
        self.proc = subprocess.Popen([sys.executable, "-m", "ebpf.tools.runqlat", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=REPO,
                                     preexec_fn=preexec_fn)  # type: ignore[arg-type]
        self.out = b""
        self.err = b""

    def ready(self, on_stderr: bool = False, timeout: float = 15.0) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        stream = self.proc.stderr if on_stderr else self.proc.stdout
        deadline = time.monotonic() + timeout
        got = b""
        while R.BANNER.encode() not in got:
            r, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(stream.fileno(), 65536) if r else b""
            if not chunk:
                self.proc.kill()
                rest_out, rest_err = self.proc.communicate()
                raise AssertionError(f"no banner: {got!r} {rest_out!r} {rest_err!r}")
            got += chunk
        if on_stderr:
            self.err += got
        else:
            self.out += got

    def finish(self, sig: Optional[int] = signal.SIGINT, timeout: float = 15.0) -> Tuple[int, str, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, (self.out + out).decode(), (self.err + err).decode()


def traced(*args: str, json_mode: bool = False, sig: Optional[int] = signal.SIGINT) -> Tuple[str, List[int]]:
    """Run the tool around a busy workload; returns its stdout and the workload's pids."""
    busy = Busy()
    tool = Tool(*args)
    try:
        tool.ready(on_stderr=json_mode)
    except BaseException:
        busy.go()
        raise
    busy.go()
    rc, out, err = tool.finish(sig)
    assert rc == 0, err
    assert "Traceback" not in err
    if json_mode:
        assert err.strip() == R.BANNER
    return out, busy.pids


def busy_then_trace(*args: str, json_mode: bool = False) -> Tuple[str, List[int]]:
    """Like :func:`traced`, for options naming a workload pid: ``{pid}`` in ``args`` is the first one."""
    busy = Busy()
    tool = Tool(*[a.format(pid=busy.pids[0]) for a in args])
    try:
        tool.ready(on_stderr=json_mode)
    finally:
        busy.go()
    rc, out, err = tool.finish()
    assert rc == 0 and "Traceback" not in err, err
    return out, busy.pids


def rows(lines: List[str]) -> Dict[int, int]:
    out: Dict[int, int] = {}
    for line in lines:
        m = ROW.match(line)
        if m:
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + int(m.group(3))
    return out


def sections(text: str, header: str) -> Dict[int, Dict[int, int]]:
    out: Dict[int, Dict[int, int]] = {}
    current: Optional[int] = None
    for line in text.splitlines():
        if line.startswith(f"{header} = "):
            current = int(line.split(" = ", 1)[1])
            out.setdefault(current, {})
        elif current is not None:
            for low, count in rows([line]).items():
                out[current][low] = out[current].get(low, 0) + count
    return out


# ---- tests ------------------------------------------------------------------------------------------------


def test_auto_chooses_tp_btf_where_the_kernel_has_it() -> None:
    from ebpf import features

    expected = "tp_btf" if features.have_tp_btf("sched_switch") else "raw_tp" if features.have_btf() else "tracepoint"
    assert choose_hooks("sched_switch") == expected


def test_one_interval_has_the_run_queue_waits() -> None:
    out, _ = traced("1", "1", sig=None)
    lines = out.splitlines()
    assert lines[:3] == [R.BANNER, "", "     usecs               : count     distribution"]
    assert sum(rows(lines).values()) >= 20, out  # 4 spinners on one CPU for 0.5 s: a wait per tick
    assert max(rows(lines)) >= 1024  # spinners wait whole ticks (ms), not only microseconds


def test_per_process_through_raw_tracepoints() -> None:
    out, pids = traced("-P", "--hook", "raw_tp")
    found = sections(out, "pid")
    ours = [p for p in pids if p in found]
    assert len(ours) >= 2, out
    assert all(sum(found[p].values()) > 0 for p in ours)


def test_pid_filter_milliseconds_json_through_tp_btf() -> None:
    out, pids = busy_then_trace("-p", "{pid}", "-P", "-m", "--json", "--hook", "tp_btf", json_mode=True)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["pid"] for r in records] == [pids[0]], out  # -p: nothing from anyone else
    assert records[0]["val_type"] == "msecs"
    assert sum(d["count"] for d in records[0]["data"]) > 0


def test_pid_filter_through_classic_tracepoints() -> None:
    out, pids = busy_then_trace("-p", "{pid}", "-P", "--hook", "tracepoint")
    found = sections(out, "pid")
    assert list(found) == [pids[0]], out
    assert sum(found[pids[0]].values()) > 0


def test_per_thread_through_classic_tracepoints() -> None:
    out, pids = traced("-L", "-m", "--hook", "tracepoint")
    found = sections(out, "tid")
    assert len([p for p in pids if p in found]) >= 2, out  # single-threaded: tid == pid
    assert "     msecs               : count     distribution" in out.splitlines()


def test_per_pid_namespace_with_timestamps_and_sigterm() -> None:
    out, _ = traced("--pidnss", "-T", sig=signal.SIGTERM)
    lines = out.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", lines[2]), out
    ns = os.stat("/proc/self/ns/pid").st_ino
    found = sections(out, "pidns")
    assert ns in found and sum(found[ns].values()) > 0, out


@pytest.mark.parametrize("args, message", [
    (("--pidnss", "--hook", "tracepoint"), "--pidnss needs tp_btf or raw tracepoints"),
])
def test_cannot_run_exits_1_with_one_line(args: Tuple[str, ...], message: str) -> None:
    tool = Tool(*args)
    rc, out, err = tool.finish(sig=None)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("ebpf runqlat: error: ") and message in err, err


OPTIONS = [[], ["-P"], ["-L", "-m"], ["--pidnss"], ["-p", "1"], ["-p", "1", "-P"]]


@pytest.mark.parametrize("hooks", ["tp_btf", "raw_tp", "tracepoint"])
def test_every_option_set_passes_the_verifier(hooks: str) -> None:
    for opts in OPTIONS:
        if hooks == "tracepoint" and "--pidnss" in opts:
            continue
        coll = R.build(R.Plan(R.parse_args(opts + ["--hook", hooks]), hooks))
        with coll.load() as live:
            assert {"sched_wakeup", "sched_wakeup_new", "sched_switch"} == set(live.programs)
