"""hardirqs: summarize hard IRQ event time (BCC's ``hardirqs``).

    hardirqs [-h] [-T] [-N] [-C] [-d] [-c CPU] [--json] [interval] [outputs]

The entry hook stamps the time in a per-CPU slot; the exit hook, when the handler did handle
the interrupt (``ret != IRQ_NONE``, as BCC checks), adds the time since then to the total of
the action's name (or counts it in that name's log2 histogram with ``-d``, or just counts it
with ``-C``). Hooks chosen by feature probes as libbpf-tools chooses them: tp_btf
``irq_handler_entry``/``irq_handler_exit`` (the name read from ``action->name``) where the
kernel loads tp_btf programs, else the raw tracepoints, else the ``irq/`` tracepoints, whose
exit record has no name, so the entry keeps it in the per-CPU slot (``--hook`` forces one).
"""

from __future__ import annotations

from typing import Any, List

from ebpf.lang.types import Struct, char, u32, u64
from ebpf.tools._irqs import IrqTool
from ebpf.tools._irqs import run as run_irq_tool
from ebpf.tools.runtime import tool_main

TOOL = IrqTool(
    name="hardirqs",
    kind="hard",
    column="HARDIRQ",
    width=26,
    section="hardirq",
    description="Summarize hard irq event time as histograms",
    examples="""examples:
    ./hardirqs            # sum hard irq event time
    ./hardirqs -d         # show hard irq event time as histograms
    ./hardirqs 1 10       # print 1 second summaries, 10 times
    ./hardirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    ./hardirqs -c 1       # sum hard irq event time on CPU 1 only
""",
    count_flag="--count",
    count_help="show event counts instead of timing",
    count_arg="outputs",
    tp_btf_probe="irq_handler_entry",
)

NAME_LEN = 32


class Key(Struct):
    name: char[NAME_LEN]  # type: ignore[valid-type]
    slot: u32  # type: ignore[valid-type]  # log2 slot with -d, else 0


class Start(Struct):
    """The per-CPU slot: when the handler started (and, for the tracepoints, its name)."""

    ts: u64  # type: ignore[valid-type]
    name: char[NAME_LEN]  # type: ignore[valid-type]


def irq_name(key: Any) -> str:
    return bytes(key.name).decode("utf-8", "replace")


def irq_of(key: Any) -> bytes:
    return bytes(key.name)


def build(hook: str, count_only: bool) -> Any:
    """The collection for ``hook`` (tp_btf, raw_tp or tracepoint); -C needs no timestamps."""
    from ebpf import lang as L
    from ebpf.lang.types import i32

    coll = L.Collection("hardirqs")
    dist = coll.hash_map("dist", key=Key, value=u64, max_entries=4096)
    targ_cpu = coll.rodata("targ_cpu", i32, -1)
    start = coll.percpu_array("start", value=Start, max_entries=1)

    @L.inline
    def other_cpu():
        return targ_cpu >= 0 and L.get_smp_processor_id() != targ_cpu

    if count_only:

        @L.inline
        def account(k, ts):
            dist[k] += 1
            return 0

    else:
        targ_dist = coll.rodata("targ_dist", u32, 0)
        factor = coll.rodata("factor", u32, 1000)

        @L.inline
        def account(k, ts):
            if ts == 0:
                return 0  # missed the entry
            delta = L.ktime_get_ns() - ts
            if targ_dist:  # BCC's bpf_log2l(): floor(log2(v)) + 1, and 1 for 0
                k.slot = L.log2l(delta // factor) + 1
                dist[k] += 1
            else:
                dist[k] += delta
            return 0

    if hook == "tracepoint":

        def irq_handler_entry(ctx):
            if other_cpu():
                return 0
            s = start.get(0)
            if s is None:
                return 0
            s.ts = L.ktime_get_ns()
            L.probe_read_kernel_str(s.name, ctx.name)
            return 0

        def irq_handler_exit(ctx):
            if other_cpu():
                return 0
            s = start.get(0)
            if s is None:
                return 0
            ts = s.ts
            s.ts = 0
            if ctx.ret == 0:  # IRQ_NONE: not this handler's interrupt
                return 0
            if s.name[0] == 0:
                return 0
            k = Key()
            k.name = s.name
            return account(k, ts)

    else:

        def irq_handler_entry(ctx):
            if other_cpu():
                return 0
            s = start.get(0)
            if s is None:
                return 0
            s.ts = L.ktime_get_ns()
            return 0

        if hook == "tp_btf":

            # (int irq, struct irqaction *action, int ret) by position: some kernels' BTF (5.10
            # builds without __traceiter_ records) does not name a tracepoint's arguments
            def irq_handler_exit(ctx):
                if ctx.arg(2) == 0 or other_cpu():  # IRQ_NONE: not this handler's interrupt
                    return 0
                s = start.get(0)
                if s is None:
                    return 0
                ts = s.ts
                s.ts = 0
                k = Key()
                L.probe_read_kernel_str(k.name, ctx.arg(1).name)
                return account(k, ts)

        else:

            def irq_handler_exit(ctx):
                if i32(ctx.args[2]) == 0 or other_cpu():
                    return 0
                s = start.get(0)
                if s is None:
                    return 0
                ts = s.ts
                s.ts = 0
                k = Key()
                action = L.cast(ctx.args[1], "struct irqaction")
                L.probe_read_kernel_str(k.name, action.name)
                return account(k, ts)

    attach = {"tp_btf": coll.tp_btf, "raw_tp": coll.raw_tracepoint, "tracepoint": coll.tracepoint}[hook]
    prefix = "irq/" if hook == "tracepoint" else ""
    if hook == "tracepoint" or not count_only:
        attach(prefix + "irq_handler_entry", name="irq_handler_entry")(irq_handler_entry)
    attach(prefix + "irq_handler_exit", name="irq_handler_exit")(irq_handler_exit)
    return coll


def run(argv: List[str]) -> int:
    return run_irq_tool(TOOL, argv, build, irq_of, irq_name)


if __name__ == "__main__":
    tool_main("hardirqs", run)
