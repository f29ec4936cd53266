"""Which live class stands for which map type.

Kept apart from :mod:`ebpf.maps.live` so that the base class does not import every kind; the
table is built on first use.
"""

from __future__ import annotations

from typing import Dict, Type, Union

from ebpf.maps.live import Map
from ebpf.uapi import MapType

__all__ = ["map_class"]

_classes: Dict[int, Type[Map]] = {}


def _build() -> None:
    from ebpf.maps.array import ArrayMap
    from ebpf.maps.fdarray import ArrayOfMaps, CgroupArray, HashOfMaps, PerfEventArray, ProgArray
    from ebpf.maps.hashmap import HashMap, LruHashMap
    from ebpf.maps.lpm import LpmTrieMap
    from ebpf.maps.percpu import LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
    from ebpf.maps.queue import BloomFilterMap, QueueMap, StackMap
    from ebpf.maps.ringbuf import RingBufMap
    from ebpf.maps.stacktrace import StackTraceMap

    for cls in (HashMap, LruHashMap, ArrayMap, PerCpuHashMap, LruPerCpuHashMap, PerCpuArrayMap,
                LpmTrieMap, StackTraceMap, QueueMap, StackMap, BloomFilterMap, RingBufMap,
                ProgArray, PerfEventArray, CgroupArray, ArrayOfMaps, HashOfMaps):
        for t in cls.map_types:
            _classes[int(t)] = cls


def map_class(map_type: Union[MapType, int]) -> Type[Map]:
    """The live class for ``map_type``; :class:`Map` itself for kinds without special access."""
    if not _classes:
        _build()
    return _classes.get(int(map_type), Map)
