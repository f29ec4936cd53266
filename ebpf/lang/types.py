"""The DSL's types: fixed-width integers, arrays, structs, pointers and kernel (BTF) types.

Integer semantics are C's, so that a program means the same thing here as in the C tool it
replaces and the differential tests have one oracle:

* values wrap around at their width (two's complement); signed overflow wraps too (in C it
  would be undefined);
* before arithmetic, operands narrower than 32 bits (and ``bool``) are promoted to ``i32``;
  then the *usual arithmetic conversions* pick the common type: equal signedness takes the
  wider type; otherwise the unsigned type wins unless the signed one is strictly wider
  (``u32 + i64 -> i64``, ``u32 + i32 -> u32``, ``u64 + i64 -> u64``);
* signedness of the common type decides comparisons, division, modulo and ``>>``
  (arithmetic for signed, logical for unsigned); ``<<`` and ``>>`` take the left operand's
  promoted type and use the shift count modulo the width (eBPF's rule; C leaves it undefined);
* ``//`` and ``%`` truncate toward zero like C's ``/`` and ``%`` (not Python's floor); a
  division by zero gives 0 and a modulo by zero gives the dividend (eBPF's rule);
  ``/`` is refused (no floating point);
* an integer literal has the first type of ``i32, u32, i64, u64`` that holds it; a negated
  literal is the negative number Python reads (``-2147483648`` is an ``i32``, where C would
  negate the ``u32`` 2147483648), typed by the same rule;
  comparisons, ``not``, ``and`` and ``or`` give ``bool`` (0 or 1), as C's do;
* assigning converts to the target's type (truncating or sign-extending, as C does); a
  local's type is the type of its first assignment (an annotation ``x: u16 = ...`` chooses;
  a bare literal makes an ``i64``).

Types are also codec specs (``__ebpf_codec__``), so the same declaration types map keys and
values and decodes events in user space: ``Event.decode(raw)``.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, Dict, List, Optional, Tuple

__all__ = [
    "Type", "IntType", "BoolType", "ArrayType", "StructType", "PtrType", "VoidType", "KernelType",
    "Struct", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "s8", "s16", "s32", "s64",
    "char", "boolean", "void", "type_of", "promote", "common_type", "literal_type", "ptr", "ktype",
    "wrap", "brief",
]


def brief(value: Any, limit: int = 60) -> str:
    """``value`` for an error message: a string as is, anything else as its repr(), cut to
    ``limit`` characters; an integer too big to print (str() refuses 4,301 digits) by its size."""
    if isinstance(value, int) and value.bit_length() > 192:
        text = f"{'-' if value < 0 else ''}<an integer of {value.bit_length()} bits>"
    else:
        text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def wrap(value: int, size: int, signed: bool) -> int:
    """``value`` converted to a ``size``-byte integer as C converts (modulo 2**bits)."""
    bits = size * 8
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


class Type:
    """Base of every DSL type: a size, an alignment and a name."""

    size: int = 0
    align: int = 1
    name: str = "?"

    def __getitem__(self, count: int) -> ArrayType:
        """``u32[4]``, ``char[16]``: a fixed array of this type."""
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise TypeError(f"array length must be a positive int, not {brief(count)}")
        return ArrayType(self, count)

    def __ebpf_codec__(self) -> Any:
        raise TypeError(f"type {self.name} has no user-space codec")

    def __repr__(self) -> str:
        return self.name

    @property
    def is_int(self) -> bool:
        return False


class VoidType(Type):
    name = "void"


class IntType(Type):
    """An integer of 1, 2, 4 or 8 bytes. Calling it converts like a C cast (``u32(-1)``)."""

    def __init__(self, name: str, size: int, signed: bool) -> None:
        self.name = name
        self.size = size
        self.align = size
        self.signed = signed
        self.bits = size * 8
        self.min = -(1 << (self.bits - 1)) if signed else 0
        self.max = (1 << (self.bits - 1)) - 1 if signed else (1 << self.bits) - 1

    @property
    def is_int(self) -> bool:
        return True

    def wrap(self, value: int) -> int:
        return wrap(value, self.size, self.signed)

    def fits(self, value: int) -> bool:
        return self.min <= value <= self.max

    def __call__(self, value: Any = 0) -> int:
        """In user space: C's conversion of an int. In compiled code: the same, as a cast."""
        return self.wrap(int(value))

    def __ebpf_codec__(self) -> Any:
        from ebpf.maps.codec import INT_TYPES

        return INT_TYPES[f"{'i' if self.signed else 'u'}{self.bits}"]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, IntType) and type(other) is type(self) and other.size == self.size
                and other.signed == self.signed)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.size, self.signed))


