"""The ring buffer reader against real producers: BPF programs calling bpf_ringbuf_output.

Programs are written as raw instructions (the assembler is another layer). Each run of the
program takes the next sequence number from an array map and writes it into its records, so
the reader's output can be checked for exact count, order and payload: nothing lost, nothing
duplicated, discarded records skipped, across thousands of wrap-arounds.
"""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import pytest

from ebpf.errors import MapError
from ebpf.maps import MapSpec
from ebpf.maps.array import ArrayMap
from ebpf.maps.ringbuf import RingBufMap, RingBufReader
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.sys.perf import PerfType, perf_event_open
from ebpf.sys.tracefs import tracepoint_id
from ebpf.uapi import AttachType, HelperId, ProgType

PAGE = os.sysconf("SC_PAGE_SIZE")
U64 = struct.Struct("=Q")


# --- a few instructions, by hand ------------------------------------------------------------

Item = Union[bytes, Tuple[str, ...], Tuple[Any, ...]]


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def mov_imm(dst: int, imm: int) -> bytes:
    return _insn(0xB7, dst, imm=imm)


def mov_reg(dst: int, src: int) -> bytes:
    return _insn(0xBF, dst, src)


def add_imm(dst: int, imm: int) -> bytes:
    return _insn(0x07, dst, imm=imm)


def rsh_imm(dst: int, imm: int) -> bytes:
    return _insn(0x77, dst, imm=imm)


def ldx_dw(dst: int, src: int, off: int) -> bytes:
    return _insn(0x79, dst, src, off)


def stx_dw(dst: int, src: int, off: int) -> bytes:
    return _insn(0x7B, dst, src, off)


def st_w(dst: int, off: int, imm: int) -> bytes:
    return _insn(0x62, dst, off=off, imm=imm)


def ld_map(dst: int, fd: int) -> bytes:
    return _insn(0x18, dst, 1, imm=fd) + _insn(0)  # LD_IMM64, src=BPF_PSEUDO_MAP_FD


def call(helper: int) -> bytes:
    return _insn(0x85, imm=helper)


def exit_() -> bytes:
    return _insn(0x95)


def jeq(dst: int, imm: int, label: str) -> Tuple[Any, ...]:
    return ("jmp", 0x15, dst, imm, label)


def jne(dst: int, imm: int, label: str) -> Tuple[Any, ...]:
    return ("jmp", 0x55, dst, imm, label)


def assemble(items: Sequence[Item]) -> bytes:
    """Bytes and ("jmp", opcode, reg, imm, label) / ("label", name) entries -> program."""
    labels: Dict[str, int] = {}
    pc = 0
    for item in items:
        if isinstance(item, tuple) and item[0] == "label":
            labels[item[1]] = pc
        elif isinstance(item, tuple):
            pc += 1
        else:
            pc += len(item) // 8
    out = []
    pc = 0
    for item in items:
        if isinstance(item, tuple) and item[0] == "label":
            continue
        if isinstance(item, tuple):
            _, code, dst, imm, label = item
            out.append(_insn(code, dst, off=labels[label] - pc - 1, imm=imm))
            pc += 1
        else:
            out.append(item)
            pc += len(item) // 8
    return b"".join(out)


def ringbuf_program(rb_fd: int, seq_fd: int, *, sizes: Sequence[int] = (8,), discard: bool = False,
                    tgid: Optional[int] = None, count_committed: bool = False) -> bytes:
    """seq = counter[0]++; the 64 stack bytes below r10 all hold seq; then, per size, one
    bpf_ringbuf_output of that many bytes (after a reserved-then-discarded record if asked).
    With ``count_committed``, counter[1] counts the outputs the kernel accepted."""
    p: List[Item] = [mov_reg(9, 1)]
    if tgid is not None:
        p += [call(HelperId.get_current_pid_tgid), rsh_imm(0, 32), jne(0, tgid, "out")]
    p += [st_w(10, -4, 0), mov_reg(2, 10), add_imm(2, -4), ld_map(1, seq_fd), call(HelperId.map_lookup_elem),
          jeq(0, 0, "out"), mov_reg(8, 0), ldx_dw(6, 8, 0), mov_reg(7, 6), add_imm(7, 1), stx_dw(8, 7, 0)]
    p += [stx_dw(10, 6, off) for off in range(-64, 0, 8)]
    if discard:
        p += [ld_map(1, rb_fd), mov_imm(2, 16), mov_imm(3, 0), call(HelperId.ringbuf_reserve),
              jeq(0, 0, "reserved_none"), stx_dw(0, 6, 0), mov_reg(1, 0), mov_imm(2, 0),
              call(HelperId.ringbuf_discard), ("label", "reserved_none")]
    for i, size in enumerate(sizes):
        p += [ld_map(1, rb_fd), mov_reg(2, 10), add_imm(2, -64), mov_imm(3, size), mov_imm(4, 0),
              call(HelperId.ringbuf_output)]
        if count_committed:
            p += [jne(0, 0, f"dropped{i}"), ldx_dw(1, 8, 8), add_imm(1, 1), stx_dw(8, 1, 8),
                  ("label", f"dropped{i}")]
    p += [("label", "out"), mov_imm(0, 0), exit_()]
    return assemble(p)


