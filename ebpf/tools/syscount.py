"""syscount: summarize syscall counts and latencies (BCC's ``syscount``).

    syscount [-h] [-p PID] [-t TID] [-c PPID] [-i INTERVAL] [-d DURATION] [-T TOP] [-x]
             [-e ERRNO] [-L] [-m] [-P] [-l] [--syscall SYSCALL] [--json] [--exec ...]

Counts in the kernel on the ``raw_syscalls/sys_exit`` tracepoint, keyed by syscall number (or
by process with ``-P``); ``-L`` also attaches ``raw_syscalls/sys_enter`` to time each call, as
libbpf-tools does. With ``-P`` the process's name is kept in its entry: taken from the group
leader when the entry is made, and renewed on the ``task_rename`` raw tracepoint whenever the
leader is renamed (exec, ``prctl(PR_SET_NAME)``, a write to ``/proc/PID/comm``). So an exec'd
child shows its new name (BCC reads ``/proc/PID/comm`` at print time, libbpf-tools copies the
calling thread's name on every call), and a process that has exited by print time keeps the
name it had last, at no cost per syscall. Filters (pid, tid, parent, syscall, failures, errno)
are ``.rodata`` constants, so the verifier drops the tests that are off. Each interval prints
the top entries in BCC's layout and empties the map (LOOKUP_AND_DELETE_BATCH: no call is
counted twice or lost between reads). Syscall names come from :mod:`ebpf.tools._syscalls`.

``--json`` writes one object per interval::

    {"ts": "2026-11-24 21:12:51", "syscalls": [{"syscall": "read", "nr": 0, "count": 1056}, ...]}
    {"ts": "...", "processes": [{"pid": 6574, "comm": "dd", "count": 1155, "total_ns": 812345}, ...]}
"""

from __future__ import annotations

import argparse
import errno as errno_mod
import sys
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from ebpf.lang.types import Struct, char, u64
from ebpf.tools.runtime import add_ebpf_option, positive_int, positive_nonzero_int, tool_main

MAX_ENTRIES = 10240


class Data(Struct):
    count: u64  # type: ignore[valid-type]
    total_ns: u64  # type: ignore[valid-type]
    comm: char[16]  # type: ignore[valid-type]  # with -P: the process's (group leader's) name


class Row(NamedTuple):
    key: int  # syscall number, or pid with -P
    calls: int
    total_ns: int
    comm: str


def handle_errno(text: str) -> int:
    """argparse type of -e: a number (its absolute value) or a name such as ENOENT."""
    try:
        return abs(int(text))
    except ValueError:
        pass
    value = getattr(errno_mod, text, None)
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError("couldn't map %s to an errno" % text)
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syscount", description="Summarize syscall counts and latencies.")
    parser.add_argument("-p", "--pid", type=positive_nonzero_int, help="trace only this pid")
    parser.add_argument("-t", "--tid", type=positive_nonzero_int, help="trace only this tid")
    parser.add_argument("-c", "--ppid", type=positive_nonzero_int, help="trace only child of this pid")
    parser.add_argument("-i", "--interval", type=positive_nonzero_int,
                        help="print summary at this interval (seconds)")
    parser.add_argument("-d", "--duration", type=positive_nonzero_int,
                        help="total duration of trace, in seconds")
    parser.add_argument("-T", "--top", type=positive_int, default=10,
                        help="print only the top syscalls by count or latency")
    parser.add_argument("-x", "--failures", action="store_true",
                        help="trace only failed syscalls (return < 0)")
    parser.add_argument("-e", "--errno", type=handle_errno,
                        help="trace only syscalls that return this error (numeric or EPERM, etc.)")
    parser.add_argument("-L", "--latency", action="store_true", help="collect syscall latency")
    parser.add_argument("-m", "--milliseconds", action="store_true",
                        help="display latency in milliseconds (default: microseconds)")
    parser.add_argument("-P", "--process", action="store_true", help="count by process and not by syscall")
    parser.add_argument("-l", "--list", action="store_true", help="print list of recognized syscalls and exit")
    parser.add_argument("--syscall", type=str,
                        help="trace this syscall only (use option -l to get all recognized syscalls)")
    parser.add_argument("--json", action="store_true", help="one JSON object per interval instead of text")
    parser.add_argument("--exec", nargs=argparse.REMAINDER,
                        help="execute command (as the last parameter, supports multiple parameters, "
                             "for example: --exec ls -l /tmp")
    add_ebpf_option(parser)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    return make_parser().parse_args(list(argv))


# ---- output --------------------------------------------------------------------------------


def banner(args: argparse.Namespace) -> str:
    failed = "failed " if args.failures else ""
    if args.syscall is not None:
        return "Tracing %ssyscall '%s'... Ctrl+C to quit." % (failed, args.syscall)
    return "Tracing %ssyscalls, printing top %d... Ctrl+C to quit." % (failed, args.top)