class BoolType(IntType):
    """``bool``: one byte holding 0 or 1; promoted to i32 in arithmetic like C's ``_Bool``."""

    def __init__(self) -> None:
        super().__init__("bool", 1, False)

    def __call__(self, value: Any = 0) -> int:
        return 1 if value else 0


u8 = IntType("u8", 1, False)
u16 = IntType("u16", 2, False)
u32 = IntType("u32", 4, False)
u64 = IntType("u64", 8, False)
i8 = IntType("i8", 1, True)
i16 = IntType("i16", 2, True)
i32 = IntType("i32", 4, True)
i64 = IntType("i64", 8, True)
s8, s16, s32, s64 = i8, i16, i32, i64
char = IntType("char", 1, True)
boolean = BoolType()
void = VoidType()


class ArrayType(Type):
    """``count`` elements of ``elem``; ``char[N]`` decodes to bytes in user space."""

    def __init__(self, elem: Type, count: int) -> None:
        self.elem = elem
        self.count = count
        self.size = elem.size * count
        self.align = elem.align
        self.name = f"{elem.name}[{count}]"

    def __call__(self) -> List[Any]:
        return [0] * self.count if isinstance(self.elem, IntType) else [None] * self.count

    def __ebpf_codec__(self) -> Any:
        from ebpf.maps.codec import ArrayCodec, CharArrayCodec, codec_for

        if self.elem is char:
            return CharArrayCodec(self.count)
        return ArrayCodec(codec_for(self.elem), self.count)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArrayType) and other.elem == self.elem and other.count == self.count

    def __hash__(self) -> int:
        return hash(("array", self.elem, self.count))


class PtrType(Type):
    """A pointer to ``target`` in a memory ``space``; ``nullable`` until checked against None.

    Spaces: ``stack``, ``map`` (map values), ``ringbuf`` (reserved records), ``ctx``, ``btf``
    (kernel memory the verifier types: direct loads), ``kernel`` (read through
    bpf_probe_read_kernel), ``user`` (read through bpf_probe_read_user), ``any``.
    """

    size = 8
    align = 8

    def __init__(self, target: Type, space: str = "any", nullable: bool = False) -> None:
        self.target = target
        self.space = space
        self.nullable = nullable
        self.name = f"{'Optional ' if nullable else ''}{space} {target.name} *"

    def nonnull(self) -> PtrType:
        return PtrType(self.target, self.space, False) if self.nullable else self

    def __ebpf_codec__(self) -> Any:
        from ebpf.maps.codec import INT_TYPES

        return INT_TYPES["u64"]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PtrType) and other.target == self.target and other.space == self.space
                and other.nullable == self.nullable)

    def __hash__(self) -> int:
        return hash(("ptr", self.target, self.space, self.nullable))


def ptr(target: Any, space: str = "any") -> PtrType:
    """A pointer type for annotations of sub-program parameters: ``ptr(Event, "map")``."""
    return PtrType(type_of(target), space)


ptr._ebpf_static = True  # type: ignore[attr-defined]  # evaluated at compile time in DSL code


class StructField:
    __slots__ = ("name", "type", "offset")

    def __init__(self, name: str, type: Type, offset: int) -> None:
        self.name = name
        self.type = type
        self.offset = offset

    def __repr__(self) -> str:
        return f"<field {self.name}: {self.type.name} @ {self.offset}>"


class StructType(Type):
    """The layout of a :class:`Struct` class: fields at C offsets, C size and alignment."""

    def __init__(self, name: str, fields: List[Tuple[str, Type]], cls: Any = None) -> None:
        self.name = name
        self.cls = cls
        self.fields: Dict[str, StructField] = {}
        offset = 0
        align = 1
        for fname, ftype in fields:
            if fname in self.fields:
                raise TypeError(f"struct {name}: field {fname!r} declared twice")
            if ftype.size == 0:
                raise TypeError(f"struct {name}: field {fname!r} has no size")
            a = ftype.align
            offset = (offset + a - 1) // a * a
            self.fields[fname] = StructField(fname, ftype, offset)
            offset += ftype.size
            align = max(align, a)
        self.align = align
        self.size = (offset + align - 1) // align * align

    def field(self, name: str) -> Optional[StructField]:
        return self.fields.get(name)

    def __ebpf_codec__(self) -> Any:
        if self.cls is not None:
            return self.cls.__ebpf_codec__()
        from ebpf.maps.codec import StructCodec

        return StructCodec([(f.name, f.type) for f in self.fields.values()], name=self.name)


