"""syscount in the real kernel: a child makes a chosen syscall N times (getppid) and fails a
chosen one (openat of a missing path, ENOENT); every flag finds them under their names.

All the variants run at once (one start-up's wait for all of them) and are ended with SIGINT
the way a user ends them; the interval, duration and --exec ones end by themselves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from toolrun import Tool, run_all

ROOT = Path(__file__).resolve().parents[2]
CALLS = 5000
FAILS = 300
COMM = "sc-workload"
WORKLOAD = f"""
import os, sys
with open("/proc/self/comm", "w") as f:
    f.write({COMM!r})
sys.stdin.readline()
for _ in range({CALLS}):
    os.getppid()
for _ in range({FAILS}):
    try:
        os.open("/nonexistent-dir/syscount-test", os.O_RDONLY)
    except FileNotFoundError:
        pass
print("done", flush=True)
"""
EXEC_CALLS = 3000
# -P and renames: a process named BEFORE makes calls, then execs AFTER (a symlink to python, so
# that the kernel names it so) which makes calls; one then exits before the tool prints, the
# other renames itself RENAMED through /proc/self/comm and lives on.
BEFORE, AFTER, RENAMED = "sc-before", "sc-execd", "sc-renamed"
RENAMES = f"""
import os, sys
with open("/proc/self/comm", "w") as f:
    f.write({BEFORE!r})
sys.stdin.readline()
for _ in range(100):
    os.getppid()
os.execv(sys.argv[1], [{AFTER!r}, "-c", sys.argv[2], *sys.argv[3:]])
"""
AFTER_EXEC = f"""
import os, sys
for _ in range(100):
    os.getppid()
if sys.argv[1:] == ["stay"]:
    with open("/proc/self/comm", "w") as f:
        f.write({RENAMED!r})
    for _ in range(100):
        os.getppid()
    print("renamed", flush=True)
    sys.stdin.readline()
