"""Events per second through the ring buffer and the perf buffer into a Python callback.

A producer process calls getppid() in a tight loop for a fixed time; a tracepoint program emits a
32-byte record per call (bpf_ringbuf_output or bpf_perf_event_output) and counts the records the
kernel could not take. This process reads them with RingBufReader / PerfBuffer, decoding each with
a precompiled codec, and a callback counts them. Printed per transport: events produced, delivered,
lost (ring: reserve failures counted by the program; perf: PERF_RECORD_LOST), delivered per second.

    sudo python benchmarks/bench_events.py [--seconds 1] [--pages 64] [--ring-kib 256]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ebpf import asm as A  # noqa: E402
from ebpf.loader import load_program  # noqa: E402
from ebpf.maps import MapSpec  # noqa: E402
from ebpf.maps.perfbuf import PerfBuffer  # noqa: E402
from ebpf.maps.ringbuf import RingBufReader  # noqa: E402
from ebpf.program import ProgramSpec  # noqa: E402

RECORD = [("seq", "u64"), ("pid", "u32"), ("cpu", "u32"), ("ts", "u64"), ("x", "u64")]
PRODUCER = """
import os, sys, time
sys.stdin.read(1)
end = time.monotonic() + float(sys.argv[1])
getppid = os.getppid
while time.monotonic() < end:
    for _ in range(2000):
        getppid()
"""


def program(transport: str) -> ProgramSpec:
    insns = [
        A.mov64(A.R6, A.R1),
        A.call("get_current_pid_tgid"),
        A.rsh64(A.R0, 32),
        A.mov64(A.R7, A.R0),
        A.ld_map_value(A.R1, "cfg", 0),
        A.ldx(4, A.R2, A.R1, 0),
        A.jne(A.R7, A.R2, "out"),
        A.ld_map_value(A.R1, "count", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0, fetch=True),
        A.stx(8, A.R10, A.R2, -32),
        A.stx(4, A.R10, A.R7, -24),
        A.call("get_smp_processor_id"),
        A.stx(4, A.R10, A.R0, -20),
        A.call("ktime_get_ns"),
        A.stx(8, A.R10, A.R0, -16),
        A.st(8, A.R10, -8, 0),
    ]
    if transport == "ring":
        insns += [A.ld_map_fd(A.R1, "events"), A.mov64(A.R2, A.R10), A.add64(A.R2, -32), A.mov64(A.R3, 32),
                  A.mov64(A.R4, 0), A.call("ringbuf_output")]
    else:
        insns += [A.mov64(A.R1, A.R6), A.ld_map_fd(A.R2, "events"), A.ld_imm64(A.R3, 0xFFFFFFFF),
                  A.mov64(A.R4, A.R10), A.add64(A.R4, -32), A.mov64(A.R5, 32), A.call("perf_event_output")]
    insns += [
        A.jeq(A.R0, 0, "out"),
        A.ld_map_value(A.R1, "count", 8),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.label("out"),
        A.mov64(A.R0, 0),
        A.exit_(),
    ]
    return ProgramSpec(f"bench_{transport}", "tracepoint", insns, attach_to="syscalls/sys_enter_getppid")


def flush_lost_reports(cfg: Any, cpus: List[int]) -> int:
    """Make the kernel report the perf buffer's pending drops: it does so only with the next
    sample written to *that CPU's* ring, so write one (a getppid of ours) on every CPU. Returns
    how many samples that added."""
    cfg[0] = os.getpid()
    before = os.sched_getaffinity(0)
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            os.getppid()
    finally:
        os.sched_setaffinity(0, before)
    return len(cpus)


def run(transport: str, seconds: float, pages: int, ring_kib: int, wakeup: int = 1) -> Dict[str, Any]:
    cfg = MapSpec("cfg", "array", key="u32", value="u32", max_entries=1).create()
    count = MapSpec("count", "array", key="u32", value="u64[2]", max_entries=1).create()
    if transport == "ring":
        events = MapSpec("events", "ringbuf", max_entries=ring_kib * 1024).create()
    else:
        events = MapSpec("events", "perf_event_array", key="u32", value="u32", max_entries=os.cpu_count()).create()
    got = [0]

    def callback(rec: Any) -> None:
        got[0] += 1

    cpus = sorted(os.sched_getaffinity(0))
    child = subprocess.Popen([sys.executable, "-c", PRODUCER, str(seconds)], stdin=subprocess.PIPE)
    if len(cpus) > 1:  # producer and consumer on different CPUs
        os.sched_setaffinity(child.pid, {cpus[-1]})
    with cfg, count, events, load_program(program(transport), {"cfg": cfg, "count": count,
                                                                 "events": events}) as prog:
        cfg[0] = child.pid
        reader: Any = (RingBufReader(events, decode=RECORD) if transport == "ring"
                       else PerfBuffer(events, page_count=pages, decode=RECORD, wakeup_events=wakeup))
        with reader, prog.attach():
            assert child.stdin is not None
            child.stdin.write(b"g")
            child.stdin.close()
            start = time.perf_counter()
            while child.poll() is None:
                reader.poll(callback, 100)
            reader.consume(callback)
            elapsed = time.perf_counter() - start
            child.wait()
            flushes = flush_lost_reports(cfg, cpus) if transport == "perf" else 0
            reader.consume(callback)
            got[0] -= flushes
            sent, failed = count[0]
            if transport == "perf":
                sent -= flushes
                failed = reader.total_lost
        name = transport if transport == "ring" else f"perf/w{wakeup}"
        return {"transport": name, "sent": sent, "received": got[0], "lost": failed,
                "seconds": elapsed, "rate": got[0] / elapsed}


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--pages", type=int, default=64, help="perf buffer pages per CPU (power of 2)")
    p.add_argument("--ring-kib", type=int, default=256, help="ring buffer size in KiB (power of 2)")
    p.add_argument("--perf-wakeups", default="1,64", help="perf buffer wakeup_events values to try")
    args = p.parse_args(argv)
    rows = [run("ring", args.seconds, args.pages, args.ring_kib)]
    for w in args.perf_wakeups.split(","):
        rows.append(run("perf", args.seconds, args.pages, args.ring_kib, int(w)))
    print(f"{'transport':<10} {'sent':>10} {'received':>10} {'lost':>10} {'exact':>6} {'events/s':>12}")
    for r in rows:
        exact = "yes" if r["received"] + r["lost"] == r["sent"] else "no"
        print(f"{r['transport']:<10} {r['sent']:>10} {r['received']:>10} {r['lost']:>10} {exact:>6} "
              f"{r['rate']:>12,.0f}")
    print(f"(32-byte records decoded with a precompiled codec into a Python callback; "
          f"ring {args.ring_kib} KiB, perf {args.pages} pages/CPU, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
