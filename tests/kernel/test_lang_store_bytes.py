"""A string literal stored into a ``char[N]`` at any stack offset: the stores are aligned."""

from __future__ import annotations

from ebpf import lang as L
from ebpf.lang import Struct, char, u8, u16


class Odd(Struct):
    tag: u8
    name: char[11]   # at offset 1: no 4-byte store is aligned there
    kind: u16
    more: char[5]    # at offset 14


def test_literals_land_in_char_fields_at_odd_offsets() -> None:
    coll = L.Collection("oddstore")
    out = coll.array_map("out", value=Odd, max_entries=1)

    @coll.socket_filter
    def prog(ctx):
        s = Odd()
        s.tag = 7
        s.name = "abcdefghij"
        s.kind = 0x1234
        s.more = "xyz"
        out[0] = s
        return 0

    with coll.load() as live:
        live.programs["prog"].test_run(bytes(64))
        got = live.maps["out"][0]
    assert (got.tag, got.name, got.kind, got.more) == (7, b"abcdefghij", 0x1234, b"xyz")
