"""Live maps: a kernel map behind an owned file descriptor.

:class:`Map` is the base of every kind (hash, array, ring buffer...). It owns the fd and closes
it deterministically (``close()``/``with``), knows the map's shape (type, sizes, max_entries,
flags, name) and its key/value codecs, and does what every kind can: ``info()``, ``pin()``,
``freeze()``. Opening an existing map (``from_fd``/``from_pin``/``from_id``) asks the kernel for
its type and returns the matching subclass, so a pinned ring buffer comes back as a ring buffer.
The kind-specific access (dict API, push/pop, readers) lives in the per-kind modules.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, Optional, Type, TypeVar, Union

from ebpf.errors import MapError
from ebpf.maps.codec import Codec, codec_for
from ebpf.maps.elemops import ElemOps
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.sys.ffi import ffi
from ebpf.uapi import MapType

__all__ = ["Map", "MapInfo", "map_info", "fd_of"]

M = TypeVar("M", bound="Map")


class MapInfo(NamedTuple):
    """What the kernel says about a map (``struct bpf_map_info``)."""

    type: Union[MapType, int]
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    ifindex: int = 0
    btf_id: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    btf_vmlinux_value_type_id: int = 0
    map_extra: int = 0


def _map_type(value: int) -> Union[MapType, int]:
    try:
        return MapType(value)
    except ValueError:
        return value


def map_info(fd: int) -> MapInfo:
    """BPF_OBJ_GET_INFO_BY_FD for a map, as a :class:`MapInfo`."""
    i = bpf.obj_get_info_by_fd(int(fd), ffi.new("struct bpf_map_info *"))
    return MapInfo(
        type=_map_type(i.type), id=i.id, key_size=i.key_size, value_size=i.value_size,
        max_entries=i.max_entries, flags=i.map_flags, name=ffi.string(i.name).decode(errors="replace"),
        ifindex=i.ifindex, btf_id=i.btf_id, btf_key_type_id=i.btf_key_type_id,
        btf_value_type_id=i.btf_value_type_id, btf_vmlinux_value_type_id=i.btf_vmlinux_value_type_id,
        map_extra=i.map_extra,
    )


def fd_of(obj: Any) -> int:
    """The fd number of a program, map, :class:`FD` or plain int (what fd-valued maps store)."""
    if isinstance(obj, int):
        return obj
    fd = getattr(obj, "fd", None)
    if fd is not None:
        return int(fd)
    try:
        return int(obj)
    except (TypeError, ValueError):
        raise MapError(f"{obj!r} is not a file descriptor or an object with one") from None


class Map:
    """A live map. Subclasses add the access that makes sense for their kind.

    ``key``/``value`` are codec specs (see :func:`ebpf.maps.codec.codec_for`); without them
    each kind picks a default (raw bytes, or the type the kind implies such as u32 indexes).
    """

    #: map types this class is the live object of (used to pick the class for an fd)
    map_types: tuple = ()

    def __init__(self, fd: Union[FD, int], info: MapInfo, key: Any = None, value: Any = None):
        self._fd = fd if isinstance(fd, FD) else FD(fd)
        self.type = info.type
        self.id = info.id
        self.name = info.name
        self.key_size = info.key_size
        self.value_size = info.value_size
        self.max_entries = info.max_entries
        self.flags = info.flags
        self.key_codec: Codec = self._key_codec(key, info)
        self.value_codec: Codec = self._value_codec(value, info)
        self._kc = self.key_codec
        self._vc = self._element_codec()
        self._kpack = self._kc.pack_into
        self._kunpack = self._kc.unpack_from
        self._vpack = self._vc.pack_into
        self._vunpack = self._vc.unpack_from
        self._ops = ElemOps(int(self._fd), self._kc.size, self._vc.size, self._label())
        self._pin_path: Optional[str] = None

    # --- codecs (kinds override the defaults) ----------------------------------------------

    @classmethod
    def _key_codec(cls, key: Any, info: MapInfo) -> Codec:
        return codec_for(key, info.key_size)

    @classmethod
    def _value_codec(cls, value: Any, info: MapInfo) -> Codec:
        return codec_for(value, info.value_size)

    def _element_codec(self) -> Codec:
        """The codec of one value as the syscall sees it (per-CPU maps widen it)."""
        return self.value_codec

    def _label(self) -> str:
        kind = self.type.name.lower() if isinstance(self.type, MapType) else f"type {self.type}"
        return f"{kind} map {self.name!r}" if self.name else f"{kind} map (id {self.id})"

    # --- ownership ------------------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The fd number (raises once closed)."""
        return int(self._fd)

    def fileno(self) -> int:
        return int(self._fd)

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def close(self) -> None:
        """Release our fd; the kernel frees the map when nothing else (program, pin) holds it."""
        if not self._fd.closed:
            self._ops.invalidate()
            self._fd.close()

    def __enter__(self: M) -> M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd!r}"
        return (f"<{type(self).__name__} {self.name!r} id={self.id} {state} key={self.key_codec.name} "
                f"value={self.value_codec.name} max_entries={self.max_entries}>")

    # --- what every kind can do -----------------------------------------------------------

    def info(self) -> MapInfo:
        """Fresh :class:`MapInfo` from the kernel."""
        return map_info(self.fd)

    def freeze(self) -> None:
        """BPF_MAP_FREEZE: user space can no longer write (programs still can, unless RDONLY_PROG)."""
        bpf.map_freeze(self.fd)

    def pin(self, path: str) -> None:
        """Pin the map in bpffs at ``path`` so that it outlives this process."""
        bpf.obj_pin(self.fd, path)
        self._pin_path = path

    def unpin(self, path: Optional[str] = None) -> None:
        """Remove the pin at ``path`` (default: where :meth:`pin` put it)."""
        target = path or self._pin_path
        if target is None:
            raise MapError(f"{self._label()} is not pinned")
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass
        if target == self._pin_path:
            self._pin_path = None

    @property
    def pin_path(self) -> Optional[str]:
        return self._pin_path

    # --- opening existing maps ------------------------------------------------------------

    @classmethod
    def from_fd(cls: Type[M], fd: Union[FD, int], *, key: Any = None, value: Any = None) -> M:
        """Wrap an fd we now own, as the subclass matching the map's type."""
        owned = fd if isinstance(fd, FD) else FD(fd)
        try:
            info = map_info(int(owned))
            from ebpf.maps.kinds import map_class

            kind = map_class(info.type)
            if not issubclass(kind, cls):
                raise MapError(f"map {info.name!r} (id {info.id}) is a {kind.__name__}, not a {cls.__name__}")
            return kind(owned, info, key=key, value=value)
        except BaseException:
            owned.close()
            raise

    @classmethod
    def from_pin(cls: Type[M], path: str, *, key: Any = None, value: Any = None) -> M:
        """Open the map pinned at ``path``."""
        m = cls.from_fd(bpf.obj_get(path), key=key, value=value)
        return m

    @classmethod
    def from_id(cls: Type[M], map_id: int, *, key: Any = None, value: Any = None) -> M:
        """Open a map by its kernel id (``bpftool map`` shows them)."""
        return cls.from_fd(bpf.map_get_fd_by_id(map_id), key=key, value=value)
