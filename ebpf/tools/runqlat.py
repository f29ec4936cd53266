"""runqlat: summarize run queue (scheduler) latency as a histogram (BCC's tool, rebuilt).

The flags and the output are BCC's ``runqlat``: ``-T -m -P --pidnss -L -p PID [interval
[count]]``, the banner, the log2 histogram and the ``pid = N`` / ``tid = N`` / ``pidns = N``
sections. ``--json`` writes one JSON object per histogram per interval (BCC's
``print_json_hist`` objects, with the section as a key; the banner then goes to stderr, and
``-T`` adds nothing: each object has its ``ts``).

What is measured is what BCC and libbpf-tools measure: the time from a task's wakeup
(``sched_wakeup``, ``sched_wakeup_new``), or from its preemption while still runnable, to the
``sched_switch`` that puts it on a CPU. Hooks are chosen as libbpf-tools chooses them: tp_btf
where the kernel takes it, else raw tracepoints reading ``struct task_struct`` through CO-RE
(``__state`` or ``state``, whichever the kernel has), else (no kernel BTF) the classic
``sched/*`` tracepoints: there a woken task's process is learnt when it next leaves the CPU, so
``-p`` and ``-P`` count each wait at that point, and ``--pidnss`` is not available.
The hidden option ``--hook tp_btf|raw_tp|tracepoint`` forces one path (tests use it).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List, Optional, Tuple

from ebpf.lang.types import Struct, u32, u64
from ebpf.tools.runtime import add_ebpf_option, positive_nonzero_int

NAME = "runqlat"
BANNER = "Tracing run queue latency... Hit Ctrl-C to end."
HOOKS = ("auto", "tp_btf", "raw_tp", "tracepoint")
MAX_ENTRIES = 10240
MAX_SECTIONED = 65536  # (id, slot) pairs for -P/-L/--pidnss (allocated as used)
TASK_REPORT_MAX = 0x100  # classic sched_switch: prev_state of a preempted task (kernels >= 4.14)

EXAMPLES = """examples:
    ebpf runqlat            # summarize run queue latency as a histogram
    ebpf runqlat 1 10       # print 1 second summaries, 10 times
    ebpf runqlat -mT 1      # 1s summaries, milliseconds, and timestamps
    ebpf runqlat -P         # show each PID separately
    ebpf runqlat -p 185     # trace PID 185 only
"""


class HistKey(Struct):
    """A histogram slot: ``id`` is the pid (-P), tid (-L), pid namespace (--pidnss) or 0."""

    id: u32  # type: ignore[valid-type]
    slot: u32  # type: ignore[valid-type]


# ---- arguments -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=NAME,
        description="Summarize run queue (scheduler) latency as a histogram",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    p.add_argument("--pidnss", action="store_true", help="print a histogram per PID namespace")
    p.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    p.add_argument("-p", "--pid", type=positive_nonzero_int, help="trace this PID only")
    p.add_argument("interval", nargs="?", type=positive_nonzero_int, default=None,
                   help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_nonzero_int, default=None, help="number of outputs")
    add_ebpf_option(p)
    p.add_argument("--json", action="store_true", help="json output: one object per histogram")
    p.add_argument("--hook", "--hooks", dest="hooks", choices=HOOKS, default="auto", help=argparse.SUPPRESS)
    return p


def parse_args(argv: List[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


def section_of(args: argparse.Namespace) -> str:
    """The section header BCC prints: ``tid`` (-L) over ``pid`` (-P) over ``pidns``, or none."""
    if args.tids:
        return "tid"
    if args.pids:
        return "pid"
    if args.pidnss:
        return "pidns"
    return ""


# ---- output ----------------------------------------------------------------------------------

Hists = Dict[int, Dict[int, int]]


def group(pairs: List[Tuple[Any, int]]) -> Hists:
    """``(HistKey, count)`` pairs from the map as ``{id: {slot: count}}``."""
    out: Hists = {}
    for key, count in pairs:
        slots = out.setdefault(int(key.id), {})
        slots[int(key.slot)] = slots.get(int(key.slot), 0) + int(count)
    return out


def _merged(hists: Hists) -> Dict[int, int]:
    merged: Dict[int, int] = {}
    for slots in hists.values():
        for slot, count in slots.items():
            merged[slot] = merged.get(slot, 0) + count
    return merged


def text_lines(hists: Hists, unit: str, section: str = "", timestamp: Optional[str] = None) -> List[str]:
    """One interval as BCC prints it: a blank line, the time (-T), the histogram(s) by id."""
    from ebpf.report import log2_hist_lines, section_lines

    lines = [""]
    if timestamp is not None:
        lines.append("%-8s" % timestamp)
    if section:
        lines += section_lines({k: hists[k] for k in sorted(hists)}, section, unit, section_print_fn=str)
    else:
        lines += log2_hist_lines(_merged(hists), unit)
    return lines


def json_records(hists: Hists, unit: str, section: str = "", ts: Optional[str] = None) -> List[Dict[str, Any]]:
    """One interval as BCC's ``print_json_hist`` objects: one per histogram."""
    from ebpf.report import json_hist

    if section:
        return [json_hist(hists[k], unit, (section, k), ts) for k in sorted(hists)]
    return [json_hist(_merged(hists), unit, None, ts)]


