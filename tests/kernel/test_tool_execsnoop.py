"""execsnoop against the real kernel: execs made here are found in the tool's output."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import uuid
from typing import Any, List

import pytest
from toolrun import ToolRun

ROOT = pathlib.Path(__file__).resolve().parents[2]


def unique_true(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of /bin/true under a name nobody else runs."""
    path = tmp_path / f"snp{uuid.uuid4().hex[:10]}"
    shutil.copy("/bin/true", path)
    path.chmod(0o755)
    return path


def columns(line: str) -> List[str]:
    return line.split(None, 4)  # PCOMM PID PPID RET ARGS


def my_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def test_exec_of_a_unique_command_and_failed_execs_hidden(tmp_path: pathlib.Path) -> None:
    prog = unique_true(tmp_path)
    marker = uuid.uuid4().hex
    noexec = tmp_path / "not-executable"
    noexec.write_text("#!/bin/sh\n")
    tool = ToolRun("execsnoop")
    tool.wait_for(lambda line: line.startswith("PCOMM            PID     PPID    RET ARGS"))
    with pytest.raises(PermissionError):
        subprocess.run([str(noexec), "fail-" + marker])
    child = subprocess.Popen([str(prog), "alpha", "two words", marker])
    assert child.wait() == 0
    line = tool.wait_for(lambda line: line.endswith(marker))
    assert tool.stop() == 0
    assert "Traceback" not in tool.stderr, tool.stderr
    assert columns(line) == [prog.name[:15], str(child.pid), str(os.getpid()), "0",
                             f"{prog} alpha two words {marker}"]
    assert not any("fail-" + marker in seen for seen in tool.seen)  # -x not given


def test_failed_execs_with_x(tmp_path: pathlib.Path) -> None:
    marker = uuid.uuid4().hex
    noexec = tmp_path / "not-executable"
    noexec.write_text("#!/bin/sh\n")
    missing = tmp_path / "no-such-program"
    tool = ToolRun("execsnoop", "-x")
    tool.wait_for(lambda line: line.startswith("PCOMM "))
    with pytest.raises(PermissionError):
        subprocess.run([str(noexec), "eacces-" + marker])
    with pytest.raises(FileNotFoundError):
        subprocess.run([str(missing), "enoent-" + marker])
    denied = columns(tool.wait_for(lambda line: line.endswith("eacces-" + marker)))
    absent = columns(tool.wait_for(lambda line: line.endswith("enoent-" + marker)))
    assert tool.stop(signal.SIGTERM) == 0
    assert denied[2] == absent[2] == str(os.getpid())  # the forked child's parent: us
    assert denied[3] == "-13" and denied[4] == f"{noexec} eacces-{marker}"  # EACCES
    assert absent[3] == "-2" and absent[4] == f"{missing} enoent-{marker}"  # ENOENT


def test_json_with_quotes_uid_parent_comm_and_cpu(tmp_path: pathlib.Path) -> None:
    prog = unique_true(tmp_path)
    marker = uuid.uuid4().hex
    tool = ToolRun("execsnoop", "--json", "-U", "-M", "-C", "-t", "-q")
    pids: List[int] = []

    def poke() -> None:  # no header in JSON mode: exec until the tool reports one
        child = subprocess.Popen([str(prog), 'say "hi"', marker])
        child.wait()
        pids.append(child.pid)

    line = tool.wait_for(lambda line: marker in line, poke=poke)
    assert tool.stop() == 0
    rec = json.loads(line)
    assert list(rec) == ["time_s", "uid", "pcomm", "pid", "ppcomm", "ppid", "cpu", "ret", "args"]
    assert rec["pid"] in pids and rec["ppid"] == os.getpid() and rec["ret"] == 0
    assert rec["pcomm"] == prog.name[:15] and rec["ppcomm"] == my_comm()[:15]
    assert rec["uid"] == os.getuid() and 0 <= rec["cpu"] < os.cpu_count()  # type: ignore[operator]
    assert rec["args"] == [str(prog), 'say "hi"', marker]  # quoting is for the text only
    assert rec["time_s"] >= 0


