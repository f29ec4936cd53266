"""exitsnoop against the real kernel: children exiting with a chosen code or signal are found."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from typing import List

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