# ---- the kernel side ---------------------------------------------------------------------------


class Plan:
    """What to compile: the options that shape the programs, and facts about this kernel."""

    def __init__(self, args: argparse.Namespace, hooks: str) -> None:
        self.hooks = hooks
        self.ms = bool(args.milliseconds)
        self.section = section_of(args)
        self.pid = int(args.pid or 0)


def build(plan: Plan) -> Any:
    """The programs and maps for ``plan``: options are Python constants, folded at compile time."""
    from ebpf import lang as L
    from ebpf.lang import i64

    coll = L.Collection(NAME)
    sectioned = bool(plan.section)
    start = coll.hash_map("start", key=u32, value=u64, max_entries=MAX_ENTRIES)
    dist = coll.hash_map("dist", key=HistKey, value=u64, max_entries=MAX_SECTIONED if sectioned else 128,
                         flags=1 if sectioned else 0)  # BPF_F_NO_PREALLOC: memory as sections appear

    FILTER = plan.pid != 0
    TARG_TGID = plan.pid
    PER_PID = plan.section == "pid"
    PER_TID = plan.section == "tid"
    PER_PIDNS = plan.section == "pidns"
    DIV = 1000000 if plan.ms else 1000

    @L.inline
    def account(section, delta):
        d = u64(delta) // DIV
        hk = HistKey(id=section)
        hk.slot = L.log2l(d) + 1
        dist[hk] += 1

    @L.inline
    def enqueue(tgid, pid):
        if pid == 0:
            return 0
        if FILTER:
            if tgid != TARG_TGID:
                return 0
        start[pid] = L.ktime_get_ns()
        return 0

    if plan.hooks != "tracepoint":
        @L.inline
        def pidns_of(task):
            # task_active_pid_ns(): pid->numbers[pid->level].ns
            p = task.thread_pid
            level = u64(p.level)
            up = L.cast(L.cast(L.cast(p.numbers, "struct upid"), u64) + level * L.type_size("struct upid"),
                        "struct upid")
            return u32(up.ns.ns.inum)

        @L.inline
        def section_of_task(task, pid):
            if PER_PID:
                return u32(task.tgid)
            if PER_TID:
                return pid
            if PER_PIDNS:
                return pidns_of(task)
            return u32(0)

        @L.inline
        def switch(prev, nxt):
            # task_struct.state became __state in 5.14: the running kernel decides (CO-RE)
            if L.field_exists("struct task_struct", "__state"):
                state = u32(L.member(prev, "__state", u32))
            else:
                state = u32(L.member(prev, "state", i64))
            if state == 0:  # preempted while runnable: it waits from now
                enqueue(u32(prev.tgid), u32(prev.pid))
            pid = u32(nxt.pid)
            tsp = start.get(pid)
            if tsp is None:
                return 0  # missed the enqueue (or filtered out)
            delta = i64(L.ktime_get_ns() - tsp[0])
            if delta >= 0:
                account(section_of_task(nxt, pid), delta)
            del start[pid]
            return 0

    if plan.hooks == "tp_btf":
        @coll.tp_btf("sched_wakeup")
        def sched_wakeup(ctx):
            p = ctx.arg(0)
            return enqueue(u32(p.tgid), u32(p.pid))

        @coll.tp_btf("sched_wakeup_new")
        def sched_wakeup_new(ctx):
            p = ctx.arg(0)
            return enqueue(u32(p.tgid), u32(p.pid))

        @coll.tp_btf("sched_switch")
        def sched_switch(ctx):
            return switch(ctx.arg(1), ctx.arg(2))

    elif plan.hooks == "raw_tp":
        @coll.raw_tracepoint("sched_wakeup")
        def sched_wakeup(ctx):
            p = L.cast(ctx.args[0], "struct task_struct")
            return enqueue(u32(p.tgid), u32(p.pid))

        @coll.raw_tracepoint("sched_wakeup_new")
        def sched_wakeup_new(ctx):
            p = L.cast(ctx.args[0], "struct task_struct")
            return enqueue(u32(p.tgid), u32(p.pid))

        @coll.raw_tracepoint("sched_switch")
        def sched_switch(ctx):
            return switch(L.cast(ctx.args[1], "struct task_struct"), L.cast(ctx.args[2], "struct task_struct"))

    else:
        # Classic tracepoints name tasks by tid only. The previous task is the current one, so its
        # process is known; a woken task's process is learnt when it next leaves the CPU: with -p
        # or -P its wait is kept in ``pending`` until then.
        DEFER = FILTER or PER_PID
        pending = coll.hash_map("pending", key=u32, value=u64, max_entries=MAX_ENTRIES) if DEFER else None

        @L.inline
        def enqueue_tid(pid):
            if pid != 0:
                start[pid] = L.ktime_get_ns()
            return 0

        @coll.tracepoint("sched/sched_wakeup")
        def sched_wakeup(ctx):
            return enqueue_tid(u32(ctx.pid))

        @coll.tracepoint("sched/sched_wakeup_new")
        def sched_wakeup_new(ctx):
            return enqueue_tid(u32(ctx.pid))

        @coll.tracepoint("sched/sched_switch")
        def sched_switch(ctx):
            tgid = u32(L.get_current_pid_tgid() >> 32)  # prev is the current task
            prev = u32(ctx.prev_pid)
            if DEFER:
                waited = pending.get(prev)
                if waited is not None:
                    if not FILTER or tgid == TARG_TGID:
                        if PER_PID:
                            account(tgid, waited[0])
                        else:
                            account(u32(0), waited[0])
                    del pending[prev]
            if (ctx.prev_state & (TASK_REPORT_MAX - 1)) == 0:  # runnable (R or R+)
                enqueue(tgid, prev)
            pid = u32(ctx.next_pid)
            tsp = start.get(pid)
            if tsp is None:
                return 0
            delta = i64(L.ktime_get_ns() - tsp[0])
            if delta >= 0:
                if DEFER:
                    pending[pid] = u64(delta)
                elif PER_TID:
                    account(pid, delta)
                else:
                    account(u32(0), delta)
            del start[pid]
            return 0

    return coll


