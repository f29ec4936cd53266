"""Exact delivery at the end of a run, for both transports and with wakeups batched: exactly N
records are sent (perf buffer with a wakeup every 64 samples or a byte watermark, ring buffer
with BPF_RB_NO_WAKEUP), so the last ones sit below the wakeup threshold, and the reader stops
early in the ways users stop: an iterator abandoned after a few records, a callback that raises.
Whatever was not handed out must come with the next read, and received + lost == N exactly."""

from __future__ import annotations

import os
from typing import Any, Iterator, List

import pytest

from ebpf import asm as A
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.maps.perfbuf import PerfBuffer
from ebpf.maps.ringbuf import RingBufReader
from ebpf.program import ProgramSpec

N = 100
BPF_RB_NO_WAKEUP = 1


def producer(transport: str) -> ProgramSpec:
    """On each getppid of ours: emit the u64 sequence number count[0]++ ; count[1] += failures."""
    insns = [
        A.mov64(A.R6, A.R1),
        A.call("get_current_pid_tgid"),
        A.rsh64(A.R0, 32),
        A.jne(A.R0, os.getpid(), "out"),
        A.ld_map_value(A.R1, "count", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0, fetch=True),
        A.stx(8, A.R10, A.R2, -8),
    ]
    if transport == "ring":
        insns += [A.ld_map_fd(A.R1, "events"), A.mov64(A.R2, A.R10), A.add64(A.R2, -8), A.mov64(A.R3, 8),
                  A.mov64(A.R4, BPF_RB_NO_WAKEUP), A.call("ringbuf_output")]
    else:
        insns += [A.mov64(A.R1, A.R6), A.ld_map_fd(A.R2, "events"), A.ld_imm64(A.R3, 0xFFFFFFFF),
                  A.mov64(A.R4, A.R10), A.add64(A.R4, -8), A.mov64(A.R5, 8), A.call("perf_event_output")]
    insns += [
        A.jeq(A.R0, 0, "out"),
        A.ld_map_value(A.R1, "count", 8),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.label("out"),
        A.mov64(A.R0, 0),
        A.exit_(),
    ]
    return ProgramSpec(f"exact_{transport}", "tracepoint", insns, attach_to="syscalls/sys_enter_getppid")


READERS = ["ring", "perf/wakeup64", "perf/watermark4k"]


@pytest.fixture(params=READERS)
def sent(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A reader holding exactly N records nobody was woken for; yields (reader, lost())."""
    kind = request.param
    transport = kind.split("/")[0]
    count = MapSpec("count", "array", key="u32", value="u64[2]", max_entries=1).create()
    if transport == "ring":
        events = MapSpec("events", "ringbuf", max_entries=64 * 1024).create()
    else:
        events = MapSpec("events", "perf_event_array", key="u32", value="u32",
                         max_entries=os.cpu_count() or 1).create()
    with count, events, load_program(producer(transport), {"count": count, "events": events}) as prog:
        if kind == "ring":
            reader: Any = RingBufReader(events, decode="u64")
        elif kind == "perf/wakeup64":
            reader = PerfBuffer(events, page_count=8, decode="u64", wakeup_events=64)
        else:
            reader = PerfBuffer(events, page_count=8, decode="u64", watermark=4096)
        with reader, prog.attach():
            for _ in range(N):
                os.getppid()
            assert count[0] == [N, 0]
            yield reader, (lambda: count[0][1] if transport == "ring" else reader.total_lost)


def test_stream_abandoned_early_loses_nothing(sent: Any) -> None:
    reader, lost = sent
    got: List[int] = []
    for seq in reader.stream(timeout=0.2):
        got.append(seq)
        if len(got) == 10:
            break  # the user stops iterating; the generator is dropped
    got += list(reader.stream(timeout=0.2))
    assert sorted(got) == list(range(N)) and lost() == 0
    assert getattr(reader, "received", len(got)) == N


def test_callback_that_raises_loses_nothing(sent: Any) -> None:
    reader, lost = sent
    got: List[int] = []

    def stop_at_ten(seq: int) -> None:
        got.append(seq)
        if len(got) == 10:
            raise KeyboardInterrupt  # Ctrl-C inside the callback

    with pytest.raises(KeyboardInterrupt):
        reader.poll(stop_at_ten, 200)
    assert reader.poll(got.append, 200) == N - 10
    assert sorted(got) == list(range(N)) and lost() == 0
    assert getattr(reader, "received", len(got)) == N


def test_poll_and_stream_deliver_records_below_the_wakeup_threshold(sent: Any) -> None:
    reader, lost = sent
    got: List[int] = []
    assert reader.poll(got.append, 200) == N
    assert sorted(got) == list(range(N)) and lost() == 0
    assert list(reader.stream(timeout=0.05)) == []
