"""``m.get(key, default)``: what the default may be, and the errors that say so."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from ebpf import lang as L
from ebpf.errors import CompileError
from ebpf.lang import Struct, u32, u64


class Stat(Struct):
    count: u64


class Other(Struct):
    count: u64


coll_maps = L.Collection("maps")
stats = coll_maps.hash_map("stats", key=u32, value=Stat, max_entries=4)
counts = coll_maps.hash_map("counts", key=u32, value=u64, max_entries=4)


def _compile(fn: Callable[..., Any]) -> None:
    coll = L.Collection("t")
    coll.maps.update(coll_maps.maps)
    coll.socket_filter(fn)
    coll.spec()


def test_struct_default_must_be_of_the_value_type() -> None:
    def wrong_struct(ctx):
        s = stats.get(1, Other())
        return s.count

    def number(ctx):
        s = stats.get(1, 0)
        return s.count

    with pytest.raises(CompileError, match=r"default of stats.get\(key, default\) must be a Stat \(e.g. Stat\(\)\) "
                                           r"or None, not Other"):
        _compile(wrong_struct)
    with pytest.raises(CompileError, match=r"must be a Stat .* not u32|must be a Stat .* not i32"):
        _compile(number)


def test_scalar_default_must_convert_and_the_result_is_a_value() -> None:
    def struct_default(ctx):
        return counts.get(1, Stat())

    def keyword(ctx):
        return counts.get(key=1, default=5)

    with pytest.raises(CompileError, match="a Stat is not a scalar value"):
        _compile(struct_default)
    _compile(keyword)
