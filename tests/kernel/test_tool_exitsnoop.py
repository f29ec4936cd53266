"""exitsnoop against the real kernel: children exiting with a chosen code or signal are found."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import Any, List

from toolrun import ToolRun

ROOT = pathlib.Path(__file__).resolve().parents[2]


def columns(line: str) -> List[str]:
    return line.split(None, 5)  # PCOMM PID PPID TID AGE(s) EXIT_CODE


def test_exit_code_signal_and_age() -> None:
    tool = ToolRun("exitsnoop")
    tool.wait_for(lambda line: line.startswith("PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"))
    coded = subprocess.Popen(["/bin/sh", "-c", "sleep 0.2; exit 7"])
    assert coded.wait() == 7
    killed = subprocess.Popen(["/bin/sleep", "30"])
    time.sleep(0.3)
    killed.send_signal(signal.SIGUSR1)
    assert killed.wait() == -signal.SIGUSR1
    code_line = columns(tool.wait_for(lambda line: columns(line)[1:2] == [str(coded.pid)]))
    sig_line = columns(tool.wait_for(lambda line: columns(line)[1:2] == [str(killed.pid)]))
    assert tool.stop() == 0
    assert "Traceback" not in tool.stderr, tool.stderr
    assert code_line[0] == "sh" and code_line[2] == str(os.getpid()) and code_line[3] == str(coded.pid)
    assert code_line[5] == "code 7"
    assert 0.15 <= float(code_line[4]) < 5  # it lived ~0.2 s
    assert sig_line[0] == "sleep" and sig_line[2] == str(os.getpid())
    assert sig_line[5] == "signal 10 (USR1)"
    assert 0.25 <= float(sig_line[4]) < 5
    assert tool.seen[-1] == ""  # BCC's newline after Ctrl-C


def test_failed_only_json() -> None:
    tool = ToolRun("exitsnoop", "--json", "-x")
    pids: List[int] = []

    def poke() -> None:  # no header in JSON mode: exit until the tool reports one
        ok = subprocess.Popen(["/bin/true"])
        bad = subprocess.Popen(["/bin/sh", "-c", "exit 3"])
        ok.wait()
        bad.wait()
        pids.extend([ok.pid, -bad.pid])

    line = tool.wait_for(lambda line: json.loads(line)["pid"] in [-p for p in pids if p < 0], poke=poke)
    assert tool.stop(signal.SIGTERM) == 0
    rec = json.loads(line)
    assert list(rec) == ["pcomm", "pid", "ppid", "tid", "age_s", "exit_code", "signal", "signal_name", "core_dumped"]
    assert rec["exit_code"] == 3 and rec["signal"] == 0 and rec["signal_name"] is None and not rec["core_dumped"]
    assert rec["ppid"] == os.getpid() and rec["tid"] == rec["pid"]
    assert 0 <= rec["age_s"] < 5
    seen = [json.loads(s) for s in tool.seen]
    assert not any(r["pid"] in pids for r in seen)  # the exit(0)s were filtered out
    assert all(r["exit_code"] or r["signal"] for r in seen)


def test_pid_filter_ends_with_the_process() -> None:
    child = subprocess.Popen(["/bin/sh", "-c", "read x; exit 5"], stdin=subprocess.PIPE)
    tool = ToolRun("exitsnoop", "-p", str(child.pid), "-t")
    tool.wait_for(lambda line: "PCOMM" in line)
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait() == 5
    rc = tool.proc.wait(10)  # BCC's exitsnoop -p returns once the process has exited
    tool.stop()
    assert rc == 0, tool.stderr
    events = [line for line in tool.seen[1:] if line]
    assert len(events) == 1, tool.seen
    clock, rest = events[0].split(None, 1)
    assert len(clock) == 12 and clock[2] == ":" and clock[8] == "."
    assert columns(rest)[1] == str(child.pid) and rest.endswith("code 5")


def test_without_privileges_each_tool_says_so_in_one_line() -> None:
    import shutil

    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop capabilities"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("opensnoop", "execsnoop", "exitsnoop"):
        run = subprocess.run([setpriv, "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-m",
                              f"ebpf.tools.{name}"], cwd=str(ROOT), env=env, capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 1, (name, run.stderr)
        assert run.stdout == ""
        assert run.stderr.splitlines() == [f"ebpf {name}: error: needs root (CAP_SYS_ADMIN, or CAP_BPF and "
                                           "CAP_PERFMON) to load eBPF programs"]


def test_classic_tracepoint_and_perf_buffer_in_process() -> None:
    """Kernels without tp_btf or ring buffers: the tracepoint hook and a perf buffer."""
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools import exitsnoop
    from ebpf.tools.runtime import Stopper

    child = subprocess.Popen(["/bin/sh", "-c", "read x; kill -USR2 $$"], stdin=subprocess.PIPE)
    got: List[object] = []
    old = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with exitsnoop.build(False, tp_btf=False).load(target_pid=child.pid) as live:
            assert live.programs["sched_process_exit"].spec.attach_to == "sched/sched_process_exit"
            loop = snoop.EventLoop(live, exitsnoop.Event, got.append, ring=False, pages=8)
            try:
                live.attach()
                assert child.stdin is not None
                child.stdin.close()
                assert child.wait() == -signal.SIGUSR2
                loop.run(Stopper(2.0), done=lambda: bool(got))
                snoop.detach(live)
                loop.drain()
            finally:
                loop.close()
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])
    assert len(got) == 1
    ev: Any = got[0]
    assert (ev.pid, ev.tid, ev.ppid, ev.task) == (child.pid, child.pid, os.getpid(), b"sh")
    assert exitsnoop.exit_text(ev.exit_code, ev.sig_info) == "signal 12 (USR2)"
