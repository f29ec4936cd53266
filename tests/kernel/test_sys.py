"""The kernel boundary on the real kernel: commands, errors and their hints, tracefs mounting."""

from __future__ import annotations

import errno
import os
import pathlib
import struct
import subprocess
import sys

import pytest

import ebpf
from ebpf import asm as A
from ebpf.errors import PermissionDenied, SyscallError
from ebpf.loader import load_program
from ebpf.program import Program, ProgramSpec
from ebpf.sys import bpf, perf
from ebpf.sys.fd import FD
from ebpf.sys.ffi import ffi
from ebpf.uapi import MapType


def returns(value: int, name: str = "ret") -> ProgramSpec:
    return ProgramSpec(name, "socket_filter", [A.mov64(A.R0, value), A.exit_()])


def test_prog_info_and_ids() -> None:
    with load_program(returns(5, "info_me")) as prog:
        info = prog.info()
        assert info["name"] == "info_me" and info["xlated_prog_len"] == 16
        found = []
        next_id = 0
        while True:
            next_id = bpf.prog_get_next_id(next_id)
            if not next_id:
                break
            found.append(next_id)
        assert info["id"] in found
        with Program.from_id(info["id"]) as again:
            assert again.name == "info_me" and again.test_run(bytes(64)).retval == 5
        assert A.decode(prog.xlated()) == [A.mov64(A.R0, 5), A.exit_()]


def test_enable_stats_counts_runs() -> None:
    with load_program(returns(1)) as prog, FD(bpf.enable_stats(0)):
        prog.test_run(bytes(64), repeat=10)
        info = prog.info()
    assert info["run_cnt"] >= 10 and info["run_time_ns"] > 0


def test_btf_load_minimal_blob_and_its_errors() -> None:
    # header (24 bytes) + one INT "int" (16 bytes) + strings "\0int\0"
    types = struct.pack("<IIII", 1, 1 << 24, 4, 32)  # name_off=1, kind INT, size 4, 32 bits
    strings = b"\0int\0"
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    fd, _ = bpf.btf_load(header + types + strings)
    os.close(fd)
    with pytest.raises(SyscallError) as e:
        bpf.btf_load(header[:-4] + struct.pack("<I", 99) + types + strings, log_level=1, log_size=4096)
    assert e.value.command == "BPF_BTF_LOAD" and e.value.errno == errno.EINVAL and e.value.detail


def test_error_carries_command_errno_and_hint() -> None:
    with pytest.raises(SyscallError) as e:
        bpf.map_create(MapType.HASH, 0, 8, 16)  # zero key size
    assert e.value.command == "BPF_MAP_CREATE" and e.value.errno_name == "EINVAL"
    assert "kernel refused this map" in str(e.value)
    with pytest.raises(SyscallError, match="EBADF.*bad file descriptor"):
        bpf.map_update_elem(9999, ffi.new("char[4]"), ffi.new("char[8]"))


def test_perf_event_open_hardware_missing_is_explained() -> None:
    try:
        fd = perf.perf_event_open(perf.PerfType.HARDWARE, 0, pid=0, cpu=-1)
    except SyscallError as e:
        assert e.command == "perf_event_open" and e.hint  # ENOENT here: no hardware PMU
    else:
        os.close(fd)


def test_unprivileged_error_says_what_is_needed() -> None:
    code = ("from ebpf.sys import bpf\nfrom ebpf.errors import PermissionDenied\n"
            "try:\n    bpf.map_create(1, 4, 8, 4)\nexcept PermissionDenied as e:\n    print(e)\n")
    res = subprocess.run(["setpriv", "--securebits=+noroot,+noroot_locked", "--bounding-set=-all",
                          "--inh-caps=-all", sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(pathlib.Path(ebpf.__file__).parents[1])})
    assert "BPF_MAP_CREATE failed: EPERM" in res.stdout and "needs root or CAP_BPF+CAP_PERFMON" in res.stdout, res
    assert issubclass(PermissionDenied, SyscallError)


def test_tracefs_is_mounted_when_absent() -> None:
    """In a private mount namespace without tracefs, the library mounts it, finds events and
    attaches a tracepoint; the mount is visible nowhere in the mount tree, and nothing is left
    mounted once the process ends, whether it exits or is killed with SIGKILL."""
    child = (
        "import os, sys\n"
        "from ebpf import asm as A\n"
        "from ebpf.loader import load_program\n"
        "from ebpf.maps import MapSpec\n"
        "from ebpf.program import ProgramSpec\n"
        "from ebpf.sys import tracefs\n"
        "path = tracefs.tracefs_path()\n"
        "assert 'tracefs' not in open('/proc/self/mountinfo').read()\n"
        "spec = ProgramSpec('tp', 'tracepoint', [A.ld_map_value(A.R1, 'n', 0), A.mov64(A.R2, 1),\n"
        "    A.atomic_add(8, A.R1, A.R2, 0), A.mov64(A.R0, 0), A.exit_()], attach_to='syscalls/sys_enter_getppid')\n"
        "with MapSpec('n', 'array', key='u32', value='u64', max_entries=1).create() as n, \\\n"
        "        load_program(spec, {'n': n}) as prog, prog.attach():\n"
        "    for _ in range(5):\n"
        "        os.getppid()\n"
        "    print(path, tracefs.tracepoint_id('syscalls', 'sys_enter_openat'), n[0] >= 5, flush=True)\n"
        "    if sys.argv[1] == 'kill':\n"
        "        sys.stdin.read()\n"
    )
    code = (
        "import os, signal, subprocess, sys\n"
        "for p in ('/sys/kernel/debug/tracing', '/sys/kernel/tracing'):\n"
        "    subprocess.run(['umount', '-l', p], stderr=subprocess.DEVNULL)\n"
        "assert 'tracefs' not in open('/proc/self/mountinfo').read()\n"
        "for how in ('exit', 'kill'):\n"
        "    c = subprocess.Popen([sys.executable, '-c', sys.argv[1], how], stdin=subprocess.PIPE,\n"
        "                         stdout=subprocess.PIPE, text=True)\n"
        "    print(c.stdout.readline().strip(), flush=True)\n"
        "    if how == 'kill':\n"
        "        c.send_signal(signal.SIGKILL)\n"
        "    assert c.wait() == (0 if how == 'exit' else -signal.SIGKILL)\n"
        "    assert 'tracefs' not in open('/proc/self/mountinfo').read(), how\n"
        "    assert not os.path.exists('/sys/kernel/tracing/events'), how\n"
    )
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", code, child],
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(pathlib.Path(ebpf.__file__).parents[1])})
    assert res.returncode == 0, res.stderr
    for line in res.stdout.splitlines():
        path, tp_id, counted = line.split()
        assert path.startswith("/proc/self/fd/") and int(tp_id) > 0 and counted == "True"
    assert len(res.stdout.splitlines()) == 2


def test_disasm_by_id_cli() -> None:
    spec = ProgramSpec("disasm_me", "socket_filter", [A.mov64(A.R0, 3), A.add64(A.R0, 4), A.exit_()])
    with load_program(spec) as prog:
        res = subprocess.run([sys.executable, "-m", "ebpf", "disasm", "--id", str(prog.id)],
                             capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert [ln.strip() for ln in res.stdout.splitlines()] == ["r0 = 3", "r0 += 4", "exit"]
