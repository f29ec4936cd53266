"""Maps whose values are file descriptors: program arrays, perf event arrays, map-in-map.

User space writes an fd (of a program, perf event, cgroup or map) at an index; the kernel stores
a reference to the object, not the number. Reading back gives the object's *id* for programs and
maps (open it with ``Map.from_id``), and nothing for perf events and cgroups. Values are given
as ints or as anything with ``fd`` or ``__int__`` (our ``Program``, ``Map`` and ``FD`` objects).
"""

from __future__ import annotations

from typing import Any

from ebpf.errors import MapError, MapKeyError
from ebpf.maps.codec import INT_TYPES, Codec
from ebpf.maps.keyvalue import _MISSING, KeyValueMap
from ebpf.maps.live import Map, MapInfo, fd_of
from ebpf.uapi import MapType

__all__ = ["FdCodec", "FdArrayMap", "ProgArray", "PerfEventArray", "CgroupArray", "ArrayOfMaps", "HashOfMaps"]

_U32 = INT_TYPES["u32"]


class FdCodec(Codec):
    """A u32 fd on the way in (from an int or anything with ``fd``/``__int__``), an id on the way out."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(4, 4, "fd")

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        _U32.pack_into(buf, offset, fd_of(value))

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        return _U32.unpack_from(buf, offset)


_FD = FdCodec()


class _FdValues:
    """Write fds, read ids."""

    @classmethod
    def _value_codec(cls, value: Any, info: MapInfo) -> Codec:
        return _FD


class FdArrayMap(_FdValues, KeyValueMap):
    """An array of object references indexed by u32; ``del m[i]`` empties a slot."""

    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return _U32

    def __len__(self) -> int:
        """How many slots hold an object."""
        return len(self.items())

    def clear(self) -> None:
        """Empty every slot."""
        for i in range(self.max_entries):
            self.delete(i)

    def items_and_clear(self) -> Any:
        raise MapError(f"{self._label()} cannot be read and cleared atomically")

    pop_all = items_and_clear

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING or not self.delete(key):
            if default is _MISSING:
                raise MapKeyError(key)
            return default
        return value


class ProgArray(FdArrayMap):
    """BPF_MAP_TYPE_PROG_ARRAY: tail-call targets; ``m[i]`` reads back the program id."""

    map_types = (MapType.PROG_ARRAY,)


class _WriteOnly:
    _label: Any

    def _unreadable(self) -> MapError:
        return MapError(f"{self._label()} cannot be read from user space, only written")

    def __getitem__(self, key: Any) -> Any:
        raise self._unreadable()

    def get(self, key: Any, default: Any = None) -> Any:
        raise self._unreadable()

    def items(self) -> Any:
        raise self._unreadable()

    def values(self) -> Any:
        raise self._unreadable()

    def __contains__(self, key: Any) -> bool:
        raise self._unreadable()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        raise self._unreadable()


class PerfEventArray(_WriteOnly, FdArrayMap):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY (the map side: ``m[cpu] = perf_fd``, ``del m[cpu]``).

    The perf buffer reader that opens one ring per CPU and fills this map lives elsewhere.
    """

    map_types = (MapType.PERF_EVENT_ARRAY,)

    def __len__(self) -> int:
        return self.max_entries


class CgroupArray(_WriteOnly, FdArrayMap):
    """BPF_MAP_TYPE_CGROUP_ARRAY: cgroup directory fds for ``bpf_current_task_under_cgroup``."""

    map_types = (MapType.CGROUP_ARRAY,)

    def __len__(self) -> int:
        return self.max_entries


class _MapValues:
    def get_map(self, key: Any, *, key_type: Any = None, value_type: Any = None) -> Map:
        """Open the inner map stored at ``key`` (a new fd the caller owns)."""
        map_id = self[key]  # type: ignore[index]
        return Map.from_id(map_id, key=key_type, value=value_type)


class ArrayOfMaps(_MapValues, FdArrayMap):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS: ``m[i] = inner_map``; ``m[i]`` is the inner map's id."""

    map_types = (MapType.ARRAY_OF_MAPS,)


class HashOfMaps(_MapValues, _FdValues, KeyValueMap):
    """BPF_MAP_TYPE_HASH_OF_MAPS: ``m[key] = inner_map``; ``m[key]`` is the inner map's id."""

    map_types = (MapType.HASH_OF_MAPS,)
