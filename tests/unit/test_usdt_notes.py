"""The ``.note.stapsdt`` layout declared with construct: built and parsed from one declaration,
checked against a section packed by hand from the ELF note format, for both byte orders and
classes; malformed sections are AttachErrors; construct is imported only when notes are read."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from ebpf.attach.usdt import StapsdtNote, build_notes, parse_notes
from ebpf.errors import AttachError

ENTRIES = [
    StapsdtNote(0x1139, 0x2004, 0x4010, "ebpf_test", "tick", "-4@%eax 8@-40(%rbp) 4@$5"),
    StapsdtNote(0x11F0, 0x2004, 0, "p", "no_args", ""),
]


def by_hand(entries: list, order: str, word: str, foreign: bool = False) -> bytes:
    """The section as an assembler lays it out: header, name and desc padded to 4 bytes."""
    def note(ntype: int, name: bytes, desc: bytes) -> bytes:
        pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
        return struct.pack(order + "III", len(name), len(desc), ntype) + pad(name) + pad(desc)

    out = note(1, b"GNU\0", b"\1\2\3\4\5\6\7") if foreign else b""  # another note type: skipped
    for e in entries:
        desc = struct.pack(order + word * 3, e.pc, e.base, e.semaphore)
        desc += b"".join(s.encode() + b"\0" for s in (e.provider, e.name, e.args))
        out += note(3, b"stapsdt\0", desc)
    return out


@pytest.mark.parametrize("little,bits", [(True, 64), (False, 64), (True, 32), (False, 32)])
def test_build_matches_the_elf_layout_and_parses_back(little: bool, bits: int) -> None:
    order, word = ("<" if little else ">"), ("Q" if bits == 64 else "I")
    built = build_notes(ENTRIES, little, bits)
    assert built == by_hand(ENTRIES, order, word)
    assert parse_notes(built, little, bits) == ENTRIES
    assert parse_notes(by_hand(ENTRIES, order, word, foreign=True), little, bits) == ENTRIES


def test_empty_and_malformed_sections() -> None:
    assert parse_notes(b"") == []
    good = build_notes(ENTRIES)
    with pytest.raises(AttachError, match="malformed .note.stapsdt"):
        parse_notes(good[:-9])  # the last desc cut short
    with pytest.raises(AttachError, match="malformed .note.stapsdt"):
        parse_notes(struct.pack("<III", 8, 0xFFFF, 3) + b"stapsdt\0")  # descsz past the end


def test_construct_is_imported_only_when_notes_are_read() -> None:
    code = ("import sys\nimport ebpf.attach.usdt as u\nassert 'construct' not in sys.modules\n"
            "u.parse_notes(b'')\nassert 'construct' in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
