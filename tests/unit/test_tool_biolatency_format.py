"""biolatency without the kernel: BCC's flags and BCC's output, golden lines from BCC's examples."""

from __future__ import annotations

import ast
from typing import Dict, List

import pytest

from ebpf.tools import biolatency as B
from ebpf.tools._disks import disk_label, disk_names, mkdev, split_dev

# ---- arguments -------------------------------------------------------------------------------


def test_defaults_trace_until_ctrl_c() -> None:
    a = B.parse_args([])
    assert (a.interval, a.count) == (None, None)
    assert not (a.timestamp or a.queued or a.milliseconds or a.disks or a.flags or a.extension or a.json)
    assert a.disk is None and a.hooks == "auto" and not a.ebpf


def test_bcc_flags_short_and_long() -> None:
    a = B.parse_args(["-T", "-Q", "-m", "-D", "-e", "-j", "-d", "vda", "1", "5"])
    assert a.timestamp and a.queued and a.milliseconds and a.disks and a.extension and a.json
    assert (a.disk, a.interval, a.count) == ("vda", 1, 5)
    a = B.parse_args(["--timestamp", "--queued", "--milliseconds", "--flags", "--extension", "--json",
                      "--disk", "sda", "2"])
    assert a.timestamp and a.queued and a.milliseconds and a.flags and a.extension and a.json
    assert (a.disk, a.interval, a.count) == ("sda", 2, None)
    assert B.parse_args(["-mT", "1"]).milliseconds and B.parse_args(["-mT", "1"]).timestamp


