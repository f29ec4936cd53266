"""exitsnoop: trace process termination (exit, fatal signal), as BCC's tools/exitsnoop.py.

Flags and output are BCC's::

    PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE
    sleep            19004   19003   19004   1.65    0
    bash             19003   17656   19003   1.65    code 65
    sleep            19014   19013   19014   0.23    signal 2 (INT)

``-t`` adds the local time (``TIME-<zone>``, HH:MM:SS.mmm), ``--utc`` the same in UTC,
``--label[=LABEL]`` a ``LABEL`` column (``exit`` when empty), ``-x`` keeps failed exits only
(non-zero code or a signal), ``-p PID`` traces that process only and ends with it,
``--per-thread`` reports every thread's exit instead of the processes'. Signal names are
BCC's (``signal 9 (KILL)``, ``, core dumped`` when one was dumped); BCC's table misses the names
with digits (it prints ``unknown`` for SIGUSR1), here ``USR1``. ``--json`` writes one object per
exit, keys named after the columns in lower case: ``time``, ``label``, ``pcomm``, ``pid``,
``ppid``, ``tid``, ``age_s``, ``exit_code`` (the code), ``signal`` (0 if none),
``signal_name`` and ``core_dumped``.

Hook: the ``sched_process_exit`` tracepoint, as BTF-typed raw tracepoint (tp_btf) when the kernel
can load one there (its link detaches in a fraction of a millisecond), else the classic
``sched/sched_process_exit`` tracepoint (libbpf-tools' choice). ``task->exit_code`` holds the
code in bits 15..8, the signal in bits 6..0 and the core dump in bit 7.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict, List, Optional

from ebpf.lang.types import Struct, char, i32, u32, u64
from ebpf.tools.runtime import add_ebpf_option, positive_nonzero_int, tool_main

__all__ = ["run", "parse_args", "header", "Formatter", "build", "Event", "signal_name", "exit_text"]

EXAMPLES = """examples:
    exitsnoop                # trace all process termination
    exitsnoop -x             # trace only fails, exclude exit(0)
    exitsnoop -t             # include timestamps (local time)
    exitsnoop --utc          # include timestamps (UTC)
    exitsnoop -p 181         # only trace PID 181
    exitsnoop --label=exit   # label each output line with 'exit'
    exitsnoop --per-thread   # trace per thread termination
    exitsnoop --json         # one JSON object per exit
"""


class Event(Struct):
    start_time: u64  # type: ignore[valid-type]  # task->start_time, monotonic ns
    exit_time: u64  # type: ignore[valid-type]  # bpf_ktime_get_ns()
    pid: u32  # type: ignore[valid-type]
    tid: u32  # type: ignore[valid-type]
    ppid: u32  # type: ignore[valid-type]
    exit_code: i32  # type: ignore[valid-type]  # task->exit_code >> 8
    sig_info: u32  # type: ignore[valid-type]  # task->exit_code & 0xFF
    task: char[16]  # type: ignore[valid-type]


# --- arguments ---------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exitsnoop", description="Trace all process termination (exit, fatal signal)",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    a = p.add_argument
    a("-t", "--timestamp", action="store_true", help="include timestamp (local time default)")
    a("--utc", action="store_true", help="include timestamp in UTC (-t implied)")
    a("-p", "--pid", type=positive_nonzero_int, help="trace this PID only")
    a("--label", help="label each line")
    a("-x", "--failed", action="store_true", help="trace only fails, exclude exit(0)")
    a("--per-thread", action="store_true", help="trace per thread termination")
    a("--json", action="store_true", help="print one JSON object per exit")
    add_ebpf_option(p)
    return p


def parse_args(argv: List[str]) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.utc:
        args.timestamp = True
    return args


# --- output -------------------------------------------------------------------------------------

_SIGNAMES: Optional[Dict[int, str]] = None


def signal_name(signum: int) -> str:
    """BCC's name for a signal: the signal module's ``SIG*`` names without ``SIG``."""
    global _SIGNAMES
    if _SIGNAMES is None:
        import signal

        names: Dict[int, str] = {}
        for key, value in vars(signal).items():
            if key.startswith("SIG") and not key.startswith("SIG_") and key[3:].isalnum() and key.isupper():
                names[int(value)] = key[3:]
        _SIGNAMES = names
    return _SIGNAMES.get(signum, "unknown")


def exit_text(exit_code: int, sig_info: int) -> str:
    """BCC's EXIT_CODE column: ``0``, ``code N`` or ``signal N (NAME)[, core dumped ]``."""
    if sig_info == 0:
        return "0" if exit_code == 0 else "code %d" % exit_code
    out = ""
    sig = sig_info & 0x7F
    if sig:
        out += "signal %d (%s)" % (sig, signal_name(sig))
    if sig_info & 0x80:
        out += ", core dumped "
    return out


def header(args: argparse.Namespace) -> str:
    out = ""
    if args.timestamp:
        out += "%-13s" % ("TIME-" + ("UTC" if args.utc else time.strftime("%Z")))
    if args.label is not None:
        out += "%-6s" % "LABEL"
    return out + "%-16s %-7s %-7s %-7s %-7s %-10s" % ("PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE")


