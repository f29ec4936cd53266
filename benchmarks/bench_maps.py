"""Map throughput through the Python API: element operations per second, whole-map reads, and
ring buffer records per second read into Python. Needs root (creates real maps).

    python benchmarks/bench_maps.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
from typing import Callable, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ebpf.maps import MapSpec  # noqa: E402
from ebpf.sys import bpf  # noqa: E402
from ebpf.sys.fd import FD  # noqa: E402
from ebpf.uapi import HelperId, ProgType  # noqa: E402

Row = Tuple[str, float, str]


def rate(fn: Callable[[], None], n: int) -> float:
    """Operations per second of ``fn`` doing ``n`` operations (best of 3)."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def bench_elements(n: int) -> List[Row]:
    rows: List[Row] = []
    with MapSpec("b_hash", "hash", key="u32", value="u64", max_entries=1024).create() as m:
        m[1] = 1

        def get() -> None:
            for _ in range(n):
                m[1]

        def miss() -> None:
            for _ in range(n):
                m.get(2)

        def put() -> None:
            for i in range(n):
                m[1] = i

        def contains() -> None:
            for _ in range(n):
                1 in m  # noqa: B015

        rows += [("hash u32->u64  m[k]", rate(get, n), "ops/s"),
                 ("hash  m.get(missing)", rate(miss, n), "ops/s"),
                 ("hash  m[k] = v", rate(put, n), "ops/s"),
                 ("hash  k in m", rate(contains, n), "ops/s")]
    struct_value = [("count", "u64"), ("ts", "u64"), ("comm", "char[16]")]
    with MapSpec("b_struct", "hash", key="u32", value=struct_value, max_entries=16).create() as m:
        m[1] = (1, 2, "bash")

        def get_struct() -> None:
            for _ in range(n):
                m[1]

        rows.append(("hash u32->struct{u64,u64,char[16]}  m[k]", rate(get_struct, n), "ops/s"))
    with MapSpec("b_pcpu", "percpu_array", value="u64", max_entries=4).create() as m:

        def get_percpu() -> None:
            for _ in range(n):
                m[1]

        def sum_percpu() -> None:
            for _ in range(n):
                m.sum(1)

        rows += [("percpu_array  m[k] (list per CPU)", rate(get_percpu, n), "ops/s"),
                 ("percpu_array  m.sum(k)", rate(sum_percpu, n), "ops/s")]
    return rows


def bench_whole_map(entries: int) -> List[Row]:
    rows: List[Row] = []
    with MapSpec("b_whole", "hash", key="u32", value="u64", max_entries=entries).create() as m:
        data = {i: i for i in range(entries)}
        m.update(data)
        for use_batch in (True, False):
            m.use_batch = use_batch
            label = "batch" if use_batch else "get_next_key"
            rows.append((f"hash items() of {entries} ({label})", rate(m.items, entries), "elems/s"))

        def drain() -> None:
            m.update(data)
            m.items_and_clear()

        m.use_batch = True
        rows.append((f"hash update()+items_and_clear() of {entries} (batch)", rate(drain, entries),
                     "elems/s"))
    return rows


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def _producer(rb_fd: int, size: int) -> FD:
    """A socket filter that outputs ``size`` bytes of stack into the ring on every run."""
    insns = b"".join(_insn(0x7A, 10, off=off, imm=off) for off in range(-64, 0, 8))
    insns += (_insn(0x18, 1, 1, imm=rb_fd) + _insn(0) + _insn(0xBF, 2, 10) + _insn(0x07, 2, imm=-64)
              + _insn(0xB7, 3, imm=size) + _insn(0xB7, 4) + _insn(0x85, imm=HelperId.ringbuf_output)
              + _insn(0xB7, 0) + _insn(0x95))
    fd, _ = bpf.prog_load(ProgType.SOCKET_FILTER, insns, "GPL", name="b_ringbuf")
    return FD(fd)


def bench_ringbuf(records: int) -> List[Row]:
    rows: List[Row] = []
    ring = 1 << max(12, (records * 24 - 1).bit_length())
    with MapSpec("b_rb", "ringbuf", max_entries=ring).create() as rb, _producer(rb.fd, 16) as prog:
        reader = rb.reader()
        sink: List[object] = []
        fields = [("a", "i64"), ("b", "i64")]
        styles = [
            ("consume(callback) bytes", lambda: reader.consume(sink.append)),
            ("read() bytes", lambda: sink.extend(reader.read())),
            ("read(decode=struct '<qq')", lambda: sink.extend(reader.read(decode=struct.Struct("<qq")))),
            ("read(decode=[(a,i64),(b,i64)])", lambda: sink.extend(reader.read(decode=fields))),
            ("stream(timeout=0)", lambda: sink.extend(reader.stream(timeout=0))),
        ]
        for name, fn in styles:
            best = float("inf")
            for _ in range(3):
                bpf.prog_test_run(int(prog), bytes(64), repeat=records)
                sink.clear()
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
                assert len(sink) == records, (name, len(sink))
            rows.append((f"ringbuf 16-byte records, {name}", records / best, "records/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rows = bench_elements(200_000 // scale) + bench_whole_map(100_000 // scale)
    rows += bench_ringbuf(200_000 // scale)
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'rate':>12}")
    print("-" * (width + 24))
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:>12,.0f} {unit}")


if __name__ == "__main__":
    main()
