"""Multi-line llvm-mc syntax against llvm-mc-19: numeric local labels, C integer suffixes and
bases, 32-bit truncation of wide immediates, ``.8byte``/``.quad`` words, ``.rept``/``.endr``,
shared labels and a label after the last instruction.

tests/unit/data/asm/syntax/NAME.s are the programs, NAME.hex the bytes llvm-mc-19 assembled
them to (regen_syntax.sh regenerates them; llvm is not needed to run these tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

from ebpf.asm import assemble, disassemble, encode, link

SYNTAX = Path(__file__).parent / "data" / "asm" / "syntax"
PROGRAMS = sorted(p.stem for p in SYNTAX.glob("*.s"))


def llvm_bytes(name: str) -> bytes:
    lines = (SYNTAX / f"{name}.hex").read_text().splitlines()
    return bytes.fromhex("".join(ln for ln in lines if ln and not ln.startswith("#")))


def test_every_program_has_llvm_bytes() -> None:
    assert len(PROGRAMS) >= 7
    for name in PROGRAMS:
        assert len(llvm_bytes(name)) % 8 == 0 and llvm_bytes(name)


@pytest.mark.parametrize("name", PROGRAMS)
def test_assembles_as_llvm_does(name: str) -> None:
    text = (SYNTAX / f"{name}.s").read_text()
    assert encode(assemble(text, filename=f"{name}.s").instructions) == llvm_bytes(name)


@pytest.mark.parametrize("name", PROGRAMS)
def test_assembled_instructions_link_again_to_the_same_bytes(name: str) -> None:
    """What ProgramSpec and the loader do with ``assemble(text).instructions``: link again."""
    insns = assemble((SYNTAX / f"{name}.s").read_text()).instructions
    assert encode(link(insns)) == llvm_bytes(name)
    assert encode(link(link(insns))) == llvm_bytes(name)


@pytest.mark.parametrize("name", PROGRAMS)
def test_listing_of_llvm_bytes_reassembles(name: str) -> None:
    data = llvm_bytes(name)
    assert encode(assemble(disassemble(data)).instructions) == data


def _unlinked_then_linked(text: str) -> List[bytes]:
    pieces = assemble(text, link=False).instructions
    return [encode(link(pieces))]


def test_unlinked_assembly_keeps_every_name_of_a_shared_label() -> None:
    text = (SYNTAX / "shared_labels.s").read_text()
    assert _unlinked_then_linked(text) == [llvm_bytes("shared_labels")]
