"""runqlat without the kernel: BCC's flags and BCC's output, golden lines from BCC's examples."""

from __future__ import annotations

import ast
import io
import json
from typing import Dict, List

import pytest

from ebpf.tools import runqlat as R

# ---- arguments -------------------------------------------------------------------------------


def test_defaults_trace_until_ctrl_c() -> None:
    a = R.parse_args([])
    assert (a.interval, a.count, a.pid) == (None, None, None)
    assert not (a.timestamp or a.milliseconds or a.pids or a.pidnss or a.tids or a.json)
    assert a.hooks == "auto" and R.section_of(a) == ""


def test_bcc_flags_short_and_long() -> None:
    a = R.parse_args(["-T", "-m", "-P", "-p", "185", "1", "10"])
    assert a.timestamp and a.milliseconds and a.pids and (a.pid, a.interval, a.count) == (185, 1, 10)
    a = R.parse_args(["--timestamp", "--milliseconds", "--tids", "--pid", "7", "--json", "5"])
    assert a.timestamp and a.milliseconds and a.tids and a.json and (a.pid, a.interval, a.count) == (7, 5, None)
    a = R.parse_args(["-mT", "1"])
    assert a.milliseconds and a.timestamp and a.interval == 1


@pytest.mark.parametrize("argv, section", [
    (["-P"], "pid"), (["-L"], "tid"), (["--pidnss"], "pidns"), (["-P", "-L"], "tid"), (["-P", "--pidnss"], "pid"),
    (["-L", "--pidnss"], "tid"), ([], ""),
])
def test_section_precedence_is_bccs(argv: List[str], section: str) -> None:
    assert R.section_of(R.parse_args(argv)) == section


