"""``--exec CMD`` in every tool that offers it (ebpf.tools._command): a command that cannot be
executed is one line and exit status 1 before any header; the command is signalled and reaped
when the tool is stopped (never left running as an orphan); when it ends first, the tool exits
with its status (128+N for a signal N).
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import List

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXEC_TOOLS = ["opensnoop", "syscount"]


def start(name: str, args: List[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", f"ebpf.tools.{name}", *args], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_tools_with_exec_are_these() -> None:
    from ebpf.tools import TOOLS

    with_exec = []
    for name in TOOLS:
        run = subprocess.run([sys.executable, "-m", f"ebpf.tools.{name}", "--help"], cwd=str(ROOT),
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
        if "--exec" in run.stdout:
            with_exec.append(name)
    assert sorted(with_exec) == EXEC_TOOLS


@pytest.mark.parametrize("name", EXEC_TOOLS)
def test_a_command_that_cannot_run_is_one_line_and_status_1(name: str, tmp_path: pathlib.Path) -> None:
    missing = str(tmp_path / "no-such-command")
    notexec = tmp_path / "not-executable"
    notexec.write_text("#!/bin/sh\n")
    for cmd, reason in ((missing, "No such file or directory"), (str(notexec), "Permission denied")):
        proc = start(name, ["--exec", cmd, "arg"])
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, (out, err)
        assert out == ""  # no header, no banner
        assert err == f"ebpf {name}: error: cannot execute {cmd}: {reason}\n"


@pytest.mark.parametrize("name", EXEC_TOOLS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_command_is_signalled_and_reaped_when_the_tool_stops(name: str, sig: int,
                                                                 tmp_path: pathlib.Path) -> None:
    pidfile = tmp_path / "pid"
    proc = start(name, ["--exec", "sh", "-c", f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 60"])
    deadline = time.monotonic() + 60
    while not pidfile.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    child_gone = False
    try:
        time.sleep(0.2)  # the sh has exec'd sleep
        proc.send_signal(sig)  # to the tool alone, not to its process group
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        child_gone = not os.path.exists(f"/proc/{pid}")  # reaped by the tool: no orphan, no zombie
        assert child_gone, f"the command {pid} outlived the tool"
    finally:
        if not child_gone:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("name", EXEC_TOOLS)
def test_the_tool_exits_with_the_status_of_a_command_that_ends_first(name: str) -> None:
    for script, status in (("exit 3", 3), ("exit 0", 0), ("kill -USR1 $$", 128 + signal.SIGUSR1)):
        proc = start(name, ["--exec", "sh", "-c", script])
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == status, (script, err)
        assert err == "", err