def top_rows(rows: Sequence[Row], args: argparse.Namespace) -> List[Row]:
    """The ``-T`` largest, by total time with -L, else by count (ties: by key)."""
    if args.latency:
        ordered = sorted(rows, key=lambda r: (-r.total_ns, r.key))
    else:
        ordered = sorted(rows, key=lambda r: (-r.calls, r.key))
    return ordered[: args.top]


def agg_value(row: Row, args: argparse.Namespace) -> str:
    from ebpf.tools._syscalls import syscall_name

    if args.process:
        return "%-6d %-15s" % (row.key, row.comm or "[unknown]")
    return syscall_name(row.key)


def stats_lines(rows: Sequence[Row], args: argparse.Namespace, now: Optional[float] = None) -> List[str]:
    """One interval as BCC prints it: ``[HH:MM:SS]``, the header, the top rows, a blank line."""
    agg_col = "PID    COMM" if args.process else "SYSCALL"
    lines = ["[%s]" % time.strftime("%H:%M:%S", time.localtime(now))]
    if args.latency:
        time_col = "TIME (ms)" if args.milliseconds else "TIME (us)"
        lines.append("%-22s %8s %16s" % (agg_col, "COUNT", time_col))
        fmt = "%-22s %8d %16.6f" if args.milliseconds else "%-22s %8d %16.3f"
        div = 1e6 if args.milliseconds else 1e3
        for row in top_rows(rows, args):
            lines.append(fmt % (agg_value(row, args), row.calls, row.total_ns / div))
    else:
        lines.append("%-22s %8s" % (agg_col, "COUNT"))
        for row in top_rows(rows, args):
            lines.append("%-22s %8d" % (agg_value(row, args), row.calls))
    lines.append("")
    return lines


def stats_record(rows: Sequence[Row], args: argparse.Namespace, now: Optional[float] = None) -> Dict[str, Any]:
    from ebpf.tools._syscalls import syscall_name

    entries = []
    for row in top_rows(rows, args):
        entry: Dict[str, Any]
        if args.process:
            entry = {"pid": row.key, "comm": row.comm or "[unknown]", "count": row.calls}
        else:
            entry = {"syscall": syscall_name(row.key), "nr": row.key, "count": row.calls}
        if args.latency:
            entry["total_ns"] = row.total_ns
        entries.append(entry)
    return {"ts": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
            "processes" if args.process else "syscalls": entries}


def rows_of(items: Sequence[Any]) -> List[Row]:
    return [Row(int(k), int(v.count), int(v.total_ns), bytes(v.comm).decode("utf-8", "replace"))
            for k, v in items]


# ---- kernel side ---------------------------------------------------------------------------


def build(latency: bool, process: bool = False) -> Any:
    """sys_exit counts (and, with -L, sys_enter stamps the start time per thread; with -P,
    ``process``, task_rename keeps the names of the processes counted)."""
    from ebpf import lang as L
    from ebpf.lang.types import i32, u32

    coll = L.Collection("syscount")
    data = coll.hash_map("data", key=u32, value=Data, max_entries=MAX_ENTRIES)
    filter_pid = coll.rodata("filter_pid", u32, 0)
    filter_tid = coll.rodata("filter_tid", u32, 0)
    filter_ppid = coll.rodata("filter_ppid", u32, 0)
    filter_nr = coll.rodata("filter_nr", i32, -1)
    filter_failed = coll.rodata("filter_failed", u32, 0)
    filter_errno = coll.rodata("filter_errno", i32, 0)
    by_process = coll.rodata("by_process", u32, 0)

    @L.inline
    def skipped(nr, pid_tgid):
        """1 when a filter leaves this call out."""
        if filter_nr >= 0 and nr != filter_nr:
            return 1
        if filter_pid and u32(pid_tgid >> 32) != filter_pid:
            return 1
        if filter_tid and u32(pid_tgid) != filter_tid:
            return 1
        if filter_ppid and L.current_task().real_parent.tgid != filter_ppid:
            return 1
        return 0

    @L.inline
    def counts(ctx, pid_tgid):
        """1 when this finished call is to be counted."""
        nr = ctx.id
        if nr < 0:  # -1: not a syscall (an interrupted or ptrace-skipped one)
            return 0
        if skipped(nr, pid_tgid):
            return 0
        ret = ctx.ret
        if filter_failed and ret >= 0:
            return 0
        if filter_errno and ret != -filter_errno:
            return 0
        return 1

    @L.inline
    def entry_of(ctx, pid_tgid):
        """The map value to add to (made when missing; None when the map is full)."""
        key = u32(ctx.id)
        if by_process:
            key = u32(pid_tgid >> 32)
        v = data.get(key)
        if v is None:
            init = Data()
            if by_process:
                L.probe_read_kernel_str(init.comm, L.current_task().group_leader.comm)
            data.update(key, init, 1)  # BPF_NOEXIST: another CPU may have made it first
            v = data.get(key)
        return v

    if latency:
        # LRU: a thread that exits inside exit()/exit_group() never comes back for its entry
        start = coll.lru_hash("start", key=u32, value=u64, max_entries=MAX_ENTRIES)

        @coll.tracepoint("raw_syscalls/sys_enter")
        def sys_enter(ctx):
            pid_tgid = L.get_current_pid_tgid()
            if skipped(ctx.id, pid_tgid):
                return 0
            start[u32(pid_tgid)] = L.ktime_get_ns()
            return 0

        @coll.tracepoint("raw_syscalls/sys_exit")
        def sys_exit(ctx):
            pid_tgid = L.get_current_pid_tgid()
            tid = u32(pid_tgid)
            tsp = start.get(tid)
            if tsp is None:
                return 0  # entered before we attached, or filtered out
            lat = L.ktime_get_ns() - tsp[0]
            del start[tid]
            if not counts(ctx, pid_tgid):
                return 0
            v = entry_of(ctx, pid_tgid)
            if v is None:
                return 0
            v.count += 1
            v.total_ns += lat
            return 0

    else:

        @coll.tracepoint("raw_syscalls/sys_exit")
        def sys_exit(ctx):
            pid_tgid = L.get_current_pid_tgid()
            if not counts(ctx, pid_tgid):
                return 0
            v = entry_of(ctx, pid_tgid)
            if v is None:
                return 0
            v.count += 1
            return 0

    if process:

        @coll.raw_tracepoint("task_rename")
        def task_rename(ctx):
            """(task, new name): called before the name changes; a process is named after its
            group leader (after an exec, the exec'ing thread is the leader)."""
            task = L.cast(ctx.args[0], "struct task_struct")
            if task.pid != task.tgid:
                return 0  # a thread other than the leader names itself
            v = data.get(u32(task.tgid))
            if v is not None:
                L.probe_read_kernel_str(v.comm, ctx.args[1])
            return 0

    return coll


