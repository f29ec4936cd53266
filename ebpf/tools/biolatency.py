"""biolatency: summarize block device I/O latency as a histogram (BCC's tool, rebuilt).

The flags and the output are BCC's ``biolatency``: ``-T -Q -m -D -F -e -j -d DISK [interval
[count]]``, the banner, the log2 histogram, the ``disk = vda`` / ``flags = Sync-Write``
sections and the ``avg = ...`` extension line. ``-j``/``--json`` writes one JSON object per
histogram per interval (BCC's ``print_json_hist`` objects, valid JSON; the banner then goes to
stderr, and ``-T`` adds nothing: each object has its ``ts``).

Hooks are chosen as libbpf-tools chooses them: ``tp_btf`` ``block_rq_issue`` and
``block_rq_complete`` (plus ``block_rq_insert`` with ``-Q``) where the kernel takes tp_btf
programs; else raw tracepoints on the same events, reading ``struct request`` through CO-RE
and probe reads; else (no kernel BTF) the classic ``block/*`` tracepoints, keyed by device
and sector like BCC's tracepoint mode (no ``-F`` there: the record has no request flags).
The hidden option ``--hook tp_btf|raw_tp|tracepoint`` forces one path (tests use it).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ebpf.lang.types import Struct, u32, u64
from ebpf.tools.runtime import add_ebpf_option, positive_nonzero_int

NAME = "biolatency"
BANNER = "Tracing block device I/O... Hit Ctrl-C to end."
HOOKS = ("auto", "tp_btf", "raw_tp", "tracepoint")
MAX_ENTRIES = 10240

EXAMPLES = """examples:
    ebpf biolatency                    # summarize block I/O latency as a histogram
    ebpf biolatency 1 10               # print 1 second summaries, 10 times
    ebpf biolatency -mT 1              # 1s summaries, milliseconds, and timestamps
    ebpf biolatency -Q                 # include OS queued time in I/O time
    ebpf biolatency -D                 # show each disk device separately
    ebpf biolatency -F                 # show I/O flags separately
    ebpf biolatency -j                 # print a dictionary
    ebpf biolatency -e                 # show extension summary(total, average)
    ebpf biolatency -d sdc             # Trace sdc only
"""


class HistKey(Struct):
    """A histogram slot: ``id`` is the disk's dev_t (-D), the request flags (-F), or 0."""

    id: u32  # type: ignore[valid-type]
    slot: u32  # type: ignore[valid-type]


class StartKey(Struct):
    """A request as the classic tracepoints see it (BCC's tracepoint mode)."""

    dev: u32  # type: ignore[valid-type]
    pad: u32  # type: ignore[valid-type]
    sector: u64  # type: ignore[valid-type]


class Ext(Struct):
    total: u64  # type: ignore[valid-type]
    count: u64  # type: ignore[valid-type]


# ---- arguments -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=NAME,
        description="Summarize block device I/O latency as a histogram",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-Q", "--queued", action="store_true", help="include OS queued time in I/O time")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-D", "--disks", action="store_true", help="print a histogram per disk device")
    p.add_argument("-F", "--flags", action="store_true", help="print a histogram per set of I/O flags")
    p.add_argument("-e", "--extension", action="store_true", help="summarize average/total value")
    p.add_argument("interval", nargs="?", type=positive_nonzero_int, default=None,
                   help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_nonzero_int, default=None, help="number of outputs")
    add_ebpf_option(p)
    p.add_argument("-j", "--json", action="store_true", help="json output")
    p.add_argument("-d", "--disk", type=str, help="Trace this disk only")
    p.add_argument("--hook", "--hooks", dest="hooks", choices=HOOKS, default="auto", help=argparse.SUPPRESS)
    return p


def parse_args(argv: List[str]) -> argparse.Namespace:
    return parser().parse_args(argv)


# ---- output ----------------------------------------------------------------------------------

# blk_fill_rwbs()'s view of cmd_flags, as BCC's biolatency decodes it.
REQ_OPF = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase", 6: "ZoneReset", 7: "WriteSame",
           9: "WriteZeros"}
