"""execsnoop: trace new processes via exec() syscalls, as BCC's tools/execsnoop.py.

Flags and output are BCC's::

    PCOMM            PID     PPID    RET ARGS
    cat              31870   31869     0 /usr/bin/cat /etc/hostname

``PCOMM`` is the process's command (its name after the exec), as BCC 0.26 and libbpf-tools head
it. ``-T`` adds ``TIME`` (HH:MM:SS), ``-t`` ``TIME(s)`` (seconds since start), ``-U`` the
``UID`` column, ``-M`` the parent's command as ``PPCOMM`` (as PPID is to PID), ``-C`` the
``CPU``; ``-x`` includes failed execs, ``-q`` quotes the arguments, ``-n``/``-l`` keep only
commands whose name / argument line matches a regular expression, ``-u USER`` and ``-P PPID``
filter in the kernel, ``--max-args N`` (default 20, at most 128) bounds the arguments read (the
file name counts as one; ``...`` marks a longer list). ``--json`` writes one object per exec,
keys named after the columns in lower case (``time``, ``time_s`` for ``TIME(s)``, ``uid``,
``pcomm``, ``pid``, ``ppcomm``, ``ppid``, ``cpu``, ``ret``, ``args`` as a list), present when
the text would show the column.


The kernel side follows libbpf-tools: ``syscalls/sys_enter_execve`` reads the file name and
the arguments (``bpf_probe_read_user_str`` per argument, 128 bytes each) into a per-thread
record, ``syscalls/sys_exit_execve`` completes it (return value, new comm, parent) and sends it
as one event, so arguments and result never arrive out of order whatever the buffer.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any, Dict, List, Optional, Pattern

from ebpf.lang.types import Struct, char, i32, u32, u64
from ebpf.tools._snoop_events import add_container_args
from ebpf.tools.runtime import add_ebpf_option, positive_nonzero_int, tool_main

__all__ = ["run", "parse_args", "header", "Formatter", "build", "event_type", "ARGSIZE", "MAX_ARGS_LIMIT"]

ARGSIZE = 128
MAX_ARGS_LIMIT = 128  # ARGSIZE * 128 = 16 KiB a record: under the per-CPU value limit (32 KiB)
NO_UID = 0xFFFFFFFF

EXAMPLES = """examples:
    ./execsnoop                      # trace all exec() syscalls
    ./execsnoop -x                   # include failed exec()s
    ./execsnoop -T                   # include time (HH:MM:SS)
    ./execsnoop -P 181               # only trace new processes whose parent PID is 181
    ./execsnoop -U                   # include UID
    ./execsnoop -C                   # include CPU
    ./execsnoop -M                   # include PCOMM
    ./execsnoop -u 1000              # only trace UID 1000
    ./execsnoop -u user              # get user UID and trace only them
    ./execsnoop -t                   # include timestamps
    ./execsnoop -q                   # add "quotemarks" around arguments
    ./execsnoop -n main              # only print command lines containing "main"
    ./execsnoop -l tpkg              # only print command where arguments contains "tpkg"
    ./execsnoop --cgroupmap mappath  # only trace cgroups in this BPF map
    ./execsnoop --mntnsmap mappath   # only trace mount namespaces in the map
    ./execsnoop --json               # one JSON object per exec
