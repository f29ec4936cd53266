"""The perf buffer reader against real producers (bpf_perf_event_output from a tracepoint):
exact counts and payloads through wrap-arounds, exact lost counts after a deliberate overflow,
decoding with a precompiled codec, and one loop polling a perf buffer and a ring buffer together."""

from __future__ import annotations

import os
import threading
from typing import Iterator, List, Tuple

import pytest

from ebpf import asm as A
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.maps.perfbuf import EventPoller, PerfBuffer
from ebpf.maps.ringbuf import RingBufReader
from ebpf.program import ProgramSpec

RECORD = [("seq", "u64"), ("pid", "u32"), ("magic", "u32"), ("pad", "u64[3]")]  # 40 bytes
RECORD_SIZE = 40
MAGIC = 0xFEEDF00D


def producer(ringbuf: bool = False) -> ProgramSpec:
    """On each getppid of ours: seq = count[0]++, emit {seq, pid, MAGIC, ...}; count[1] += failures."""
    insns = [
        A.mov64(A.R6, A.R1),
        A.call("get_current_pid_tgid"),
        A.rsh64(A.R0, 32),
        A.jne(A.R0, os.getpid(), "out"),
        A.mov64(A.R7, A.R0),
        A.ld_map_value(A.R1, "count", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0, fetch=True),
        A.stx(8, A.R10, A.R2, -40),
        A.stx(4, A.R10, A.R7, -32),
        A.mov64(A.R2, MAGIC),
        A.stx(4, A.R10, A.R2, -28),
        A.st(8, A.R10, -24, 1),
        A.st(8, A.R10, -16, 2),
        A.st(8, A.R10, -8, 3),
        A.mov64(A.R1, A.R6),
        A.ld_map_fd(A.R2, "events"),
        A.ld_imm64(A.R3, 0xFFFFFFFF),  # BPF_F_CURRENT_CPU
        A.mov64(A.R4, A.R10),
        A.add64(A.R4, -40),
        A.mov64(A.R5, RECORD_SIZE),
        A.call("perf_event_output"),
        A.jeq(A.R0, 0, "ring" if ringbuf else "out"),
        A.ld_map_value(A.R1, "count", 8),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.label("ring"),
    ]
    if ringbuf:
        insns += [
            A.ld_map_fd(A.R1, "ring"),
            A.mov64(A.R2, A.R10),
            A.add64(A.R2, -40),
            A.mov64(A.R3, RECORD_SIZE),
            A.mov64(A.R4, 0),
            A.call("ringbuf_output"),
        ]
    insns += [A.label("out"), A.mov64(A.R0, 0), A.exit_()]
    return ProgramSpec("pb_prod", "tracepoint", insns, attach_to="syscalls/sys_enter_getppid")


@pytest.fixture
def one_cpu() -> Iterator[int]:
    """Run the test on one CPU so that every record lands in the same ring."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def maps() -> Tuple[object, object]:
    count = MapSpec("count", "array", key="u32", value="u64[2]", max_entries=1).create()
    events = MapSpec("events", "perf_event_array", key="u32", value="u32", max_entries=os.cpu_count() or 1).create()
    return count, events


def test_every_record_through_many_wraparounds(one_cpu: int) -> None:
    count, events = maps()
    got: List[Tuple[int, object]] = []
    with count, events, load_program(producer(), {"count": count, "events": events}) as prog:
        with PerfBuffer(events, page_count=1, decode=RECORD, with_cpu=True) as pb, prog.attach():
            for i in range(3000):  # 40-byte records in 56-byte slots: they wrap the 4 KiB ring
                os.getppid()
                if i % 50 == 49:
                    pb.consume(lambda cpu, rec: got.append((cpu, rec)))
            pb.consume(lambda cpu, rec: got.append((cpu, rec)))
            assert pb.total_lost == 0 and pb.received == 3000
        assert count[0] == [3000, 0]
    assert [r.seq for _, r in got] == list(range(3000))
    assert all(cpu == one_cpu and r.pid == os.getpid() and r.magic == MAGIC and r.pad == [1, 2, 3]
               for cpu, r in got)


def test_lost_records_are_counted_exactly(one_cpu: int) -> None:
    count, events = maps()
    lost_seen: List[Tuple[int, int]] = []
    with count, events, load_program(producer(), {"count": count, "events": events}) as prog:
        with PerfBuffer(events, page_count=1, lost_callback=lambda cpu, n: lost_seen.append((cpu, n))) as pb, \
                prog.attach():
            for _ in range(1000):  # nobody reads: the 4 KiB ring fills after ~70 records
                os.getppid()
            first = pb.read()
            os.getppid()  # the kernel reports the drop with the next record that fits
            second = pb.read()
            sent, failed = count[0]
            received = len(first) + len(second)
            assert sent == 1001
            assert 0 < received < 200 and pb.total_lost == failed > 0
            assert received + pb.total_lost == sent
            assert lost_seen == [(one_cpu, failed)] and pb.lost[one_cpu] == failed


def test_poll_and_stream_wait_for_records() -> None:
    count, events = maps()
    with count, events, load_program(producer(), {"count": count, "events": events}) as prog:
        with PerfBuffer(events, decode=RECORD) as pb, prog.attach():
            assert pb.poll(lambda r: None, 10) == 0  # nothing yet: times out
            t = threading.Timer(0.05, os.getppid)
            t.start()
            seen: List[object] = []
            assert pb.poll(seen.append, 2000) == 1
            t.join()
            for _ in range(5):
                os.getppid()
            streamed = list(pb.stream(timeout=0.05))
            assert len(streamed) == 5 and streamed[-1].seq == 5


def test_event_poller_reads_ring_and_perf_buffers_together() -> None:
    count, events = maps()
    ring = MapSpec("ring", "ringbuf", max_entries=64 * 1024).create()
    from_perf: List[int] = []
    from_ring: List[int] = []
    with count, events, ring, load_program(producer(ringbuf=True), {"count": count, "events": events,
                                                                    "ring": ring}) as prog:
        with PerfBuffer(events, decode=RECORD) as pb, RingBufReader(ring, decode=RECORD) as rb, \
                EventPoller() as loop, prog.attach():
            loop.add(pb, lambda r: from_perf.append(r.seq))
            loop.add(rb, lambda r: from_ring.append(r.seq))
            assert loop.poll(10) == 0
            for _ in range(200):
                os.getppid()
            for _ in range(50):
                if len(from_perf) == len(from_ring) == 200:
                    break
                loop.poll(100)
    assert from_perf == from_ring == list(range(200))


def test_closing_empties_the_map_slots() -> None:
    count, events = maps()
    with count, events, load_program(producer(), {"count": count, "events": events}) as prog:
        pb = PerfBuffer(events)
        assert pb.cpus
        pb.close()
        with prog.attach():
            os.getppid()
        sent, failed = count[0]
        assert (sent, failed) == (1, 1)  # no ring behind the slot: the output failed (ENOENT)
