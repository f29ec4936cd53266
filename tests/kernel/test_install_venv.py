"""What the README's ``pip install .`` gives a new user: a fresh venv with the package and its
declared dependencies only (no test extras, pip's configured index), in which every lazily
imported dependency path runs against the real kernel.

A dependency imported only on some path (pyelftools for symbols and USDT, construct for USDT
notes, pyroute2 for classic tc) fails only when that path runs, so each path is run here:
cffi (bpf() through the ABI module generated at build time), pyelftools (a uprobe on a function
found by name in a gcc-built binary), construct and pyelftools (USDT note parsing and a USDT
probe firing), pyroute2 (a cls_bpf filter on ``lo`` in a private network namespace, counting
packets), and the ``ebpf`` entry point running a tool that reports an event.

The venv is built once per test session (~15 s) from a copy of the working tree, so that the
build does not write into the checkout.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(__file__).parent / "data"
RUNS = 3

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 USDT register offsets")

# Runs inside the venv (cwd outside the checkout, no PYTHONPATH): argv[1] is the probe target.
PATHS = r'''
import os, socket, subprocess, sys

import ebpf
assert ebpf.__file__.startswith(sys.prefix), f"ebpf imported from {ebpf.__file__}, not the venv"
from ebpf import asm as A
from ebpf.attach.tc import attach_tc
from ebpf.attach.uprobe import attach_uprobe
from ebpf.attach.usdt import attach_usdt, find_usdt
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec

target, runs = sys.argv[1], int(sys.argv[2])


def counter(name, kind):
    return ProgramSpec(name, kind, [A.ld_map_value(A.R1, "hits", 0), A.mov64(A.R2, 1),
                                    A.atomic_add(8, A.R1, A.R2, 0), A.mov64(A.R0, 0), A.exit_()])


def run_target():
    out = subprocess.run([target, str(runs)], input="go\n", capture_output=True, text=True, check=True).stdout
    return dict(kv.split("=") for kv in out.split())


with MapSpec("hits", "array", key="u32", value="u64", max_entries=1).create() as hits:
    hits[0] = 7                                   # cffi: BPF_MAP_UPDATE_ELEM / LOOKUP_ELEM
    assert hits[0] == 7
    hits[0] = 0
    with load_program(counter("up", "kprobe"), {"hits": hits}) as prog:
        with attach_uprobe(prog, target, "target_add"):   # pyelftools: the symbol's file offset
            run_target()
    print("uprobe", hits[0])
    hits[0] = 0
    sites = find_usdt(target, "ebpf_test", "tick")        # construct: the .note.stapsdt layout
    assert "construct" in sys.modules and "elftools" in sys.modules
    with load_program(counter("usdt", "kprobe"), {"hits": hits}) as prog:
        with attach_usdt(prog, target, "ebpf_test", "tick"):
            sema = run_target()["sema"]
    print("usdt", hits[0], sema, sites[0].args_text)
    hits[0] = 0
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with load_program(counter("tc", "sched_cls"), {"hits": hits}) as prog:
        with attach_tc(prog, "lo", "ingress", mode="cls_bpf"):     # pyroute2: clsact + cls_bpf
            assert "pyroute2" in sys.modules
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                rx.bind(("127.0.0.1", 0))
                rx.settimeout(5)
                for _ in range(runs):
                    tx.sendto(b"x", rx.getsockname())
                    rx.recv(8)
    print("tc", hits[0])
'''


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A venv holding ``pip install <copy of the checkout>`` and nothing else."""
    base = tmp_path_factory.mktemp("venv")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", ".benchmarks", "_ffi.py"))
    env = clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, env=env)
    res = subprocess.run([str(base / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
                         capture_output=True, text=True, env=env, cwd=base)
    assert res.returncode == 0, res.stdout + res.stderr
    return base / "venv"


def clean_env() -> dict:
    """Our environment without what would let the venv see the checkout or our site-packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the probe target")
    out = str(tmp_path_factory.mktemp("venv_target") / "probe_target")
    subprocess.run(["gcc", "-O0", "-o", out, str(DATA / "probe_target.c")], check=True)
    return out


def test_declared_dependencies_only(venv: pathlib.Path) -> None:
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                         capture_output=True, text=True, env=clean_env())
    names = {line.split("==")[0].lower() for line in res.stdout.split()}
    assert not names & {"pytest", "hypothesis", "mypy", "ruff"}, names


def test_every_lazily_imported_dependency_path(venv: pathlib.Path, target: str, tmp_path: pathlib.Path) -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("unshare and ip (util-linux, iproute2) are needed")
    res = subprocess.run(["unshare", "--net", str(venv / "bin" / "python"), "-c", PATHS, target, str(RUNS)],
                         capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    got = dict((line.split()[0], line.split()[1:]) for line in res.stdout.splitlines())
    assert got["uprobe"] == [str(RUNS)]
    assert got["usdt"][:2] == [str(RUNS), "1"]  # fired each time, semaphore set by the kernel
    assert got["tc"] == [str(RUNS)]


def test_entry_point_runs_a_tool(venv: pathlib.Path, target: str, tmp_path: pathlib.Path) -> None:
    """``ebpf opensnoop`` from the venv's bin reports the probe target opening its libraries."""
    tool = subprocess.Popen([str(venv / "bin" / "ebpf"), "opensnoop", "-n", "probe_target", "-d", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=clean_env())
    try:
        assert tool.stdout is not None
        header = tool.stdout.readline()
        assert header.split()[:2] == ["PID", "COMM"], header + tool.communicate()[1]
        start = time.monotonic()
        child = subprocess.run([target, "1"], input="go\n", capture_output=True, text=True)
        assert child.returncode == 0 and time.monotonic() - start < 2.5
        out, err = tool.communicate(timeout=10)
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    assert tool.returncode == 0, err
    assert any(line.split()[1] == "probe_target" and "libc" in line for line in out.splitlines()), out