"""


def counts(text: str) -> Dict[str, int]:
    """SYSCALL -> COUNT of the last interval printed."""
    rows: Dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("SYSCALL"):
            rows = {}
        m = re.match(r"^(\S+|\[unknown: \d+\]) +(\d+)( +\d+\.\d+)?$", line)
        if m:
            rows[m.group(1)] = int(m.group(2))
    return rows


def processes(text: str) -> Dict[int, Tuple[str, int]]:
    """PID -> (COMM, COUNT) of the last interval printed."""
    rows: Dict[int, Tuple[str, int]] = {}
    for line in text.splitlines():
        if line.startswith("PID    COMM"):
            rows = {}
        m = re.match(r"^(\d+) +(\S+) +(\d+)( +\d+\.\d+)?$", line)
        if m:
            rows[int(m.group(1))] = (m.group(2), int(m.group(3)))
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[int, Dict[str, Tool]]]:
    child = subprocess.Popen([sys.executable, "-c", WORKLOAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    after = tmp_path_factory.mktemp("syscount") / AFTER
    after.symlink_to(os.path.realpath(sys.executable))
    gone, stays = (subprocess.Popen([sys.executable, "-c", RENAMES, str(after), AFTER_EXEC, *extra],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for extra in ([], ["stay"]))
    RENAMED_PIDS[:] = [gone.pid, stays.pid]
    pid = str(child.pid)
    variants: Dict[str, List[str]] = {
        "pid": ["-p", pid],
        "wide": ["-T", "1000"],
        "process": ["-P", "-T", "100000"],
        "failures": ["-x", "-p", pid],
        "errno": ["-e", "ENOENT", "-p", pid],
        "other_errno": ["-e", "EPERM", "-p", pid],
        "latency": ["-L", "-p", pid],
        "latency_ms_process": ["-L", "-m", "-P", "-p", pid],
        "json": ["--json", "-p", pid],
        "json_process": ["--json", "-P", "-L", "-p", pid],
        "json_process_all": ["--json", "-P", "-T", "100000"],
        "syscall": ["--syscall", "getppid"],
        "tid": ["-t", pid],
        "ppid": ["-c", str(os.getpid())],
        "interval": ["-i", "1", "-d", "2"],
        "exec": ["--exec", sys.executable, "-c", f"import os\nfor _ in range({EXEC_CALLS}): os.getppid()"],
    }
    tools = {name: Tool("syscount", args) for name, args in variants.items()}
    def workload() -> None:
        for proc in (child, gone, stays):
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        assert child.stdout is not None and stays.stdout is not None
        assert child.stdout.readline() == "done\n"
        child.wait(timeout=10)
        assert gone.wait(timeout=30) == 0
        assert stays.stdout.readline() == "renamed\n"

    try:
        with run_all(tools, workload, ends_alone=("interval", "exec")) as done:
            yield child.pid, done
    finally:
        for proc in (child, gone, stays):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


RENAMED_PIDS: List[int] = []  # (exited after its exec, renamed and alive at print time)


def ended_cleanly(t: Tool) -> List[str]:
    assert t.rc == 0 and t.err == "", t.err
    lines = t.out.splitlines()
    assert re.match(r"^\[\d\d:\d\d:\d\d\]$", lines[0]), t.out
    assert lines[-2:] == ["", "Detaching..."]
    return lines


def test_the_childs_getppid_calls_by_pid(runs: Tuple[int, Dict[str, Tool]]) -> None:
    _, tools = runs
    for name in ("pid", "tid", "ppid", "wide"):
        t = tools[name]
        if name != "wide":
            assert t.banner == "Tracing syscalls, printing top 10... Ctrl+C to quit."
        lines = ended_cleanly(t)
        assert lines[1] == "SYSCALL                   COUNT"
        assert counts(t.out).get("getppid", 0) >= CALLS, (name, t.out)
    assert counts(tools["pid"].out).get("openat", 0) >= FAILS


def test_one_syscall_only(runs: Tuple[int, Dict[str, Tool]]) -> None:
    t = runs[1]["syscall"]
    assert t.banner == "Tracing syscall 'getppid'... Ctrl+C to quit."
    ended_cleanly(t)
    rows = counts(t.out)
    assert list(rows) == ["getppid"] and rows["getppid"] >= CALLS


def test_per_process_shows_pid_and_comm(runs: Tuple[int, Dict[str, Tool]]) -> None:
    pid, tools = runs
    t = tools["process"]
    lines = ended_cleanly(t)
    assert lines[1] == "PID    COMM               COUNT"
    comm, count = processes(t.out)[pid]
    assert comm == COMM and count >= CALLS + FAILS


def test_per_process_names_follow_exec_and_renames(runs: Tuple[int, Dict[str, Tool]]) -> None:
    """-P names a process as it is named when printed: an exec'd child by its new name, whether
    it has exited by then or not, and a process renamed since its first call by its new name."""
    rows = processes(runs[1]["process"].out)
    gone, stays = RENAMED_PIDS
    assert rows[gone][0] == AFTER and rows[gone][1] >= 200, rows.get(gone)
    assert rows[stays][0] == RENAMED and rows[stays][1] >= 300, rows.get(stays)
    (rec,) = [json.loads(line) for line in runs[1]["json_process_all"].out.splitlines()]
    names = {e["pid"]: e["comm"] for e in rec["processes"]}
    assert (names[gone], names[stays]) == (AFTER, RENAMED)


def test_failures_and_errno(runs: Tuple[int, Dict[str, Tool]]) -> None:
    _, tools = runs
    t = tools["failures"]
    assert t.banner == "Tracing failed syscalls, printing top 10... Ctrl+C to quit."
    ended_cleanly(t)
    rows = counts(t.out)
    assert rows.get("openat", 0) >= FAILS and "getppid" not in rows
    rows = counts(tools["errno"].out)
    assert rows.get("openat", 0) >= FAILS and "getppid" not in rows
    assert "openat" not in counts(tools["other_errno"].out)


def test_latency_column(runs: Tuple[int, Dict[str, Tool]]) -> None:
    pid, tools = runs
    t = tools["latency"]
    lines = ended_cleanly(t)
    assert lines[1] == "SYSCALL                   COUNT        TIME (us)"
    row = [line for line in lines if line.startswith("getppid ")]
    assert row and re.match(r"^getppid {15} (.{8}) (.{16})$", row[0])
    count, total = row[0].split()[1:]
    assert int(count) >= CALLS and float(total) > 0 and re.match(r"^\d+\.\d{3}$", total)
    t = tools["latency_ms_process"]
    lines = ended_cleanly(t)
    assert lines[1] == "PID    COMM               COUNT        TIME (ms)"
    assert processes(t.out)[pid][0] == COMM


def test_json_intervals(runs: Tuple[int, Dict[str, Tool]]) -> None:
    pid, tools = runs
    t = tools["json"]
    assert t.rc == 0 and t.err == ""
    (rec,) = [json.loads(line) for line in t.out.splitlines()]
    by_name = {e["syscall"]: e for e in rec["syscalls"]}
    assert by_name["getppid"]["count"] >= CALLS and by_name["getppid"]["nr"] >= 0
    (rec,) = [json.loads(line) for line in tools["json_process"].out.splitlines()]
    (entry,) = rec["processes"]
    assert entry["pid"] == pid and entry["comm"] == COMM and entry["count"] >= CALLS and entry["total_ns"] > 0


def test_interval_and_duration(runs: Tuple[int, Dict[str, Tool]]) -> None:
    lines = ended_cleanly(runs[1]["interval"])
    assert len([line for line in lines if re.match(r"^\[\d\d:\d\d:\d\d\]$", line)]) == 2
    assert lines.count("SYSCALL                   COUNT") == 2


def test_exec_traces_the_command_until_it_exits(runs: Tuple[int, Dict[str, Tool]]) -> None:
    t = runs[1]["exec"]
    ended_cleanly(t)
    assert counts(t.out).get("getppid", 0) >= EXEC_CALLS