REQ_OP_BITS = 8
REQ_OP_MASK = (1 << REQ_OP_BITS) - 1
REQ_FLAG_NAMES = (  # applied in this order, each one prefixed: the last is printed first
    (1 << (REQ_OP_BITS + 3), "Sync"),
    (1 << (REQ_OP_BITS + 4), "Metadata"),
    (1 << (REQ_OP_BITS + 9), "ForcedUnitAccess"),
    (1 << (REQ_OP_BITS + 5), "Priority"),
    (1 << (REQ_OP_BITS + 6), "NoMerge"),
    (1 << (REQ_OP_BITS + 7), "Idle"),
    (1 << (REQ_OP_BITS + 11), "ReadAhead"),
    (1 << (REQ_OP_BITS + 12), "Background"),
    (1 << (REQ_OP_BITS + 13), "NoWait"),
)


def flags_label(flags: int) -> str:
    """BCC's ``flags_print``: ``Sync-Write``, ``Metadata-Read``, ``Unknown``..."""
    desc = REQ_OPF.get(flags & REQ_OP_MASK, "Unknown")
    for bit, name in REQ_FLAG_NAMES:
        if flags & bit:
            desc = f"{name}-{desc}"
    return desc


Hists = Dict[int, Dict[int, int]]


def group(pairs: List[Tuple[Any, int]]) -> Hists:
    """``(HistKey, count)`` pairs from the map as ``{id: {slot: count}}``."""
    out: Hists = {}
    for key, count in pairs:
        slots = out.setdefault(int(key.id), {})
        slots[int(key.slot)] = slots.get(int(key.slot), 0) + int(count)
    return out


def sections(hists: Hists, label_of: Callable[[int], str]) -> Dict[str, Dict[int, int]]:
    """Histograms by printed label, in key order; keys printing alike are merged."""
    out: Dict[str, Dict[int, int]] = {}
    for key in sorted(hists):
        merged = out.setdefault(label_of(key), {})
        for slot, count in hists[key].items():
            merged[slot] = merged.get(slot, 0) + count
    return out


def text_lines(hists: Hists, unit: str, *, section: str = "", label_of: Optional[Callable[[int], str]] = None,
               timestamp: Optional[str] = None, ext: Optional[Tuple[int, int]] = None) -> List[str]:
    """One interval as BCC prints it: a blank line, the time (-T), the histogram(s), -e's line."""
    from ebpf.report import log2_hist_lines, section_lines

    lines = [""]
    if timestamp is not None:
        lines.append("%-8s" % timestamp)
    if section and label_of is not None:
        lines += section_lines(sections(hists, label_of), section, unit, section_print_fn=str)
    else:
        merged: Dict[int, int] = {}
        for slots in hists.values():
            for slot, count in slots.items():
                merged[slot] = merged.get(slot, 0) + count
        lines += log2_hist_lines(merged, unit)
    if ext is not None:
        total, count = ext
        if count > 0:
            lines += ["", "avg = %d %s, total: %d %s, count: %d" % (int(total / count), unit, total, unit, count), ""]
    return lines


def json_records(hists: Hists, unit: str, *, section: str = "", label_of: Optional[Callable[[int], str]] = None,
                 ts: Optional[str] = None) -> List[Dict[str, Any]]:
    """One interval as BCC's ``print_json_hist`` objects: one per histogram."""
    from ebpf.report import json_hist

    if section and label_of is not None:
        return [json_hist(slots, unit, (section, label), ts) for label, slots in sections(hists, label_of).items()]
    merged: Dict[int, int] = {}
    for slots in hists.values():
        for slot, count in slots.items():
            merged[slot] = merged.get(slot, 0) + count
    return [json_hist(merged, unit, None, ts)]


# ---- the kernel side ---------------------------------------------------------------------------


class Plan:
    """What to compile: the options that shape the programs, and facts about this kernel."""

    def __init__(self, args: argparse.Namespace, hooks: str, dev: Optional[int]) -> None:
        self.hooks = hooks
        self.queued = bool(args.queued)
        self.ms = bool(args.milliseconds)
        self.per_disk = bool(args.disks)
        self.per_flag = bool(args.flags)
        self.extension = bool(args.extension)
        self.dev = dev
        # which argument is the struct request * is the compiled-for kernel's BTF prototype's
        # answer (5.11 dropped the queue argument of block_rq_insert/issue, some distribution
        # kernels earlier); the compile cache's key names that kernel
        self.rq_arg = {"block_rq_insert": 0, "block_rq_issue": 0, "block_rq_complete": 0}
        if hooks != "tracepoint":
            for tp in self.rq_arg:
                self.rq_arg[tp] = _request_arg(tp)


