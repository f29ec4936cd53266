"""MapSpec: a map described as pure data, checked without the kernel, created on demand.

A spec says what a map is (type, key and value types, max_entries, flags, inner map, pin path,
BTF ids); :meth:`MapSpec.validate` applies the rules the kernel would otherwise answer with a
bare EINVAL (array keys are u32, queues have no key, ring buffer sizes are powers of two and
page multiples...), and :meth:`MapSpec.create` makes the map and returns the live object of the
right kind. Key and value sizes are derived from the codecs, never given twice.
"""

from __future__ import annotations

import mmap
import os
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Union

from ebpf.errors import CodecError, MapError, SyscallError
from ebpf.maps.codec import INT_TYPES, ArrayCodec, Codec, VoidCodec, codec_for
from ebpf.maps.cpus import num_possible_cpus
from ebpf.uapi import OBJ_NAME_LEN, BpfCmd, MapFlag, MapType

if TYPE_CHECKING:
    from ebpf.maps.live import Map

__all__ = ["MapSpec", "ResolvedSpec", "map_type_of"]

T = MapType
_KEY_U32 = {T.ARRAY, T.PERCPU_ARRAY, T.PROG_ARRAY, T.PERF_EVENT_ARRAY, T.CGROUP_ARRAY, T.ARRAY_OF_MAPS,
            T.STACK_TRACE, T.DEVMAP, T.CPUMAP, T.XSKMAP, T.SOCKMAP, T.REUSEPORT_SOCKARRAY}
_NO_KEY = {T.QUEUE, T.STACK, T.BLOOM_FILTER, T.RINGBUF, T.USER_RINGBUF}
_NO_VALUE = {T.RINGBUF, T.USER_RINGBUF}
_FD_VALUE = {T.PROG_ARRAY, T.PERF_EVENT_ARRAY, T.CGROUP_ARRAY, T.ARRAY_OF_MAPS, T.HASH_OF_MAPS}
_MAP_IN_MAP = {T.ARRAY_OF_MAPS, T.HASH_OF_MAPS}
_PER_CPU = {T.PERCPU_HASH, T.PERCPU_ARRAY, T.LRU_PERCPU_HASH, T.PERCPU_CGROUP_STORAGE}
_NO_MAX_ENTRIES = {T.SK_STORAGE, T.INODE_STORAGE, T.TASK_STORAGE, T.CGRP_STORAGE, T.CGROUP_STORAGE,
                   T.PERCPU_CGROUP_STORAGE, T.STRUCT_OPS}
_ALIASES = {"RING_BUFFER": "RINGBUF", "LPM": "LPM_TRIE", "PERF_ARRAY": "PERF_EVENT_ARRAY",
            "PERCPU_LRU_HASH": "LRU_PERCPU_HASH", "BLOOM": "BLOOM_FILTER"}
PERCPU_VALUE_MAX = 32768  # PCPU_MIN_UNIT_SIZE: the largest per-CPU value the kernel allocates
STACK_VALUE_DEFAULT = ArrayCodec(INT_TYPES["u64"], 127)  # PERF_MAX_STACK_DEPTH frames


def map_type_of(value: Union[MapType, str, int]) -> MapType:
    """A MapType from itself, its number, or a name (``"hash"``, ``"percpu_array"``,
    ``"BPF_MAP_TYPE_RINGBUF"``)."""
    if isinstance(value, MapType):
        return value
    if isinstance(value, str):
        name = value.strip().upper().replace("-", "_").replace(" ", "_")
        if name.startswith("BPF_MAP_TYPE_"):
            name = name[len("BPF_MAP_TYPE_"):]
        name = _ALIASES.get(name, name)
        try:
            return MapType[name]
        except KeyError:
            known = ", ".join(m.name.lower() for m in MapType if m is not MapType.UNSPEC)
            raise MapError(f"unknown map type {value!r} (known: {known})") from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return MapType(value)
        except ValueError:
            raise MapError(f"unknown map type number {value}") from None
    raise MapError(f"a map type is a MapType, a name or a number, not {value!r}")


def _check_name(name: str) -> str:
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_."))})
    if bad:
        raise MapError(f"map name {name!r} has characters the kernel refuses: {''.join(bad)!r} "
                       "(letters, digits, '_' and '.' only)")
    return name[:OBJ_NAME_LEN - 1]


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class ResolvedSpec(NamedTuple):
    """A validated spec: what BPF_MAP_CREATE gets, plus the codecs of the live map."""

    type: MapType
    name: str
    key_codec: Codec
    value_codec: Codec
    key_size: int
    value_size: int
    max_entries: int
    flags: int


