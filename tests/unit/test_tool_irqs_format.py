"""softirqs and hardirqs without the kernel: flags, BCC's output lines, JSON intervals.

The golden lines are BCC's own output, copied from ``tools/softirqs_example.txt`` and
``tools/hardirqs_example.txt`` of iovisor/bcc, in the order BCC 0.26's tools print the totals
table: ``sorted(dist.items(), key=lambda dist: dist[1].value)``, smallest total first.
"""

from __future__ import annotations

import json
import time
from typing import Any, List, Tuple

import pytest

from ebpf.tools import _irqs, hardirqs, softirqs

NOW = 1764000000.0  # a fixed time for the -T lines


def sk(vec: int, slot: int = 0) -> Any:
    return softirqs.Key(vec=vec, slot=slot)


def hk(name: str, slot: int = 0) -> Any:
    return hardirqs.Key(name=name.encode(), slot=slot)


def soft_lines(argv: List[str], items: List[Tuple[Any, int]]) -> List[str]:
    args = _irqs.parse_args(softirqs.TOOL, argv)
    return _irqs.interval_lines(softirqs.TOOL, args, items, softirqs.vec_of, softirqs.vec_name, NOW)


def hard_lines(argv: List[str], items: List[Tuple[Any, int]]) -> List[str]:
    args = _irqs.parse_args(hardirqs.TOOL, argv)
    return _irqs.interval_lines(hardirqs.TOOL, args, items, hardirqs.irq_of, hardirqs.irq_name, NOW)


# ---- flags ---------------------------------------------------------------------------------


def test_softirqs_flags_are_bccs() -> None:
    a = _irqs.parse_args(softirqs.TOOL, ["-T", "-N", "-d", "-c", "1", "2", "5"])
    assert (a.timestamp, a.nanoseconds, a.dist, a.cpu, a.interval, a.count) == (True, True, True, 1, 2, 5)
    a = _irqs.parse_args(softirqs.TOOL, ["--events", "--json"])
    assert a.events and a.json and a.interval is None and a.count is None and a.hook == "auto"
    a = _irqs.parse_args(softirqs.TOOL, ["-NT", "1"])
    assert a.nanoseconds and a.timestamp and a.interval == 1


def test_hardirqs_flags_are_bccs() -> None:
    a = _irqs.parse_args(hardirqs.TOOL, ["--count", "--timestamp", "1", "3"])
    assert a.events and a.timestamp and a.interval == 1 and a.count == 3 and a.outputs == 3
    a = _irqs.parse_args(hardirqs.TOOL, ["--hook", "tracepoint", "--dist"])
    assert a.hook == "tracepoint" and a.dist