"""


# --- arguments ---------------------------------------------------------------------------------


def parse_uid(user: str) -> int:
    try:
        result = int(user)
    except ValueError:
        import pwd

        try:
            return pwd.getpwnam(user).pw_uid
        except KeyError:
            raise argparse.ArgumentTypeError(f"{user!r} is not valid UID or user entry") from None
    if result < 0:
        raise argparse.ArgumentTypeError(f"{user!r} is not valid UID or user entry")
    return result


def regex(text: str) -> Pattern[str]:
    try:
        return re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression {text!r}: {e}") from None


def max_args(text: str) -> int:
    value = positive_nonzero_int(text)
    if value > MAX_ARGS_LIMIT:
        raise argparse.ArgumentTypeError(f"at most {MAX_ARGS_LIMIT}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="execsnoop", description="Trace exec() syscalls",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    a = p.add_argument
    a("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    a("-t", "--timestamp", action="store_true", help="include timestamp on output")
    a("-x", "--fails", action="store_true", help="include failed exec()s")
    add_container_args(p)
    a("-u", "--uid", type=parse_uid, metavar="USER", help="trace this UID only")
    a("-q", "--quote", action="store_true", help='Add quotemarks (") around arguments.')
    a("-n", "--name", type=regex, help="only print commands matching this name (regex), any arg")
    a("-l", "--line", type=regex, help="only print commands where arg contains this line (regex)")
    a("-U", "--print-uid", action="store_true", help="print UID column")
    a("-C", "--print-cpu", action="store_true", help="print CPU column")
    a("-M", "--print-pcomm", action="store_true", help="print parent command")
    a("--max-args", type=max_args, default=20,
      help="maximum number of arguments parsed and displayed, defaults to 20")
    a("-P", "--ppid", type=positive_nonzero_int, help="trace this parent PID only")
    a("--json", action="store_true", help="print one JSON object per exec")
    add_ebpf_option(p)
    return p


def parse_args(argv: List[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


# --- output -------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> str:
    out = ""
    if args.time:
        out += "%-9s" % "TIME"
    if args.timestamp:
        out += "%-8s" % "TIME(s)"
    if args.print_uid:
        out += "%-6s" % "UID"
    out += "%-16s %-7s " % ("PCOMM", "PID")
    if args.print_pcomm:
        out += "%-16s " % "PPCOMM"
    out += "%-7s " % "PPID"
    if args.print_cpu:
        out += "%-4s " % "CPU"
    return out + "%3s %s" % ("RET", "ARGS")


def ppid_from_proc(pid: int) -> int:
    """BCC's fallback when the kernel gave no parent: /proc/PID/status (0 if gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class Formatter:
    """Events to BCC's text lines or JSON objects, with the user-space filters (-x, -n, -l)."""

    def __init__(self, args: argparse.Namespace, start: Optional[float] = None) -> None:
        self.args = args
        self.start = time.time() if start is None else start

    def argv(self, ev: Any) -> List[str]:
        count = min(ev.args_count, len(ev.args))
        out = [_text(a) for a in ev.args[:count]]
        if ev.args_count > len(ev.args):
            out.append("...")
        return out

    def wanted(self, ev: Any, argv: List[str]) -> bool:
        args = self.args
        if ev.retval != 0 and not args.fails:
            return False
        if args.name is not None and not args.name.search(_text(ev.comm)):
            return False
        return args.line is None or bool(args.line.search(" ".join(argv)))

    def ppid(self, ev: Any) -> int:
        return ev.ppid if ev.ppid > 0 else ppid_from_proc(ev.pid)

    def text(self, ev: Any, now: Optional[float] = None) -> Optional[str]:
        argv = self.argv(ev)
        if not self.wanted(ev, argv):
            return None
        args = self.args
        now = time.time() if now is None else now
        if args.quote:
            argv = ['"' + a.replace('"', '\\"') + '"' for a in argv]
        out = ""
        if args.time:
            out += "%-9s" % time.strftime("%H:%M:%S", time.localtime(now))
        if args.timestamp:
            out += "%-8.3f" % (now - self.start)
        if args.print_uid:
            out += "%-6d" % ev.uid
        out += "%-16s %-7d " % (_text(ev.comm), ev.pid)
        if args.print_pcomm:
            out += "%-16s " % _text(ev.pcomm)
        ppid = self.ppid(ev)
        out += "%-7s " % (str(ppid) if ppid > 0 else "?")
        if args.print_cpu:
            out += "%-4d " % ev.cpu
        return out + "%3d %s" % (ev.retval, " ".join(argv).replace("\n", "\\n"))

    def record(self, ev: Any, now: Optional[float] = None) -> Optional[Dict[str, Any]]:
        argv = self.argv(ev)
        if not self.wanted(ev, argv):
            return None
        args = self.args
        now = time.time() if now is None else now
        out: Dict[str, Any] = {}
        if args.time:
            out["time"] = time.strftime("%H:%M:%S", time.localtime(now))
        if args.timestamp:
            out["time_s"] = round(now - self.start, 3)
        if args.print_uid:
            out["uid"] = ev.uid
        out["pcomm"] = _text(ev.comm)
        out["pid"] = ev.pid
        if args.print_pcomm:
            out["ppcomm"] = _text(ev.pcomm)
        ppid = self.ppid(ev)
        out["ppid"] = ppid if ppid > 0 else None
        if args.print_cpu:
            out["cpu"] = ev.cpu
        out["ret"] = ev.retval
        out["args"] = argv
        return out


# --- kernel side --------------------------------------------------------------------------------


class UserPtr(Struct):
    """One ``argv[i]`` read from user memory."""

    p: u64  # type: ignore[valid-type]


_EVENT_TYPES: Dict[int, Any] = {}


def event_type(slots: int) -> Any:
    """The event record for ``slots`` argument slots (the struct's size follows --max-args);
    ``args_count`` above ``slots`` means the list was longer."""
    found = _EVENT_TYPES.get(slots)
    if found is None:
        fields = {"pid": u32, "ppid": u32, "uid": u32, "retval": i32, "args_count": u32, "cpu": u32,
                  "comm": char[16], "pcomm": char[16], "args": char[ARGSIZE][slots]}
        found = type(f"ExecEvent{slots}", (Struct,), {"__annotations__": fields, "__module__": __name__})
        _EVENT_TYPES[slots] = found
    return found


