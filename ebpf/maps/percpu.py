"""Per-CPU maps: one value per possible CPU for each key.

The syscall side sees a value as ``ncpus`` slots, each rounded up to 8 bytes; :class:`PerCpuCodec`
turns that into a list (index = position in the possible-CPU list, see :mod:`ebpf.maps.cpus`)
and accepts either a list or one value written to every CPU. The per-CPU kinds are the plain
kinds with that codec, plus BCC's ``sum``/``max``/``average`` over the CPUs of one key.
"""

from __future__ import annotations

import struct
from typing import Any, Optional

from ebpf.errors import CodecError, MapError, MapKeyError
from ebpf.maps.array import ArrayMap
from ebpf.maps.codec import Codec, IntCodec
from ebpf.maps.cpus import num_possible_cpus
from ebpf.maps.hashmap import HashMap, LruHashMap
from ebpf.maps.keyvalue import _MISSING
from ebpf.uapi import MapType

__all__ = ["PerCpuCodec", "PerCpuHashMap", "PerCpuArrayMap", "LruPerCpuHashMap", "slot_size"]


def slot_size(value_size: int) -> int:
    """Bytes one CPU's value occupies in a per-CPU syscall buffer."""
    return (value_size + 7) & ~7


class PerCpuCodec(Codec):
    """``ncpus`` values of ``elem``, each in an 8-byte aligned slot; a list in, a list out.

    A ``list`` is taken as the per-CPU values; anything else is one value for every CPU (so an
    array-typed value meant for all CPUs must be given as a tuple).
    """

    __slots__ = ("elem", "ncpus", "slot", "_s")

    def __init__(self, elem: Codec, ncpus: Optional[int] = None):
        n = num_possible_cpus() if ncpus is None else ncpus
        slot = slot_size(elem.size)
        super().__init__(slot * n, 8, f"percpu({elem.name})")
        self.elem = elem
        self.ncpus = n
        self.slot = slot
        self._s: Optional[struct.Struct] = None
        if isinstance(elem, IntCodec):
            pad = f"{slot - elem.size}x" if slot > elem.size else ""
            self._s = struct.Struct("=" + (elem.fmt + pad) * n)

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        elem, slot = self.elem, self.slot
        if isinstance(value, list):
            if len(value) != self.ncpus:
                raise CodecError(f"{self.name}: expected {self.ncpus} per-CPU values, got {len(value)}")
            if self._s is not None:
                try:
                    self._s.pack_into(buf, offset, *value)
                    return
                except struct.error:
                    pass  # the element codec names the bad one below
            for i, item in enumerate(value):
                elem.pack_into(buf, offset + i * slot, item)
        else:
            for i in range(self.ncpus):
                elem.pack_into(buf, offset + i * slot, value)

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        if self._s is not None:
            return list(self._s.unpack_from(buf, offset))
        elem, slot = self.elem, self.slot
        return [elem.unpack_from(buf, offset + i * slot) for i in range(self.ncpus)]

    def zero(self) -> Any:
        return [self.elem.zero()] * self.ncpus


class PerCpuMixin:
    """Value = list over possible CPUs; ``sum``/``max``/``average`` for numeric values."""

    value_codec: Codec

    def _element_codec(self) -> Codec:
        return PerCpuCodec(self.value_codec)

    @property
    def ncpus(self) -> int:
        return num_possible_cpus()

    def _per_cpu(self, key: Any) -> Any:
        values = self.get(key, _MISSING)  # type: ignore[attr-defined]
        if values is _MISSING:
            raise MapKeyError(key)
        if values and not isinstance(values[0], (int, float)):
            raise MapError(f"sum/max/average need numeric values, not {self.value_codec.name}")
        return values

    def sum(self, key: Any) -> Any:
        """The value of ``key`` added over all CPUs (a per-CPU counter's total)."""
        return sum(self._per_cpu(key))

    def max(self, key: Any) -> Any:
        """The largest per-CPU value of ``key``."""
        return max(self._per_cpu(key))

    def average(self, key: Any) -> float:
        """``sum(key)`` divided by the number of possible CPUs (as BCC does)."""
        values = self._per_cpu(key)
        return sum(values) / len(values)

    def _zero_element(self) -> Any:
        return [self.value_codec.zero()] * num_possible_cpus()


class PerCpuHashMap(PerCpuMixin, HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH."""

    map_types = (MapType.PERCPU_HASH,)


class LruPerCpuHashMap(PerCpuMixin, LruHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH."""

    map_types = (MapType.LRU_PERCPU_HASH,)


class PerCpuArrayMap(PerCpuMixin, ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY."""

    map_types = (MapType.PERCPU_ARRAY,)
