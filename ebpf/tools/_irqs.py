"""What softirqs and hardirqs share: their flags, their hook choice, and their output.

Both tools keep BCC's Python tools' flags and output: a banner, then per interval a blank line,
an optional ``HH:MM:SS`` line, and either a table of totals (``SOFTIRQ          TOTAL_usecs``,
in BCC 0.26's order: by the total in nanoseconds, smallest first, so that the largest ends the
table next to the prompt; equal totals by name) or, with ``-d``, one log2 histogram per IRQ headed
``softirq = timer``. Times are summed in nanoseconds in the kernel and divided when printed,
as BCC does; histogram slots are ``log2l(delta / factor)`` computed in the kernel.

``--json`` writes one object per interval instead::

    {"ts": "2026-11-24 21:17:02", "unit": "usecs", "softirqs": {"timer": 172, "rcu": 31}}
    {"ts": "...", "unit": "usecs", "hists": {"timer": [{"interval-start": 0, "interval-end": 1,
     "count": 3}, ...]}}

The kernel side counts into one hash map, ``dist``, keyed by (irq, slot) (slot 0 for totals),
read and emptied each interval with LOOKUP_AND_DELETE_BATCH so that no event is counted twice
or lost between two reads.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Dict, Hashable, List, NamedTuple, Optional, Sequence, Tuple

from ebpf.tools.runtime import add_ebpf_option, positive_int, positive_nonzero_int

HOOKS = ("auto", "tp_btf", "raw_tp", "tracepoint")


class IrqTool(NamedTuple):
    """How one of the two tools differs from the other."""

    name: str  # "softirqs"
    kind: str  # "soft" / "hard": the banner's word
    column: str  # "SOFTIRQ"
    width: int  # of the name column: 16 / 26
    section: str  # "softirq": histogram section header
    description: str
    examples: str
    count_flag: str  # BCC's long name of -C: "--events" / "--count"
    count_help: str
    count_arg: str  # BCC's name of the second positional: "count" / "outputs"
    tp_btf_probe: str  # the tracepoint libbpf-tools' probe_tp_btf() checks


def make_parser(tool: IrqTool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=tool.name,
        description=tool.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=tool.examples)
    parser.add_argument("-T", "--timestamp", action="store_true",
                        help="include timestamp on output")
    parser.add_argument("-N", "--nanoseconds", action="store_true",
                        help="output in nanoseconds")
    parser.add_argument("-C", tool.count_flag, dest="events", action="store_true",
                        help=tool.count_help)
    parser.add_argument("-d", "--dist", action="store_true",
                        help="show distributions as histograms")
    parser.add_argument("-c", "--cpu", type=positive_int,
                        help="trace this CPU only")
    parser.add_argument("interval", nargs="?", type=positive_nonzero_int,
                        help="output interval, in seconds")
    parser.add_argument(tool.count_arg, nargs="?", type=positive_nonzero_int, metavar=tool.count_arg,
                        help="number of outputs")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per interval instead of text")
    parser.add_argument("--hook", choices=HOOKS, default="auto", help=argparse.SUPPRESS)
    add_ebpf_option(parser)
    return parser


def parse_args(tool: IrqTool, argv: Sequence[str]) -> argparse.Namespace:
    args = make_parser(tool).parse_args(list(argv))
    args.count = getattr(args, tool.count_arg)
    return args


def conflict(tool: IrqTool, args: argparse.Namespace) -> Optional[str]:
    """BCC's refusal of -C with time options, word for word; None when the flags agree."""
    if args.events and (args.dist or args.nanoseconds):
        return "The %s option can't be used with time-based options" % tool.count_flag
    return None


def unit(args: argparse.Namespace) -> Tuple[str, int]:
    """(label, factor): what the values are and what divides nanoseconds into them."""
    if args.events:
        return "count", 1
    if args.nanoseconds:
        return "nsecs", 1
    return "usecs", 1000


def banner(tool: IrqTool, args: argparse.Namespace) -> str:
    what = "events" if args.events else "event time"
    return "Tracing %s irq %s... Hit Ctrl-C to end." % (tool.kind, what)


# ---- output --------------------------------------------------------------------------------

Items = Sequence[Tuple[Any, int]]


