"""LPM trie keys: ``struct { u32 prefixlen; u8 data[N]; }``, ``data`` in network byte order.

Keys are :class:`LpmKey` ``(prefixlen, data)`` tuples; IP networks and addresses may be given as
text (``"10.0.0.0/8"``, ``"2001:db8::/32"``, or an address meaning all its bits) or as
:mod:`ipaddress` objects. Pure data, so that specs can be validated without the kernel.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple, Optional

from ebpf.errors import CodecError, MapError
from ebpf.maps.codec import Codec, codec_for

__all__ = ["LpmKey", "LpmKeyCodec", "lpm_key", "lpm_key_codec", "LPM_DATA_SIZE_MAX"]

LPM_DATA_SIZE_MAX = 256
_PREFIXLEN = struct.Struct("=I")


class LpmKey(NamedTuple):
    """An LPM trie key: the number of significant bits and the (network order) data."""

    prefixlen: int
    data: bytes

    def network(self) -> Any:
        """The key as an ``ipaddress`` network (data of 4 or 16 bytes)."""
        import ipaddress

        if len(self.data) == 4:
            return ipaddress.IPv4Network((self.data, self.prefixlen), strict=False)
        if len(self.data) == 16:
            return ipaddress.IPv6Network((self.data, self.prefixlen), strict=False)
        raise MapError(f"{len(self.data)}-byte LPM data is not an IP address")

    def __str__(self) -> str:
        if len(self.data) in (4, 16):
            return str(self.network())
        return f"{self.data.hex()}/{self.prefixlen}"


def lpm_key(prefix: Any, prefixlen: Optional[int] = None) -> LpmKey:
    """An :class:`LpmKey` from ``"10.0.0.0/8"``, ``"10.1.2.3"`` (full length), an ``ipaddress``
    network or address, or raw ``bytes`` (with ``prefixlen``, default all bits)."""
    if isinstance(prefix, LpmKey):
        return prefix
    if isinstance(prefix, (bytes, bytearray)):
        data = bytes(prefix)
        return LpmKey(len(data) * 8 if prefixlen is None else prefixlen, data)
    import ipaddress

    try:
        if isinstance(prefix, str) and "/" in prefix:
            net = ipaddress.ip_network(prefix, strict=False)
            return LpmKey(net.prefixlen if prefixlen is None else prefixlen, net.network_address.packed)
        if isinstance(prefix, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            return LpmKey(prefix.prefixlen if prefixlen is None else prefixlen, prefix.network_address.packed)
        addr = ipaddress.ip_address(prefix)
    except ValueError as e:
        raise CodecError(f"{prefix!r} is not an IP prefix: {e}") from None
    return LpmKey(addr.max_prefixlen if prefixlen is None else prefixlen, addr.packed)


class LpmKeyCodec(Codec):
    """``struct { u32 prefixlen; u8 data[data_size]; }``."""

    __slots__ = ("data_size",)

    def __init__(self, data_size: int):
        if not 1 <= data_size <= LPM_DATA_SIZE_MAX:
            raise CodecError(f"LPM trie data must be 1..{LPM_DATA_SIZE_MAX} bytes, not {data_size}")
        super().__init__(4 + data_size, 4, f"lpm_key[{data_size}]")
        self.data_size = data_size

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        if isinstance(value, tuple) and len(value) == 2:
            prefixlen, data = value
        else:
            prefixlen, data = lpm_key(value)
        if not isinstance(data, (bytes, bytearray)) or len(data) != self.data_size:
            raise self.error(value, f": the data must be {self.data_size} bytes")
        if not isinstance(prefixlen, int) or not 0 <= prefixlen <= self.data_size * 8:
            raise self.error(value, f": prefixlen must be 0..{self.data_size * 8}")
        _PREFIXLEN.pack_into(buf, offset, prefixlen)
        buf[offset + 4:offset + 4 + self.data_size] = data

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        data = bytes(buf[offset + 4:offset + 4 + self.data_size])
        return LpmKey(_PREFIXLEN.unpack_from(buf, offset)[0], data)


def lpm_key_codec(spec: Any, key_size: Optional[int] = None) -> Codec:
    """The key codec of an LPM trie: ``"ipv4"``, ``"ipv6"``, an int key size, or any codec."""
    if spec is None:
        if key_size is None:
            raise MapError("an LPM trie needs key='ipv4', 'ipv6' or a key size (4 + data bytes)")
        return LpmKeyCodec(key_size - 4)
    if spec == "ipv4":
        codec: Codec = LpmKeyCodec(4)
    elif spec == "ipv6":
        codec = LpmKeyCodec(16)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        codec = LpmKeyCodec(spec - 4)
    else:
        codec = codec_for(spec)
    if key_size is not None and codec.size != key_size:
        raise CodecError(f"LPM key type {codec.name} is {codec.size} bytes but the map's key is {key_size}")
    return codec