class _StructMeta(type):
    """Makes ``Event[4]`` an array type and keeps the class usable as a codec spec."""

    def __getitem__(cls, count: int) -> ArrayType:
        return type_of(cls)[count]


class Struct(metaclass=_StructMeta):
    """Base class of user structs: fields are class annotations, laid out as C lays them out.

    In compiled code ``Event()`` is a zeroed stack instance (keyword arguments set fields),
    ``events.reserve(Event)`` a ring buffer record. In user space ``Event.decode(raw)`` turns
    bytes into an instance and ``ev.encode()`` back; the class is a codec spec for maps.
    """

    _ebpf_struct: ClassVar[Optional[StructType]] = None
    _ebpf_codec: ClassVar[Any] = None

    def __init__(self, **fields: Any) -> None:
        layout = type(self).layout()
        unknown = set(fields) - set(layout.fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        for f in layout.fields.values():
            setattr(self, f.name, fields[f.name] if f.name in fields else _zero(f.type))

    @classmethod
    def layout(cls) -> StructType:
        """The struct's layout, computed from the annotations on first use."""
        found = cls.__dict__.get("_ebpf_struct")
        if found is None:
            found = StructType(cls.__name__, _annotated_fields(cls), cls)
            cls._ebpf_struct = found
        return found

    @classmethod
    def __ebpf_codec__(cls) -> Any:
        codec = cls.__dict__.get("_ebpf_codec")
        if codec is None:
            codec = _StructInstanceCodec(cls)
            cls._ebpf_codec = codec
        return codec

    @classmethod
    def size(cls) -> int:
        return cls.layout().size

    @classmethod
    def decode(cls, data: Any) -> Any:
        """An instance from the struct's bytes (longer input, e.g. a padded record, is cut)."""
        codec = cls.__ebpf_codec__()
        return codec.unpack_from(data, 0) if len(data) >= codec.size else codec.decode(data)

    def encode(self) -> bytes:
        return bytes(type(self).__ebpf_codec__().encode(self))

    def _asdict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).layout().fields}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._asdict() == other._asdict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._asdict().items())
        return f"{type(self).__name__}({inner})"


def _zero(t: Type) -> Any:
    if isinstance(t, ArrayType):
        return b"" if t.elem is char else [_zero(t.elem)] * t.count
    if isinstance(t, StructType):
        return t.cls() if t.cls is not None else None
    return 0


def _annotated_fields(cls: type) -> List[Tuple[str, Type]]:
    """The (name, type) of each annotation, string annotations evaluated in the class's module."""
    out: List[Tuple[str, Type]] = []
    module = sys.modules.get(cls.__module__)
    namespace: Dict[str, Any] = dict(vars(module)) if module is not None else {}
    namespace.update(vars(cls))
    for base in reversed(cls.__mro__):
        for fname, ann in base.__dict__.get("__annotations__", {}).items():
            if fname.startswith("_ebpf") or base is Struct:
                continue
            if isinstance(ann, str):
                try:
                    ann = eval(ann, namespace)  # noqa: S307 - the user's own annotation text
                except Exception as e:
                    raise TypeError(f"{cls.__name__}.{fname}: cannot evaluate annotation {ann!r}: {e}") from None
            out.append((fname, type_of(ann)))
    if not out:
        raise TypeError(f"struct {cls.__name__} has no fields")
    return out


def _struct_codec(st: StructType) -> Any:
    from ebpf.maps.codec import StructCodec, codec_for

    codec = StructCodec([(f.name, codec_for(f.type)) for f in st.fields.values()], name=st.name)
    if list(codec.offsets) != [f.offset for f in st.fields.values()] or codec.size != st.size:
        raise TypeError(f"struct {st.name}: codec layout disagrees with the compiler's")
    return codec


