"""Throughput of ebpf.asm: instructions per second through each stage.

    python benchmarks/bench_asm.py [--size N] [--repeat R]

Builds a program of N instructions with a realistic mix (ALU, loads/stores, branches to labels,
helper calls, 64-bit immediates, map loads) and times, best of R runs:
builder -> link -> encode, encode alone, text -> bytes (assemble + encode), decode, and
disassemble. Prints one table row per stage.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ebpf.asm import (  # noqa: E402
    FP,
    R0,
    R1,
    R2,
    R3,
    ProgramItem,
    assemble,
    decode,
    disassemble,
    encode,
    link,
)
from ebpf.asm import builder as b  # noqa: E402

BLOCK = 16  # instructions per generated block (an LD_IMM64 counts as one)


def build(n: int) -> List[ProgramItem]:
    """About n instructions in blocks of 16 that branch to each other's labels."""
    items: List[ProgramItem] = []
    blocks = max(1, n // BLOCK)
    for i in range(blocks):
        nxt = f"b{i + 1}" if i + 1 < blocks else "end"
        items += [
            b.label(f"b{i}"),
            b.mov64(R1, i),
            b.add64(R1, R2),
            b.stx(8, FP, R1, -8),
            b.ldx(8, R3, FP, -8),
            b.lsh64(R3, 3),
            b.and32(R3, 0xFF),
            b.jeq(R3, 0, nxt),
            b.ld_map_fd(R1, "counts"),
            b.mov64(R2, FP),
            b.add64(R2, -8),
            b.call("map_lookup_elem"),
            b.jeq(R0, 0, nxt),
            b.ld_imm64(R2, 1 << 40 | i),
            b.atomic_add(8, R0, R2, 0),
            b.jsgt(R1, R3, f"b{i}"),
            b.ja(nxt),
        ]
    items += [b.label("end"), b.mov64(R0, 0), b.exit_()]
    return items


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="instructions per program")
    parser.add_argument("--repeat", type=int, default=5, help="runs per stage (best is reported)")
    args = parser.parse_args()

    items = build(args.size)
    insns = link(items)
    data = encode(insns)
    text = disassemble(insns)
    n = len(insns)
    assert encode(assemble(text).instructions) == data

    stages = [
        ("builder -> link -> encode", lambda: encode(link(build(args.size)))),
        ("builder (construct only)", lambda: build(args.size)),
        ("link", lambda: link(items)),
        ("encode", lambda: encode(insns)),
        ("text -> bytes (assemble+encode)", lambda: encode(assemble(text).instructions)),
        ("decode", lambda: decode(data)),
        ("disassemble", lambda: disassemble(insns)),
    ]
    print(f"ebpf.asm throughput, {n} instructions ({len(data)} bytes), best of {args.repeat}")
    print(f"{'stage':<34}{'ms':>10}{'insns/s':>14}")
    for name, fn in stages:
        seconds = best(fn, args.repeat)
        print(f"{name:<34}{seconds * 1e3:>10.2f}{n / seconds:>14,.0f}")


if __name__ == "__main__":
    main()