def totals(items: Items, name_of: Callable[[Any], str], factor: int) -> List[Tuple[str, int]]:
    """(name, total / factor) from (key, value) pairs of the ``dist`` map, smallest total first
    (BCC 0.26 sorts its table by value, ascending), equal totals by name."""
    sums: Dict[str, int] = {}
    for key, value in items:
        name = name_of(key)
        sums[name] = sums.get(name, 0) + int(value)
    rows = sorted(sums.items(), key=lambda kv: (kv[1], kv[0]))
    return [(name, value // factor) for name, value in rows]


def hists(items: Items, irq_of: Callable[[Any], Hashable], name_of: Callable[[Any], str]
          ) -> Dict[str, Dict[int, int]]:
    """name -> {slot: count}, in the order of the IRQs (vector number or name)."""
    grouped: Dict[Hashable, Dict[int, int]] = {}
    names: Dict[Hashable, str] = {}
    for key, value in items:
        irq = irq_of(key)
        slots = grouped.setdefault(irq, {})
        slots[key.slot] = slots.get(key.slot, 0) + int(value)
        names[irq] = name_of(key)
    return {names[irq]: grouped[irq] for irq in sorted(grouped, key=_order)}


def _order(irq: Hashable) -> Tuple[int, Any]:
    return (0, irq) if isinstance(irq, int) else (1, str(irq))


def table_lines(tool: IrqTool, label: str, rows: List[Tuple[str, int]]) -> List[str]:
    lines = ["%-*s %11s" % (tool.width, tool.column, "TOTAL_" + label)]
    lines += ["%-*s %11d" % (tool.width, name, value) for name, value in rows]
    return lines


def interval_lines(tool: IrqTool, args: argparse.Namespace, items: Items, irq_of: Callable[[Any], Hashable],
                   name_of: Callable[[Any], str], now: Optional[float] = None) -> List[str]:
    """One interval as BCC prints it: a blank line, the time with -T, the table or histograms."""
    from ebpf.report import section_lines

    label, factor = unit(args)
    lines = [""]
    if args.timestamp:
        lines.append("%-8s" % time.strftime("%H:%M:%S", time.localtime(now)))
    if args.dist:
        lines += section_lines(hists(items, irq_of, name_of), tool.section, label,
                               section_print_fn=str)
    else:
        lines += table_lines(tool, label, totals(items, name_of, factor))
    return lines


def interval_record(tool: IrqTool, args: argparse.Namespace, items: Items, irq_of: Callable[[Any], Hashable],
                    name_of: Callable[[Any], str], now: Optional[float] = None) -> Dict[str, Any]:
    from ebpf.report import json_hist

    label, factor = unit(args)
    out: Dict[str, Any] = {"ts": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)), "unit": label}
    if args.dist:
        out["hists"] = {name: json_hist(slots, label)["data"]
                        for name, slots in hists(items, irq_of, name_of).items()}
    else:
        out[tool.name] = dict(totals(items, name_of, factor))
    return out


# ---- running -------------------------------------------------------------------------------


def run(tool: IrqTool, argv: Sequence[str], build: Callable[[str, bool], Any],
        irq_of: Callable[[Any], Hashable], name_of: Callable[[Any], str]) -> int:
    """Parse, check, load the collection ``build(hook, count_only)`` makes, print intervals."""
    args = parse_args(tool, argv)
    problem = conflict(tool, args)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from ebpf.report import Output
    from ebpf.tools import runtime

    runtime.check_cpu(args.cpu)
    if not args.ebpf:
        runtime.require_privileges()
    hook = runtime.choose_hooks(tool.tp_btf_probe, args.hook)
    coll = build(hook, args.events)
    runtime.compile_programs(coll)
    if runtime.show_programs(args, coll):
        return 0
    rodata: Dict[str, Any] = {"targ_cpu": -1 if args.cpu is None else args.cpu}
    if not args.events:
        rodata["targ_dist"] = 1 if args.dist else 0
        rodata["factor"] = unit(args)[1]
    out = Output(json_mode=args.json)
    with coll.load(**rodata) as live:
        stopper = runtime.Stopper()
        live.attach()
        # the banner says "ready": with --json it goes to stderr, keeping stdout pure JSON
        print(banner(tool, args), file=sys.stderr if args.json else sys.stdout, flush=True)
        dist = live.maps["dist"]

        def tick() -> None:
            items = dist.items_and_clear()
            if args.json:
                out.record(interval_record(tool, args, items, irq_of, name_of))
            else:
                out.lines(interval_lines(tool, args, items, irq_of, name_of))

        runtime.interval_loop(stopper, args.interval, args.count, tick)
    return 0
