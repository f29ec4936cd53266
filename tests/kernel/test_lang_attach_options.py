"""Options given to a DSL decorator are the defaults of ``attach()`` for every hook kind.

``@coll.perf_event("cpu-clock", sample_freq=99)`` must sample at 99 Hz when the collection's
``attach()`` (or the program's) is called without options; options given to ``attach()`` win
over the decorator's, and a target given to ``attach()`` replaces the declared one but keeps the
declared options (a tc program declared for egress stays egress on another device).
Each test attaches for real and sees the hook fire.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from typing import Tuple

import pytest
from test_attach_net import DEV_A, DEV_B, in_netns, new_cgroup, run_in_cgroup, send_udp
from test_attach_net import veth as veth  # noqa: F401 - the fixture, used by name
from test_lang_features import _libc

from ebpf import lang as L
from ebpf.errors import AttachError
from ebpf.lang.types import u32, u64


def busy(seconds: float) -> None:
    """Spin for ``seconds`` of this thread's CPU time (what cpu-clock samples), however loaded
    the machine is."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1


def sampler(**options: object) -> L.Collection:
    coll = L.Collection("pe_opts")
    count = coll.array_map("count", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.perf_event("cpu-clock", **options)
    def prof(ctx):
        if L.pid() == me:
            count[0] += 1
        return 0

    return coll


def test_perf_event_sample_freq_from_the_decorator() -> None:
    with sampler(sample_freq=1000).load(me=os.getpid()) as live:
        (link,) = live.attach()
        assert "freq=1000" in link.target
        busy(0.3)
        n = live.maps["count"][0]
    assert n >= 50, n  # ~300 samples at 1000 Hz over 0.3 s of our CPU time


def test_perf_event_pid_and_period_from_the_decorator() -> None:
    with sampler(sample_period=1_000_000, pid=os.getpid()).load(me=os.getpid()) as live:
        (link,) = live.attach()
        assert len(link) == 1  # one perf event, bound to our process (not one per CPU)
        busy(0.2)
        n = live.maps["count"][0]
    assert n >= 50, n  # every 1 ms of cpu-clock


def test_attach_options_win_over_the_decorator_s() -> None:
    with sampler(sample_freq=1000).load(me=os.getpid()) as live:
        prog = live.programs["prof"]
        with prog.attach(sample_period=1_000_000, pid=os.getpid()) as link:  # not "exactly one of"
            assert "period=1000000" in link.target and len(link) == 1
            busy(0.1)
        assert live.maps["count"][0] >= 20


def test_conflicting_decorator_options_fail_at_the_declaration() -> None:
    with pytest.raises(AttachError, match="exactly one of sample_period and sample_freq"):
        sampler(sample_freq=99, sample_period=1000)


def packet_counter(decorate: object, verdict: int) -> L.Collection:
    coll = L.Collection("net_opts")
    count = coll.array_map("count", value=u64, max_entries=1)

    def body(ctx):
        count[0] += 1
        return verdict

    decorate(coll)(body)  # type: ignore[operator]
    return coll


def xdp_mode(ns: str, dev: str) -> str:
    out = subprocess.run(["ip", "-n", ns, "-d", "link", "show", "dev", dev], capture_output=True, text=True,
                         check=True).stdout
    return "xdpgeneric" if "xdpgeneric" in out else "xdp" if "prog/xdp" in out else "none"


def test_xdp_mode_from_the_decorator(veth: Tuple[str, str]) -> None:
    ns_a, ns_b = veth
    coll = packet_counter(lambda c: c.xdp(DEV_B, mode="skb"), 2)
    with coll.load() as live:
        with in_netns(ns_b):
            live.attach()
        assert xdp_mode(ns_b, DEV_B) == "xdpgeneric"  # veth has native XDP: "skb" was passed on
        assert send_udp(ns_a, ns_b, 10) == 10
        assert live.maps["count"][0] >= 10


def test_tc_egress_declared_without_a_device(veth: Tuple[str, str]) -> None:
    ns_a, ns_b = veth
    coll = packet_counter(lambda c: c.tc(ingress=False), 0)
    with coll.load() as live:
        with in_netns(ns_a):
            link = live.programs["body"].attach(DEV_A)  # the device given now, egress from the decorator
        with link:
            before = live.maps["count"][0]
            assert send_udp(ns_a, ns_b, 15) == 15  # leaves A: only an egress program sees it
            assert live.maps["count"][0] - before >= 15


def test_tc_egress_on_a_declared_device(veth: Tuple[str, str]) -> None:
    ns_a, ns_b = veth
    coll = packet_counter(lambda c: c.tc(DEV_A, ingress=False), 0)
    with coll.load() as live:
        with in_netns(ns_a):
            live.attach()
        assert send_udp(ns_a, ns_b, 15) == 15
        assert live.maps["count"][0] >= 15


@pytest.mark.parametrize("declared", [True, False], ids=["cgroup-declared", "cgroup-at-attach"])
def test_cgroup_skb_egress_from_the_decorator(declared: bool) -> None:
    with new_cgroup() as cg:
        coll = packet_counter(lambda c: c.cgroup_skb(cg if declared else "", egress=True), 1)
        with coll.load() as live:
            with (live.attach()[0] if declared else live.programs["body"].attach(cg)):
                run_in_cgroup(cg, 12)  # egress of a process in the cgroup
                assert live.maps["count"][0] >= 12


def test_uprobe_pid_and_offset_target_from_the_decorator() -> None:
    libc_path = _libc()
    coll = L.Collection("up_opts")
    seen = coll.array_map("seen", value=u64, max_entries=1)

    @coll.uprobe(f"{libc_path}:abs+0", pid=os.getpid())
    def on_abs(ctx):
        seen[0] += 1
        return 0

    libc = ctypes.CDLL(libc_path)
    with coll.load() as live:
        live.attach()
        libc.abs(-3)
        subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(None).abs(-3)"], check=True)
        assert live.maps["seen"][0] == 1  # ours, not the child's: the declared pid was used
