"""Codecs: the one way Python keys and values become map bytes and back.

A map only knows sizes; what the bytes mean is declared once, as a :class:`Codec`, and used for
every element, batch and ring buffer record. Codecs are built from short specs (``"u32"``,
``"char[16]"``, ``[("pid", "u32"), ("comm", "char[16]")]``, an int size for raw bytes) by
:func:`codec_for`; later layers (the DSL's types) plug in by subclassing :class:`Codec` or by
offering ``__ebpf_codec__()``. Every codec can pack into and unpack from a buffer at an offset,
so that batches and per-CPU slots are handled without intermediate ``bytes``.

Byte order is the host's: maps hold what the kernel and the BPF programs see in memory.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ebpf.errors import CodecError

__all__ = [
    "Codec", "IntCodec", "BytesCodec", "CharArrayCodec", "ArrayCodec", "StructCodec",
    "StructFormatCodec", "CtypesCodec", "VoidCodec", "codec_for", "INT_TYPES",
]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Codec:
    """Turns one Python value into exactly ``size`` bytes and back.

    Subclasses implement :meth:`pack_into` and :meth:`unpack_from`; ``encode``/``decode`` are
    derived. ``align`` is the C alignment, used when the codec is a field of a struct.
    """

    __slots__ = ("size", "align", "name")

    def __init__(self, size: int, align: int, name: str):
        self.size = size
        self.align = align
        self.name = name

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        raise NotImplementedError

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        buf = bytearray(self.size)
        self.pack_into(buf, 0, value)
        return bytes(buf)

    def decode(self, data: Any) -> Any:
        if len(data) != self.size:
            raise CodecError(f"{self.name} needs {self.size} bytes, got {len(data)}")
        return self.unpack_from(data, 0)

    def zero(self) -> Any:
        """The value whose encoding is all zero bytes (what the kernel puts in fresh arrays)."""
        return self.unpack_from(bytes(self.size), 0)

    def __ebpf_codec__(self) -> Codec:
        return self

    def error(self, value: Any, why: str = "") -> CodecError:
        return CodecError(f"{_short(value)} does not fit {self.name} ({self.size} bytes){why}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} size={self.size}>"


class VoidCodec(Codec):
    """Zero bytes: the key of queue, stack, bloom filter and ring buffer maps."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(0, 1, "void")

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        if value is not None:
            raise self.error(value, ": this map has no key")

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        return None


_INT_FORMATS = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
                (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


class IntCodec(Codec):
    """A 1/2/4/8-byte signed or unsigned integer in host byte order."""

    __slots__ = ("signed", "fmt", "_s", "_pack", "_pack_into", "_unpack_from")

    def __init__(self, size: int, signed: bool = False):
        fmt = _INT_FORMATS.get((size, signed))
        if fmt is None:
            raise CodecError(f"integers are 1, 2, 4 or 8 bytes, not {size}")
        super().__init__(size, size, f"{'i' if signed else 'u'}{size * 8}")
        self.signed = signed
        self.fmt = fmt
        self._s = struct.Struct("=" + fmt)
        self._pack = self._s.pack
        self._pack_into = self._s.pack_into
        self._unpack_from = self._s.unpack_from

    def encode(self, value: Any) -> bytes:
        try:
            return self._pack(value)
        except struct.error:
            raise self.error(value) from None

    def decode(self, data: Any) -> Any:
        if len(data) != self.size:
            raise CodecError(f"{self.name} needs {self.size} bytes, got {len(data)}")
        return self._unpack_from(data)[0]

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        try:
            self._pack_into(buf, offset, value)
        except struct.error:
            raise self.error(value) from None

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        return self._unpack_from(buf, offset)[0]

    def zero(self) -> Any:
        return 0


INT_TYPES: Dict[str, IntCodec] = {
    f"{'i' if signed else 'u'}{size * 8}": IntCodec(size, signed)
    for size in (1, 2, 4, 8) for signed in (False, True)
}

_BYTES_LIKE = (bytes, bytearray, memoryview)


class BytesCodec(Codec):
    """Raw bytes of a fixed size; anything else, or another length, is an error."""

    __slots__ = ()

    def __init__(self, size: int):
        if size < 0:
            raise CodecError(f"negative size {size}")
        super().__init__(size, 1, f"bytes[{size}]")

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, _BYTES_LIKE) or len(value) != self.size:
            raise self.error(value, _why_bytes(value))
        return bytes(value)

    def decode(self, data: Any) -> Any:
        if len(data) != self.size:
            raise CodecError(f"{self.name} needs {self.size} bytes, got {len(data)}")
        return bytes(data)

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        if not isinstance(value, _BYTES_LIKE) or len(value) != self.size:
            raise self.error(value, _why_bytes(value))
        buf[offset:offset + self.size] = value

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        return bytes(buf[offset:offset + self.size])

    def zero(self) -> Any:
        return bytes(self.size)


