"""Stack trace maps (BPF_MAP_TYPE_STACK_TRACE): ``bpf_get_stackid()`` stores stacks here.

A key is the u32 stack id a program got back; the value is an array of u64 instruction
addresses, innermost first, zero-filled after the last frame. Symbolizing the addresses is
:mod:`ebpf.symbols`' job; the build-id variant (BPF_F_STACK_BUILD_ID) is not decoded here.
"""

from __future__ import annotations

from typing import Any, Iterator, List

from ebpf.errors import MapKeyError
from ebpf.maps.codec import INT_TYPES, ArrayCodec, Codec, codec_for
from ebpf.maps.keyvalue import _MISSING, KeyValueMap
from ebpf.maps.live import MapInfo
from ebpf.uapi import MapType

__all__ = ["StackTraceMap", "PERF_MAX_STACK_DEPTH"]

PERF_MAX_STACK_DEPTH = 127


class StackTraceMap(KeyValueMap):
    """``stack(stack_id)`` gives the addresses of one stored stack."""

    map_types = (MapType.STACK_TRACE,)

    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return INT_TYPES["u32"] if key is None else codec_for(key, info.key_size)

    @classmethod
    def _value_codec(cls, value: Any, info: MapInfo) -> Codec:
        if value is None:
            return ArrayCodec(INT_TYPES["u64"], max(info.value_size // 8, 1))
        return codec_for(value, info.value_size)

    def stack(self, stack_id: int) -> List[int]:
        """The addresses of stack ``stack_id``, innermost frame first."""
        ips = self.get(stack_id, _MISSING)
        if ips is _MISSING:
            raise MapKeyError(stack_id)
        out = []
        for ip in ips:
            if not ip:
                break
            out.append(ip)
        return out

    def walk(self, stack_id: int) -> Iterator[int]:
        """BCC's name for :meth:`stack`."""
        return iter(self.stack(stack_id))
