"""opensnoop: trace open() syscalls (open, openat, openat2), as BCC's tools/opensnoop.py.

Flags and output are BCC's::

    PID    COMM               FD ERR PATH
    1391   cat                 3   0 /etc/hostname

``-T`` adds ``TIME(s)`` (seconds since the first event), ``-U`` the ``UID`` column, ``-e`` the
``FLAGS`` (octal) and ``MODE`` columns; ``-t TID`` prints a ``TID`` column instead of ``PID``.
``-x`` (failed opens only), ``-p``, ``-t``, ``-u`` and ``-f`` are filters in the kernel (read-only
data: the verifier drops the dead branches); ``-n`` (a substring of the process name) is applied
here, as BCC does. ``-F`` makes relative paths absolute with the process's current directory,
read from /proc at event time (BCC walks the dentries in the kernel; a process already gone
keeps its relative path). ``--exec CMD...`` starts CMD, traces only it and ends with it.
``--json`` writes one object per event instead, keys named after the columns in lower case
(``time`` in seconds, ``uid``, ``pid`` or ``tid``, ``comm``, ``fd``, ``err``, ``flags``,
``mode`` (null for "n/a"), ``path``), present when the text would show the column.

Hooks: ``syscalls/sys_{enter,exit}_{open,openat,openat2}`` tracepoints, each pair only where the
kernel has it (libbpf-tools' choice); events through a ring buffer when the kernel has one,
else a perf buffer (``-b`` pages either way).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from ebpf.lang.types import Struct, char, i32, u32, u64
from ebpf.tools._snoop_events import add_container_args
from ebpf.tools.runtime import add_ebpf_option, positive_int, positive_nonzero_int, tool_main

__all__ = ["run", "parse_args", "header", "Formatter", "build", "Event", "SYSCALLS"]

SYSCALLS = ("open", "openat", "openat2")
NAME_MAX = 255
NO_UID = 0xFFFFFFFF
O_CREAT = 0o100
O_TMPFILE = 0o20200000

EXAMPLES = """examples:
    ./opensnoop                        # trace all open() syscalls
    ./opensnoop -T                     # include timestamps
    ./opensnoop -U                     # include UID
    ./opensnoop -x                     # only show failed opens
    ./opensnoop -p 181                 # only trace PID 181
    ./opensnoop -t 123                 # only trace TID 123
    ./opensnoop -u 1000                # only trace UID 1000
    ./opensnoop -d 10                  # trace for 10 seconds only
    ./opensnoop -n main                # only print process names containing "main"
    ./opensnoop -e                     # show extended fields
    ./opensnoop -f O_WRONLY -f O_RDWR  # only print calls for writing
    ./opensnoop -F                     # show full path for an open file with relative path
    ./opensnoop --cgroupmap mappath    # only trace cgroups in this BPF map
    ./opensnoop --mntnsmap mappath     # only trace mount namespaces in the map
    ./opensnoop --json                 # one JSON object per event
    ./opensnoop --exec ls -l /tmp      # trace the opens of this command only