def build(ring: bool, slots: int, cgroupmap: bool = False, mntnsmap: bool = False) -> Any:
    """(collection, event type): argv[0] is replaced by the file name, as BCC does; BCC's
    container filters when asked."""
    from ebpf import lang as L

    Event = event_type(slots)
    coll = L.Collection("execsnoop")
    # only threads inside execve() hold an entry: no preallocation of 10240 large values
    execs = coll.hash_map("execs", key=u32, value=Event, max_entries=10240, flags=1)  # BPF_F_NO_PREALLOC
    heap = coll.percpu_array("heap", value=Event, max_entries=1)  # too big for the stack
    if ring:
        size = 256 * 1024
        while size < 64 * Event.size():
            size *= 2
        events = coll.ringbuf("events", size=size)
        lost = coll.percpu_array("lost", value=u64, max_entries=1)
    else:
        events = coll.perf_event_array("events")
    targ_uid = coll.rodata("targ_uid", u32, NO_UID)
    targ_ppid = coll.rodata("targ_ppid", u32, 0)
    ignore_failed = coll.rodata("ignore_failed", u32, 1)
    containers = cgroupmap or mntnsmap
    container_filtered = None
    if containers:
        from ebpf.tools._snoop_events import container_filter

        container_filtered = container_filter(coll, cgroupmap, mntnsmap)

    def enter_execve(ctx):
        if targ_uid != NO_UID and L.uid() != targ_uid:
            return 0
        if targ_ppid and L.current_task().real_parent.tgid != targ_ppid:
            return 0
        if containers:
            if container_filtered():
                return 0
        e = heap.get(0)
        if e is None:
            return 0
        pid_tgid = L.get_current_pid_tgid()
        e.pid = u32(pid_tgid >> 32)
        if L.probe_read_user_str(e.args[0], ctx.filename) < 0:
            e.args[0][0] = 0
        e.args_count = 1
        argv = u64(ctx.argv)
        argp = UserPtr()
        for i in range(1, slots):
            if L.probe_read_user(argp, argv + 8 * i) < 0 or argp.p == 0:
                break
            if L.probe_read_user_str(e.args[i], argp.p) < 0:
                e.args[i][0] = 0
            e.args_count = i + 1
        if e.args_count == slots:  # is there more?
            if L.probe_read_user(argp, argv + 8 * slots) == 0 and argp.p != 0:
                e.args_count = slots + 1
        execs[u32(pid_tgid)] = e[0]
        return 0

    def exit_execve(ctx):
        tid = L.tid()
        e = execs.get(tid)
        if e is None:
            return 0
        ret = ctx.ret
        uid = L.uid()
        if (ignore_failed and ret < 0) or (targ_uid != NO_UID and uid != targ_uid):
            del execs[tid]
            return 0
        task = L.current_task()
        e.ppid = task.real_parent.tgid
        L.probe_read_kernel_str(e.pcomm, task.real_parent.comm)
        e.uid = uid
        e.retval = ret
        e.cpu = L.get_smp_processor_id()
        L.get_current_comm(e.comm)
        if events.output(e) < 0:
            if ring:
                lost[0] += 1
        del execs[tid]
        return 0

    coll.tracepoint("syscalls/sys_enter_execve")(enter_execve)
    coll.tracepoint("syscalls/sys_exit_execve")(exit_execve)
    return coll, Event


# --- main ---------------------------------------------------------------------------------------


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    from ebpf.errors import EbpfError
    from ebpf.report import Output
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools import runtime

    if not args.ebpf:
        runtime.require_privileges()
    if len(runtime.existing_tracepoints("syscalls", ["sys_enter_execve", "sys_exit_execve"])) != 2:
        raise EbpfError("this kernel has no syscalls/sys_enter_execve tracepoint (CONFIG_FTRACE_SYSCALLS)")
    ring = snoop.ring_buffer_available()
    coll, Event = build(ring, args.max_args, cgroupmap=bool(args.cgroupmap), mntnsmap=bool(args.mntnsmap))
    spec = runtime.compile_programs(coll)
    if runtime.show_programs(args, coll):
        return 0
    stopper = runtime.Stopper()
    out = Output(json_mode=args.json)
    with snoop.ContainerMaps(args, spec) as pinned, \
            coll.load(maps=pinned.maps, targ_uid=NO_UID if args.uid is None else args.uid,
                      targ_ppid=args.ppid or 0, ignore_failed=0 if args.fails else 1) as live:
        fmt = Formatter(args)

        show = snoop.event_printer(fmt, out, args.json)

        loop = snoop.EventLoop(live, Event, show, ring=ring, pages=64)
        try:
            live.attach()
            if not args.json:
                out.line(header(args))
            fmt.start = time.time()
            loop.run(stopper)
            snoop.detach(live)
            loop.drain()
        finally:
            loop.close()
    return 0


if __name__ == "__main__":
    tool_main("execsnoop", run)