def _request_arg(tp: str) -> int:
    """Which argument of tracepoint ``tp`` is the ``struct request *``, by its BTF prototype."""
    from ebpf.btf import kernel_btf
    from ebpf.btf import types as T
    from ebpf.lang.context import tp_btf_params

    btf = kernel_btf()
    try:
        params, _ = tp_btf_params(btf, tp)
    except Exception:
        return 0
    for i, param in enumerate(params):
        t = btf.resolve(param.type)
        if isinstance(t, T.Pointer):
            inner = btf.resolve(t.type)
            if isinstance(inner, T.Composite) and inner.name == "request":
                return i
    return 0


def build(plan: Plan) -> Any:
    """The programs and maps for ``plan``: options are Python constants, folded at compile time."""
    from ebpf import lang as L
    from ebpf.lang import i64

    coll = L.Collection(NAME)
    classic = plan.hooks == "tracepoint"
    start = coll.hash_map("start", key=StartKey if classic else u64, value=u64, max_entries=MAX_ENTRIES)
    dist = coll.hash_map("dist", key=HistKey, value=u64, max_entries=MAX_ENTRIES)
    ext = coll.array_map("ext", value=Ext, max_entries=1) if plan.extension else None

    QUEUED = plan.queued
    PER_DISK = plan.per_disk
    PER_FLAG = plan.per_flag
    FILTER_DEV = plan.dev is not None
    TARG_DEV = plan.dev or 0
    EXT = plan.extension
    DIV = 1000000 if plan.ms else 1000
    INSERT_ARG = plan.rq_arg["block_rq_insert"]
    ISSUE_ARG = plan.rq_arg["block_rq_issue"]
    DONE_ARG = plan.rq_arg["block_rq_complete"]

    @L.inline
    def disk_of(rq):
        # request.rq_disk went away in 5.17 (the queue's disk since): the running kernel decides
        if L.field_exists("struct request", "rq_disk"):
            disk = L.member(rq, "rq_disk", L.ptr(L.ktype("gendisk"), "kernel"))
        else:
            disk = L.member(rq.q, "disk", L.ptr(L.ktype("gendisk"), "kernel"))
        return (u32(disk.major) << 20) | u32(disk.first_minor)

    @L.inline
    def section_of(rq):
        if PER_DISK:
            return disk_of(rq)
        if PER_FLAG:
            return u32(rq.cmd_flags)
        return u32(0)

    @L.inline
    def finish(key, section):
        tsp = start.get(key)
        if tsp is None:
            return 0  # missed the start
        delta = i64(L.ktime_get_ns() - tsp[0])
        if delta >= 0:
            d = u64(delta) // DIV
            hk = HistKey(id=section)
            hk.slot = L.log2l(d) + 1
            dist[hk] += 1
            if EXT:
                e = ext.get(0)
                if e is not None:
                    e.total += d
                    e.count += 1
        del start[key]
        return 0

    @L.inline
    def rq_start(key, rq):
        if FILTER_DEV:
            if disk_of(rq) != TARG_DEV:
                return 0
        start[key] = L.ktime_get_ns()
        return 0

    @L.inline
    def rq_issue(key, rq):
        if QUEUED:
            if rq.q.elevator:
                return 0  # timed from block_rq_insert
        return rq_start(key, rq)

    if plan.hooks == "tp_btf":
        if QUEUED:
            @coll.tp_btf("block_rq_insert")
            def block_rq_insert(ctx):
                rq = ctx.arg(INSERT_ARG)
                return rq_start(L.cast(rq, u64), rq)

        @coll.tp_btf("block_rq_issue")
        def block_rq_issue(ctx):
            rq = ctx.arg(ISSUE_ARG)
            return rq_issue(L.cast(rq, u64), rq)

        @coll.tp_btf("block_rq_complete")
        def block_rq_complete(ctx):
            rq = ctx.arg(DONE_ARG)
            return finish(L.cast(rq, u64), section_of(rq))

    elif plan.hooks == "raw_tp":
        if QUEUED:
            @coll.raw_tracepoint("block_rq_insert")
            def block_rq_insert(ctx):
                key = ctx.args[INSERT_ARG]
                return rq_start(key, L.cast(key, "struct request"))

        @coll.raw_tracepoint("block_rq_issue")
        def block_rq_issue(ctx):
            key = ctx.args[ISSUE_ARG]
            return rq_issue(key, L.cast(key, "struct request"))

        @coll.raw_tracepoint("block_rq_complete")
        def block_rq_complete(ctx):
            key = ctx.args[DONE_ARG]
            return finish(key, section_of(L.cast(key, "struct request")))

    else:
        @L.inline
        def tp_start(ctx, only_new):
            if FILTER_DEV:
                if ctx.dev != TARG_DEV:
                    return 0
            key = StartKey(dev=ctx.dev, sector=ctx.sector)
            ts = L.ktime_get_ns()
            if only_new:
                start.update(key, ts, 1)  # BPF_NOEXIST: keep the time of block_rq_insert
            else:
                start[key] = ts
            return 0

        if QUEUED:
            @coll.tracepoint("block/block_rq_insert")
            def block_rq_insert(ctx):
                return tp_start(ctx, 0)

        @coll.tracepoint("block/block_rq_issue")
        def block_rq_issue(ctx):
            return tp_start(ctx, 1 if QUEUED else 0)

        @coll.tracepoint("block/block_rq_complete")
        def block_rq_complete(ctx):
            key = StartKey(dev=ctx.dev, sector=ctx.sector)
            if PER_DISK:
                return finish(key, u32(ctx.dev))
            return finish(key, u32(0))

    return coll


