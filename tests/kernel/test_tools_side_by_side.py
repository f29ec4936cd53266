"""Our opensnoop and execsnoop beside libbpf-tools' (Debian package libbpf-tools, /usr/sbin) on
the same workload, at the same time: both report the workload's events with the same fields.

libbpf-tools 0.26 as packaged traces only openat() in its opensnoop, which is what the workload
uses; both execsnoops head their table ``PCOMM PID PPID RET ARGS`` (theirs with a trailing
space on every line): the comparison is on the parsed fields.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import uuid
from typing import Callable, Dict, List, Set, Tuple

import pytest
from toolrun import ToolRun

ROOT = pathlib.Path(__file__).resolve().parents[2]
C_OPENSNOOP = "/usr/sbin/opensnoop"
C_EXECSNOOP = "/usr/sbin/execsnoop"


def need(path: str) -> None:
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is missing: install the Debian package libbpf-tools")


def both(ours: ToolRun, theirs: ToolRun, header: Callable[[str], bool]) -> None:
    for tool in (ours, theirs):
        tool.wait_for(header)


def stop_both(ours: ToolRun, theirs: ToolRun) -> None:
    for tool in (ours, theirs):
        tool.proc.send_signal(signal.SIGINT)
    for tool in (ours, theirs):
        rc = tool.stop()
        assert rc in (0, 130), (tool.proc.args, rc, tool.stderr)


def open_events(lines: List[str], token: str) -> Set[Tuple[str, ...]]:
    """(pid, comm, fd, err, path) of the lines about paths containing ``token``."""
    out = set()
    for line in lines:
        parts = line.split(None, 4)
        if len(parts) == 5 and token in parts[4]:
            out.add(tuple(parts))
    return out


def test_opensnoop_side_by_side(tmp_path: pathlib.Path) -> None:
    need(C_OPENSNOOP)
    token = uuid.uuid4().hex
    files = [tmp_path / f"{token}-{i}" for i in range(3)]
    for f in files:
        f.write_text("")
    missing = tmp_path / f"{token}-missing"
    ours, theirs = ToolRun("opensnoop"), ToolRun(C_OPENSNOOP)
    try:
        both(ours, theirs, lambda line: line.split()[:2] == ["PID", "COMM"])
        subprocess.run(["/bin/cat", *map(str, files), str(missing)], capture_output=True)
        for f in files:  # and from this process
            os.close(os.open(f, os.O_RDONLY))
        with pytest.raises(FileNotFoundError):
            open(missing)
        last = f"{os.getpid()}"
        for tool in (ours, theirs):
            tool.wait_for(lambda line: line.startswith(last) and line.endswith(str(missing)))
    finally:
        stop_both(ours, theirs)
    mine, libbpf = open_events(ours.seen, token), open_events(theirs.seen, token)
    assert len(mine) == 8, mine  # 3 files + 1 missing, by cat and by us
    assert mine == libbpf
    assert {(e[3], e[4]) for e in mine if e[2] == "-1"} == {("2", str(missing))}


def exec_events(lines: List[str], token: str) -> Dict[str, Tuple[str, ...]]:
    """pid -> (comm, pid, ppid, ret, args) of the lines whose arguments contain ``token``."""
    out = {}
    for line in lines:
        parts = line.rstrip().split(None, 4)
        if len(parts) == 5 and token in parts[4]:
            out[parts[1] + ":" + parts[3]] = tuple(parts)
    return out


def test_execsnoop_side_by_side(tmp_path: pathlib.Path) -> None:
    need(C_EXECSNOOP)
    token = uuid.uuid4().hex
    prog = tmp_path / f"snp{token[:10]}"
    shutil.copy("/bin/true", prog)
    prog.chmod(0o755)
    noexec = tmp_path / "not-executable"
    noexec.write_text("#!/bin/sh\n")
    ours, theirs = ToolRun("execsnoop", "-x"), ToolRun(C_EXECSNOOP, "-x")
    pids = []
    try:
        both(ours, theirs, lambda line: line.split()[:3] == ["PCOMM", "PID", "PPID"])
        for i in range(3):
            child = subprocess.Popen([str(prog), f"arg{i}", "two words", token])
            child.wait()
            pids.append(child.pid)
        with pytest.raises(PermissionError):
            subprocess.run([str(noexec), token])
        subprocess.run(["/bin/sh", "-c", f"{prog} from-sh {token}; exit 0"], check=True)
        for tool in (ours, theirs):
            tool.wait_for(lambda line: f"from-sh {token}" in line and line.split()[0] == prog.name[:15])
    finally:
        stop_both(ours, theirs)
    mine, libbpf = exec_events(ours.seen, token), exec_events(theirs.seen, token)
    assert {e[1] for e in mine.values()} >= {str(p) for p in pids}
    assert any(e[3] == "-13" for e in mine.values())
    assert len(mine) == 3 + 1 + 2, mine  # 3 runs, 1 EACCES, sh and the program it starts
    assert mine == libbpf
