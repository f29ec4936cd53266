"""Feature probes against this kernel: answers agree with what the kernel shows elsewhere (sysfs,
tracefs, real loads), helpers are classified by the verifier's words, results are cached, and
``ebpf features`` prints them."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout

from ebpf import features as F
from ebpf.cli.main import main
from ebpf.uapi import HelperId, MapType, ProgType


def test_hook_presence_matches_sysfs_and_tracefs() -> None:
    devices = "/sys/bus/event_source/devices"
    assert F.have_kprobe_pmu() == os.path.exists(f"{devices}/kprobe/type")
    assert F.have_uprobe_pmu() == os.path.exists(f"{devices}/uprobe/type")
    assert F.have_kprobes() == (F.have_kprobe_pmu() or F.have_kprobe_events())
    assert F.have_btf()


def test_program_and_map_types() -> None:
    assert F.have_program_type(ProgType.TRACEPOINT) and F.have_program_type("xdp")
    assert F.have_map_type(MapType.HASH) and F.have_map_type("ringbuf") == F.have_ringbuf()
    f = F.probe_program_type("tracing")
    assert f.supported and f.detail == "loads"  # tp_btf is how the probe loads it


def test_helpers_classified_by_the_verifier() -> None:
    assert F.have_helper(ProgType.TRACEPOINT, "map_lookup_elem")  # argument errors still mean "exists"
    assert F.probe_helper(ProgType.TRACEPOINT, HelperId.map_lookup_elem).detail.startswith("known")
    not_here = F.probe_helper(ProgType.TRACEPOINT, HelperId.skb_load_bytes)
    assert not not_here.supported and not_here.detail == "not allowed for this program type"
    unknown = F.probe_helper(ProgType.TRACEPOINT, 99999)
    assert not unknown.supported and unknown.detail == "unknown to the kernel"
    assert F.have_bpf_loop() == F.have_helper("tracepoint", "bpf_loop")


def test_links_and_btf_hooks() -> None:
    assert F.have_bpf_link() and F.have_perf_link()
    assert F.have_tp_btf("sched_switch") and not F.have_tp_btf("no_such_tracepoint_xyz")
    assert F.have_iter("task")
    fentry = F.can_attach_fentry("vfs_read")
    assert fentry.supported == F.have_fentry()
    assert not F.can_attach_fentry("no_such_function_xyz").supported


def test_results_are_cached_per_process() -> None:
    assert F.probe_map_type(MapType.ARRAY) is F.probe_map_type(MapType.ARRAY)
    assert F.can_attach_fentry("vfs_read") is F.can_attach_fentry("vfs_read")


def test_cli_prints_a_table_and_json() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["features"]) == 0
    text = out.getvalue()
    assert "uprobe PMU" in text and "helpers:" in text
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["features", "--json"]) == 0
    data = json.loads(out.getvalue())
    assert data["hooks"]["kprobe PMU"]["supported"] == F.have_kprobe_pmu()
    assert data["maps"]["map type ringbuf"]["supported"] is True