class MapSpec:
    """A map as data. ``key``/``value`` are codec specs (``"u32"``, ``[("pid", "u32"), ...]``,
    an int size for raw bytes...); sizes follow from them. ``inner`` is the template of the
    maps a map-in-map holds; ``pin_path`` makes :meth:`create` reuse (or create and pin) the
    map at that bpffs path."""

    __slots__ = ("name", "type", "key", "value", "max_entries", "flags", "inner", "pin_path",
                 "numa_node", "map_extra", "btf_fd", "btf_key_type_id", "btf_value_type_id",
                 "btf_vmlinux_value_type_id")

    def __init__(
        self,
        name: str = "",
        type: Union[MapType, str, int] = MapType.HASH,
        key: Any = None,
        value: Any = None,
        max_entries: int = 0,
        flags: int = 0,
        *,
        inner: Optional[MapSpec] = None,
        pin_path: Optional[str] = None,
        numa_node: int = 0,
        map_extra: int = 0,
        btf_fd: int = 0,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
        btf_vmlinux_value_type_id: int = 0,
    ):
        self.name = name
        self.type = type
        self.key = key
        self.value = value
        self.max_entries = max_entries
        self.flags = flags
        self.inner = inner
        self.pin_path = pin_path
        self.numa_node = numa_node
        self.map_extra = map_extra
        self.btf_fd = btf_fd
        self.btf_key_type_id = btf_key_type_id
        self.btf_value_type_id = btf_value_type_id
        self.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id

    def replace(self, **changes: Any) -> MapSpec:
        """A copy with some fields changed."""
        fields = {f: getattr(self, f) for f in self.__slots__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise MapError(f"MapSpec has no field(s) {sorted(unknown)}")
        fields.update(changes)
        name, type_ = fields.pop("name"), fields.pop("type")
        return MapSpec(name, type_, **fields)

    def __repr__(self) -> str:
        parts = [f"{f}={getattr(self, f)!r}" for f in self.__slots__
                 if getattr(self, f) not in (None, 0, "") or f in ("type", "max_entries")]
        return f"MapSpec({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MapSpec):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    # --- derived ------------------------------------------------------------------------------

    @property
    def map_type(self) -> MapType:
        return map_type_of(self.type)

    @property
    def key_size(self) -> int:
        return self.validate().key_size

    @property
    def value_size(self) -> int:
        return self.validate().value_size

    @property
    def key_codec(self) -> Codec:
        return self.validate().key_codec

    @property
    def value_codec(self) -> Codec:
        return self.validate().value_codec

    def validate(self) -> ResolvedSpec:
        """Check the spec against the kernel's rules; returns what :meth:`create` will use."""
        t = map_type_of(self.type)
        where = f"{t.name.lower()} map {self.name!r}" if self.name else f"{t.name.lower()} map"
        try:
            return self._resolve(t, where)
        except CodecError as e:
            raise MapError(f"{where}: {e}") from None

    def _resolve(self, t: MapType, where: str) -> ResolvedSpec:
        name = _check_name(self.name)
        flags = int(self.flags)
        key_codec = self._key(t, where)
        value_codec = self._value(t, where)
        key_size = key_codec.size
        value_size = 0 if t in _NO_VALUE else value_codec.size
        if t not in _NO_KEY and key_size == 0:
            raise MapError(f"{where}: the key type has size 0")
        if t not in _NO_VALUE and value_size == 0:
            raise MapError(f"{where}: the value type has size 0")
        if t in _PER_CPU and value_size > PERCPU_VALUE_MAX:
            raise MapError(f"{where}: per-CPU values are at most {PERCPU_VALUE_MAX} bytes, not {value_size}")
        max_entries = int(self.max_entries)
        if t == T.PERF_EVENT_ARRAY and max_entries == 0:
            max_entries = num_possible_cpus()  # one slot per CPU, what the perf reader fills
        if t in (T.RINGBUF, T.USER_RINGBUF):
            page = mmap.PAGESIZE
            if not _is_pow2(max_entries) or max_entries % page:
                size = page
                while size < max_entries:
                    size *= 2
                raise MapError(f"{where}: the size (max_entries={max_entries}) must be a power of two and a "
                               f"multiple of the page size {page} (e.g. {size})")
        elif t in _NO_MAX_ENTRIES:
            if max_entries != 0:
                raise MapError(f"{where}: max_entries must be 0 for this kind, not {max_entries}")
        elif max_entries <= 0:
            raise MapError(f"{where}: max_entries must be positive, not {max_entries}")
        if t == T.LPM_TRIE:
            flags = int(flags | MapFlag.NO_PREALLOC)  # the kernel refuses a preallocated trie
        if t in _MAP_IN_MAP:
            if self.inner is None:
                raise MapError(f"{where}: a map-in-map needs an inner map spec (inner=MapSpec(...))")
            if self.inner.map_type in _MAP_IN_MAP:
                raise MapError(f"{where}: an inner map cannot itself be a map-in-map")
            self.inner.validate()
        elif self.inner is not None:
            raise MapError(f"{where}: only array_of_maps and hash_of_maps take an inner map")
        if t == T.BLOOM_FILTER and self.map_extra & ~0xF:
            raise MapError(f"{where}: map_extra holds the number of hash functions (0..15)")
        return ResolvedSpec(t, name, key_codec, value_codec, key_size, value_size, max_entries, flags)

    def _key(self, t: MapType, where: str) -> Codec:
        key = self.key
        if t in _NO_KEY:
            if key not in (None, 0) and not isinstance(key, VoidCodec):
                raise MapError(f"{where}: this kind has no key (key size 0); leave key unset")
            return VoidCodec()
        if t == T.LPM_TRIE:
            from ebpf.maps.lpmkey import lpm_key_codec

            return lpm_key_codec(key)
        if key is None:
            if t in _KEY_U32:
                return INT_TYPES["u32"]
            raise MapError(f"{where} needs a key type (key='u32', a struct, a size...)")
        codec = codec_for(key)
        if t in _KEY_U32 and codec.size != 4:
            raise MapError(f"{where}: keys of this kind are 4-byte indexes (u32), not {codec.name}")
        return codec

    def _value(self, t: MapType, where: str) -> Codec:
        value = self.value
        if t in _NO_VALUE:  # a ring buffer's value type is the type of its records
            return VoidCodec() if value is None else codec_for(value)
        if value is None:
            if t in _FD_VALUE:
                return INT_TYPES["u32"]
            if t == T.STACK_TRACE:
                return STACK_VALUE_DEFAULT
            raise MapError(f"{where} needs a value type (value='u64', a struct, a size...)")
        codec = codec_for(value)
        if t in _FD_VALUE and codec.size != 4:
            raise MapError(f"{where}: values of this kind are 4-byte fds/ids (u32), not {codec.name}")
        if t == T.STACK_TRACE and (codec.size % 8 or not codec.size):
            raise MapError(f"{where}: stack trace values are arrays of u64 addresses, not {codec.name}")
        return codec

    # --- making it real -----------------------------------------------------------------------

    def create(self) -> Map:
        """Create the map (or open the one pinned at ``pin_path``) and return the live object of
        its kind (:class:`ebpf.maps.hashmap.HashMap`, :class:`ebpf.maps.ringbuf.RingBufMap`...)."""
        from ebpf.maps.kinds import map_class
        from ebpf.maps.live import map_info
        from ebpf.sys import bpf
        from ebpf.sys.fd import FD

        r = self.validate()
        if self.pin_path and os.path.exists(self.pin_path):
            return self._open_pinned(r)
        inner = self.inner.replace(pin_path=None).create() if self.inner is not None else None
        try:
            fd = bpf.map_create(
                int(r.type), r.key_size, r.value_size, r.max_entries, r.flags, r.name,
                inner_map_fd=inner.fd if inner is not None else 0, numa_node=self.numa_node,
                btf_fd=self.btf_fd, btf_key_type_id=self.btf_key_type_id,
                btf_value_type_id=self.btf_value_type_id,
                btf_vmlinux_value_type_id=self.btf_vmlinux_value_type_id, map_extra=self.map_extra,
            )
        except SyscallError as e:
            raise bpf.error_for("BPF_MAP_CREATE", BpfCmd.MAP_CREATE, e.errno or 0,
                                detail=f"spec: {self!r}") from None
        finally:
            if inner is not None:
                inner.close()  # the map-in-map keeps only its shape
        owned = FD(fd)
        try:
            live: Map = map_class(r.type)(owned, map_info(fd), key=r.key_codec, value=r.value_codec)
            if self.pin_path:
                live.pin(self.pin_path)
        except BaseException:
            owned.close()
            raise
        return live

    def _open_pinned(self, r: ResolvedSpec) -> Map:
        from ebpf.maps.live import Map, map_info
        from ebpf.sys import bpf
        from ebpf.sys.fd import FD

        assert self.pin_path is not None
        owned = FD(bpf.obj_get(self.pin_path))
        try:
            info = map_info(int(owned))
            got = (info.type, info.key_size, info.value_size, info.max_entries, info.flags)
            want = (r.type, r.key_size, r.value_size, r.max_entries, r.flags)
            if got != want:
                raise MapError(
                    f"the map pinned at {self.pin_path} does not match the spec: (type, key size, "
                    f"value size, max_entries, flags) is {got}, the spec wants {want}"
                )
        except BaseException:
            owned.close()
            raise
        live = Map.from_fd(owned, key=r.key_codec, value=r.value_codec)
        live._pin_path = self.pin_path
        return live
