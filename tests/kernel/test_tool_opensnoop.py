"""opensnoop against the real kernel: opens made here are found in the tool's output."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
import uuid
from typing import Any, List

import pytest
from toolrun import ToolRun

ROOT = pathlib.Path(__file__).resolve().parents[2]


def my_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def fields(line: str) -> List[str]:
    return line.split(None, 4)


def test_opens_and_failed_opens_of_a_child_with_pid_comm_fd_err(tmp_path: pathlib.Path) -> None:
    present = tmp_path / f"present-{uuid.uuid4().hex}"
    present.write_text("x")
    missing = tmp_path / f"missing-{uuid.uuid4().hex}"
    tool = ToolRun("opensnoop")
    tool.wait_for(lambda line: line.startswith("PID    COMM"))
    child = subprocess.run(["/bin/cat", str(present), str(missing)], capture_output=True)
    assert child.returncode == 1
    hit = fields(tool.wait_for(lambda line: line.endswith(" " + str(present))))
    miss = fields(tool.wait_for(lambda line: line.endswith(" " + str(missing))))
    assert tool.stop(signal.SIGINT) == 0
    assert "Traceback" not in tool.stderr, tool.stderr
    assert hit[0] == miss[0] and int(hit[0]) > 0
    assert hit[1] == miss[1] == "cat"
    assert int(hit[2]) >= 3 and hit[3] == "0"
    assert miss[2:4] == ["-1", "2"]  # ENOENT


def test_pid_filter_and_failed_only(tmp_path: pathlib.Path) -> None:
    present = tmp_path / f"present-{uuid.uuid4().hex}"
    present.write_text("x")
    tool = ToolRun("opensnoop", "-x", "-p", str(os.getpid()))
    tool.wait_for(lambda line: line.startswith("PID    COMM"))
    subprocess.run(["/bin/cat", str(tmp_path / "other-process-missing")], capture_output=True)
    fd = os.open(present, os.O_RDONLY)
    os.close(fd)
    missing = tmp_path / f"missing-{uuid.uuid4().hex}"
    with pytest.raises(FileNotFoundError):
        open(missing)
    line = tool.wait_for(lambda line: line.endswith(" " + str(missing)))
    assert tool.stop(signal.SIGTERM) == 0
    assert fields(line)[:4] == [str(os.getpid()), my_comm()[:16], "-1", "2"]
    events = tool.seen[1:]
    assert all(fields(e)[0] == str(os.getpid()) for e in events), events  # -p held
    assert all(fields(e)[2] == "-1" for e in events), events  # -x held
    assert not any(e.endswith(str(present)) or "other-process-missing" in e for e in events)


def test_json_with_timestamp_uid_and_extended_fields(tmp_path: pathlib.Path) -> None:
    tool = ToolRun("opensnoop", "--json", "-T", "-U", "-e", "-p", str(os.getpid()))
    made: List[pathlib.Path] = []

    def poke() -> None:  # no header in JSON mode: open new files until the tool reports one
        path = tmp_path / f"created-{uuid.uuid4().hex}"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o640))
        made.append(path)

    line = tool.wait_for(lambda line: any(str(p) in line for p in made), poke=poke)
    assert tool.stop() == 0
    rec = json.loads(line)
    assert list(rec) == ["time", "uid", "pid", "comm", "fd", "err", "flags", "mode", "path"]
    assert rec["pid"] == os.getpid() and rec["uid"] == os.getuid() and rec["comm"] == my_comm()[:15]
    assert rec["fd"] >= 3 and rec["err"] == 0
    assert rec["flags"] & 0o3 == os.O_WRONLY and rec["flags"] & os.O_CREAT
    assert rec["mode"] == 0o640
    assert isinstance(rec["time"], float) and rec["time"] >= 0
    for other in tool.seen:
        json.loads(other)  # every line is one object


def test_duration_ends_the_tool() -> None:
    started = time.monotonic()
    tool = ToolRun("opensnoop", "-d", "0.3", "-p", str(os.getpid()))
    rc = tool.proc.wait(15)
    tool.stop()
    assert rc == 0, tool.stderr
    assert tool.seen and tool.seen[0].startswith("PID    COMM")
    assert time.monotonic() - started < 10


def test_exec_traces_the_command_until_it_ends(tmp_path: pathlib.Path) -> None:
    target = tmp_path / f"exec-{uuid.uuid4().hex}"
    target.write_text("")  # cat shares the tool's stdout: print nothing
    tool = ToolRun("opensnoop", "--exec", "/bin/cat", str(target))
    rc = tool.proc.wait(15)
    tool.stop()
    assert rc == 0, tool.stderr
    lines = [fields(line) for line in tool.seen[1:]]
    assert any(f[-1] == str(target) and f[1] == "cat" and f[3] == "0" for f in lines), tool.seen
    assert len({f[0] for f in lines}) == 1  # only the command's process


def test_lost_events_are_reported(tmp_path: pathlib.Path) -> None:
    """A one-page ring and a stopped reader: the kernel drops, the tool says how many."""
    tool = ToolRun("opensnoop", "-b", "1", "-p", str(os.getpid()))
    tool.wait_for(lambda line: line.startswith("PID    COMM"))
    os.kill(tool.proc.pid, signal.SIGSTOP)
    try:
        for i in range(200):
            try:
                open(tmp_path / f"lost-{i}")
            except FileNotFoundError:
                pass
    finally:
        os.kill(tool.proc.pid, signal.SIGCONT)
    time.sleep(0.6)  # the loop checks the count every 0.25 s
    assert tool.stop() == 0
    lost = [line for line in tool.stderr.splitlines() if line.startswith("Lost ")]
    assert lost, tool.stderr
    total = sum(int(line.split()[1]) for line in lost)
    shown = sum(1 for line in tool.seen if "/lost-" in line)
    assert total > 0 and shown + total >= 200


def test_perf_buffer_path_in_process(tmp_path: pathlib.Path) -> None:
    """Kernels without ring buffers get a perf buffer: same programs, same events."""
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools import opensnoop
    from ebpf.tools.runtime import Stopper, existing_tracepoints

    names = [s for s in opensnoop.SYSCALLS
             if len(existing_tracepoints("syscalls", [f"sys_enter_{s}", f"sys_exit_{s}"])) == 2]
    coll = opensnoop.build(False, names)
    opensnoop.compile_spec(coll, names)
    missing = tmp_path / f"perf-{uuid.uuid4().hex}"
    got: List[Any] = []
    old = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with coll.load(targ_tgid=os.getpid(), targ_failed=1) as live:
            loop = snoop.EventLoop(live, opensnoop.Event, got.append, ring=False, pages=8)
            try:
                live.attach()
                with pytest.raises(FileNotFoundError):
                    open(missing)
                stopper = Stopper(0.3)
                loop.run(stopper, done=lambda: bool(got))
                snoop.detach(live)
                loop.drain()
            finally:
                loop.close()
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])
    assert [(e.id >> 32, e.ret, e.fname) for e in got] == [(os.getpid(), -2, str(missing).encode())]


def test_cgroupmap_filter(tmp_path: pathlib.Path) -> None:
    """BCC's --cgroupmap: only tasks whose cgroup id is a key of the pinned hash map."""
    from ebpf import pin
    from ebpf.lang.types import u64
    from ebpf.maps.spec import MapSpec

    with open("/proc/self/cgroup") as f:
        rel = f.read().strip().split("::", 1)[1]
    mine = os.stat("/sys/fs/cgroup" + rel).st_ino
    pinned = f"/sys/fs/bpf/opensnoop-test-{uuid.uuid4().hex[:8]}"
    with MapSpec("cgroupset", "hash", key=u64, value=u64, max_entries=1024).create() as cgroups:
        pin.pin(cgroups, pinned)
        try:
            for present in (False, True):
                if present:
                    cgroups[mine] = 1
                tool = ToolRun("opensnoop", "--cgroupmap", pinned, "-p", str(os.getpid()))
                tool.wait_for(lambda line: line.startswith("PID    COMM"))
                missing = tmp_path / f"cg-{uuid.uuid4().hex}"
                with pytest.raises(FileNotFoundError):
                    open(missing)
                if present:
                    tool.wait_for(lambda line, path=str(missing): line.endswith(path))
                else:
                    time.sleep(0.5)
                assert tool.stop() == 0, tool.stderr
                assert any(line.endswith(str(missing)) for line in tool.seen) is present, tool.seen
        finally:
            pin.unpin(pinned)