class _StructInstanceCodec:
    """A codec producing instances of a Struct class (wraps a StructCodec)."""

    def __new__(cls, struct_cls: Any) -> Any:
        from ebpf.maps.codec import Codec

        inner = _struct_codec(struct_cls.layout())
        names = list(struct_cls.layout().fields)

        class InstanceCodec(Codec):
            __slots__ = ()

            def pack_into(self, buf: Any, offset: int, value: Any) -> None:
                inner.pack_into(buf, offset, value)

            def unpack_from(self, buf: Any, offset: int = 0) -> Any:
                values = inner.unpack_from(buf, offset)
                obj = struct_cls.__new__(struct_cls)
                obj.__dict__.update(zip(names, values))
                return obj

        return InstanceCodec(inner.size, inner.align, struct_cls.__name__)


class KernelType(Type):
    """A kernel type named in BTF (``struct task_struct``), resolved on first use.

    Size and members come from the BTF the program is compiled against (the running
    kernel's); accesses emit CO-RE relocations so the loader can move them to another kernel.
    """

    def __init__(self, name: str, btf_type: Any = None) -> None:
        self.c_name = name if " " in name else f"struct {name}"
        self.name = self.c_name
        self._btf_type = btf_type
        self.align = 8

    @property
    def btf_type(self) -> Any:
        if self._btf_type is None:
            from ebpf.btf import Kind, kernel_btf

            kind_word, _, bare = self.c_name.partition(" ")
            kinds: Any = {"struct": Kind.STRUCT, "union": Kind.UNION, "enum": (Kind.ENUM, Kind.ENUM64),
                          "typedef": Kind.TYPEDEF}.get(kind_word)
            self._btf_type = kernel_btf().type_by_name(bare, kinds)
        return self._btf_type

    @property
    def size(self) -> int:  # type: ignore[override]
        return int(self.btf_type.btf.size_of(self.btf_type))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KernelType) and other.c_name == self.c_name

    def __hash__(self) -> int:
        return hash(("ktype", self.c_name))


_KTYPES: Dict[str, KernelType] = {}


def ktype(name: str) -> KernelType:
    """A kernel type by name: ``ktype("task_struct")``, ``ktype("struct sock")``."""
    key = name if " " in name else f"struct {name}"
    found = _KTYPES.get(key)
    if found is None:
        found = _KTYPES[key] = KernelType(key)
    return found


_BY_NAME: Dict[str, Type] = {
    t.name: t for t in (u8, u16, u32, u64, i8, i16, i32, i64, char, boolean)
}
_BY_NAME.update({"s8": i8, "s16": i16, "s32": i32, "s64": i64, "int": i32, "void": void})


def type_of(spec: Any) -> Type:
    """The DSL type for an annotation or argument: a Type, a Struct class, a name (``"u32"``)."""
    if isinstance(spec, Type):
        return spec
    if isinstance(spec, type) and issubclass(spec, Struct) and spec is not Struct:
        return spec.layout()
    if spec is bool:
        return boolean
    if spec is int:
        return i64
    if isinstance(spec, str):
        text = spec.strip()
        if text.endswith("]") and "[" in text:
            base, _, n = text[:-1].partition("[")
            n = n.strip()
            if n.isascii() and n.isdigit() and len(n) <= 19:  # int() would take "1_0" and fail on 5,000 digits
                return type_of(base)[int(n)]
        found = _BY_NAME.get(text)
        if found is not None:
            return found
    raise TypeError(f"not a DSL type: {brief(repr(spec) if isinstance(spec, str) else spec)} "
                    "(use u8..u64, i8..i64, bool, char[N], T[N] or a Struct class)")


def promote(t: IntType) -> IntType:
    """C's integer promotion: anything narrower than 32 bits (and bool) becomes i32."""
    return i32 if t.size < 4 else t


def common_type(a: IntType, b: IntType) -> IntType:
    """C's usual arithmetic conversions on two (promoted) integer types."""
    a, b = promote(a), promote(b)
    if a == b:
        return a
    if a.signed == b.signed:
        return a if a.size >= b.size else b
    unsigned, signed = (a, b) if not a.signed else (b, a)
    return signed if signed.size > unsigned.size else unsigned


def literal_type(value: int) -> IntType:
    """The type of an integer literal: the first of i32, u32, i64, u64 that holds it."""
    for t in (i32, u32, i64, u64):
        if t.fits(value):
            return t
    raise OverflowError(f"integer literal {brief(value)} does not fit in 64 bits")
