"""The types of a BTF blob, one class per kind.

A type object is a view bound to the :class:`~ebpf.btf.spec.BTF` it was read from: it keeps
the ids of the types it refers to and looks them up on access (``ptr.type``,
``member.type``), so inflating one struct never drags in the thousands of types reachable
from it. A BTF memoises what it inflates, so each id has one object and ``is``/``==``
compare identity. Attributes mirror the record fields of include/uapi/linux/btf.h with the
kind flag turned into what it means for that kind (bitfield offsets, enum signedness,
union forward declarations, attribute-style tags).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, NamedTuple, Optional, Tuple

from ebpf.btf.kinds import FuncLinkage, IntEncoding, Kind, VarLinkage
from ebpf.btf.names import essential_name

if TYPE_CHECKING:
    from ebpf.btf.spec import BTF


class Type:
    """Common part of every type: the BTF it belongs to, its id and its name ("" if anonymous)."""

    __slots__ = ("btf", "id", "name")
    kind: ClassVar[Kind] = Kind.UNKN

    def __init__(self, btf: BTF, type_id: int, name: str) -> None:
        self.btf = btf
        self.id = type_id
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{self.id}] {self.name or '(anon)'}>"

    @property
    def essential_name(self) -> str:
        """The name without a ``___flavour`` suffix: what CO-RE matches kernel types by."""
        return essential_name(self.name)

    def resolve(self) -> Type:
        """The type behind typedefs, const/volatile/restrict and type tags."""
        return self.btf.resolve(self)

    def unqualified(self) -> Type:
        """The type behind const/volatile/restrict and type tags (typedefs kept)."""
        return self.btf.unqualified(self)

    def sizeof(self) -> int:
        """Size in bytes, as C's ``sizeof`` (pointers sized by the blob's ``long``)."""
        return self.btf.size_of(self)

    def alignof(self) -> int:
        """Natural alignment in bytes (1 for structs whose layout shows they are packed)."""
        return self.btf.align_of(self)


class Void(Type):
    """Type id 0: ``void``. It has no record; pointers to it and functions returning it use id 0."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<Void [0]>"


class Unknown(Type):
    """A record of a kind newer than this reader, skipped thanks to the blob's layout section."""

    __slots__ = ("raw_kind",)

    def __init__(self, btf: BTF, type_id: int, name: str, raw_kind: int) -> None:
        super().__init__(btf, type_id, name)
        self.raw_kind = raw_kind


class Int(Type):
    """An integer (or char/bool) of *size* bytes, *bits* of which are used from *bit_offset*."""

    __slots__ = ("size", "encoding", "bit_offset", "bits")
    kind = Kind.INT

    def __init__(
        self, btf: BTF, type_id: int, name: str, size: int, encoding: int, bit_offset: int, bits: int
    ) -> None:
        super().__init__(btf, type_id, name)
        self.size = size
        self.encoding = IntEncoding(encoding & 0x7)
        self.bit_offset = bit_offset
        self.bits = bits

    @property
    def signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)

    @property
    def is_char(self) -> bool:
        return bool(self.encoding & IntEncoding.CHAR)

    @property
    def is_bool(self) -> bool:
        return bool(self.encoding & IntEncoding.BOOL)


class Float(Type):
    __slots__ = ("size",)
    kind = Kind.FLOAT

    def __init__(self, btf: BTF, type_id: int, name: str, size: int) -> None:
        super().__init__(btf, type_id, name)
        self.size = size


class Reference(Type):
    """A type that refers to one other type by id (``type_id``; ``type`` looks it up)."""

    __slots__ = ("type_id",)

    def __init__(self, btf: BTF, type_id: int, name: str, target: int) -> None:
        super().__init__(btf, type_id, name)
        self.type_id = target

    @property
    def type(self) -> Type:
        return self.btf.type_by_id(self.type_id)


class Pointer(Reference):
    __slots__ = ()
    kind = Kind.PTR


class Typedef(Reference):
    __slots__ = ()
    kind = Kind.TYPEDEF


class Qualifier(Reference):
    """const, volatile, restrict: they change how a type may be used, never its layout."""

    __slots__ = ()


class Volatile(Qualifier):
    __slots__ = ()
    kind = Kind.VOLATILE


class Const(Qualifier):
    __slots__ = ()
    kind = Kind.CONST


class Restrict(Qualifier):
    __slots__ = ()
    kind = Kind.RESTRICT


class TypeTag(Reference):
    """``btf_type_tag("name")`` on the type it refers to; *attribute* (kflag) means it is written
    as ``__attribute__((name))`` instead."""

    __slots__ = ("attribute",)
    kind = Kind.TYPE_TAG

    def __init__(self, btf: BTF, type_id: int, name: str, target: int, attribute: bool) -> None:
        super().__init__(btf, type_id, name, target)
        self.attribute = attribute


