"""The BTF writer: blobs our own reader parses back, line/func info records."""

from __future__ import annotations

import struct

from ebpf.asm import assemble
from ebpf.btf.builder import BTFBuilder
from ebpf.btf.ext import LINE_INFO, program_btf, subprogram_starts


def test_header_and_dedup() -> None:
    b = BTFBuilder()
    i1 = b.int("int", 4, signed=True)
    assert b.int("int", 4, signed=True) == i1
    p = b.pointer(i1)
    arr = b.array(i1, 16)
    s = b.struct("pair", 24, [("a", i1, 0, 0), ("flags", i1, 32, 3), ("p", p, 64, 0), ("arr", arr, 128, 0)])
    e = b.enum("color", 4, [("RED", 0), ("BLUE", -1)])
    e64 = b.enum("big", 8, [("HUGE", 1 << 40)])
    blob = b.encode()
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", blob)
    assert (magic, version, hdr_len, type_off) == (0xEB9F, 1, 24, 0)
    assert len(blob) == 24 + type_len + str_len and str_off == type_len
    assert blob[24 + str_off] == 0  # string section starts with the empty string
    assert len({i1, p, arr, s, e, e64}) == 6


def test_blob_reads_back_with_our_reader() -> None:
    from ebpf.btf import from_bytes

    b = BTFBuilder()
    u32 = b.int("unsigned int", 4)
    s = b.struct("event", 8, [("pid", u32, 0, 0), ("bits", u32, 32, 5), ("more", u32, 37, 27)])
    blob = b.encode()
    btf = from_bytes(blob)
    t = btf.type_by_id(s)
    assert t.name == "event" and btf.size_of(s) == 8
    names = [m.name for m in t.members]
    assert names == ["pid", "bits", "more"]
    assert [(m.bit_offset, m.bitfield_size) for m in t.members] == [(0, 0), (32, 5), (37, 27)]


def test_line_info_follows_source_changes_and_functions() -> None:
    asm = assemble("r1 = 1\nr2 = 2\ncall f\nr0 = 0\nexit\nf:\nr0 = 1\nexit\n", filename="x.s")
    from ebpf.asm import link

    insns = link(asm.instructions)
    assert subprogram_starts(insns) == {5: "f"}
    pbtf = program_btf(insns, "prog")
    offs = [LINE_INFO.unpack_from(pbtf.line_info, i)[0] for i in range(0, len(pbtf.line_info), LINE_INFO.size)]
    assert offs == list(range(7))
    assert [struct.unpack_from("<II", pbtf.func_info, i)[0] for i in (0, 8)] == [0, 5]
