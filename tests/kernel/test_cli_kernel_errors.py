"""`ebpf asm --attach` failures that only the kernel can produce: one line, status 1."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import ebpf


def ebpf_cli(*args: str, prefix: tuple = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "ebpf", *args], capture_output=True, text=True,
                          timeout=60)


def test_verifier_rejection(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "noret.s"
    src.write_text("r1 = 1\nexit\n")  # r0 never set
    res = ebpf_cli("asm", str(src), "--attach", "tracepoint:syscalls:sys_enter_getpid", "-d", "0")
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1, res.stderr
    assert "the verifier rejected program 'noret': R0 !read_ok" in res.stderr, res.stderr
    assert "program program" not in res.stderr
    assert "at instruction 1: exit" in res.stderr
    assert res.stderr.rstrip().endswith("(the whole verifier log: --log)"), res.stderr


def test_verifier_log_on_stderr(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "noret.s"
    src.write_text("r1 = 1\nexit\n")
    res = ebpf_cli("asm", str(src), "--attach", "tracepoint:syscalls:sys_enter_getpid", "-d", "0", "--log")
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert any(ln.startswith("0: (b7) r1 = 1") for ln in lines) and "R0 !read_ok" in lines, res.stderr
    assert lines[-1].startswith("ebpf asm: error: ") and "the verifier rejected program 'noret'" in lines[-1]


def test_verifier_log_to_a_file(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "noret.s"
    src.write_text("r1 = 1\nexit\n")
    log = tmp_path / "verifier.log"
    res = ebpf_cli("asm", str(src), "--load", "--type", "socket_filter", "--log", str(log), "--log-level", "2")
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert f"(verifier log in {log})" in res.stderr
    assert "R0 !read_ok" in log.read_text() and "1: (95) exit" in log.read_text()


def test_verifier_log_of_an_accepted_program(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "ok.s"
    src.write_text("r0 = 0\nexit\n")
    res = ebpf_cli("asm", str(src), "--load", "--type", "socket_filter", "--log", "--log-level", "2")
    assert res.returncode == 0, res.stderr
    assert "1: (95) exit" in res.stderr and "processed 2 insns" in res.stderr
    assert "verifier accepted ok (socket_filter, 2 instructions)" in res.stdout
    log = tmp_path / "v.log"
    res = ebpf_cli("asm", str(src), "--attach", "tracepoint:syscalls:sys_enter_getpid", "-d", "0",
                   "--log", str(log))
    assert res.returncode == 0, res.stderr
    assert "processed 2 insns" in log.read_text() and res.stderr == ""


def test_log_needs_a_load(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "ok.s"
    src.write_text("r0 = 0\nexit\n")
    res = ebpf_cli("asm", str(src), "-o", str(tmp_path / "o.bin"), "--log")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "--log needs --load or --attach" in res.stderr
    res = ebpf_cli("asm", str(src), "--load")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "--load needs --type" in res.stderr


def test_missing_tracepoint(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "ok.s"
    src.write_text("r0 = 0\nexit\n")
    res = ebpf_cli("asm", str(src), "--attach", "tracepoint:syscalls:sys_enter_nosuchcall", "-d", "0")
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert "no tracepoint syscalls:sys_enter_nosuchcall" in res.stderr


def test_unprivileged_run(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "ok.s"
    src.write_text(".map m type=hash key=4 value=8 max_entries=4\nr0 = 0\nexit\n")
    pkg_root = str(pathlib.Path(ebpf.__file__).parents[1])
    res = subprocess.run(
        # uid 0 but no capabilities at all: what an unprivileged user meets
        ["setpriv", "--securebits=+noroot,+noroot_locked", "--bounding-set=-all", "--inh-caps=-all",
         "env", f"PYTHONPATH={pkg_root}", sys.executable, "-m", "ebpf", "asm", str(src),
         "--attach", "tracepoint:syscalls:sys_enter_getpid", "-d", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 1, res
    assert res.stderr.count("\n") == 1, res.stderr
    assert "needs root or CAP_BPF+CAP_PERFMON" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
