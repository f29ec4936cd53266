"""Array maps (BPF_MAP_TYPE_ARRAY): ``max_entries`` preallocated values indexed by u32.

Every index always exists, so the dict API changes meaning slightly, following BCC: ``len()`` is
``max_entries``, ``del a[i]`` and ``clear()`` write zeros, and ``items_and_clear()`` reads then
zeroes (arrays have no atomic read-and-delete; an increment between the two is lost).
"""

from __future__ import annotations

from typing import Any, List, Tuple

from ebpf.errors import MapKeyError
from ebpf.maps.codec import INT_TYPES, Codec, IntCodec, codec_for
from ebpf.maps.keyvalue import _MISSING, KeyValueMap
from ebpf.maps.live import MapInfo
from ebpf.uapi import MapType

__all__ = ["ArrayMap"]


class ArrayMap(KeyValueMap):
    """BPF_MAP_TYPE_ARRAY; keys are indexes (u32 unless told otherwise)."""

    map_types = (MapType.ARRAY,)

    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return INT_TYPES["u32"] if key is None else codec_for(key, info.key_size)

    def __len__(self) -> int:
        return self.max_entries

    def keys(self) -> List[Any]:
        if isinstance(self._kc, IntCodec):
            return list(range(self.max_entries))
        return super().keys()

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise MapKeyError(key)

    def delete(self, key: Any) -> bool:
        """Zero the element (array elements cannot be removed); False if out of range."""
        if key not in self:
            return False
        self[key] = self._zero_element()
        return True

    def _zero_element(self) -> Any:
        return self.value_codec.zero()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise MapKeyError(key)
            return default
        self[key] = self._zero_element()
        return value

    def clear(self) -> None:
        """Zero every element (one batch update where the kernel supports it)."""
        zero = self._zero_element()
        self.update([(i, zero) for i in range(self.max_entries)])

    def items_and_clear(self) -> List[Tuple[Any, Any]]:
        pairs = self.items()
        self.clear()
        return pairs

    pop_all = items_and_clear
