"""LPM trie maps (BPF_MAP_TYPE_LPM_TRIE): longest-prefix-match keys such as IP networks.

``m["10.0.0.0/8"] = v`` stores a prefix; ``m["10.1.2.3"]`` (a full-length key) returns the value
of the longest stored prefix that matches, which is the point of the kind. The key format and
its codec are in :mod:`ebpf.maps.lpmkey`.
"""

from __future__ import annotations

from typing import Any

from ebpf.maps.codec import Codec
from ebpf.maps.keyvalue import KeyValueMap
from ebpf.maps.live import MapInfo
from ebpf.maps.lpmkey import LpmKey, LpmKeyCodec, lpm_key, lpm_key_codec
from ebpf.uapi import MapType

__all__ = ["LpmTrieMap", "LpmKey", "LpmKeyCodec", "lpm_key"]


class LpmTrieMap(KeyValueMap):
    """BPF_MAP_TYPE_LPM_TRIE: ``m["10.0.0.0/8"] = v``; ``m["10.1.2.3"]`` finds the longest match."""

    map_types = (MapType.LPM_TRIE,)

    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return lpm_key_codec(key, info.key_size)