def load(insns: bytes, prog_type: ProgType = ProgType.SOCKET_FILTER) -> FD:
    try:
        fd, _ = bpf.prog_load(prog_type, insns, "GPL", name="t_ringbuf", log_level=1, log_size=1 << 20)
    except bpf.ProgLoadError as e:
        raise AssertionError(f"verifier refused the test program:\n{e.log}") from None
    return FD(fd)


def run(prog: FD, repeat: int) -> None:
    bpf.prog_test_run(int(prog), bytes(64), repeat=repeat)


def expected(seqs: range, sizes: Sequence[int]) -> List[bytes]:
    return [(U64.pack(s) * 8)[:size] for s in seqs for size in sizes]


class Rig:
    """A ring buffer, the sequence counter and a program feeding the ring, closed together."""

    def __init__(self, ring_size: int, **program: Any):
        self.rb: RingBufMap = MapSpec("t_rb", "ringbuf", max_entries=ring_size).create()
        self.counter: ArrayMap = MapSpec("t_seq", "array", value="u64[2]", max_entries=1).create()
        prog_type = ProgType.TRACEPOINT if program.get("tgid") is not None else ProgType.SOCKET_FILTER
        self.prog = load(ringbuf_program(self.rb.fd, self.counter.fd, **program), prog_type)

    @property
    def committed(self) -> int:
        return int(self.counter[0][1])

    def close(self) -> None:
        self.prog.close()
        self.counter.close()
        self.rb.close()

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Attached:
    """The program on tracepoint syscalls/sys_enter_getppid through a perf event + BPF link."""

    def __init__(self, prog: FD):
        tp = tracepoint_id("syscalls", "sys_enter_getppid")
        fd = perf_event_open(PerfType.TRACEPOINT, tp, pid=-1, cpu=0, sample_period=1, wakeup_events=1)
        self.perf = FD(fd)
        try:
            self.link = FD(bpf.link_create(int(prog), int(self.perf), AttachType.PERF_EVENT))
        except BaseException:
            self.perf.close()
            raise

    def __enter__(self) -> Attached:
        return self

    def __exit__(self, *exc: object) -> None:
        self.link.close()
        self.perf.close()


# --- (a) BPF_PROG_TEST_RUN: exact counts, discards skipped -----------------------------------


def test_test_run_ten_thousand_records_with_discards() -> None:
    n = 10_000
    with Rig(512 * 1024, discard=True) as rig:  # 40 bytes per run (a 24-byte discarded record + 16)
        run(rig.prog, n)
        assert rig.rb.reader().available() == n * 40
        got = rig.rb.read()
        assert got == expected(range(n), (8,))
        assert rig.rb.read() == [] and rig.rb.reader().available() == 0


def test_test_run_in_rounds_callback_and_decode() -> None:
    with Rig(64 * 1024, discard=True) as rig:
        seqs: List[int] = []
        for _ in range(10):
            run(rig.prog, 1000)
            assert rig.rb.consume(seqs.append, decode="u64") == 1000
        assert seqs == list(range(10_000))


# --- (b) a tracepoint producer ------------------------------------------------------------


def test_tracepoint_getppid_exact_count() -> None:
    n = 2000
    with Rig(64 * 1024, tgid=os.getpid()) as rig:
        with Attached(rig.prog):
            for _ in range(n):
                os.getppid()
        got = rig.rb.read(decode=U64)
        assert [g[0] for g in got] == list(range(n))


def test_tracepoint_concurrent_reader_under_load() -> None:
    """A forked child calls getppid() flat out on one CPU while we drain a small ring on the
    other: every record the kernel accepted (counted by the program itself) is read exactly
    once and in order, across many wrap-arounds; records the full ring refused are the only gap."""
    n = 100_000
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:  # the producer: wait for the go, hammer the tracepoint, leave
        try:
            os.read(go_r, 1)
            for _ in range(n):
                os.getppid()
        finally:
            os._exit(0)
    os.close(go_r)
    received: List[int] = []
    try:
        with Rig(4 * PAGE, tgid=child, count_committed=True) as rig, Attached(rig.prog):
            reader = rig.rb.reader()
            os.write(go_w, b"x")
            exited = False
            deadline = time.monotonic() + 30
            while not exited and time.monotonic() < deadline:
                reader.poll(lambda r: received.append(U64.unpack_from(r)[0]), timeout_ms=20)
                exited = os.waitpid(child, os.WNOHANG)[0] == child
            reader.consume(lambda r: received.append(U64.unpack_from(r)[0]))
            committed = rig.committed
    finally:
        os.close(go_w)
        if not exited:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
    assert exited
    assert len(received) == committed > 4 * PAGE // 16  # more than one ring's worth went through
    assert all(a < b for a, b in zip(received, received[1:]))  # order kept, no duplicates
    assert received[-1] <= n - 1


