"""The ``--exec`` command's lifecycle (ebpf.tools._command) without the kernel: real forks and
execs of small commands; the tools' kernel tests (tests/kernel/test_tool_exec.py) check the same
through opensnoop and syscount."""

from __future__ import annotations

import os
import pathlib
import signal
import time

import pytest

from ebpf.errors import EbpfError
from ebpf.tools._command import Command, NoCommand, command_for
from ebpf.tools.runtime import Stopper, _cpu_ranges, check_cpu


@pytest.fixture(autouse=True)
def keep_signal_handlers() -> object:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
    yield None
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_a_command_that_cannot_be_executed_raises_and_is_reaped(tmp_path: pathlib.Path) -> None:
    with Command([str(tmp_path / "missing"), "x"]) as cmd:
        with pytest.raises(EbpfError, match=r"^cannot execute .*/missing: No such file or directory$"):
            cmd.start()
        assert gone(cmd.pid)


def test_a_command_never_started_exits_without_running(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "ran"
    with Command(["sh", "-c", f"touch {marker}"]) as cmd:
        pid = cmd.pid
    assert gone(pid) and not marker.exists()  # the tool failed before attaching: nothing ran untraced


@pytest.mark.parametrize("script, status", [("exit 0", 0), ("exit 7", 7), ("kill -TERM $$", 128 + 15)])
def test_the_status_of_a_command_that_ends_first(script: str, status: int) -> None:
    stopper = Stopper()
    with Command(["sh", "-c", script]) as cmd:
        cmd.start()
        cmd.watch(stopper)
        assert stopper.wait(30)  # SIGCHLD stopped it
        cmd.finish()
    assert cmd.ended_first and cmd.exit_status() == status


def test_a_command_still_running_when_the_tool_stops_gets_its_signal_and_is_reaped() -> None:
    stopper = Stopper()
    with Command(["sleep", "60"]) as cmd:
        cmd.start()
        cmd.watch(stopper)
        os.kill(os.getpid(), signal.SIGTERM)  # the tool is told to stop
        assert stopper.wait(5) and stopper.signal == signal.SIGTERM
        started = time.monotonic()
        cmd.finish()
        assert time.monotonic() - started < 1.5  # sleep dies of SIGTERM, no SIGKILL wait
    assert gone(cmd.pid) and not cmd.ended_first and cmd.exit_status() == 0
    assert os.WIFSIGNALED(cmd.status or 0) and os.WTERMSIG(cmd.status or 0) == signal.SIGTERM


def test_a_command_that_ignores_the_signal_is_killed() -> None:
    with Command(["sh", "-c", "trap '' INT; echo ready; sleep 60 & wait"]) as cmd:
        cmd.start()
        time.sleep(0.3)
        cmd.finish(signal.SIGINT)
    assert gone(cmd.pid) and os.WTERMSIG(cmd.status or 0) == signal.SIGKILL


def test_sigpipe_is_back_to_default_in_the_command() -> None:
    r, w = os.pipe()
    os.close(r)
    os.set_inheritable(w, True)  # the command writes to a pipe nobody reads
    with Command(["bash", "-c", f"exec yes >&{w}"]) as cmd:
        cmd.start()
        deadline = time.monotonic() + 10
        while cmd.running and time.monotonic() < deadline:
            time.sleep(0.01)
    os.close(w)
    assert os.WIFSIGNALED(cmd.status or 0) and os.WTERMSIG(cmd.status or 0) == signal.SIGPIPE


def test_without_exec_nothing_is_forked() -> None:
    assert isinstance(command_for(None), NoCommand) and isinstance(command_for([]), NoCommand)
    with command_for(None) as none:
        none.start()
        assert none.pid == 0 and none.exit_status() == 0


def test_cpu_filter_names_the_cpus_there_are() -> None:
    assert _cpu_ranges([0, 1]) == "0-1" and _cpu_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8" and _cpu_ranges([3]) == "3"
    check_cpu(None)
    check_cpu(0)
    with pytest.raises(EbpfError, match=r"^no CPU 4096 on this machine \(its CPUs are 0"):
        check_cpu(4096)