# ---- running -------------------------------------------------------------------------------------


def run(argv: List[str]) -> int:
    import signal
    import sys

    from ebpf.errors import EbpfError
    from ebpf.report import Output
    from ebpf.tools import runtime

    args = parse_args(argv)
    if not args.ebpf:
        runtime.require_privileges()
    hooks = runtime.choose_hooks("sched_switch", args.hooks)
    section = section_of(args)
    if hooks == "tracepoint" and section == "pidns":
        raise EbpfError("--pidnss needs tp_btf or raw tracepoints: the sched tracepoints do not name namespaces")
    coll = build(Plan(args, hooks))
    runtime.compile_programs(coll)
    if runtime.show_programs(args, coll):
        return 0

    unit = "msecs" if args.milliseconds else "usecs"
    out = Output(json_mode=args.json)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stopper = runtime.Stopper()
    try:
        with coll.load() as live:
            live.attach()
            if args.json:
                print(BANNER, file=sys.stderr, flush=True)
            else:
                out.line(BANNER)
            dist = live.maps["dist"]

            def tick() -> None:
                hists = group(dist.items_and_clear())
                if args.json:
                    for rec in json_records(hists, unit, section):
                        out.record(rec)
                else:
                    stamp = time.strftime("%H:%M:%S") if args.timestamp else None
                    out.lines(text_lines(hists, unit, section, stamp))

            runtime.interval_loop(stopper, args.interval, args.count, tick)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    from ebpf.tools.runtime import tool_main

    tool_main(NAME, run)