class Func(Reference):
    """A function: *name*, its FUNC_PROTO (``type``) and its linkage."""

    __slots__ = ("linkage",)
    kind = Kind.FUNC

    def __init__(self, btf: BTF, type_id: int, name: str, target: int, linkage: int) -> None:
        super().__init__(btf, type_id, name, target)
        self.linkage = FuncLinkage(linkage) if linkage in (0, 1, 2) else linkage


class Var(Reference):
    """A global or static variable of type ``type``."""

    __slots__ = ("linkage",)
    kind = Kind.VAR

    def __init__(self, btf: BTF, type_id: int, name: str, target: int, linkage: int) -> None:
        super().__init__(btf, type_id, name, target)
        self.linkage = VarLinkage(linkage) if linkage in (0, 1, 2) else linkage


class DeclTag(Reference):
    """``btf_decl_tag(name)`` on type ``type``, or on its member/parameter *component_idx*
    (-1: on the type itself); *attribute* (kflag) marks an ``__attribute__`` style tag."""

    __slots__ = ("component_idx", "attribute")
    kind = Kind.DECL_TAG

    def __init__(
        self, btf: BTF, type_id: int, name: str, target: int, component_idx: int, attribute: bool
    ) -> None:
        super().__init__(btf, type_id, name, target)
        self.component_idx = component_idx
        self.attribute = attribute


class Array(Reference):
    """``nelems`` elements of ``type`` (the element type); ``index_type`` is what indexes it."""

    __slots__ = ("index_type_id", "nelems")
    kind = Kind.ARRAY

    def __init__(self, btf: BTF, type_id: int, element: int, index_type: int, nelems: int) -> None:
        super().__init__(btf, type_id, "", element)
        self.index_type_id = index_type
        self.nelems = nelems

    @property
    def index_type(self) -> Type:
        return self.btf.type_by_id(self.index_type_id)


class Member:
    """One member of a struct or union, with its offset in bits from the start of its parent."""

    __slots__ = ("btf", "name", "type_id", "index", "_offset", "_kflag")

    def __init__(self, btf: BTF, name: str, type_id: int, offset: int, kflag: bool, index: int) -> None:
        self.btf = btf
        self.name = name
        self.type_id = type_id
        self.index = index
        self._offset = offset
        self._kflag = kflag

    def __repr__(self) -> str:
        bits = f":{self.bitfield_size}" if self.bitfield_size else ""
        return f"<Member {self.name or '(anon)'} type=[{self.type_id}] bit_offset={self.bit_offset}{bits}>"

    @property
    def type(self) -> Type:
        return self.btf.type_by_id(self.type_id)

    @property
    def raw_bitfield_size(self) -> int:
        """The bitfield size the record states (kind flag set), 0 otherwise."""
        return self._offset >> 24 if self._kflag else 0

    @property
    def bit_offset(self) -> int:
        """Offset in bits from the start of the parent (an INT's own bit offset is ignored, as
        libbpf does: no encoder sets it)."""
        return self._offset & 0xFFFFFF if self._kflag else self._offset

    @property
    def bitfield_size(self) -> int:
        """Width of a bitfield in bits, 0 for an ordinary member.

        Without the struct's kind flag, old encoders describe a bitfield as a member whose
        INT type uses fewer bits than its size (btf.rst 2.2.4); that counts as well.
        """
        if self._kflag:
            return self._offset >> 24
        int_type = self._int_bitfield()
        return int_type.bits if int_type is not None else 0

    @property
    def byte_offset(self) -> int:
        """Offset in bytes (of the storage unit's first byte, for a bitfield)."""
        return self.bit_offset // 8

    def _int_bitfield(self) -> Optional[Int]:
        target = self.btf.resolve(self.type_id)
        if isinstance(target, Int) and (target.bit_offset or target.bits != target.size * 8):
            return target
        return None


class Field(NamedTuple):
    """A member found by name from an outer struct, perhaps inside anonymous members.

    *bit_offset* counts from the start of the outer struct. *path* lists member indices from
    the outer struct down to the member, anonymous members included: CO-RE's access string.
    """

    member: Member
    bit_offset: int
    bitfield_size: int
    path: Tuple[int, ...]

    @property
    def name(self) -> str:
        return self.member.name

    @property
    def type(self) -> Type:
        return self.member.type

    @property
    def byte_offset(self) -> int:
        return self.bit_offset // 8