@pytest.mark.parametrize("argv", [["0"], ["1", "0"], ["-c", "-1"], ["x"], ["--hook", "kprobe"], ["1", "2", "3"]])
def test_bad_arguments_are_refused(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _irqs.parse_args(softirqs.TOOL, argv)
    assert info.value.code == 2
    assert "usage: softirqs" in capsys.readouterr().err


def test_count_mode_refuses_time_options_with_bccs_words() -> None:
    a = _irqs.parse_args(softirqs.TOOL, ["-C", "-d"])
    assert _irqs.conflict(softirqs.TOOL, a) == "The --events option can't be used with time-based options"
    a = _irqs.parse_args(hardirqs.TOOL, ["-C", "-N"])
    assert _irqs.conflict(hardirqs.TOOL, a) == "The --count option can't be used with time-based options"
    assert _irqs.conflict(hardirqs.TOOL, _irqs.parse_args(hardirqs.TOOL, ["-C", "-T"])) is None


def test_conflict_exits_1_before_touching_the_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    assert softirqs.run(["-C", "-d"]) == 1
    assert capsys.readouterr().err == "The --events option can't be used with time-based options\n"


def test_banners_units_and_hooks() -> None:
    assert _irqs.banner(softirqs.TOOL, _irqs.parse_args(softirqs.TOOL, [])) == \
        "Tracing soft irq event time... Hit Ctrl-C to end."
    assert _irqs.banner(softirqs.TOOL, _irqs.parse_args(softirqs.TOOL, ["-C"])) == \
        "Tracing soft irq events... Hit Ctrl-C to end."
    assert _irqs.banner(hardirqs.TOOL, _irqs.parse_args(hardirqs.TOOL, [])) == \
        "Tracing hard irq event time... Hit Ctrl-C to end."
    assert _irqs.banner(hardirqs.TOOL, _irqs.parse_args(hardirqs.TOOL, ["-C"])) == \
        "Tracing hard irq events... Hit Ctrl-C to end."
    assert _irqs.unit(_irqs.parse_args(softirqs.TOOL, [])) == ("usecs", 1000)
    assert _irqs.unit(_irqs.parse_args(softirqs.TOOL, ["-N"])) == ("nsecs", 1)
    assert _irqs.unit(_irqs.parse_args(softirqs.TOOL, ["-C"])) == ("count", 1)


# ---- text output ---------------------------------------------------------------------------


def test_softirqs_counts_golden() -> None:
    items = [(sk(1), 9530), (sk(9), 5748), (sk(7), 5251), (sk(3), 402), (sk(6), 6), (sk(4), 5)]
    assert soft_lines(["-C"], items) == [
        "",
        "SOFTIRQ          TOTAL_count",
        "block                      5",
        "tasklet                    6",
        "net_rx                   402",
        "sched                   5251",
        "rcu                     5748",
        "timer                   9530",
    ]


def test_softirqs_times_are_summed_in_ns_and_divided_when_printed() -> None:
    items = [(sk(1), 172_999), (sk(3), 232_000), (sk(9), 999)]
    assert soft_lines([], items) == [
        "",
        "SOFTIRQ          TOTAL_usecs",
        "rcu                        0",
        "timer                    172",
        "net_rx                   232",
    ]
    assert soft_lines(["-N", "-T"], [(sk(1), 237750)]) == [
        "",
        time.strftime("%H:%M:%S", time.localtime(NOW)),
        "SOFTIRQ          TOTAL_nsecs",
        "timer                 237750",
    ]
    assert soft_lines([], []) == ["", "SOFTIRQ          TOTAL_usecs"]
    assert softirqs.vec_name(sk(12)) == "12"  # a vector newer than the table still prints


def test_totals_sort_by_the_nanosecond_total_ascending_like_bcc_026() -> None:
    """BCC sorts on the raw value before dividing: 1999 ns and 1001 ns both print 1 usec, the
    smaller first; equal totals go by name."""
    items = [(hk("b"), 1999), (hk("a"), 1001), (hk("z"), 5), (hk("y"), 5), (hk("big"), 10**9)]
    assert [line.split()[0] for line in hard_lines([], items)[2:]] == ["y", "z", "a", "b", "big"]


def test_hardirqs_table_golden() -> None:
    items = [(hk("timer0"), 1558_000), (hk("eth0"), 11441_400), (hk("resched2"), 1750_000),
             (hk("callfuncsingle0"), 2_999)]
    assert hard_lines([], items) == [
        "",
        "HARDIRQ                    TOTAL_usecs",
        "callfuncsingle0                      2",
        "timer0                            1558",
        "resched2                          1750",
        "eth0                             11441",
    ]
    assert hard_lines(["-C"], [(hk("virtio1-req.0"), 347)])[1:] == [
        "HARDIRQ                    TOTAL_count",
        "virtio1-req.0                      347",
    ]


# BCC's softirqs -d, "softirq = net_tx_action": slots 9..14 hold the counts.
NET_TX = {9: 440, 10: 27613, 11: 5728, 12: 439, 13: 53, 14: 2}
NET_TX_LINES = [
    "",
    "softirq = net_tx",
    "     usecs               : count     distribution",
    "         0 -> 1          : 0        |                                        |",
    "         2 -> 3          : 0        |                                        |",
    "         4 -> 7          : 0        |                                        |",
    "         8 -> 15         : 0        |                                        |",
    "        16 -> 31         : 0        |                                        |",
    "        32 -> 63         : 0        |                                        |",
    "        64 -> 127        : 0        |                                        |",
    "       128 -> 255        : 0        |                                        |",
    "       256 -> 511        : 440      |                                        |",
    "       512 -> 1023       : 27613    |****************************************|",
    "      1024 -> 2047       : 5728     |********                                |",
    "      2048 -> 4095       : 439      |                                        |",
    "      4096 -> 8191       : 53       |                                        |",
    "      8192 -> 16383      : 2        |                                        |",
]


def test_softirqs_dist_golden() -> None:
    items = [(sk(2, slot), n) for slot, n in NET_TX.items()]
    items += [(sk(1, 2), 3)]  # timer: printed first (vector order)
    lines = soft_lines(["-d"], items)
    assert lines[:6] == [
        "",
        "",
        "softirq = timer",
        "     usecs               : count     distribution",
        "         0 -> 1          : 0        |                                        |",
        "         2 -> 3          : 3        |****************************************|",
    ]
    assert lines[6:] == NET_TX_LINES


def test_hardirqs_dist_sections_by_name() -> None:
    items = [(hk("virtio1-req.0", 3), 2), (hk("eth0", 1), 4)]
    lines = hard_lines(["-d", "-N"], items)
    assert lines == [
        "",
        "",
        "hardirq = eth0",
        "     nsecs               : count     distribution",
        "         0 -> 1          : 4        |****************************************|",
        "",
        "hardirq = virtio1-req.0",
        "     nsecs               : count     distribution",
        "         0 -> 1          : 0        |                                        |",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 2        |****************************************|",
    ]


# ---- JSON ----------------------------------------------------------------------------------


def test_json_intervals() -> None:
    args = _irqs.parse_args(softirqs.TOOL, ["--json"])
    rec = _irqs.interval_record(softirqs.TOOL, args, [(sk(1), 5000), (sk(9), 9000)], softirqs.vec_of,
                                softirqs.vec_name, NOW)
    assert rec == {"ts": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW)), "unit": "usecs",
                   "softirqs": {"rcu": 9, "timer": 5}}
    assert list(rec["softirqs"]) == ["timer", "rcu"]  # smallest first, as the table
    args = _irqs.parse_args(hardirqs.TOOL, ["--json", "-d"])
    rec = _irqs.interval_record(hardirqs.TOOL, args, [(hk("eth0", 2), 7)], hardirqs.irq_of, hardirqs.irq_name,
                                NOW)
    assert rec["unit"] == "usecs"
    assert rec["hists"] == {"eth0": [{"interval-start": 0, "interval-end": 1, "count": 0},
                                     {"interval-start": 2, "interval-end": 3, "count": 7}]}
    json.dumps(rec)  # serializable as it is


def test_hardirq_names_decode_safely() -> None:
    assert hardirqs.irq_name(hardirqs.Key(name=b"\xffbad", slot=0)) == "\ufffdbad"
    assert hardirqs.Key.size() == 36 and softirqs.Key.size() == 8