# ---- running -------------------------------------------------------------------------------------


def run(argv: List[str]) -> int:
    import signal
    import sys

    from ebpf.errors import EbpfError
    from ebpf.report import Output
    from ebpf.tools import runtime

    args = parse_args(argv)
    if args.flags and args.disks:
        raise EbpfError("can only use -D or -F")
    dev: Optional[int] = None
    if args.disk is not None:
        from ebpf.tools._disks import dev_of

        dev = dev_of(args.disk)
        if dev is None:
            raise EbpfError(f"no such disk '{args.disk}'")
    if not args.ebpf:
        runtime.require_privileges()
    hooks = runtime.choose_hooks("block_rq_issue", args.hooks)
    if hooks == "tracepoint" and args.flags:
        raise EbpfError("-F needs tp_btf or raw tracepoints: the block tracepoints do not record request flags")
    coll = build(Plan(args, hooks, dev))
    runtime.compile_programs(coll)
    if runtime.show_programs(args, coll):
        return 0

    unit = "msecs" if args.milliseconds else "usecs"
    section = ""
    label_of: Optional[Callable[[int], str]] = None
    names: Dict[int, str] = {}
    if args.disks:
        from ebpf.tools._disks import disk_label, disk_names

        names.update(disk_names())

        def disk_name(d: int) -> str:
            if d not in names:
                names.update(disk_names())  # a disk that appeared since we started
            return disk_label(d, names)

        section, label_of = "disk", disk_name
    elif args.flags:
        section, label_of = "flags", flags_label
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
            ext = live.maps["ext"] if args.extension else None

            def tick() -> None:
                hists = group(dist.items_and_clear())
                ext_val: Optional[Tuple[int, int]] = None
                if ext is not None:
                    e = ext.pop(0)
                    ext_val = (int(e.total), int(e.count))
                if args.json:
                    for rec in json_records(hists, unit, section=section, label_of=label_of):
                        out.record(rec)
                else:
                    stamp = time.strftime("%H:%M:%S") if args.timestamp else None
                    out.lines(text_lines(hists, unit, section=section, label_of=label_of, timestamp=stamp,
                                         ext=ext_val))

            runtime.interval_loop(stopper, args.interval, args.count, tick)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    from ebpf.tools.runtime import tool_main

    tool_main(NAME, run)
