"""softirqs: summarize soft IRQ event time (BCC's ``softirqs``).

    softirqs [-h] [-T] [-N] [-C] [-d] [-c CPU] [--json] [interval] [count]

The entry hook stamps the time in a per-CPU slot, the exit hook adds the time since then to
the vector's total (or, with ``-d``, counts it in the vector's log2 histogram); ``-C`` counts
entries only. Hooks chosen by feature probes as libbpf-tools chooses them: tp_btf
``softirq_entry``/``softirq_exit`` where the kernel loads tp_btf programs, else the raw
tracepoints, else the ``irq/`` tracepoints (``--hook`` forces one; it is not in ``--help``).
"""

from __future__ import annotations

from typing import Any, List

from ebpf.lang.types import Struct, u32
from ebpf.tools._irqs import IrqTool
from ebpf.tools._irqs import run as run_irq_tool
from ebpf.tools.runtime import tool_main

TOOL = IrqTool(
    name="softirqs",
    kind="soft",
    column="SOFTIRQ",
    width=16,
    section="softirq",
    description="Summarize soft irq event time as histograms.",
    examples="""examples:
    ./softirqs            # sum soft irq event time
    ./softirqs -C         # show the number of soft irq events
    ./softirqs -d         # show soft irq event time as histograms
    ./softirqs 1 10       # print 1 second summaries, 10 times
    ./softirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    ./softirqs -c 1       # sum soft irq event time on CPU 1 only
""",
    count_flag="--events",
    count_help="show the number of soft irq events",
    count_arg="count",
    tp_btf_probe="softirq_entry",
)

# softirq_to_name[] of kernel/softirq.c, indexed by vector
VEC_NAMES = ("hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu")


class Key(Struct):
    vec: u32  # type: ignore[valid-type]
    slot: u32  # type: ignore[valid-type]  # log2 slot with -d, else 0


def vec_name(key: Any) -> str:
    vec = key.vec
    return VEC_NAMES[vec] if vec < len(VEC_NAMES) else str(vec)


def vec_of(key: Any) -> int:
    return int(key.vec)


def build(hook: str, count_only: bool) -> Any:
    """The collection: two programs on ``hook`` (tp_btf, raw_tp or tracepoint), one with -C."""
    from ebpf import lang as L
    from ebpf.lang.types import i32, u64

    coll = L.Collection("softirqs")
    dist = coll.hash_map("dist", key=Key, value=u64, max_entries=1024)
    targ_cpu = coll.rodata("targ_cpu", i32, -1)

    if count_only:

        @L.inline
        def on_entry(vec):
            if targ_cpu >= 0 and L.get_smp_processor_id() != targ_cpu:
                return 0
            dist[Key(vec=vec)] += 1
            return 0

    else:
        start = coll.percpu_array("start", value=u64, max_entries=1)
        targ_dist = coll.rodata("targ_dist", u32, 0)
        factor = coll.rodata("factor", u32, 1000)

        @L.inline
        def on_entry(vec):
            if targ_cpu >= 0 and L.get_smp_processor_id() != targ_cpu:
                return 0
            start[0] = L.ktime_get_ns()
            return 0

        @L.inline
        def on_exit(vec):
            if targ_cpu >= 0 and L.get_smp_processor_id() != targ_cpu:
                return 0
            tsp = start.get(0)
            if tsp is None:
                return 0
            ts = tsp[0]
            if ts == 0:
                return 0  # missed the entry
            tsp[0] = 0
            delta = L.ktime_get_ns() - ts
            if targ_dist:  # BCC's bpf_log2l(): floor(log2(v)) + 1, and 1 for 0
                dist[Key(vec=vec, slot=L.log2l(delta // factor) + 1)] += 1
            else:
                dist[Key(vec=vec)] += delta
            return 0

    if hook == "tracepoint":  # irq/softirq_entry: the vector is a field of the record

        def softirq_entry(ctx):
            return on_entry(ctx.vec)

        def softirq_exit(ctx):
            return on_exit(ctx.vec)

    else:  # tp_btf and raw_tp: the vector is the first argument

        def softirq_entry(ctx):
            return on_entry(ctx.args[0])

        def softirq_exit(ctx):
            return on_exit(ctx.args[0])

    attach = {"tp_btf": coll.tp_btf, "raw_tp": coll.raw_tracepoint, "tracepoint": coll.tracepoint}[hook]
    prefix = "irq/" if hook == "tracepoint" else ""
    attach(prefix + "softirq_entry", name="softirq_entry")(softirq_entry)
    if not count_only:
        attach(prefix + "softirq_exit", name="softirq_exit")(softirq_exit)
    return coll


def run(argv: List[str]) -> int:
    return run_irq_tool(TOOL, argv, build, vec_of, vec_name)


if __name__ == "__main__":
    tool_main("softirqs", run)
