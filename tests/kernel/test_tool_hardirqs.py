"""hardirqs in the real kernel: direct I/O on the root filesystem makes the disk's virtio
interrupts happen, and every flag and hook finds them by name.

All the variants run at once (one start-up's wait for all of them), are ended with SIGINT the
way a user ends them, and print their last interval; one runs on intervals and ends by itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest
from toolrun import Tool, run_all, table

ROOT = Path(__file__).resolve().parents[2]


def disk_irq() -> Optional[str]:
    """The name of the root disk's request interrupt (``virtio1-req.0``) if /proc/interrupts shows
    one that is counting."""
    try:
        with open("/proc/interrupts") as f:
            for line in f:
                fields = line.split()
                if fields and "req" in fields[-1] and sum(int(x) for x in fields[1:] if x.isdigit()) > 0:
                    return fields[-1]
    except OSError:
        pass
    return None


def direct_io(rounds: int = 3) -> None:
    """Writes that bypass the page cache: each one a block request and its completion interrupt."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        path = os.path.join(d, "io")
        for _ in range(rounds):
            subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=64k", "count=64", "oflag=direct"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


VARIANTS = {
    "plain": [],
    "count": ["-C"],
    "dist": ["-d"],
    "ns_ts": ["-N", "-T"],
    "json": ["--json"],
    "json_count": ["--json", "-C"],
    "json_dist": ["--json", "-d"],
    "raw_tp": ["--hook", "raw_tp"],
    "raw_tp_count": ["--hook", "raw_tp", "-C"],
    "tracepoint": ["--hook", "tracepoint"],
    "tracepoint_count": ["--hook", "tracepoint", "-C"],
    "tracepoint_dist": ["--hook", "tracepoint", "-d"],
}


@pytest.fixture(scope="module")
def runs() -> Iterator[Dict[str, Tool]]:
    tools = {name: Tool("hardirqs", args) for name, args in VARIANTS.items()}
    tools["interval"] = Tool("hardirqs", ["-T", "1", "2"])
    with run_all(tools, direct_io) as done:
        yield done


def positive_rows(t: Tool) -> Dict[str, int]:
    assert t.rc == 0 and t.err == "", t.err
    rows = table(t.out, "HARDIRQ")
    assert rows and all(v >= 0 for v in rows.values())
    disk = disk_irq()
    if disk is not None:
        assert rows.get(disk, 0) > 0, (disk, t.out)
    return rows


def test_irq_time_by_name(runs: Dict[str, Tool]) -> None:
    for name in ("plain", "raw_tp", "tracepoint"):
        t = runs[name]
        assert t.banner == "Tracing hard irq event time... Hit Ctrl-C to end."
        assert t.out.splitlines()[:2] == ["", "HARDIRQ                    TOTAL_usecs"]
        rows = positive_rows(t)
        assert list(rows.values()) == sorted(rows.values())  # BCC 0.26: smallest first


def test_irq_counts(runs: Dict[str, Tool]) -> None:
    for name in ("count", "raw_tp_count", "tracepoint_count"):
        t = runs[name]
        assert t.banner == "Tracing hard irq events... Hit Ctrl-C to end."
        assert t.out.splitlines()[1] == "HARDIRQ                    TOTAL_count"
        rows = positive_rows(t)
        assert max(rows.values()) > 0


def test_histograms_per_irq(runs: Dict[str, Tool]) -> None:
    disk = disk_irq()
    for name in ("dist", "tracepoint_dist"):
        t = runs[name]
        assert t.rc == 0 and t.err == ""
        lines = t.out.splitlines()
        assert lines[:2] == ["", ""]
        heads = [i for i, line in enumerate(lines) if line.startswith("hardirq = ")]
        assert heads, t.out
        if disk is not None:
            assert f"hardirq = {disk}" in lines
        for i in heads:
            assert lines[i - 1] == ""
            assert lines[i + 1] == "     usecs               : count     distribution"
            assert re.match(r"^ +\d+ -> \d+ +: \d+ +\|[*+ ]{40}\|$", lines[i + 2])


def test_nanoseconds_and_timestamp(runs: Dict[str, Tool]) -> None:
    lines = runs["ns_ts"].out.splitlines()
    assert lines[0] == "" and re.match(r"^\d\d:\d\d:\d\d$", lines[1])
    assert lines[2] == "HARDIRQ                    TOTAL_nsecs"
    positive_rows(runs["ns_ts"])


def test_json_intervals(runs: Dict[str, Tool]) -> None:
    disk = disk_irq()
    (rec,) = [json.loads(line) for line in runs["json"].out.splitlines()]
    assert rec["unit"] == "usecs" and isinstance(rec["hardirqs"], dict) and rec["hardirqs"]
    (rec,) = [json.loads(line) for line in runs["json_count"].out.splitlines()]
    assert rec["unit"] == "count" and max(rec["hardirqs"].values()) > 0
    if disk is not None:
        assert rec["hardirqs"][disk] > 0
    (rec,) = [json.loads(line) for line in runs["json_dist"].out.splitlines()]
    assert rec["hists"] and all(slots[0]["interval-start"] == 0 for slots in rec["hists"].values())


def test_intervals_end_by_themselves(runs: Dict[str, Tool]) -> None:
    t = runs["interval"]
    assert t.rc == 0 and t.err == ""
    lines = t.out.splitlines()
    assert lines.count("HARDIRQ                    TOTAL_usecs") == 2
    assert len([line for line in lines if re.match(r"^\d\d:\d\d:\d\d$", line)]) == 2


def test_conflicting_flags() -> None:
    t = Tool("hardirqs", ["-C", "-d"]).finish(interrupt=False)
    assert t.rc == 1 and t.out == ""
    assert t.err == "The --count option can't be used with time-based options\n"