def test_parent_filter_and_max_args(tmp_path: pathlib.Path) -> None:
    prog = unique_true(tmp_path)
    marker = uuid.uuid4().hex
    tool = ToolRun("execsnoop", "-P", str(os.getpid()), "--max-args", "3", "-q")
    tool.wait_for(lambda line: line.startswith("PCOMM "))
    # a grandchild (its parent is sh): filtered out in the kernel
    subprocess.run(["/bin/sh", "-c", f"{prog} grandchild-{marker}; exit 0"], check=True)
    child = subprocess.Popen([str(prog), "a", "b", "c", "d", marker])
    child.wait()
    line = tool.wait_for(lambda line: line.startswith(prog.name[:15]) and str(child.pid) in line)
    assert tool.stop() == 0
    assert columns(line)[4] == f'"{prog}" "a" "b" "..."'  # file name + 2 arguments, then "..."
    assert not any(f'"{prog}" "grandchild-' in seen for seen in tool.seen)  # the sh line itself is shown
    assert all(columns(seen)[2] == str(os.getpid()) for seen in tool.seen[1:]), tool.seen


def test_mntnsmap_filter(tmp_path: pathlib.Path) -> None:
    """BCC's --mntnsmap: only tasks whose mount namespace (inode number) is in the pinned map."""
    from ebpf import pin
    from ebpf.lang.types import u32, u64
    from ebpf.maps.spec import MapSpec

    prog = unique_true(tmp_path)
    marker = uuid.uuid4().hex
    pinned = f"/sys/fs/bpf/execsnoop-test-{uuid.uuid4().hex[:8]}"
    with MapSpec("mount_ns_set", "hash", key=u64, value=u32, max_entries=1024).create() as namespaces:
        namespaces[os.stat("/proc/self/ns/mnt").st_ino] = 1
        pin.pin(namespaces, pinned)
        try:
            tool = ToolRun("execsnoop", "--mntnsmap", pinned)
            tool.wait_for(lambda line: line.startswith("PCOMM "))
            subprocess.run([str(prog), marker], check=True)
            line = tool.wait_for(lambda line: line.endswith(marker))
            assert tool.stop() == 0, tool.stderr
        finally:
            pin.unpin(pinned)
    assert columns(line)[3:] == ["0", f"{prog} {marker}"]
    bad = ToolRun("execsnoop", "--mntnsmap", pinned)  # gone now: one clear line, status 1
    assert bad.proc.wait(15) == 1
    bad.stop()
    assert bad.stderr == f"ebpf execsnoop: error: --mntnsmap: {pinned}: no such file (no object is pinned there)\n"
    assert "Traceback" not in bad.stderr


def test_perf_buffer_path_in_process(tmp_path: pathlib.Path) -> None:
    """Kernels without ring buffers get a perf buffer: the same record, the same fields."""
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools import execsnoop
    from ebpf.tools.runtime import Stopper

    prog = unique_true(tmp_path)
    marker = uuid.uuid4().hex
    coll, event = execsnoop.build(False, 4)
    got: List[Any] = []
    old = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with coll.load(targ_ppid=os.getpid()) as live:
            loop = snoop.EventLoop(live, event, got.append, ring=False, pages=8)
            try:
                live.attach()
                child = subprocess.Popen([str(prog), "x", marker])
                child.wait()
                loop.run(Stopper(2.0), done=lambda: any(e.pid == child.pid for e in got))
                snoop.detach(live)
                loop.drain()
            finally:
                loop.close()
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])
    ev = next(e for e in got if e.pid == child.pid)
    assert (ev.ppid, ev.retval, ev.comm) == (os.getpid(), 0, prog.name[:15].encode())
    assert ev.args[:ev.args_count] == [str(prog).encode(), b"x", marker.encode()]