def _why_bytes(value: Any) -> str:
    if isinstance(value, _BYTES_LIKE):
        return f": got {len(value)} bytes"
    return f": expected bytes, got {type(value).__name__}"


class CharArrayCodec(Codec):
    """A C string buffer (``char comm[16]``): str or bytes in, zero-padded; bytes up to NUL out."""

    __slots__ = ()

    def __init__(self, size: int):
        super().__init__(size, 1, f"char[{size}]")

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, _BYTES_LIKE) or len(value) > self.size:
            raise self.error(value, _why_bytes(value))
        n = len(value)
        buf[offset:offset + n] = value
        if n < self.size:
            buf[offset + n:offset + self.size] = bytes(self.size - n)

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        raw = bytes(buf[offset:offset + self.size])
        end = raw.find(b"\0")
        return raw if end < 0 else raw[:end]

    def zero(self) -> Any:
        return b""


class ArrayCodec(Codec):
    """``count`` elements of one codec, as a list (``u64[127]`` for stack traces)."""

    __slots__ = ("elem", "count", "_s")

    def __init__(self, elem: Codec, count: int):
        if count <= 0:
            raise CodecError(f"array length must be positive, not {count}")
        super().__init__(elem.size * count, elem.align, f"{elem.name}[{count}]")
        self.elem = elem
        self.count = count
        self._s = struct.Struct(f"={count}{elem.fmt}") if isinstance(elem, IntCodec) else None

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        if isinstance(value, (str, bytes, bytearray, memoryview)) or not isinstance(value, Sequence):
            raise self.error(value, ": expected a sequence")
        if len(value) != self.count:
            raise self.error(value, f": expected {self.count} elements, got {len(value)}")
        if self._s is not None:
            try:
                self._s.pack_into(buf, offset, *value)
                return
            except struct.error:
                pass  # find the offending element below, for the message
        elem = self.elem
        for i, item in enumerate(value):
            elem.pack_into(buf, offset + i * elem.size, item)

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        if self._s is not None:
            return list(self._s.unpack_from(buf, offset))
        elem = self.elem
        return [elem.unpack_from(buf, offset + i * elem.size) for i in range(self.count)]


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


