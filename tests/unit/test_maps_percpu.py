"""Per-CPU values: the possible-CPU list and the slot layout of per-CPU syscall buffers."""

from __future__ import annotations

import struct

import pytest

from ebpf.errors import CodecError
from ebpf.maps.codec import INT_TYPES, StructCodec, codec_for
from ebpf.maps.cpus import num_possible_cpus, parse_cpu_list, possible_cpus
from ebpf.maps.percpu import PerCpuCodec, slot_size


@pytest.mark.parametrize(
    "text, cpus",
    [("0", [0]), ("0-3", [0, 1, 2, 3]), ("0-1,4,6-7\n", [0, 1, 4, 6, 7]), ("2,0", [2, 0])],
)
def test_parse_cpu_list(text: str, cpus: list) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["", "a", "3-1", "0-", "-1"])
def test_parse_cpu_list_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cpu_list(text)


def test_possible_cpus_of_this_machine() -> None:
    assert num_possible_cpus() == len(possible_cpus()) >= 1


def test_slot_size_rounds_to_8() -> None:
    assert [slot_size(n) for n in (1, 4, 8, 9, 12, 16)] == [8, 8, 8, 16, 16, 16]


def test_percpu_int_layout() -> None:
    c = PerCpuCodec(INT_TYPES["u32"], ncpus=3)
    assert c.size == 24
    raw = c.encode([1, 2, 3])
    assert raw == struct.pack("=I4xI4xI4x", 1, 2, 3)
    assert c.decode(raw) == [1, 2, 3]
    assert c.decode(c.encode(7)) == [7, 7, 7]  # one value: every CPU
    with pytest.raises(CodecError, match="expected 3 per-CPU values"):
        c.encode([1, 2])
    with pytest.raises(CodecError, match="u32"):
        c.encode([1, 2, -1])


def test_percpu_struct_layout() -> None:
    elem = StructCodec([("a", "u32"), ("b", "u8[5]")])  # 12 bytes -> 16-byte slots
    c = PerCpuCodec(elem, ncpus=2)
    assert c.slot == 16 and c.size == 32
    v = c.decode(c.encode([(1, [1, 2, 3, 4, 5]), (2, [0] * 5)]))
    assert v[0].a == 1 and v[0].b == [1, 2, 3, 4, 5] and v[1].a == 2
    arr = PerCpuCodec(codec_for("u64[2]"), ncpus=2)
    assert arr.decode(arr.encode((5, 6))) == [[5, 6], [5, 6]]  # a tuple is one value for all CPUs