"""


class OpenHow(Struct):
    """struct open_how (openat2's second argument, in user memory)."""

    flags: u64  # type: ignore[valid-type]
    mode: u64  # type: ignore[valid-type]
    resolve: u64  # type: ignore[valid-type]


class Args(Struct):
    """What the entry remembers per thread until the exit."""

    fname: u64  # type: ignore[valid-type]  # user pointer
    flags: i32  # type: ignore[valid-type]
    mode: u32  # type: ignore[valid-type]


class Event(Struct):
    ts: u64  # type: ignore[valid-type]  # ktime, ns
    id: u64  # type: ignore[valid-type]  # tgid << 32 | tid
    uid: u32  # type: ignore[valid-type]
    ret: i32  # type: ignore[valid-type]
    flags: i32  # type: ignore[valid-type]
    mode: u32  # type: ignore[valid-type]
    comm: char[16]  # type: ignore[valid-type]
    fname: char[NAME_MAX]  # type: ignore[valid-type]


# --- arguments ---------------------------------------------------------------------------------


def duration_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opensnoop", description="Trace open() syscalls",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES)
    a = p.add_argument
    a("-T", "--timestamp", action="store_true", help="include timestamp on output")
    a("-U", "--print-uid", action="store_true", help="print UID column")
    a("-x", "--failed", action="store_true", help="only show failed opens")
    a("-p", "--pid", type=positive_nonzero_int, help="trace this PID only")
    a("-t", "--tid", type=positive_nonzero_int, help="trace this TID only")
    add_container_args(p)
    a("-u", "--uid", type=positive_int, help="trace this UID only")
    a("-d", "--duration", type=duration_seconds, help="total duration of trace in seconds")
    a("-n", "--name", help="only print process names containing this name")
    a("-e", "--extended_fields", action="store_true", help="show extended fields")
    a("-f", "--flag_filter", action="append", help="filter on flags argument (e.g., O_WRONLY)")
    a("-F", "--full-path", action="store_true", help="show full path for an open file with relative path")
    a("-b", "--buffer-pages", type=positive_nonzero_int, default=64,
      help="size of the ring (or perf) buffer in pages (a power of two, default 64)")
    a("--json", action="store_true", help="print one JSON object per event")
    a("--exec", nargs=argparse.REMAINDER,
      help="execute command (as the last parameter, supports multiple parameters, "
           "for example: --exec ls -l /tmp)")
    add_ebpf_option(p)
    return p


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.pid and args.exec is not None:
        p.error("can only use -p or --exec")
    if args.exec is not None and not args.exec:
        p.error("--exec without command")
    if args.buffer_pages & (args.buffer_pages - 1):
        p.error("-b/--buffer-pages must be a power of two")
    mask = 0
    for flag in args.flag_filter or []:
        value = getattr(os, flag, None) if flag.startswith("O_") else None
        if not isinstance(value, int):
            p.error(f"Bad flag: {flag}")
        mask |= value
    args.flag_mask = mask
    return args


# --- output -------------------------------------------------------------------------------------


def header(args: argparse.Namespace) -> str:
    out = ""
    if args.timestamp:
        out += "%-14s" % "TIME(s)"
    if args.print_uid:
        out += "%-6s" % "UID"
    out += "%-6s %-16s %4s %3s " % ("TID" if args.tid else "PID", "COMM", "FD", "ERR")
    if args.extended_fields:
        out += "%-8s %-4s " % ("FLAGS", "MODE")
    return out + "PATH"


def mode_applies(flags: int, mode: int) -> bool:
    """open(2): the mode matters only with O_CREAT or O_TMPFILE (else BCC prints n/a)."""
    return not (mode == 0 and flags & O_CREAT == 0 and flags & O_TMPFILE != O_TMPFILE)


class Formatter:
    """Turns events into BCC's text lines or JSON objects; applies ``-n``; keeps -T's origin."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.first_ts = 0
        self.name = args.name.encode() if args.name else None

    def path_of(self, ev: Any) -> str:
        path = ev.fname.decode("utf-8", "replace")
        if self.args.full_path and not path.startswith("/"):
            try:
                cwd = os.readlink(f"/proc/{ev.id >> 32}/cwd")
            except OSError:
                return path
            path = cwd.rstrip("/") + "/" + path
        return path

    def wanted(self, ev: Any) -> bool:
        if not self.first_ts:
            self.first_ts = ev.ts
        if self.args.failed and ev.ret >= 0:
            return False
        return self.name is None or self.name in ev.comm

    def fields(self, ev: Any) -> Tuple[int, int, int]:
        """(pid or tid, fd, err)."""
        ident = ev.id & 0xFFFFFFFF if self.args.tid else ev.id >> 32
        return (ident, ev.ret, 0) if ev.ret >= 0 else (ident, -1, -ev.ret)

    def text(self, ev: Any) -> Optional[str]:
        if not self.wanted(ev):
            return None
        args = self.args
        out = ""
        if args.timestamp:
            out += "%-14.9f" % ((ev.ts - self.first_ts) / 1e9)
        if args.print_uid:
            out += "%-6d" % ev.uid
        ident, fd, err = self.fields(ev)
        out += "%-6d %-16s %4d %3d " % (ident, ev.comm.decode("utf-8", "replace"), fd, err)
        if args.extended_fields:
            if mode_applies(ev.flags, ev.mode):
                out += "%08o %04o " % (ev.flags & 0xFFFFFFFF, ev.mode)
            else:
                out += "%08o n/a  " % (ev.flags & 0xFFFFFFFF)
        return out + self.path_of(ev)

    def record(self, ev: Any) -> Optional[Dict[str, Any]]:
        if not self.wanted(ev):
            return None
        args = self.args
        out: Dict[str, Any] = {}
        if args.timestamp:
            out["time"] = round((ev.ts - self.first_ts) / 1e9, 9)
        if args.print_uid:
            out["uid"] = ev.uid
        ident, fd, err = self.fields(ev)
        out["tid" if args.tid else "pid"] = ident
        out["comm"] = ev.comm.decode("utf-8", "replace")
        out["fd"] = fd
        out["err"] = err
        if args.extended_fields:
            out["flags"] = ev.flags & 0xFFFFFFFF
            out["mode"] = ev.mode if mode_applies(ev.flags, ev.mode) else None
        out["path"] = self.path_of(ev)
        return out


# --- kernel side --------------------------------------------------------------------------------


def build(ring: bool, syscalls: List[str], ring_bytes: int = 64 * 4096, cgroupmap: bool = False,
          mntnsmap: bool = False) -> Any:
    """The programs for the ``syscalls`` (of SYSCALLS) this kernel has; events through a ring
    buffer (``ring``) or a perf event array; BCC's container filters when asked."""
    from ebpf import lang as L

    coll = L.Collection("opensnoop")
    start = coll.hash_map("start", key=u32, value=Args, max_entries=10240)
    if ring:
        events = coll.ringbuf("events", size=ring_bytes)
        lost = coll.percpu_array("lost", value=u64, max_entries=1)
    else:
        events = coll.perf_event_array("events")
    targ_tgid = coll.rodata("targ_tgid", u32, 0)
    targ_tid = coll.rodata("targ_tid", u32, 0)
    targ_uid = coll.rodata("targ_uid", u32, NO_UID)
    targ_failed = coll.rodata("targ_failed", u32, 0)
    flag_mask = coll.rodata("flag_mask", u32, 0)
    containers = cgroupmap or mntnsmap
    container_filtered = None
    if containers:
        from ebpf.tools._snoop_events import container_filter

        container_filtered = container_filter(coll, cgroupmap, mntnsmap)

    @L.inline
    def remember(fname, flags, mode):
        pid_tgid = L.get_current_pid_tgid()
        if targ_tgid and u32(pid_tgid >> 32) != targ_tgid:
            return 0
        if targ_tid and u32(pid_tgid) != targ_tid:
            return 0
        if targ_uid != NO_UID and L.uid() != targ_uid:
            return 0
        if flag_mask and not (flags & flag_mask):
            return 0
        if containers:
            if container_filtered():
                return 0
        start[u32(pid_tgid)] = Args(fname=fname, flags=flags, mode=mode)
        return 0

    def enter_open(ctx):
        return remember(ctx.filename, ctx.flags, ctx.mode)

    def enter_openat2(ctx):
        how = OpenHow()
        L.probe_read_user(how, ctx.how)
        return remember(ctx.filename, how.flags, how.mode)

    def exit_open(ctx):
        pid_tgid = L.get_current_pid_tgid()
        tid = u32(pid_tgid)
        ap = start.get(tid)
        if ap is None:
            return 0  # missed the entry (or filtered out there)
        ret = ctx.ret
        if targ_failed and ret >= 0:
            del start[tid]
            return 0
        mode = ap.mode
        if not (ap.flags & O_CREAT) and (ap.flags & O_TMPFILE) != O_TMPFILE:
            mode = 0
        if ring:
            e = events.reserve(Event)
            if e is None:
                lost[0] += 1
            else:
                e.ts = L.ktime_get_ns()
                e.id = pid_tgid
                e.uid = L.uid()
                e.ret = ret
                e.flags = ap.flags
                e.mode = mode
                L.get_current_comm(e.comm)
                L.probe_read_user_str(e.fname, ap.fname)
                events.submit(e)
        else:
            ev = Event(ts=L.ktime_get_ns(), id=pid_tgid, uid=L.uid(), ret=ret, flags=ap.flags, mode=mode)
            L.get_current_comm(ev.comm)
            L.probe_read_user_str(ev.fname, ap.fname)
            events.output(ev)
        del start[tid]
        return 0

    for sc in syscalls:
        coll.tracepoint(f"syscalls/sys_enter_{sc}", name=f"enter_{sc}")(
            enter_openat2 if sc == "openat2" else enter_open)
    if syscalls:
        coll.tracepoint(f"syscalls/sys_exit_{syscalls[0]}", name=f"exit_{syscalls[0]}")(exit_open)
    return coll


def compile_spec(coll: Any, syscalls: List[str]) -> Any:
    """The collection's spec, the exit program compiled once: every ``sys_exit_*`` event has the
    kernel's one ``struct syscall_trace_exit`` layout, so the same code serves each of them."""
    spec = coll.spec()
    first = spec.programs[f"exit_{syscalls[0]}"]
    for sc in syscalls[1:]:
        name = f"exit_{sc}"
        if name not in spec.programs:
            prog = first.copy()
            prog.name = name
            prog.attach_to = f"syscalls/sys_exit_{sc}"
            spec.add_program(prog)
    return spec


def attach_order(syscalls: List[str]) -> List[str]:
    """Exits first, openat's entry last: attaching opens tracefs files with openat(), and these
    opens are not reported when the openat entry is not hooked yet."""
    enters = sorted((f"enter_{s}" for s in syscalls), key=lambda n: n == "enter_openat")
    return [f"exit_{s}" for s in syscalls] + enters


# --- main ---------------------------------------------------------------------------------------


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    from ebpf.errors import EbpfError
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools import runtime
    from ebpf.tools._command import command_for

    if not args.ebpf:
        runtime.require_privileges()
    names = [s for s in SYSCALLS
             if len(runtime.existing_tracepoints("syscalls", [f"sys_enter_{s}", f"sys_exit_{s}"])) == 2]
    if not names:
        raise EbpfError("this kernel has no syscalls/sys_enter_open* tracepoints (CONFIG_FTRACE_SYSCALLS)")
    ring = snoop.ring_buffer_available()
    coll = build(ring, names, ring_bytes=args.buffer_pages * os.sysconf("SC_PAGE_SIZE"),
                 cgroupmap=bool(args.cgroupmap), mntnsmap=bool(args.mntnsmap))
    runtime.compile_programs(coll)
    spec = compile_spec(coll, names)
    if runtime.show_programs(args, coll):
        return 0
    with snoop.ContainerMaps(args, spec) as pinned, command_for(args.exec) as child:
        return _trace(args, coll, names, ring, pinned, child)


def _trace(args: argparse.Namespace, coll: Any, names: List[str], ring: bool, pinned: Any, child: Any) -> int:
    from ebpf.report import Output
    from ebpf.tools import _snoop_events as snoop
    from ebpf.tools.runtime import Stopper

    stopper = Stopper()
    out = Output(json_mode=args.json)
    fmt = Formatter(args)
    show = snoop.event_printer(fmt, out, args.json)
    target_tgid = child.pid or args.pid or 0
    with coll.load(maps=pinned.maps, targ_tgid=0 if args.tid else target_tgid, targ_tid=args.tid or 0,
                   targ_uid=NO_UID if args.uid is None else args.uid, targ_failed=int(args.failed),
                   flag_mask=args.flag_mask) as live:
        loop = snoop.EventLoop(live, Event, show, ring=ring, pages=args.buffer_pages)
        try:
            live.attach(attach_order(names))
            child.start()
            child.watch(stopper)
            if not args.json:
                out.line(header(args))
            if args.duration:  # BCC: -d 0 traces until Ctrl-C
                stopper.deadline = time.monotonic() + args.duration
            loop.run(stopper)
            child.finish()  # what it does while it ends is traced too
            snoop.detach(live)
            loop.drain()
        finally:
            loop.close()
    return child.exit_status()


if __name__ == "__main__":
    tool_main("opensnoop", run)
