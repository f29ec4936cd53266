"""softirqs in the real kernel: timer softirqs happen all the time, a loopback UDP burst makes
NET_RX ones, and every flag and hook finds them.

All the variants run at once (one start-up's wait for all of them), are ended with SIGINT the
way a user ends them, and print their last interval; one runs on intervals and ends by itself.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest
from toolrun import Tool, run_all, table

ROOT = Path(__file__).resolve().parents[2]
PACKETS = 2000


def udp_burst(count: int, cpu: int = -1) -> None:
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    try:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for _ in range(count):
            tx.sendto(b"x" * 64, rx.getsockname())
        rx.close()
        tx.close()
    finally:
        if cpu >= 0:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))


VARIANTS = {
    "plain": [],
    "dist": ["-d"],
    "count": ["-C"],
    "ns_ts": ["-N", "-T"],
    "json": ["--json"],
    "json_dist": ["--json", "-d"],
    "json_count": ["--json", "-C"],
    "raw_tp": ["--hook", "raw_tp"],
    "tracepoint": ["--hook", "tracepoint", "-d"],
    "tracepoint_count": ["--hook", "tracepoint", "-C"],
    "cpu0": ["-C", "-c", "0"],
    "cpu1": ["-C", "-c", "1"],
}


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Tool]]:
    tools = {name: Tool("softirqs", args) for name, args in VARIANTS.items()}
    tools["interval"] = Tool("softirqs", ["-T", "1", "2"])
    def workload() -> None:
        udp_burst(PACKETS, cpu=1 if (os.cpu_count() or 1) > 1 else -1)
        time.sleep(0.3)  # a few timer ticks (HZ >= 100)

    with run_all(tools, workload) as done:
        yield done


def test_timer_softirqs_have_a_positive_total(runs: Dict[str, Tool]) -> None:
    t = runs["plain"]
    assert t.rc == 0 and t.err == ""
    assert t.banner == "Tracing soft irq event time... Hit Ctrl-C to end."
    lines = t.out.splitlines()
    assert lines[0] == "" and lines[1] == "SOFTIRQ          TOTAL_usecs"
    totals = table(t.out, "SOFTIRQ")
    assert "timer" in totals
    assert sum(totals.values()) > 0
    assert list(totals.values()) == sorted(totals.values())  # BCC 0.26: smallest first


def test_raw_tracepoint_hooks_see_the_same(runs: Dict[str, Tool]) -> None:
    t = runs["raw_tp"]
    assert t.rc == 0 and t.err == ""
    assert "timer" in table(t.out, "SOFTIRQ")


def test_counts_see_the_loopback_burst(runs: Dict[str, Tool]) -> None:
    for name in ("count", "tracepoint_count"):
        t = runs[name]
        assert t.rc == 0 and t.err == ""
        assert t.banner == "Tracing soft irq events... Hit Ctrl-C to end."
        assert t.out.splitlines()[1] == "SOFTIRQ          TOTAL_count"
        counts = table(t.out, "SOFTIRQ")
        assert counts.get("timer", 0) > 0, t.out
        assert counts.get("net_rx", 0) >= PACKETS // 2, t.out


def test_cpu_filter(runs: Dict[str, Tool]) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: nothing to filter")
    on0 = table(runs["cpu0"].out, "SOFTIRQ")
    on1 = table(runs["cpu1"].out, "SOFTIRQ")
    assert on1.get("net_rx", 0) >= PACKETS // 2  # the burst was sent from CPU 1
    assert on0.get("net_rx", 0) < on1["net_rx"] // 4


def test_histograms_per_softirq(runs: Dict[str, Tool]) -> None:
    for name in ("dist", "tracepoint"):
        t = runs[name]
        assert t.rc == 0 and t.err == ""
        lines = t.out.splitlines()
        assert lines[:2] == ["", ""]
        i = lines.index("softirq = timer")
        assert lines[i - 1] == ""
        assert lines[i + 1] == "     usecs               : count     distribution"
        assert re.match(r"^ +\d+ -> \d+ +: \d+ +\|[*+ ]{40}\|$", lines[i + 2])


def test_nanoseconds_and_timestamp(runs: Dict[str, Tool]) -> None:
    t = runs["ns_ts"]
    lines = t.out.splitlines()
    assert lines[0] == "" and re.match(r"^\d\d:\d\d:\d\d$", lines[1])
    assert lines[2] == "SOFTIRQ          TOTAL_nsecs"
    assert table(t.out, "SOFTIRQ")["timer"] > 0


def test_json_intervals(runs: Dict[str, Tool]) -> None:
    t = runs["json"]
    assert t.rc == 0 and t.err == ""
    assert t.banner == "Tracing soft irq event time... Hit Ctrl-C to end."  # on stderr
    (rec,) = [json.loads(line) for line in t.out.splitlines()]
    assert rec["unit"] == "usecs" and "timer" in rec["softirqs"]
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", rec["ts"])
    (rec,) = [json.loads(line) for line in runs["json_count"].out.splitlines()]
    assert rec["unit"] == "count" and rec["softirqs"]["timer"] > 0 and rec["softirqs"]["net_rx"] > 0
    (rec,) = [json.loads(line) for line in runs["json_dist"].out.splitlines()]
    slots = rec["hists"]["timer"]
    assert slots[0]["interval-start"] == 0 and sum(s["count"] for s in slots) > 0


def test_intervals_end_by_themselves(runs: Dict[str, Tool]) -> None:
    t = runs["interval"]
    assert t.rc == 0 and t.err == ""
    lines = t.out.splitlines()
    assert lines.count("SOFTIRQ          TOTAL_usecs") == 2
    stamps = [line for line in lines if re.match(r"^\d\d:\d\d:\d\d$", line)]
    assert len(stamps) == 2


def test_conflicting_flags() -> None:
    t = Tool("softirqs", ["-C", "-N"]).finish(interrupt=False)
    assert t.rc == 1 and t.out == ""
    assert t.err == "The --events option can't be used with time-based options\n"