@pytest.mark.parametrize("bad", [["0"], ["1", "0"], ["-p", "0"], ["-p", "x"], ["--hook", "fentry"]])
def test_bad_arguments_exit_2(bad: List[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        R.parse_args(bad)
    assert e.value.code == 2
    assert "usage: runqlat" in capsys.readouterr().err


def test_help_is_bccs_and_hides_internal_options() -> None:
    text = R.parser().format_help()
    assert "Summarize run queue (scheduler) latency as a histogram" in text
    assert "[-h] [-T] [-m] [-P] [--pidnss] [-L] [-p PID]" in text
    assert "--hook" not in text and "--ebpf" not in text
    assert R.parse_args(["--hook", "tracepoint"]).hooks == "tracepoint"


# ---- histograms (golden: BCC's runqlat_example.txt) ----------------------------------------------

PLAIN = """\
     usecs               : count     distribution
         0 -> 1          : 233      |***********                             |
         2 -> 3          : 742      |************************************    |
         4 -> 7          : 203      |**********                              |
         8 -> 15         : 173      |********                                |
        16 -> 31         : 24       |*                                       |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 30       |*                                       |
       128 -> 255        : 6        |                                        |
       256 -> 511        : 3        |                                        |
       512 -> 1023       : 5        |                                        |
      1024 -> 2047       : 27       |*                                       |
      2048 -> 4095       : 30       |*                                       |
      4096 -> 8191       : 20       |                                        |
      8192 -> 16383      : 29       |*                                       |
     16384 -> 32767      : 809      |****************************************|
     32768 -> 65535      : 64       |***                                     |"""

MSECS = """\

     msecs               : count     distribution
         0 -> 1          : 3818     |****************************************|
         2 -> 3          : 39       |                                        |
         4 -> 7          : 39       |                                        |
         8 -> 15         : 62       |                                        |
        16 -> 31         : 2214     |***********************                 |
        32 -> 63         : 226      |**                                      |"""

PIDS = """\
pid = 0
     usecs               : count     distribution
         0 -> 1          : 351      |********************************        |
         2 -> 3          : 96       |********                                |
         4 -> 7          : 437      |****************************************|
         8 -> 15         : 12       |*                                       |
        16 -> 31         : 10       |                                        |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 16       |*                                       |
       128 -> 255        : 0        |                                        |
       256 -> 511        : 0        |                                        |
       512 -> 1023       : 0        |                                        |
      1024 -> 2047       : 0        |                                        |
      2048 -> 4095       : 0        |                                        |
      4096 -> 8191       : 0        |                                        |
      8192 -> 16383      : 1        |                                        |

pid = 12929
     usecs               : count     distribution
         0 -> 1          : 1        |****************************************|
         2 -> 3          : 0        |                                        |
         4 -> 7          : 1        |****************************************|

pid = 12930
     usecs               : count     distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 0        |                                        |
        16 -> 31         : 1        |****************************************|
        32 -> 63         : 0        |                                        |
        64 -> 127        : 1        |****************************************|"""


def _slots(counts: List[int]) -> Dict[int, int]:
    """BCC slots from the printed rows: row i (from ``0 -> 1``) is slot i + 1."""
    return {i + 1: c for i, c in enumerate(counts) if c}


def test_plain_histogram_golden() -> None:
    counts = [233, 742, 203, 173, 24, 0, 30, 6, 3, 5, 27, 30, 20, 29, 809, 64]
    assert "\n".join(R.text_lines({0: _slots(counts)}, "usecs")) == "\n" + PLAIN


def test_millisecond_interval_golden() -> None:
    assert "\n".join(R.text_lines({0: _slots([3818, 39, 39, 62, 2214, 226])}, "msecs")) == MSECS


def test_pid_sections_golden_in_pid_order() -> None:
    hists = {
        12930: _slots([0, 0, 0, 0, 1, 0, 1]),
        0: _slots([351, 96, 437, 12, 10, 0, 16, 0, 0, 0, 0, 0, 0, 1]),
        12929: _slots([1, 0, 1]),
    }
    assert "\n".join(R.text_lines(hists, "usecs", "pid")) == "\n\n" + PIDS


def test_tid_and_pidns_headers() -> None:
    lines = R.text_lines({4026531836: {1: 2}}, "msecs", "pidns", timestamp="08:56:11")
    assert lines[:4] == ["", "08:56:11", "", "pidns = 4026531836"]
    assert R.text_lines({42: {1: 1}}, "usecs", "tid")[2] == "tid = 42"


def test_group_adds_up_keys() -> None:
    key = R.HistKey(id=5, slot=3)
    again = R.HistKey(id=5, slot=3)
    other = R.HistKey(id=0, slot=1)
    assert R.group([(key, 2), (again, 3), (other, 1)]) == {5: {3: 5}, 0: {1: 1}}


def test_unsectioned_output_merges_everything() -> None:
    lines = R.text_lines({0: {1: 1}, 7: {1: 2}}, "usecs")
    assert lines[2] == "         0 -> 1          : 3        |****************************************|"


# ---- JSON: BCC's json_hist objects, one per histogram, valid JSON ----------------------------------

BCC_JSON = ("{'ts': '2020-12-30 14:42:03', 'val_type': 'msecs', 'data': [{'interval-start': 0, 'interval-end': 1, "
            "'count': 11}, {'interval-start': 2, 'interval-end': 3, 'count': 3}]}")


def test_json_objects() -> None:
    assert R.json_records({0: {1: 11, 2: 3}}, "msecs", ts="2020-12-30 14:42:03") == [ast.literal_eval(BCC_JSON)]
    recs = R.json_records({9: {2: 1}, 3: {1: 4}}, "usecs", "pid", ts="t")
    assert [r["pid"] for r in recs] == [3, 9]
    assert list(recs[0]) == ["ts", "val_type", "data", "pid"]
    from ebpf.report import Output

    buf = io.StringIO()
    out = Output(buf, json_mode=True)
    for r in recs:
        out.record(r)
    assert [json.loads(line)["data"] for line in buf.getvalue().splitlines()] == [
        [{"interval-start": 0, "interval-end": 1, "count": 4}],
        [{"interval-start": 0, "interval-end": 1, "count": 0}, {"interval-start": 2, "interval-end": 3, "count": 1}],
    ]
    assert R.json_records({}, "usecs")[0]["data"] == []
