"""Seeded, time-bounded fuzzing of the text assembler and the disassembler.

Whatever the input, the assembler either assembles it or raises :class:`AssemblerError` (the
CLI's one line), never another exception, and fast: no input line may take super-linear time
(a 20 kB ``.insn`` line once took 9.5 s; a 5,000-digit integer raised ValueError). The
disassembler prints whatever decodes, and its listing assembles back to the same
instructions. Fixed seeds: the same cases run every time, in a few seconds.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import List

from ebpf.asm import assemble, decode, disassemble, encode
from ebpf.errors import AssemblerError, EncodingError

DATA = Path(__file__).parent / "data" / "asm"
GOLDEN = [ln.split("\t")[0] for ln in (DATA / "golden_llvm19.txt").read_text().splitlines()
          if ln and not ln.startswith("#")]
EXTRA = [
    "call bpf_ktime_get_ns", "call pc+3", "call kfunc[1234, idx:2]", "call kfunc[bpf_task_acquire]",
    "r1 = map[counts] ll", "r1 = map[fd:5] ll", "r2 = map_value[idx:3] + 8 ll", "r1 = btf_id[12, fd:7] ll",
    "r1 = func[pc+3] ll", "r1 = func[1f] ll", "r0 = *(u32 *)skb[r1 + 4]", ".insn code=0x07 dst=0 src=1 off=5 imm=5",
    ".map counts type=hash key=4 value=8 max_entries=1024 flags=no_prealloc|0x10", ".8byte 0x95, 0x118",
    ".quad 0x500000000", ".rept 3", ".endr", "1:", "1: goto 1b", "if r0 == 0 goto 1f", "a: b: exit",
    "r1 = 5ULL", "r1 = 017 ll", "r0 = 0b101", "ld_pseudo r1, 2, 3", "# comment", "r0 = 0 // comment",
    ".text", ".globl f", "goto end", "end:",
]
CORPUS = GOLDEN + EXTRA
ALPHABET = "r0123456789wx+-*/=()[]<>&|^%s:;#., \tabcdefklpu_$\\'\"\x00é☃\ud800"
HUGE = ["9" * 5000, "0x" + "f" * 5000, "0" * 5000 + "1", "0b" + "1" * 5000]
SLOW_LINE = 1.0  # seconds: generous for a loaded CI machine, far below quadratic on 20 kB


def mutate(rng: random.Random, line: str) -> str:
    choice = rng.randrange(7)
    if choice == 0 and line:  # repeat a chunk into a long line
        i = rng.randrange(len(line))
        chunk = line[i:i + rng.randint(1, 4)]
        return line[:i] + chunk * rng.randint(1000, 5000) + line[i:]
    if choice == 1:  # a huge literal where a number or anything was
        i = rng.randrange(len(line) + 1)
        return line[:i] + rng.choice(HUGE) + line[i:]
    if choice == 2 and line:  # drop a span
        i = rng.randrange(len(line))
        return line[:i] + line[i + rng.randint(1, 6):]
    if choice == 3:  # insert characters
        i = rng.randrange(len(line) + 1)
        return line[:i] + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 5))) + line[i:]
    if choice == 4:  # splice two lines
        other = rng.choice(CORPUS)
        return line[: rng.randrange(len(line) + 1)] + other[rng.randrange(len(other) + 1):]
    if choice == 5:  # spaces everywhere
        return (" " * rng.randint(1, 3000)).join(line.split(" "))
    return line


def program(rng: random.Random) -> str:
    lines: List[str] = []
    for _ in range(rng.randint(1, 8)):
        line = rng.choice(CORPUS)
        for _ in range(rng.randint(0, 3)):
            line = mutate(rng, line)[:40000]
        lines.append(line)
    return "\n".join(lines)


def test_assembler_raises_only_assembler_errors_and_stays_linear() -> None:
    rng = random.Random(20261203)
    slowest = (0.0, "")
    for _ in range(800):
        text = program(rng)
        start = time.perf_counter()
        try:
            assemble(text)
        except AssemblerError as e:
            assert len(str(e)) < 400, str(e)[:500]
        took = time.perf_counter() - start
        slowest = max(slowest, (took, text))
    assert slowest[0] < SLOW_LINE, (slowest[0], slowest[1][:200])


def test_long_lines_of_every_kind_are_linear() -> None:
    """Every corpus line padded or repeated to 20 kB: the worst cases of each regular expression."""
    for line in GOLDEN[::4] + EXTRA:
        word = line.split(" ")[0]
        for text in (line + " " * 20000 + "x", line.replace(" ", " " * 5000), line + "a" * 20000,
                     line[:-1] + " " * 20000 + line[-1:] if line else "x", line + ("(" * 10000),
                     word + " " + "a" * 20000, word + " " + "a=" * 10000, word + " " + "a =" * 7000):
            start = time.perf_counter()
            try:
                assemble(text)
            except AssemblerError:
                pass
            took = time.perf_counter() - start
            assert took < SLOW_LINE, (took, line, text[:80])


def test_disassembler_prints_whatever_decodes_and_reads_back() -> None:
    rng = random.Random(8)
    golden = encode(assemble("\n".join(GOLDEN)).instructions)
    for _ in range(1500):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(8 * rng.randint(1, 12) + rng.choice([0, 0, 0, 3])))
        else:
            start = 8 * rng.randrange(len(golden) // 8 - 12)
            chunk = bytearray(golden[start:start + 8 * rng.randint(1, 12)])
            for _ in range(rng.randint(1, 4)):
                chunk[rng.randrange(len(chunk))] ^= 1 << rng.randrange(8)
            data = bytes(chunk)
        try:
            insns = decode(data)
        except EncodingError:
            continue
        listing = disassemble(insns, annotate=True)
        assert assemble(listing).instructions == insns, listing
        assert encode(assemble(disassemble(data)).instructions) == data