class StructCodec(Codec):
    """A C struct from ``(name, type)`` fields, laid out with C alignment rules.

    Decodes to a namedtuple (``codec.type``) or, with ``as_dict=True``, a dict. Encodes a tuple
    (all fields in order), a mapping (missing fields are zero, like a C initializer) or any
    object with the fields as attributes.
    """

    __slots__ = ("fields", "offsets", "type", "as_dict", "_names", "_s", "_zero")

    def __init__(self, fields: Sequence[Tuple[str, Any]], *, name: str = "", as_dict: bool = False,
                 packed: bool = False):
        if not fields:
            raise CodecError("a struct needs at least one field")
        codecs: List[Tuple[str, Codec]] = []
        offsets: List[int] = []
        offset = 0
        align = 1
        for item in fields:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
                raise CodecError(f"struct fields are (name, type) pairs, not {_short(item)}")
            fname, fspec = item
            codec = codec_for(fspec)
            falign = 1 if packed else codec.align
            offset = _round_up(offset, falign)
            codecs.append((fname, codec))
            offsets.append(offset)
            offset += codec.size
            align = max(align, falign)
        names = [n for n, _ in codecs]
        if len(set(names)) != len(names):
            raise CodecError(f"duplicate field names in {names}")
        type_name = name or "Struct"
        try:
            tuple_type = namedtuple(type_name, names)  # type: ignore[misc]
        except ValueError as e:
            raise CodecError(f"bad struct field or type name: {e}") from None
        super().__init__(_round_up(offset, align), align, type_name)
        self.fields = codecs
        self.offsets = offsets
        self.type = tuple_type
        self.as_dict = as_dict
        self._names = names
        self._s = self._compile()
        self._zero: Any = None

    def _compile(self) -> Optional[struct.Struct]:
        """One ``struct.Struct`` for the common all-integer case (one C call per element)."""
        fmt = ["="]
        pos = 0
        for (_, codec), off in zip(self.fields, self.offsets):
            if not isinstance(codec, IntCodec):
                return None
            if off > pos:
                fmt.append(f"{off - pos}x")
            fmt.append(codec.fmt)
            pos = off + codec.size
        if self.size > pos:
            fmt.append(f"{self.size - pos}x")
        return struct.Struct("".join(fmt))

    def _values(self, value: Any) -> Sequence[Any]:
        if isinstance(value, tuple) or isinstance(value, list):
            if len(value) != len(self.fields):
                raise self.error(value, f": expected {len(self.fields)} fields, got {len(value)}")
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(self._names)
            if unknown:
                raise self.error(value, f": no field(s) {sorted(unknown)}")
            return [value[n] if n in value else c.zero() for n, c in self.fields]
        try:
            return [getattr(value, n) for n in self._names]
        except AttributeError:
            raise self.error(value, f": expected a tuple, a mapping or an object with {self._names}") \
                from None

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        values = self._values(value)
        if self._s is not None:
            try:
                self._s.pack_into(buf, offset, *values)
                return
            except struct.error:
                pass  # let the field codec name the culprit
        for (fname, codec), off, item in zip(self.fields, self.offsets, values):
            try:
                codec.pack_into(buf, offset + off, item)
            except CodecError as e:
                raise CodecError(f"{self.name}.{fname}: {e}") from None
        if self._s is None:
            self._zero_padding(buf, offset)

    def _zero_padding(self, buf: Any, offset: int) -> None:
        pos = 0
        for (_, codec), off in zip(self.fields, self.offsets):
            if off > pos:
                buf[offset + pos:offset + off] = bytes(off - pos)
            pos = off + codec.size
        if self.size > pos:
            buf[offset + pos:offset + self.size] = bytes(self.size - pos)

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        if self._s is not None:
            values: Sequence[Any] = self._s.unpack_from(buf, offset)
        else:
            values = [c.unpack_from(buf, offset + off) for (_, c), off in zip(self.fields, self.offsets)]
        if self.as_dict:
            return dict(zip(self._names, values))
        return self.type._make(values)


class StructFormatCodec(Codec):
    """A ``struct.Struct`` used as is: tuples in and out (handy for ring buffer records)."""

    __slots__ = ("_s",)

    def __init__(self, s: struct.Struct):
        super().__init__(s.size, 1, f"struct({s.format!r})")
        self._s = s

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        try:
            self._s.pack_into(buf, offset, *value)
        except (struct.error, TypeError):
            raise self.error(value) from None

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        return self._s.unpack_from(buf, offset)


class CtypesCodec(Codec):
    """A ctypes type (what BCC users declare): scalars decode to ints, structures to instances."""

    __slots__ = ("ctype", "scalar")

    def __init__(self, ctype: Any):
        import ctypes

        super().__init__(ctypes.sizeof(ctype), ctypes.alignment(ctype), getattr(ctype, "__name__", "ctype"))
        self.ctype = ctype
        self.scalar = isinstance(getattr(ctype, "_type_", None), str)

    def pack_into(self, buf: Any, offset: int, value: Any) -> None:
        if not isinstance(value, self.ctype):
            try:
                value = self.ctype(value) if self.scalar else self.ctype(*value)
            except (TypeError, ValueError):
                raise self.error(value) from None
        buf[offset:offset + self.size] = bytes(value)

    def unpack_from(self, buf: Any, offset: int = 0) -> Any:
        obj = self.ctype.from_buffer_copy(bytes(buf[offset:offset + self.size]))
        return obj.value if self.scalar else obj


