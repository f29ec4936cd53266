"""Load latency: how long BPF_PROG_LOAD (verifier + JIT) takes for a 1k-instruction program.

Measured end to end through our loader (link, encode, syscall) and for the bare syscall, with
the medians of many runs. Run as root: ``python benchmarks/bench_load.py``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable, List

from ebpf import asm as A
from ebpf.loader import load_program
from ebpf.program import ProgramSpec
from ebpf.sys import bpf


def program(n: int) -> List:
    """~n instructions of straight-line ALU work with a few branches, returning r0."""
    insns: List = [A.mov64(A.R0, 0), A.mov64(A.R2, 1)]
    i = 0
    while len(insns) < n - 2:
        insns += [A.add64(A.R0, i & 0xFF), A.xor64(A.R0, A.R2), A.jne(A.R0, i, 1), A.mov64(A.R2, 3)]
        i += 1
    return insns + [A.exit_()]


def timed(fn: Callable[[], object], rounds: int) -> List[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    rows = []
    for size in (10, 1000, 4000):
        spec = ProgramSpec(f"bench{size}", "socket_filter", program(size))
        code = A.encode(A.link(spec.instructions))

        def full(spec: ProgramSpec = spec) -> None:
            load_program(spec).close()

        def raw(spec: ProgramSpec = spec, code: bytes = code) -> None:
            fd, _ = bpf.prog_load(spec.type, code, "GPL")
            os.close(fd)

        rounds = 50 if size < 4000 else 20
        t_full = statistics.median(timed(full, rounds))
        t_raw = statistics.median(timed(raw, rounds))
        rows.append((len(code) // 8, t_full * 1e3, t_raw * 1e3, (t_full - t_raw) * 1e3))
    print(f"{'slots':>6} {'load_program ms':>16} {'bare PROG_LOAD ms':>18} {'our overhead ms':>16}")
    for slots, full_ms, raw_ms, over in rows:
        print(f"{slots:>6} {full_ms:>16.3f} {raw_ms:>18.3f} {over:>16.3f}")


if __name__ == "__main__":
    main()
