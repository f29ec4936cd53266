"""opensnoop in the DSL: trace openat() calls with pid, comm, return value and file name.

The kernel side is the two functions below, compiled to eBPF in-process (no clang): the entry
tracepoint remembers the file name pointer per thread, the exit tracepoint sends one ring
buffer event per completed call. Run as root::

    python examples/opensnoop_dsl.py [--pid PID] [--duration SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ebpf import lang as L
from ebpf.cli.main import run_guarded
from ebpf.lang import Struct, char, i32, u32, u64


class Event(Struct):
    ts: u64
    pid: u32
    uid: u32
    ret: i32
    flags: i32
    comm: char[16]
    fname: char[255]


class Args(Struct):
    fname: u64  # user-space pointer, read at exit
    flags: i32


tool = L.Collection("opensnoop")
start = tool.hash_map("start", key=u32, value=Args, max_entries=10240)
events = tool.ringbuf("events", size=256 * 1024)
targ_tgid = tool.rodata("targ_tgid", u32, 0)  # 0: every process (a constant to the verifier)


@tool.tracepoint("syscalls/sys_enter_openat")
def enter_openat(ctx):
    pid_tgid = L.get_current_pid_tgid()
    if targ_tgid and u32(pid_tgid >> 32) != targ_tgid:
        return 0
    start[u32(pid_tgid)] = Args(fname=ctx.filename, flags=ctx.flags)
    return 0


@tool.tracepoint("syscalls/sys_exit_openat")
def exit_openat(ctx):
    pid_tgid = L.get_current_pid_tgid()
    tid = u32(pid_tgid)
    ap = start.get(tid)
    if ap is None:
        return 0  # missed the entry
    e = events.reserve(Event)
    if e is not None:
        e.ts = L.ktime_get_ns()
        e.pid = u32(pid_tgid >> 32)
        e.uid = L.uid()
        e.ret = ctx.ret
        e.flags = ap.flags
        L.get_current_comm(e.comm)
        L.probe_read_user_str(e.fname, ap.fname)
        events.submit(e)
    del start[tid]
    return 0


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description="Trace open() syscalls (DSL version)")
    parser.add_argument("-p", "--pid", type=int, default=0, help="trace this process only")
    parser.add_argument("-d", "--duration", type=float, default=0, help="seconds to trace (0: until Ctrl-C)")
    args = parser.parse_args(argv)
    with tool.load(targ_tgid=args.pid) as live:
        live.attach()
        print(f"{'PID':<7}{'COMM':<17}{'FD':>3} {'ERR':>3} PATH")
        deadline = time.monotonic() + args.duration if args.duration else None

        def show(ev: Event) -> None:
            fd, err = (ev.ret, 0) if ev.ret >= 0 else (-1, -ev.ret)
            print(f"{ev.pid:<7}{ev.comm.decode(errors='replace'):<17}{fd:>3} {err:>3} "
                  f"{ev.fname.decode(errors='replace')}", flush=True)

        try:
            while deadline is None or time.monotonic() < deadline:
                live.events.poll(show, 100, decode=Event)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("opensnoop_dsl: needs root", file=sys.stderr)
    # As the ebpf command runs its tools: an ebpf error is one line and status 1, Ctrl-C
    # status 130, and `| head` closing the pipe a quiet exit instead of a BrokenPipeError.
    sys.exit(run_guarded("opensnoop_dsl", lambda: main(sys.argv[1:])))