# ---- running -------------------------------------------------------------------------------


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.list:
        from ebpf.tools._syscalls import list_lines, syscall_table

        for line in list_lines(list(syscall_table().values())):
            print(line)
        return 0
    if args.pid and args.exec is not None:
        print("ERROR: can only use -p or --exec. Exiting.", file=sys.stderr)
        return 1
    if args.exec is not None and not args.exec:
        print("ERROR: --exec without command. Exiting.", file=sys.stderr)
        return 1
    filter_nr = -1
    if args.syscall is not None:
        from ebpf.tools._syscalls import syscall_number

        found = syscall_number(args.syscall)
        if found is None:
            print("Error: syscall '%s' not found. Exiting." % args.syscall, file=sys.stderr)
            return 1
        filter_nr = found

    from ebpf.tools._command import command_for
    from ebpf.tools.runtime import compile_programs, require_privileges, show_programs

    coll = build(args.latency, args.process)
    if show_programs(args, coll):
        return 0
    require_privileges()
    compile_programs(coll)
    with command_for(args.exec) as child:
        return _trace(args, coll, child, filter_nr)


def _trace(args: argparse.Namespace, coll: Any, child: Any, filter_nr: int) -> int:
    from ebpf.report import Output
    from ebpf.tools.runtime import Stopper, interval_loop

    rodata = {
        "filter_pid": child.pid or args.pid or 0,
        "filter_tid": args.tid or 0,
        "filter_ppid": args.ppid or 0,
        "filter_nr": filter_nr,
        "filter_failed": 1 if args.failures else 0,
        "filter_errno": args.errno or 0,
        "by_process": 1 if args.process else 0,
    }
    interval = args.interval or args.duration
    count = None
    if args.duration:  # BCC stops at the first interval that reaches the duration
        count = -(-args.duration // interval)
    out = Output(json_mode=args.json)
    with coll.load(**rodata) as live:
        stopper = Stopper()
        live.attach()
        child.start()
        print(banner(args), file=sys.stderr if args.json else sys.stdout, flush=True)
        child.watch(stopper)
        data = live.maps["data"]

        def tick() -> None:
            rows = rows_of(data.items_and_clear())
            if args.json:
                out.record(stats_record(rows, args))
            else:
                out.lines(stats_lines(rows, args))

        interval_loop(stopper, interval, count, tick, before_last=child.finish)
        if not args.json:
            out.line("Detaching...")
        _close_links_together(live)
    return child.exit_status()


def _close_links_together(live: Any) -> None:
    """Detach both tracepoints at once: closing a perf-event tracepoint waits ~77 ms in the
    kernel (an RCU grace period), and two such waits need not be paid one after the other."""
    import threading

    links = list(live.links)
    if len(links) < 2:
        return
    threads = [threading.Thread(target=link.close) for link in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    live.links.clear()


if __name__ == "__main__":
    tool_main("syscount", run)
