"""Where a DSL value gets its type other than an assignment statement: inline parameters
without annotation and the variable of a loop unrolled over constants. Same rule as a local:
a typed constant keeps its type, a literal makes an i64 (see ebpf.lang.values.local_type)."""

from __future__ import annotations

from typing import Any, List

from ebpf import lang as L
from ebpf.lang import i8, u8, u32, u64


@L.inline
def add100(p):
    p = p + 100          # converted back to p's type: wraps for a u8 argument
    return p


@L.inline
def below_zero(p):
    return p < 0


def _results(n: int) -> List[int]:
    coll = L.Collection("types_locals")
    out = coll.array_map("out", value=u64[n], max_entries=1)

    @coll.socket_filter
    def prog(ctx: Any) -> int:
        q = out.get(0)
        if q is None:
            return 0
        q[0] = u64(add100(u8(200)))       # u8 parameter: 300 wraps to 44
        q[1] = u64(add100(200))           # a literal: i64, 300
        q[2] = u64(below_zero(u32(0xFFFFFFFF)))   # unsigned: never below zero
        q[3] = u64(below_zero(i8(-1)))
        total = 0
        for k in (1, 0xFFFFFFFF):
            v = k                          # a literal each time: i64
            total += v + 1
        q[4] = u64(total)
        return 1

    with coll.load() as live:
        assert live.programs["prog"].test_run(bytes(64)).retval == 1
        return list(live.maps["out"][0])


def test_parameters_and_unrolled_loop_variables_take_the_argument_type() -> None:
    assert _results(5) == [44, 300, 0, 1, 2 + 0x100000000]
