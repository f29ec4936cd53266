"""ebpf.report draws histograms exactly as BCC does (golden output of BCC 0.26's own code)."""

from __future__ import annotations

import io
import json
import pathlib

import pytest

from ebpf import report

GOLDEN = json.loads((pathlib.Path(__file__).parent / "data" / "report" / "bcc_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN, ids=[f"{c['kind']}-{i}" for i, c in enumerate(GOLDEN)])
def test_histogram_matches_bcc(case: dict) -> None:
    draw = report.log2_hist_lines if case["kind"] == "log2" else report.linear_hist_lines
    lines = draw(case["vals"], case["val_type"], case["strip"])
    assert "".join(line + "\n" for line in lines) == case["out"]
    if "json_data" in case:
        assert report.json_hist(case["vals"], case["val_type"])["data"] == case["json_data"]


def test_golden_covers_the_layouts() -> None:
    log2 = [c["out"] for c in GOLDEN if c["kind"] == "log2" and c["out"]]
    assert any(o.startswith("               ") for o in log2)  # wide layout (a slot above 32)
    assert any(o.startswith("     ") and not o.startswith("      ") for o in log2)  # narrow layout
    assert any(c["strip"] and c["out"] for c in GOLDEN)
    assert any(c["kind"] == "linear" and c["out"] for c in GOLDEN)


def test_sections_and_mapping_input() -> None:
    lines = report.section_lines({"timer": {1: 3, 2: 1}, "net_rx": {3: 5}}, "softirq", "usecs",
                                 section_print_fn=str)
    assert lines[0] == "" and lines[1] == "softirq = timer"
    assert lines[2] == "     usecs               : count     distribution"
    assert lines[3] == "         0 -> 1          : 3        |****************************************|"


def test_output_flushes_and_json_lines() -> None:
    buf = io.StringIO()
    out = report.Output(buf, json_mode=True)
    out.record({"pid": 1, "comm": "x"})
    out.line("text")
    assert buf.getvalue() == '{"pid": 1, "comm": "x"}\ntext\n'
