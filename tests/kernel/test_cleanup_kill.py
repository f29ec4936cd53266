"""Nothing outlives a process: children holding every kind of fd-less and fd-bound attachment are
killed with SIGINT, SIGTERM and SIGKILL at random moments (during set-up, while attached, while
reading), many times; afterwards bpftool finds none of their programs, links or maps, tracefs
has none of their uprobe events, and bpffs none of their pins.

SIGINT and SIGTERM children remove their tracefs events themselves (atexit, our SIGTERM handler);
nothing runs on SIGKILL, so the events of SIGKILLed children are swept by the next process that
adds one (``probe_events.remove_stale``), as checked at the end.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Dict, List, Set

import pytest

from ebpf.attach import probe_events

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r'''
import os, sys, time, random
from ebpf import asm as A
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.maps.perfbuf import PerfBuffer
from ebpf.program import ProgramSpec
from ebpf.attach.uprobe import attach_uprobe
from ebpf.attach.perf_event import attach_perf_event

tag = sys.argv[1]
prog_insns = [A.ld_map_value(A.R1, "count", 0), A.mov64(A.R2, 1), A.atomic_add(8, A.R1, A.R2, 0),
              A.mov64(A.R0, 0), A.exit_()]
count = MapSpec(tag + "c", "array", key="u32", value="u64", max_entries=1).create()
events = MapSpec(tag + "e", "perf_event_array", key="u32", value="u32", max_entries=os.cpu_count()).create()
maps = {"count": count}
tp = load_program(ProgramSpec(tag + "t", "tracepoint", prog_insns, attach_to="syscalls/sys_enter_getppid"), maps)
raw = load_program(ProgramSpec(tag + "r", "raw_tracepoint", prog_insns, attach_to="sys_enter"), maps)
up = load_program(ProgramSpec(tag + "u", "kprobe", prog_insns), maps)
pe = load_program(ProgramSpec(tag + "p", "perf_event", prog_insns), maps)
links = [tp.attach(), raw.attach(),
         attach_uprobe(up, "c", "getpid"),                      # PMU: dies with the fd
         attach_uprobe(up, "c", "getppid", legacy=True),        # tracefs: needs removing
         attach_uprobe(up, "c", "getuid", retprobe=True, legacy=True),
         attach_perf_event(pe, "cpu-clock", sample_freq=99)]
reader = PerfBuffer(events)
print("ready", flush=True)
end = time.monotonic() + 5
while time.monotonic() < end:
    os.getppid(); os.getpid()
    reader.poll(lambda r: None, 1)
'''


def bpftool(kind: str) -> List[dict]:
    out = subprocess.run(["bpftool", kind, "list", "-j"], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def leftovers(tag: str, pids: Set[int]) -> Dict[str, list]:
    progs = [p for p in bpftool("prog") if str(p.get("name", "")).startswith(tag)]
    prog_ids = {p["id"] for p in progs}
    links = [link for link in bpftool("link") if link.get("prog_id") in prog_ids]
    maps = [m for m in bpftool("map") if str(m.get("name", "")).startswith(tag)]
    events = [e for e in probe_events.ours("uprobe") if int(e[0].split("_")[1]) in pids]
    pins = []
    for dirpath, _dirs, files in os.walk("/sys/fs/bpf"):
        pins += [os.path.join(dirpath, f) for f in files if f.startswith(tag)]
    return {"programs": progs, "links": links, "maps": maps, "uprobe_events": events, "pins": pins}


def wait_clean(tag: str, pids: Set[int], timeout: float = 5.0) -> Dict[str, list]:
    """Freeing BPF objects is asynchronous in the kernel (RCU, work queues): wait a little."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(tag, pids)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool")
def test_killed_processes_leave_nothing_behind() -> None:
    tag = "k" + uuid.uuid4().hex[:6]  # program/map names: 15 chars at most
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rng = random.Random(5)
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
    by_signal: Dict[int, Set[int]] = {s: set() for s in sigs}
    ready_kills = 0
    started = time.monotonic()
    rounds = 0
    # at least 6 rounds with 10 kills of attached children, however loaded the machine; more while time allows
    while rounds < 40 and (rounds < 6 or ready_kills < 10 or (rounds < 14 and time.monotonic() - started < 15)):
        rounds += 1
        children = []
        for i in range(3):
            p = subprocess.Popen([sys.executable, "-c", CHILD, tag], stdout=subprocess.PIPE, text=True,
                                 stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
            children.append((p, sigs[(rounds + i) % 3]))
        for p, sig in children:
            if rng.random() < 0.7:  # most are killed while attached, the rest during set-up
                assert p.stdout is not None
                if p.stdout.readline().strip() == "ready":
                    ready_kills += 1
                time.sleep(rng.uniform(0, 0.1))
            else:
                time.sleep(rng.uniform(0, 0.3))
            p.send_signal(sig)
        for p, sig in children:
            p.wait(10)
            if p.stdout is not None:
                p.stdout.close()
            by_signal[sig].add(p.pid)
    all_pids = set().union(*by_signal.values())
    assert rounds >= 6 and ready_kills >= 10, (rounds, ready_kills)
    # SIGINT and SIGTERM children cleaned up their tracefs events by themselves
    polite = by_signal[signal.SIGINT] | by_signal[signal.SIGTERM]
    assert [e for e in probe_events.ours("uprobe") if int(e[0].split("_")[1]) in polite] == []
    # SIGKILLed ones could not: the next adder sweeps them
    probe_events.remove_stale("uprobe")
    left = wait_clean(tag, all_pids)
    assert not any(left.values()), left
