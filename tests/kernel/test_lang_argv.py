"""User-space pointer arrays: ``ctx.argv[i]`` of sys_enter_execve, read as bpftrace's ``str(args.argv[i])``.

``argv`` is a ``const char *const *`` in user memory: indexing it reads the pointer with
bpf_probe_read_user, and ``L.str(p)`` / ``L.probe_read_user_str(buf, p)`` read the string.
The execs are real, with argument lists the test chooses.
"""

from __future__ import annotations

import os
import subprocess

from ebpf import lang as L
from ebpf.lang import Struct, char, u32


class Exec(Struct):
    argc: u32
    marked: u32
    dash: u32
    first: char[64]
    args: char[24][6]


def test_argv_is_read_pointer_by_pointer_and_string_by_string() -> None:
    coll = L.Collection("argv")
    out = coll.hash_map("out", key=u32, value=Exec, max_entries=64)
    me = coll.rodata("me", u32, 0)

    @coll.tracepoint("syscalls/sys_enter_execve")
    def enter(ctx):
        if L.current_task().real_parent.tgid != me:
            return 0
        e = Exec()
        e.first = L.str(ctx.argv[0])               # str(*args.argv), bpftrace's idiom
        if L.str(ctx.argv[1], 16) == "--marker":   # a filter on an argument
            e.marked = 1
        e.dash = ctx.argv[1][0] == 45              # one user char, read through the pointer
        for i in range(6):                         # a run-time index: one user read per pointer
            p = ctx.argv[i]
            if p is None:
                break
            L.probe_read_user_str(e.args[i], p)
            e.argc = i + 1
        out[L.pid()] = e
        return 0

    prog = "argv-test"  # argv[0]; the program run is /bin/true
    runs = {
        "marked": [prog, "--marker", "b" * 40, ""],
        "plain": [prog, "--markers"],
        "many": [prog, "1", "2", "3", "4", "5", "6", "7"],
    }
    with coll.load(me=os.getpid()) as live:
        live.attach()
        procs = {name: subprocess.Popen(argv, executable="/bin/true") for name, argv in runs.items()}
        pids = {name: proc.pid for name, proc in procs.items()}
        for proc in procs.values():
            proc.wait()
        got = {name: live.maps["out"].get(pid) for name, pid in pids.items()}

    marked, plain, many = got["marked"], got["plain"], got["many"]
    assert marked.first == prog.encode()
    assert (marked.marked, marked.argc, marked.dash, plain.dash, many.dash) == (1, 4, 1, 1, 0)
    assert list(marked.args[:4]) == [prog.encode(), b"--marker", b"b" * 23, b""]
    assert (plain.marked, plain.argc, list(plain.args[:2])) == (0, 2, [prog.encode(), b"--markers"])
    assert many.argc == 6 and list(many.args) == [prog.encode(), b"1", b"2", b"3", b"4", b"5"]