@pytest.mark.parametrize("bad", [["0"], ["-1"], ["x"], ["1", "0"], ["--hook", "kprobe"]])
def test_bad_arguments_exit_2(bad: List[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        B.parse_args(bad)
    assert e.value.code == 2
    assert "usage: biolatency" in capsys.readouterr().err


def test_hidden_options_stay_out_of_help() -> None:
    text = B.parser().format_help()
    assert "--hook" not in text and "--ebpf" not in text
    assert "Summarize block device I/O latency as a histogram" in text
    assert "[-h] [-T] [-Q] [-m] [-D] [-F] [-e]" in text
    assert B.parse_args(["--hook", "raw_tp"]).hooks == B.parse_args(["--hooks", "raw_tp"]).hooks == "raw_tp"


def test_d_and_f_together_is_one_line_error() -> None:
    from ebpf.errors import EbpfError

    with pytest.raises(EbpfError, match="can only use -D or -F"):
        B.run(["-D", "-F"])


def test_unknown_disk_is_one_line_error() -> None:
    from ebpf.errors import EbpfError

    with pytest.raises(EbpfError, match="no such disk 'no-such-disk0'"):
        B.run(["-d", "no-such-disk0"])


# ---- flags --------------------------------------------------------------------------------------

SYNC, META, PRIO, NOMERGE, IDLE, FUA, RAHEAD, BG, NOWAIT = (1 << b for b in (11, 12, 13, 14, 15, 17, 19, 20, 21))


@pytest.mark.parametrize("flags, label", [
    (0, "Read"), (1, "Write"), (2, "Flush"), (3, "Discard"), (5, "SecureErase"), (9, "WriteZeros"),
    (4, "Unknown"), (1 | SYNC, "Sync-Write"), (META, "Metadata-Read"), (1 | SYNC | IDLE, "Idle-Sync-Write"),
    (1 | META | PRIO, "Priority-Metadata-Write"), (NOMERGE, "NoMerge-Read"),
    (1 | FUA | SYNC, "ForcedUnitAccess-Sync-Write"),
    (RAHEAD, "ReadAhead-Read"), (BG | 1, "Background-Write"), (NOWAIT, "NoWait-Read"),
    (1 | (1 << 8) | (1 << 18), "Write"),  # failfast and preflush bits are not named
])
def test_flags_labels_as_bcc_prints_them(flags: int, label: str) -> None:
    assert B.flags_label(flags) == label


# ---- histograms (golden: BCC's biolatency_example.txt) --------------------------------------------

FLAGS_READ = """\
flags = Read
     msecs               : count     distribution
         0 -> 1          : 180      |*************                           |
         2 -> 3          : 519      |****************************************|
         4 -> 7          : 60       |****                                    |
         8 -> 15         : 123      |*********                               |
        16 -> 31         : 68       |*****                                   |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 2        |                                        |
       128 -> 255        : 12       |                                        |
       256 -> 511        : 0        |                                        |
       512 -> 1023       : 1        |                                        |"""
FLAGS_FLUSH = """\
flags = Flush
     msecs               : count     distribution
         0 -> 1          : 2        |****************************************|"""
FLAGS_SYNC_WRITE = """\
flags = Sync-Write
     msecs               : count     distribution
         0 -> 1          : 5        |****************************************|"""
FLAGS_META_READ = """\
flags = Metadata-Read
     msecs               : count     distribution
         0 -> 1          : 3        |****************************************|
         2 -> 3          : 2        |**************************              |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 1        |*************                           |
        16 -> 31         : 1        |*************                           |"""

EXTENSION = """\
     usecs               : count     distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 0        |                                        |
        16 -> 31         : 0        |                                        |
        32 -> 63         : 0        |                                        |
        64 -> 127        : 4        |***********                             |
       128 -> 255        : 2        |*****                                   |
       256 -> 511        : 4        |***********                             |
       512 -> 1023       : 14       |****************************************|
      1024 -> 2047       : 0        |                                        |
      2048 -> 4095       : 1        |**                                      |

avg = 663 usecs, total: 16575 usecs, count: 25
"""


def _slots(counts: List[int]) -> Dict[int, int]:
    """BCC slots from the printed rows: row i (from ``0 -> 1``) is slot i + 1."""
    return {i + 1: c for i, c in enumerate(counts) if c}


def test_flag_sections_golden() -> None:
    hists = {
        0: _slots([180, 519, 60, 123, 68, 0, 2, 12, 0, 1]),
        2: _slots([2]),
        1 | SYNC: _slots([5]),
        META: _slots([3, 2, 0, 1, 1]),
    }
    lines = B.text_lines(hists, "msecs", section="flags", label_of=B.flags_label)
    expected = "\n\n" + "\n\n".join([FLAGS_READ, FLAGS_FLUSH, FLAGS_SYNC_WRITE, FLAGS_META_READ])
    assert "\n".join(lines) == expected


def test_flags_printing_alike_are_merged_into_one_section() -> None:
    hists = {1: {2: 1}, 1 | (1 << 18): {2: 2}}
    lines = B.text_lines(hists, "usecs", section="flags", label_of=B.flags_label)
    assert lines.count("flags = Write") == 1
    assert "         2 -> 3          : 3        |****************************************|" in lines


def test_extension_line_golden() -> None:
    hists = {0: _slots([0, 0, 0, 0, 0, 0, 4, 2, 4, 14, 0, 1])}
    lines = B.text_lines(hists, "usecs", ext=(16575, 25))
    assert "\n".join(lines) + "\n" == "\n" + EXTENSION + "\n"
    assert B.text_lines({}, "usecs", ext=(0, 0)) == [""]  # no I/O: no avg line


def test_timestamp_and_disk_sections() -> None:
    names = {mkdev(254, 0): "vda", mkdev(7, 0): "loop0"}
    hists = {mkdev(254, 0): {7: 3}, mkdev(7, 0): {1: 1}, mkdev(9, 9): {2: 1}}
    lines = B.text_lines(hists, "usecs", section="disk", label_of=lambda d: disk_label(d, names),
                         timestamp="12:34:56")
    assert lines[:2] == ["", "12:34:56"]
    heads = [x for x in lines if x.startswith("disk = ")]
    assert heads == ["disk = loop0", "disk = ?", "disk = vda"]  # by dev_t; unknown disks print as "?"
    i = lines.index("disk = vda")
    assert lines[i - 1] == ""
    assert lines[i + 1] == "     usecs               : count     distribution"
    assert lines[i + 8] == "        64 -> 127        : 3        |****************************************|"


def test_empty_interval_prints_only_the_blank_line() -> None:
    assert B.text_lines({}, "usecs") == [""]
    assert B.text_lines({}, "usecs", timestamp="01:02:03") == ["", "01:02:03"]


# ---- JSON (golden: BCC's -jm and -jF examples, whose objects are Python dict reprs) ------------

BCC_JM = ("{'ts': '2020-12-30 14:42:03', 'val_type': 'msecs', 'data': [{'interval-start': 0, 'interval-end': 1, "
          "'count': 11}, {'interval-start': 2, 'interval-end': 3, 'count': 3}]}")
BCC_JF = ("{'ts': '2020-12-30 14:37:59', 'val_type': 'usecs', 'data': [{'interval-start': 0, 'interval-end': 1, "
          "'count': 0}, {'interval-start': 2, 'interval-end': 3, 'count': 0}, {'interval-start': 4, 'interval-end': 7, "
          "'count': 0}, {'interval-start': 8, 'interval-end': 15, 'count': 0}, {'interval-start': 16, "
          "'interval-end': 31, 'count': 0}, {'interval-start': 32, 'interval-end': 63, 'count': 0}, "
          "{'interval-start': 64, 'interval-end': 127, 'count': 0}, {'interval-start': 128, 'interval-end': 255, "
          "'count': 0}, {'interval-start': 256, 'interval-end': 511, 'count': 0}, {'interval-start': 512, "
          "'interval-end': 1023, 'count': 4}], 'flags': 'Flush'}")


def test_json_objects_are_bccs() -> None:
    ours = B.json_records({0: {1: 11, 2: 3}}, "msecs", ts="2020-12-30 14:42:03")
    assert ours == [ast.literal_eval(BCC_JM)]
    ours = B.json_records({2: {10: 4}}, "usecs", section="flags", label_of=B.flags_label, ts="2020-12-30 14:37:59")
    assert ours == [ast.literal_eval(BCC_JF)]
    assert list(ours[0]) == ["ts", "val_type", "data", "flags"]


def test_json_output_is_one_valid_object_per_line() -> None:
    import io
    import json

    from ebpf.report import Output

    buf = io.StringIO()
    out = Output(buf, json_mode=True)
    for rec in B.json_records({mkdev(254, 0): {3: 1}, mkdev(7, 1): {4: 2}}, "usecs", section="disk",
                              label_of=lambda d: {mkdev(254, 0): "vda"}.get(d, "?")):
        out.record(rec)
    objs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [o["disk"] for o in objs] == ["?", "vda"]
    assert objs[1]["data"][-1] == {"interval-start": 4, "interval-end": 7, "count": 1}


# ---- disk names -------------------------------------------------------------------------------------


def test_disk_names_from_diskstats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stats = tmp_path / "diskstats"
    stats.write_text("   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
                     " 254       0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"
                     " 254       1 vda1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n")
    names = disk_names(str(stats))
    assert names == {mkdev(7, 0): "loop0", mkdev(254, 0): "vda", mkdev(254, 1): "vda1"}
    assert split_dev(mkdev(254, 1)) == (254, 1)
    assert mkdev(254, 0) == 254 << 20
    assert disk_names(str(tmp_path / "missing")) == {}