# --- (c) wrap-around -----------------------------------------------------------------------


def test_small_ring_wraps_many_times() -> None:
    sizes = (44, 13, 0, 64, 1)  # 56 + 24 + 8 + 72 + 16 bytes, plus a 24-byte discarded record
    per_run = 56 + 24 + 8 + 72 + 16 + 24
    ring = 4 * PAGE
    runs = ring // per_run - 1
    with Rig(ring, sizes=sizes, discard=True) as rig:
        got: List[bytes] = []
        rounds = 300
        for _ in range(rounds):
            run(rig.prog, runs)
            got.extend(rig.rb.read())
        assert rig.committed == 0  # not counted in this program
        assert len(got) == rounds * runs * len(sizes)
        assert got == expected(range(rounds * runs), sizes)
        assert rounds * runs * per_run > 100 * ring  # the positions went round 100+ times


# --- (d) reading styles, timeouts, closing ---------------------------------------------------


def test_poll_stream_and_timeouts() -> None:
    with Rig(16 * PAGE) as rig:
        reader = rig.rb.reader()
        t0 = time.monotonic()
        assert reader.poll(lambda r: None, timeout_ms=100) == 0
        assert 0.08 < time.monotonic() - t0 < 2
        t0 = time.monotonic()
        assert list(reader.stream(timeout=0.1)) == []
        assert 0.08 < time.monotonic() - t0 < 2
        run(rig.prog, 5)
        got: List[bytes] = []
        assert reader.poll(got.append, timeout_ms=1000) == 5
        assert got == expected(range(5), (8,))
        run(rig.prog, 5)
        assert [U64.unpack(r)[0] for r in reader.stream(timeout=0.05)] == list(range(5, 10))
        # a stream abandoned halfway loses nothing: the rest comes with the next read
        run(rig.prog, 5)
        stream = reader.stream(timeout=0.05)
        assert U64.unpack(next(stream))[0] == 10
        stream.close()
        assert [U64.unpack(r)[0] for r in reader.read()] == [11, 12, 13, 14]


def test_callback_error_keeps_the_rest() -> None:
    with Rig(16 * PAGE) as rig:
        run(rig.prog, 10)
        seen: List[int] = []

        def picky(rec: int) -> None:
            if rec == 3:
                raise ValueError("boom")
            seen.append(rec)

        with pytest.raises(ValueError):
            rig.rb.consume(picky, decode="u64")
        assert rig.rb.consume(seen.append, decode="u64") == 6
        assert seen == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_close_from_another_thread_ends_a_blocked_stream() -> None:
    with Rig(4 * PAGE) as rig:
        reader = rig.rb.reader()
        done = threading.Event()

        def consume() -> None:
            for _ in reader.stream():
                pass
            done.set()

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(0.1)
        assert not done.is_set()
        reader.close()
        t.join(5)
        assert done.is_set() and reader.closed
        assert reader.poll(lambda r: None, 10) == 0 and reader.read() == []
        assert not rig.rb.reader().closed  # the map hands out a fresh reader


def test_close_from_a_callback() -> None:
    with Rig(4 * PAGE) as rig:
        run(rig.prog, 5)
        reader = RingBufReader(rig.rb)
        got: List[bytes] = []

        def first_only(rec: bytes) -> None:
            got.append(rec)
            reader.close()

        assert reader.consume(first_only) == 1 and len(got) == 1 and reader.closed


def test_ctrl_c_while_waiting() -> None:
    with Rig(4 * PAGE) as rig:
        reader = rig.rb.reader()
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                for _ in reader.stream():
                    pass
        finally:
            timer.join()
            signal.signal(signal.SIGINT, previous)
        run(rig.prog, 3)  # the reader is still usable afterwards
        assert len(reader.read()) == 3


def test_reader_of_a_plain_fd_and_typed_ring() -> None:
    with MapSpec("t_rbtyped", "ringbuf", value=[("seq", "u64")], max_entries=4 * PAGE).create() as rb, \
            MapSpec("t_seq", "array", value="u64[2]", max_entries=1).create() as counter, \
            load(ringbuf_program(rb.fd, counter.fd)) as prog:
        run(prog, 3)
        assert [r.seq for r in rb.read()] == [0, 1, 2]  # the map's value type decodes records
        run(prog, 2)
        with RingBufReader(rb.fd) as raw:
            assert raw.read() == expected(range(3, 5), (8,))
        with pytest.raises(MapError, match="not a ring buffer"):
            RingBufReader(counter.fd)
        with pytest.raises(MapError, match="not a ring buffer"):
            RingBufReader(counter)
