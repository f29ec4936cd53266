"""Which live class stands for which map type.

Kept apart from :mod:`ebpf.maps.live` so that the base class does not import every kind; each
kind's module is imported when a map of that kind is first made.
"""

from __future__ import annotations

from typing import Dict, Type, Union

from ebpf.maps.live import Map
from ebpf.uapi import MapType

__all__ = ["map_class"]

_classes: Dict[int, Type[Map]] = {}
_built = False

# Where each kind's class lives, so that a tool imports only the kinds it creates (every kind's
# module costs import time). The class's own ``map_types`` is checked when it is imported; a
# kind missing here, or listed wrongly, falls back to importing them all (``_build``).
_WHERE = {
    MapType.HASH: ("ebpf.maps.hashmap", "HashMap"),
    MapType.LRU_HASH: ("ebpf.maps.hashmap", "LruHashMap"),
    MapType.ARRAY: ("ebpf.maps.array", "ArrayMap"),
    MapType.PERCPU_HASH: ("ebpf.maps.percpu", "PerCpuHashMap"),
    MapType.LRU_PERCPU_HASH: ("ebpf.maps.percpu", "LruPerCpuHashMap"),
    MapType.PERCPU_ARRAY: ("ebpf.maps.percpu", "PerCpuArrayMap"),
    MapType.LPM_TRIE: ("ebpf.maps.lpm", "LpmTrieMap"),
    MapType.STACK_TRACE: ("ebpf.maps.stacktrace", "StackTraceMap"),
    MapType.QUEUE: ("ebpf.maps.queue", "QueueMap"),
    MapType.STACK: ("ebpf.maps.queue", "StackMap"),
    MapType.BLOOM_FILTER: ("ebpf.maps.queue", "BloomFilterMap"),
    MapType.RINGBUF: ("ebpf.maps.ringbuf", "RingBufMap"),
    MapType.PROG_ARRAY: ("ebpf.maps.fdarray", "ProgArray"),
    MapType.PERF_EVENT_ARRAY: ("ebpf.maps.fdarray", "PerfEventArray"),
    MapType.CGROUP_ARRAY: ("ebpf.maps.fdarray", "CgroupArray"),
    MapType.ARRAY_OF_MAPS: ("ebpf.maps.fdarray", "ArrayOfMaps"),
    MapType.HASH_OF_MAPS: ("ebpf.maps.fdarray", "HashOfMaps"),
}


def _build() -> None:
    global _built
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
    _built = True


def _import_one(key: int) -> None:
    """Import the class of kind ``key`` alone when the table knows where it is."""
    import importlib

    try:
        where = _WHERE.get(MapType(key))
    except ValueError:
        where = None
    if where is None:
        return
    cls = getattr(importlib.import_module(where[0]), where[1], None)
    if cls is not None and key in (int(t) for t in cls.map_types):
        _classes[key] = cls


def map_class(map_type: Union[MapType, int]) -> Type[Map]:
    """The live class for ``map_type``; :class:`Map` itself for kinds without special access."""
    key = int(map_type)
    found = _classes.get(key)
    if found is None and not _built:
        _import_one(key)
        found = _classes.get(key)
        if found is None:
            _build()
            found = _classes.get(key)
    return found or Map
