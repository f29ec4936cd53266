"""MapSpec: type names, derived sizes and the validation rules, without the kernel."""

from __future__ import annotations

import mmap

import pytest

from ebpf.errors import MapError
from ebpf.maps.codec import INT_TYPES, VoidCodec
from ebpf.maps.cpus import num_possible_cpus
from ebpf.maps.lpmkey import LpmKeyCodec
from ebpf.maps.spec import MapSpec, map_type_of
from ebpf.uapi import MapFlag, MapType

PAGE = mmap.PAGESIZE


def test_map_type_names() -> None:
    assert map_type_of("hash") is MapType.HASH
    assert map_type_of("BPF_MAP_TYPE_PERCPU_ARRAY") is MapType.PERCPU_ARRAY
    assert map_type_of("lru-percpu-hash") is MapType.LRU_PERCPU_HASH
    assert map_type_of("ring_buffer") is MapType.RINGBUF
    assert map_type_of(27) is MapType.RINGBUF
    with pytest.raises(MapError, match="unknown map type 'hashh'"):
        map_type_of("hashh")
    with pytest.raises(MapError):
        map_type_of(10_000)


def test_sizes_derive_from_codecs() -> None:
    spec = MapSpec("start", "hash", key="u32", value=[("ts", "u64"), ("comm", "char[16]")], max_entries=10)
    assert (spec.key_size, spec.value_size) == (4, 24)
    assert MapSpec("raw", "hash", key=6, value=10, max_entries=1).validate()[4:6] == (6, 10)


def test_defaults_per_kind() -> None:
    arr = MapSpec("a", "array", value="u64", max_entries=4).validate()
    assert arr.key_codec is INT_TYPES["u32"]
    q = MapSpec("q", "queue", value="u32", max_entries=4).validate()
    assert isinstance(q.key_codec, VoidCodec) and q.key_size == 0
    st = MapSpec("s", "stack_trace", max_entries=4).validate()
    assert st.value_size == 127 * 8
    pa = MapSpec("p", "prog_array", max_entries=4).validate()
    assert (pa.key_size, pa.value_size) == (4, 4)
    perf = MapSpec("e", "perf_event_array").validate()
    assert perf.max_entries == num_possible_cpus()
    rb = MapSpec("rb", "ringbuf", max_entries=4 * PAGE).validate()
    assert (rb.key_size, rb.value_size) == (0, 0)
    rb_typed = MapSpec("rb", "ringbuf", value="u64", max_entries=PAGE).validate()
    assert rb_typed.value_size == 0 and rb_typed.value_codec is INT_TYPES["u64"]


def test_lpm_trie() -> None:
    r = MapSpec("routes", "lpm_trie", key="ipv6", value="u32", max_entries=8).validate()
    assert isinstance(r.key_codec, LpmKeyCodec) and r.key_size == 20
    assert r.flags & MapFlag.NO_PREALLOC
    assert MapSpec("x", "lpm_trie", key=8, value="u8", max_entries=1).key_size == 8
    with pytest.raises(MapError, match="LPM trie needs key"):
        MapSpec("x", "lpm_trie", value="u8", max_entries=1).validate()


@pytest.mark.parametrize(
    "spec, message",
    [
        (MapSpec("rb", "ringbuf", max_entries=PAGE * 3), "power of two"),
        (MapSpec("rb", "ringbuf", max_entries=PAGE // 2), "multiple of the page size"),
        (MapSpec("rb", "ringbuf", max_entries=0), "power of two"),
        (MapSpec("a", "array", key="u64", value="u8", max_entries=1), "4-byte indexes"),
        (MapSpec("q", "queue", key="u32", value="u8", max_entries=1), "has no key"),
        (MapSpec("h", "hash", value="u8", max_entries=1), "needs a key type"),
        (MapSpec("h", "hash", key="u8", max_entries=1), "needs a value type"),
        (MapSpec("h", "hash", key="u8", value="u8"), "max_entries must be positive"),
        (MapSpec("h", "hash", key="u8", value="u8", max_entries=-1), "max_entries must be positive"),
        (MapSpec("h", "hash", key="u9", value="u8", max_entries=1), "unknown type name"),
        (MapSpec("bad name", "hash", key="u8", value="u8", max_entries=1), "characters the kernel refuses"),
        (MapSpec("p", "prog_array", value="u64", max_entries=1), "4-byte fds"),
        (MapSpec("s", "stack_trace", value="u32[3]", max_entries=1), "arrays of u64"),
        (MapSpec("m", "array_of_maps", max_entries=1), "needs an inner map"),
        (MapSpec("m", "hash", key="u8", value="u8", max_entries=1,
                 inner=MapSpec("i", "array", value="u8", max_entries=1)), "only array_of_maps"),
        (MapSpec("c", "percpu_array", value=40000, max_entries=1), "per-CPU values are at most"),
        (MapSpec("b", "bloom_filter", value="u32", max_entries=1, map_extra=16), "hash functions"),
        (MapSpec("t", "task_storage", key="u32", value="u8", max_entries=3), "must be 0"),
    ],
)
def test_validation_errors(spec: MapSpec, message: str) -> None:
    with pytest.raises(MapError, match=message):
        spec.validate()


def test_ringbuf_error_suggests_a_size() -> None:
    with pytest.raises(MapError, match=f"e.g. {4 * PAGE}"):
        MapSpec("rb", "ringbuf", max_entries=3 * PAGE).validate()


def test_name_truncated_to_kernel_limit() -> None:
    r = MapSpec("a_very_long_map_name_indeed", "hash", key="u8", value="u8", max_entries=1).validate()
    assert r.name == "a_very_long_map"


def test_replace_eq_repr() -> None:
    a = MapSpec("x", "hash", key="u32", value="u64", max_entries=8)
    b = a.replace(max_entries=16)
    assert b.max_entries == 16 and a.max_entries == 8 and b.name == "x"
    assert a == a.replace() and a != b
    assert "max_entries=8" in repr(a) and "'hash'" in repr(a)
    with pytest.raises(MapError):
        a.replace(nope=1)