_ALIASES = {
    "char": "i8", "unsigned char": "u8", "short": "i16", "unsigned short": "u16",
    "int": "i32", "unsigned int": "u32", "unsigned": "u32", "long": "i64", "unsigned long": "u64",
    "long long": "i64", "unsigned long long": "u64", "bool": "u8", "_bool": "u8",
}


def _int_by_name(name: str) -> Optional[IntCodec]:
    name = name.strip().lower()
    name = _ALIASES.get(name, name)
    if name.startswith("__"):
        name = name[2:]
    if name.endswith("_t"):  # uint32_t, int64_t
        name = name[:-2]
        if name.startswith("uint"):
            name = "u" + name[4:]
        elif name.startswith("int"):
            name = "i" + name[3:]
    if name.startswith("s") and name[1:].isdigit():  # __s32
        name = "i" + name[1:]
    return INT_TYPES.get(name)


def _by_name(spec: str) -> Codec:
    text = spec.strip()
    if text.endswith("]") and "[" in text:
        # C order: "char[2][16]" is two char[16]; the last dimension is the innermost
        base, _, dims_text = text.partition("[")
        base = base.strip()
        try:
            dims = [int(d) for d in dims_text[:-1].split("][")]
        except ValueError:
            raise CodecError(f"bad array length in type {spec!r}") from None
        inner = dims.pop()
        if base == "char":
            codec: Codec = CharArrayCodec(inner)
        elif base in ("bytes", "raw"):
            codec = BytesCodec(inner)
        else:
            codec = ArrayCodec(_by_name(base), inner)
        for n in reversed(dims):
            codec = ArrayCodec(codec, n)
        return codec
    if text == "void":
        return VoidCodec()
    found = _int_by_name(text)
    if found is None:
        raise CodecError(f"unknown type name {spec!r} (u8..u64, i8..i64, char[N], bytes[N], T[N])")
    return found


def _is_ctype(spec: Any) -> bool:
    return isinstance(spec, type) and hasattr(spec, "from_buffer_copy") and hasattr(spec, "_b_base_")


def codec_for(spec: Any, size: Optional[int] = None) -> Codec:
    """The codec described by ``spec``, checked to be ``size`` bytes when a size is given.

    ``spec`` is a :class:`Codec`, anything with ``__ebpf_codec__()``, a type name (``"u32"``,
    ``"i64"``, ``"char[16]"``, ``"u64[127]"``, ``"bytes[6]"``), an int (raw bytes of that size),
    ``None`` (raw bytes of ``size``, nothing when 0), ``bytes`` or ``int`` (of ``size``), a list of
    ``(name, type)`` fields (a C struct), a ``struct.Struct``, or a ctypes type.
    """
    codec: Codec
    if isinstance(spec, Codec):
        codec = spec
    elif hasattr(spec, "__ebpf_codec__"):
        codec = spec.__ebpf_codec__()
        if not isinstance(codec, Codec):
            raise CodecError(f"{_short(spec)}.__ebpf_codec__() returned {_short(codec)}, not a Codec")
    elif isinstance(spec, str):
        codec = _by_name(spec)
    elif spec is None:
        if size is None:
            raise CodecError("no type and no size given")
        codec = VoidCodec() if size == 0 else BytesCodec(size)
    elif isinstance(spec, bool):
        raise CodecError(f"not a type: {spec!r}")
    elif isinstance(spec, int):
        codec = VoidCodec() if spec == 0 else BytesCodec(spec)
    elif spec is bytes:
        if size is None:
            raise CodecError("bytes needs a size")
        codec = BytesCodec(size)
    elif spec is int:
        codec = INT_TYPES["u64"] if size is None else _int_of_size(size)
    elif isinstance(spec, struct.Struct):
        codec = StructFormatCodec(spec)
    elif isinstance(spec, (list, tuple)):
        codec = StructCodec(spec)
    elif _is_ctype(spec):
        codec = CtypesCodec(spec)
    else:
        raise CodecError(f"cannot make a key/value type from {_short(spec)}")
    if size is not None and codec.size != size:
        raise CodecError(f"type {codec.name} is {codec.size} bytes but the map's element is {size} bytes")
    return codec


def _int_of_size(size: int) -> IntCodec:
    if size not in (1, 2, 4, 8):
        raise CodecError(f"no integer type of {size} bytes")
    return INT_TYPES[f"u{size * 8}"]
