"""Golden vectors from llvm-mc-19: our assembler and disassembler agree with LLVM byte for byte.

tests/unit/data/asm/golden_llvm19.txt holds, per instruction, the text llvm-mc-19's
disassembler prints and the bytes its assembler produced (regen_golden.sh regenerates it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import List, Tuple

import pytest

from ebpf.asm import assemble, decode, disassemble, encode, format_instruction
from ebpf.asm import opcodes as o

GOLDEN = Path(__file__).parent / "data" / "asm" / "golden_llvm19.txt"


def _load() -> List[Tuple[str, bytes]]:
    rows = []
    for line in GOLDEN.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        text, hexbytes = line.split("\t")
        rows.append((text, bytes.fromhex(hexbytes)))
    return rows


ROWS = _load()


def test_golden_file_covers_every_opcode_family() -> None:
    codes = {data[0] for _, data in ROWS}
    # every opcode byte we accept appears at least once
    missing = sorted(c for c in o.VALID_OPCODES if c not in codes)
    assert missing == []
    assert len(ROWS) > 200


@pytest.mark.parametrize("text,data", ROWS, ids=[t for t, _ in ROWS])
def test_assembler_matches_llvm(text: str, data: bytes) -> None:
    assert encode(assemble(text).instructions) == data


@pytest.mark.parametrize("text,data", ROWS, ids=[t for t, _ in ROWS])
def test_disassembler_matches_llvm(text: str, data: bytes) -> None:
    (insn,) = decode(data)
    assert format_instruction(insn) == text


def test_whole_golden_program_round_trips() -> None:
    data = b"".join(d for _, d in ROWS)
    listing = disassemble(data)
    assert listing.splitlines() == ["\t" + t for t, _ in ROWS]
    assert encode(assemble(listing).instructions) == data


@pytest.mark.skipif(shutil.which("llvm-mc-19") is None, reason="llvm-mc-19 not installed")
def test_llvm_accepts_our_listing() -> None:
    """The listing we print for the golden bytes is accepted by llvm-mc-19 and gives the same bytes."""
    data = b"".join(d for _, d in ROWS)
    listing = disassemble(data)
    out = subprocess.run(
        ["llvm-mc-19", "-triple=bpfel", "-mcpu=v4", "-show-encoding"],
        input=listing, capture_output=True, text=True, check=True,
    ).stdout
    encoded = bytearray()
    for line in out.splitlines():
        if "encoding: [" in line:
            body = line.split("encoding: [")[1].split("]")[0]
            encoded += bytes(int(x, 16) for x in body.split(","))
    assert bytes(encoded) == data
