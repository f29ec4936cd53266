"""Smoke test of the benchmark harness: one quick round on trivial commands, no timing asserted.

The benchmarks themselves need root, the reference tools and minutes; they are not part of CI.
This only proves that the harness starts a command on a pty, sees its ready line and a
generated event, reads its peak RSS, stops it with SIGINT and reports the exit, and that the
report renders from a result of the suite's shape.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCH)

import harness  # noqa: E402

CHILD = textwrap.dedent("""
    import os, sys, time
    print("Tracing things... Hit Ctrl-C to end.", flush=True)
    try:
        while True:
            if os.path.exists(sys.argv[1]):
                print("EVENT seen", flush=True)
                os.unlink(sys.argv[1])
            time.sleep(0.001)
    except KeyboardInterrupt:
        print("bye", flush=True)
""")


def test_run_tool_ready_event_rss_exit(tmp_path):
    flag = tmp_path / "flag"

    def make_event() -> None:
        flag.write_text("x")

    r = harness.run_tool([sys.executable, "-S", "-c", CHILD, str(flag)], r"^Tracing things", event=r"^EVENT seen",
                         make_event=make_event, timeout=30, linger=0.01)
    assert r.error == "", r
    assert r.ready_ms is not None and r.event_ms is not None and r.event_ms >= r.ready_ms
    assert r.peak_rss_kib is not None and r.peak_rss_kib > 0
    assert r.exit_ms is not None and r.cpu_ms is not None
    assert "bye" in r.output


def test_run_tool_reports_early_exit_and_missing_command(tmp_path):
    r = harness.run_tool([sys.executable, "-S", "-c", "print('no header')"], r"^never", timeout=10)
    assert r.ready_ms is None and r.error == "exited before it was stopped"
    missing = harness.run_tool([str(tmp_path / "does-not-exist")], r"^x", timeout=5)
    assert missing.ready_ms is None and missing.error.startswith("cannot start")


def test_median_and_clean_env(monkeypatch):
    assert harness.median([3.0, None, 1.0, 2.0]) == 2.0
    assert harness.median([]) is None
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = harness.clean_env({"X_BENCH": "1"})
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["X_BENCH"] == "1"


def test_report_renders_a_result():
    run = pytest.importorskip("run")
    med = {"ready_ms": 10.0, "event_ms": None, "peak_rss_kib": 20000, "exit_ms": 5.0, "cpu_ms": 9.0}
    res = {
        "machine": {"date": "today", "cpu": "cpu", "cpus": 2, "memory": "1 MiB", "kernel": "k", "python": "3",
                    "libbpf-tools": "x", "bpftrace": "y", "bcc": "z"},
        "install": {"how": "test"}, "rounds": 1, "cold_rounds": 0, "tools": ["softirqs"],
        "startup": {"warm": {"softirqs": {"ours": med, "libbpf-tools": dict(med, ready_ms=8.0)}}, "cold": {},
                    "unavailable": {"softirqs/bcc": "missing"}},
    }
    res["targets_summary"] = run.summarize_targets(res)
    text = run.render(res)
    assert "softirqs" in text and "1.2x" in text and "not measured" in text.lower()