class Composite(Type):
    """What structs and unions share: a size and members."""

    __slots__ = ("size", "members")

    def __init__(self, btf: BTF, type_id: int, name: str, size: int, members: Tuple[Member, ...]) -> None:
        super().__init__(btf, type_id, name)
        self.size = size
        self.members = members

    def member(self, name: str) -> Optional[Member]:
        """The direct member called *name* (anonymous members are not searched)."""
        for m in self.members:
            if m.name == name:
                return m
        return None

    def find_member(self, name: str) -> Optional[Field]:
        """The member *name*, searching anonymous struct/union members too, the way CO-RE does."""
        from ebpf.btf.fields import find_member

        return find_member(self, name)

    def field(self, name: str) -> Field:
        """Like :meth:`find_member`, but a missing member is a :class:`BTFError`.

        *name* may be a dotted path through embedded (not pointed-to) structs: ``"se.vruntime"``.
        """
        from ebpf.btf.fields import field_path

        return field_path(self, name)


class Struct(Composite):
    __slots__ = ()
    kind = Kind.STRUCT


class Union(Composite):
    __slots__ = ()
    kind = Kind.UNION


class EnumValue(NamedTuple):
    name: str
    value: int


class Enum(Type):
    """An enumeration of *size* bytes; *signed* comes from the kind flag."""

    __slots__ = ("size", "signed", "values")
    kind = Kind.ENUM

    def __init__(
        self, btf: BTF, type_id: int, name: str, size: int, signed: bool, values: Tuple[EnumValue, ...]
    ) -> None:
        super().__init__(btf, type_id, name)
        self.size = size
        self.signed = signed
        self.values = values

    def value_of(self, name: str) -> Optional[int]:
        """The value of enumerator *name*, or None if this enum has no such enumerator."""
        for v in self.values:
            if v.name == name:
                return v.value
        return None


class Enum64(Enum):
    """An enumeration with 64-bit values (BTF_KIND_ENUM64)."""

    __slots__ = ()
    kind = Kind.ENUM64


class Fwd(Type):
    """A forward declaration: ``struct name;`` or, with *is_union*, ``union name;``."""

    __slots__ = ("is_union",)
    kind = Kind.FWD

    def __init__(self, btf: BTF, type_id: int, name: str, is_union: bool) -> None:
        super().__init__(btf, type_id, name)
        self.is_union = is_union


class Param:
    """A FUNC_PROTO parameter; the last one having type id 0 makes the prototype variadic."""

    __slots__ = ("btf", "name", "type_id")

    def __init__(self, btf: BTF, name: str, type_id: int) -> None:
        self.btf = btf
        self.name = name
        self.type_id = type_id

    def __repr__(self) -> str:
        return f"<Param {self.name or '(anon)'} type=[{self.type_id}]>"

    @property
    def type(self) -> Type:
        return self.btf.type_by_id(self.type_id)


class FuncProto(Reference):
    """A function signature: ``type`` is the return type, *params* the parameters."""

    __slots__ = ("params",)
    kind = Kind.FUNC_PROTO

    def __init__(self, btf: BTF, type_id: int, returns: int, params: Tuple[Param, ...]) -> None:
        super().__init__(btf, type_id, "", returns)
        self.params = params

    @property
    def variadic(self) -> bool:
        return bool(self.params) and self.params[-1].type_id == 0


class VarSecinfo:
    """A variable (or function) placed in a DATASEC at *offset*, *size* bytes long."""

    __slots__ = ("btf", "type_id", "offset", "size")

    def __init__(self, btf: BTF, type_id: int, offset: int, size: int) -> None:
        self.btf = btf
        self.type_id = type_id
        self.offset = offset
        self.size = size

    def __repr__(self) -> str:
        return f"<VarSecinfo type=[{self.type_id}] offset={self.offset} size={self.size}>"

    @property
    def type(self) -> Type:
        return self.btf.type_by_id(self.type_id)


class Datasec(Type):
    """An ELF data section (``.data``, ``.bss``, ``.data..percpu``...) and what it holds."""

    __slots__ = ("size", "vars")
    kind = Kind.DATASEC

    def __init__(self, btf: BTF, type_id: int, name: str, size: int, secinfos: Tuple[VarSecinfo, ...]) -> None:
        super().__init__(btf, type_id, name)
        self.size = size
        self.vars = secinfos


#: The class that represents each kind.
CLASS_OF_KIND = {
    Kind.INT: Int, Kind.PTR: Pointer, Kind.ARRAY: Array, Kind.STRUCT: Struct, Kind.UNION: Union,
    Kind.ENUM: Enum, Kind.FWD: Fwd, Kind.TYPEDEF: Typedef, Kind.VOLATILE: Volatile,
    Kind.CONST: Const, Kind.RESTRICT: Restrict, Kind.FUNC: Func, Kind.FUNC_PROTO: FuncProto,
    Kind.VAR: Var, Kind.DATASEC: Datasec, Kind.FLOAT: Float, Kind.DECL_TAG: DeclTag,
    Kind.TYPE_TAG: TypeTag, Kind.ENUM64: Enum64,
}
