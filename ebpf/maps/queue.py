"""Keyless maps: queue (FIFO), stack (LIFO) and bloom filter.

They have no keys (key size 0), so the dict API does not apply: queues and stacks ``push``,
``pop`` and ``peek``; a bloom filter ``add``s values and answers ``in`` (maybe / certainly not).
"""

from __future__ import annotations

from typing import Any, List

from ebpf.errors import MapKeyError
from ebpf.maps.codec import Codec, VoidCodec
from ebpf.maps.keyvalue import _MISSING
from ebpf.maps.live import Map, MapInfo
from ebpf.uapi import MapType, UpdateFlag

__all__ = ["QueueMap", "StackMap", "BloomFilterMap"]


class _Keyless(Map):
    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return VoidCodec()


class QueueMap(_Keyless):
    """BPF_MAP_TYPE_QUEUE: ``push`` at the tail, ``pop``/``peek`` at the head."""

    map_types = (MapType.QUEUE,)

    def push(self, value: Any, overwrite: bool = False) -> None:
        """Append ``value``; when full, fail (MapError) or, with ``overwrite``, drop the oldest."""
        ops = self._ops
        with ops.lock:
            self._vpack(ops.vbuf, 0, value)
            ops.update(UpdateFlag.EXIST if overwrite else UpdateFlag.ANY)

    def pop(self, default: Any = _MISSING) -> Any:
        """Remove and return the next value (MapKeyError, or ``default``, when empty)."""
        ops = self._ops
        with ops.lock:
            if ops.lookup_and_delete():
                return self._vunpack(ops.vbuf, 0)
        if default is _MISSING:
            raise MapKeyError(f"{self._label()} is empty")
        return default

    def peek(self, default: Any = _MISSING) -> Any:
        """The next value without removing it."""
        ops = self._ops
        with ops.lock:
            if ops.lookup():
                return self._vunpack(ops.vbuf, 0)
        if default is _MISSING:
            raise MapKeyError(f"{self._label()} is empty")
        return default

    def drain(self) -> List[Any]:
        """Pop until empty."""
        out: List[Any] = []
        ops = self._ops
        while True:
            with ops.lock:
                if not ops.lookup_and_delete():
                    return out
                out.append(self._vunpack(ops.vbuf, 0))


class StackMap(QueueMap):
    """BPF_MAP_TYPE_STACK: like a queue but ``pop`` returns the most recent push."""

    map_types = (MapType.STACK,)


class BloomFilterMap(_Keyless):
    """BPF_MAP_TYPE_BLOOM_FILTER: ``add(v)``; ``v in m`` is False only if v was never added."""

    map_types = (MapType.BLOOM_FILTER,)

    def add(self, value: Any) -> None:
        ops = self._ops
        with ops.lock:
            self._vpack(ops.vbuf, 0, value)
            ops.update(UpdateFlag.ANY)

    push = add

    def __contains__(self, value: Any) -> bool:
        ops = self._ops
        with ops.lock:
            self._vpack(ops.vbuf, 0, value)
            return ops.lookup()
