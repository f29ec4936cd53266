"""Hash maps (BPF_MAP_TYPE_HASH and LRU_HASH): the dict API with nothing added.

An LRU hash never fails an insert for lack of room: the kernel evicts the least recently used
element instead, so ``len()`` stays at or below ``max_entries``.
"""

from __future__ import annotations

from ebpf.maps.keyvalue import KeyValueMap
from ebpf.uapi import MapType

__all__ = ["HashMap", "LruHashMap"]


class HashMap(KeyValueMap):
    """BPF_MAP_TYPE_HASH."""

    map_types = (MapType.HASH,)


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: inserts evict the least recently used element when full."""

    map_types = (MapType.LRU_HASH,)
