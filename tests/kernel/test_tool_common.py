"""What every tool offers alike, checked on every tool of ``ebpf.tools.TOOLS``: the hidden
``--ebpf`` listing, one "needs root" wording (without capabilities, and with CAP_BPF and
CAP_PERFMON but no access to tracefs), no source path of ours in any error, a CPU filter that
names no CPU of this machine refused, and ``--cgroupmap`` paths that are not the map BCC pins
refused with the reason.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import uuid
from typing import Iterator, List, Sequence

import pytest

from ebpf.tools import TOOLS

ROOT = pathlib.Path(__file__).resolve().parents[2]
SETPRIV = shutil.which("setpriv")
NO_CAPS = ["--inh-caps=-all", "--bounding-set=-all", "--"]
# an unprivileged user holding only what BPF tracing needs: tracefs (mode 0700) stays closed
BPF_CAPS = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=+bpf,+perfmon",
            "--ambient-caps=+bpf,+perfmon", "--"]
# what makes each tool end by itself after attaching
QUICK = {"opensnoop": ["-d", "1"], "execsnoop": [], "exitsnoop": [], "softirqs": ["1", "1"], "hardirqs": ["1", "1"],
         "biolatency": ["1", "1"], "runqlat": ["1", "1"], "syscount": ["-d", "1"]}


def tool(name: str, args: Sequence[str], prefix: Sequence[str] = (), timeout: float = 60) -> \
        subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([*prefix, sys.executable, "-m", f"ebpf.tools.{name}", *args], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_every_tool_is_covered_here() -> None:
    assert set(QUICK) == set(TOOLS)


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_tool_prints_its_programs_with_ebpf(name: str) -> None:
    """BCC's hidden --ebpf: the programs (here, their assembly), nothing attached, exit 0."""
    run = tool(name, ["--ebpf"])
    assert run.returncode == 0 and run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("# ") and "\texit" in lines, run.stdout[:500]
    assert "usage" not in run.stdout and "Tracing" not in run.stdout and "Hit Ctrl-C" not in run.stdout
    assert "--ebpf" not in tool(name, ["--help"]).stdout  # hidden, as BCC's


@pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) drops capabilities")
@pytest.mark.parametrize("name", sorted(TOOLS))
def test_without_capabilities_every_tool_says_the_same_line(name: str) -> None:
    assert SETPRIV is not None
    run = tool(name, QUICK[name], prefix=[SETPRIV, *NO_CAPS])
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (f"ebpf {name}: error: needs root: loading eBPF programs takes CAP_SYS_ADMIN, "
                          "or CAP_BPF and CAP_PERFMON\n")


def _nobody_can_run_python() -> bool:
    """The unprivileged runs need this interpreter and checkout readable by nobody."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return False
    if SETPRIV is None:
        return False
    probe = subprocess.run([SETPRIV, f"--reuid={nobody.pw_uid}", "--clear-groups", "--", sys.executable, "-c",
                            "import ebpf.tools"], cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)),
                           capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def as_nobody() -> List[str]:
    if not _nobody_can_run_python():
        pytest.skip("user nobody cannot run this interpreter on this checkout")
    assert SETPRIV is not None
    return [SETPRIV, *BPF_CAPS]


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_with_bpf_capabilities_but_no_tracefs_the_cause_is_named(name: str, as_nobody: List[str]) -> None:
    """CAP_BPF and CAP_PERFMON load programs, but tracefs is root's (mode 0700): the tools that
    need its tracepoints say "needs root" and why, not that the kernel lacks them; the others
    run. No message shows a path of our sources."""
    mode = os.stat("/sys/kernel/tracing").st_mode & 0o777 if os.path.isdir("/sys/kernel/tracing/events") else 0
    if mode & 0o005:
        pytest.skip("tracefs is readable by others here")
    run = tool(name, QUICK[name], prefix=as_nobody, timeout=60) if name not in ("execsnoop", "exitsnoop") else \
        _interrupted(name, as_nobody)
    assert "/ebpf/" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert "CONFIG_FTRACE_SYSCALLS" not in run.stderr and "no tracepoint" not in run.stderr, run.stderr
    if name in ("opensnoop", "execsnoop", "syscount"):  # syscall tracepoints exist only in tracefs
        assert run.returncode == 1 and run.stdout == ""
        (line,) = run.stderr.splitlines()
        assert line.startswith(f"ebpf {name}: error: needs root: the tracepoint ") and "tracefs" in line, line
        assert "mode 0700" in line
    else:
        assert run.returncode == 0, run.stderr


def _interrupted(name: str, prefix: List[str]) -> subprocess.CompletedProcess:
    """The event tools run until stopped: stop them after a second (or see them fail)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*prefix, sys.executable, "-m", f"ebpf.tools.{name}"], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=6)
    except subprocess.TimeoutExpired:
        proc.send_signal(2)
        out, err = proc.communicate(timeout=30)
        return subprocess.CompletedProcess(proc.args, 0 if proc.returncode == 0 else proc.returncode, out, err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("name", ["softirqs", "hardirqs"])
def test_a_cpu_filter_naming_no_cpu_is_an_error(name: str) -> None:
    from ebpf.maps.cpus import possible_cpus

    missing = max(possible_cpus()) + 97
    run = tool(name, ["-c", str(missing), "1", "1"])
    assert run.returncode == 1 and run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"ebpf {name}: error: no CPU {missing} on this machine (its CPUs are 0"), line
    run = tool(name, ["-c", str(max(possible_cpus())), "1", "1"])  # the last CPU is one
    assert run.returncode == 0, run.stderr


@pytest.fixture
def pinned_array() -> Iterator[str]:
    from ebpf.maps.spec import MapSpec
    from ebpf.pin import ensure_bpffs

    path = os.path.join(ensure_bpffs(), f"ebpf-test-{uuid.uuid4().hex[:12]}")
    with MapSpec("notcgroups", "array", key="u32", value="u64", max_entries=4).create() as m:
        m.pin(path)
    try:
        yield path
    finally:
        os.unlink(path)


@pytest.mark.parametrize("name", ["opensnoop", "execsnoop"])
def test_cgroupmap_must_be_a_pinned_hash_of_cgroup_ids(name: str, tmp_path: pathlib.Path,
                                                       pinned_array: str) -> None:
    plain = tmp_path / "not-a-map"
    plain.write_text("")
    run = tool(name, ["--cgroupmap", str(plain)])
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (f"ebpf {name}: error: --cgroupmap: {plain} is not a pinned BPF object: it is not "
                          "on a bpf filesystem (bpffs)\n")
    run = tool(name, ["--mntnsmap", str(tmp_path / "absent")])
    assert run.returncode == 1 and "no such file" in run.stderr and "needs root" not in run.stderr, run.stderr
    run = tool(name, ["--cgroupmap", pinned_array])
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == (f"ebpf {name}: error: --cgroupmap: the map pinned at {pinned_array} is an array map "
                          "with 4-byte keys and 8-byte values; --cgroupmap needs a hash map with 8-byte keys "
                          "and 8-byte values\n")