class Formatter:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.label = (args.label or "exit") if args.label is not None else None

    def clock(self, now: Optional[float]) -> str:
        """``HH:MM:SS.mmm`` (BCC: ``datetime.now().strftime("%H:%M:%S.%f")[:-3]``)."""
        us = round((time.time() if now is None else now) * 1_000_000)
        secs, frac = divmod(us, 1_000_000)
        tm = time.gmtime(secs) if self.args.utc else time.localtime(secs)
        return time.strftime("%H:%M:%S", tm) + ".%03d" % (frac // 1000)

    @staticmethod
    def age(ev: Any) -> float:
        return (ev.exit_time - ev.start_time) / 1e9

    def text(self, ev: Any, now: Optional[float] = None) -> str:
        out = ""
        if self.args.timestamp:
            out += "%-13s" % self.clock(now)
        if self.label is not None:
            out += "%-6s" % self.label
        out += "%-16s %-7d %-7d %-7d %-7.2f " % (ev.task.decode("utf-8", "replace"), ev.pid, ev.ppid, ev.tid,
                                                 self.age(ev))
        return out + exit_text(ev.exit_code, ev.sig_info)

    def record(self, ev: Any, now: Optional[float] = None) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.args.timestamp:
            out["time"] = self.clock(now)
        if self.label is not None:
            out["label"] = self.label
        sig = ev.sig_info & 0x7F
        out.update(pcomm=ev.task.decode("utf-8", "replace"), pid=ev.pid, ppid=ev.ppid, tid=ev.tid,
                   age_s=round(self.age(ev), 2), exit_code=ev.exit_code, signal=sig,
                   signal_name=signal_name(sig) if sig else None, core_dumped=bool(ev.sig_info & 0x80))
        return out


# --- kernel side --------------------------------------------------------------------------------


def build(ring: bool, tp_btf: bool = False) -> Any:
    """The program on sched_process_exit (tp_btf or tracepoint); events by ring or perf buffer."""
    from ebpf import lang as L

    coll = L.Collection("exitsnoop")
    if ring:
        events = coll.ringbuf("events", size=256 * 1024)
        lost = coll.percpu_array("lost", value=u64, max_entries=1)
    else:
        events = coll.perf_event_array("events")
    target_pid = coll.rodata("target_pid", u32, 0)
    trace_failed_only = coll.rodata("trace_failed_only", u32, 0)
    trace_by_process = coll.rodata("trace_by_process", u32, 1)

    def sched_process_exit(ctx):
        pid_tgid = L.get_current_pid_tgid()
        pid = u32(pid_tgid >> 32)
        tid = u32(pid_tgid)
        if target_pid and pid != target_pid:
            return 0
        if trace_by_process and pid != tid:
            return 0
        task = L.current_task()
        exit_code = i32(task.exit_code)
        if trace_failed_only and exit_code == 0:
            return 0
        if ring:
            e = events.reserve(Event)
            if e is None:
                lost[0] += 1
                return 0
        else:
            e = Event()
        e.start_time = task.start_time
        e.exit_time = L.ktime_get_ns()
        e.pid = pid
        e.tid = tid
        e.ppid = task.real_parent.tgid
        e.exit_code = exit_code >> 8
        e.sig_info = exit_code & 0xFF
        L.get_current_comm(e.task)
        if ring:
            events.submit(e)
        else:
            events.output(e)
        return 0

    if tp_btf:
        coll.tp_btf("sched_process_exit")(sched_process_exit)
    else:
        coll.tracepoint("sched/sched_process_exit")(sched_process_exit)
    return coll


def choose_hook() -> bool:
    """True for tp_btf (probed as libbpf-tools probe it), False for the classic tracepoint;
    an error when the kernel has neither."""
    from ebpf.errors import EbpfError
    from ebpf.features import have_tp_btf
    from ebpf.tools.runtime import existing_tracepoints

    try:
        if have_tp_btf("sched_process_exit"):
            return True
    except EbpfError:
        pass
    if existing_tracepoints("sched", ["sched_process_exit"]):
        return False
    raise EbpfError("this kernel has no sched/sched_process_exit tracepoint")


# --- main ---------------------------------------------------------------------------------------


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    from ebpf.report import Output
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools import runtime

    if not args.ebpf:
        runtime.require_privileges()
    tp_btf = choose_hook()
    ring = snoop.ring_buffer_available()
    coll = build(ring, tp_btf)
    runtime.compile_programs(coll)
    if runtime.show_programs(args, coll):
        return 0
    stopper = runtime.Stopper()
    out = Output(json_mode=args.json)
    fmt = Formatter(args)
    seen_target = [False]

    def show(ev: Any) -> None:
        if args.json:
            out.record(fmt.record(ev))
        else:
            out.line(fmt.text(ev))
        if args.pid and ev.tid == args.pid:  # BCC returns once the traced process has exited
            seen_target[0] = True

    with coll.load(target_pid=args.pid or 0, trace_failed_only=int(args.failed),
                   trace_by_process=0 if args.per_thread else 1) as live:
        loop = snoop.EventLoop(live, Event, show, ring=ring, pages=64)
        try:
            live.attach()
            if not args.json:
                out.line(header(args))
            loop.run(stopper, done=lambda: seen_target[0])
            snoop.detach(live)
            loop.drain()
        finally:
            loop.close()
    if stopper.signal == 2 and not args.json:  # BCC prints a newline on Ctrl-C
        out.line()
    return 0


if __name__ == "__main__":
    tool_main("exitsnoop", run)
