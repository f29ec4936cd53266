"""``m.get(key, default)`` as in Python: the value (a copy) or the default, typed as the map's value."""

from __future__ import annotations

from ebpf import lang as L
from ebpf.lang import Struct, char, i16, u8, u32, u64


class Stat(Struct):
    count: u64
    name: char[8]


def test_get_with_a_default_reads_scalars_and_struct_copies() -> None:
    coll = L.Collection("getdef")
    small = coll.hash_map("small", key=u32, value=u8, max_entries=8)
    signed = coll.hash_map("signed", key=u32, value=i16, max_entries=8)
    stats = coll.hash_map("stats", key=u32, value=Stat, max_entries=8)
    counts = coll.hash_map("counts", key=u32, value=u64, max_entries=8)
    out = coll.array_map("out", value=u64, max_entries=16)

    @coll.socket_filter
    def prog(ctx):
        out[0] = small.get(1, 7)            # present: 200
        out[1] = small.get(2, 7)            # missing: the default
        out[2] = small.get(2, 300)          # the default converted to the value type (u8): 44
        out[3] = small.get(1, 0) + 100      # u8 arithmetic promotes: 300, no wrap
        out[4] = signed.get(1, 0) < 0       # i16 -5 stays signed
        out[5] = signed.get(2, -1) == -1
        n = ctx.len
        out[6] = counts.get(n, n + 1)       # a run-time default
        s = stats.get(1, Stat(count=9, name="dflt"))
        t = stats.get(2, Stat(count=9, name="dflt"))
        out[7] = s.count
        out[8] = t.count
        out[9] = t.name == "dflt"
        out[10] = s.name == "real"
        s.count = 1000                      # a copy: the map keeps 5
        p = stats.get(1, None)              # None as the default: the optional pointer, as get(k)
        if p is not None:
            out[11] = p.count
        counts[3] += 1                      # += keeps inserting and adding
        counts[3] += 1
        out[12] = counts.get(3, 0)
        return 0

    with coll.load() as live:
        live.maps["small"][1] = 200
        live.maps["signed"][1] = -5
        live.maps["stats"][1] = Stat(count=5, name=b"real")
        live.programs["prog"].test_run(bytes(64))
        got = [live.maps["out"][i] for i in range(13)]
        assert live.maps["stats"][1].count == 5
    assert got == [200, 7, 44, 300, 1, 1, 64 - 14 + 1, 5, 9, 1, 1, 5, 2]
