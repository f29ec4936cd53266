"""Kernel types from BTF as DSL types, and CO-RE records for every access to them.

A kernel pointer's fields are found in the kernel BTF the program is compiled against (the
running kernel's); each access produces a :class:`ebpf.btf.relo.CoreRelo` naming the root
type and the access path (``struct task_struct`` + ``("real_parent",)``), with the offset
resolved here as its ``local_value``. The loader re-resolves the record against the target
kernel's BTF, so the compiled program stays portable. Only this module imports ``ebpf.btf``,
and only when a program touches kernel data.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ebpf.lang.types import (
    ArrayType,
    IntType,
    KernelType,
    PtrType,
    Type,
    boolean,
    char,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    void,
)

_INTS = {(1, False): u8, (2, False): u16, (4, False): u32, (8, False): u64,
         (1, True): i8, (2, True): i16, (4, True): i32, (8, True): i64}


class KernelTypeError(Exception):
    """A kernel type or member that cannot be used (missing, bitfield, float...)."""


def int_type(size: int, signed: bool) -> IntType:
    found = _INTS.get((size, signed))
    if found is None:
        raise KernelTypeError(f"no {size}-byte integer type")
    return found


def kernel_type_of(t: Any) -> KernelType:
    """The DSL type of a BTF struct/union (anonymous ones keep their BTF type object)."""
    from ebpf.btf import types as T

    kind = "union" if isinstance(t, T.Union) else "struct"
    if t.name:
        from ebpf.lang.types import ktype

        kt = ktype(f"{kind} {t.name}")
        if kt._btf_type is None:
            kt._btf_type = t
        return kt
    return KernelType(f"{kind} <anon {t.id}>", t)


def dsl_type(t: Any, space: str) -> Type:
    """A BTF type as a DSL type; pointers get ``space`` (or ``user`` under a ``__user`` tag)."""
    from ebpf.btf import types as T

    t = t.btf.resolve(t) if not isinstance(t, T.Void) else t
    if isinstance(t, T.Void):
        return void
    if isinstance(t, T.Int):
        if t.is_bool:
            return boolean
        if t.size == 1 and (t.is_char or t.name == "char"):  # pahole leaves `char` unflagged
            return char
        if t.size > 8:
            return ArrayType(u8, t.size)
        return int_type(t.size, t.signed)
    if isinstance(t, T.Enum):
        return int_type(t.size, t.signed)
    if isinstance(t, T.Pointer):
        target_space = space
        inner = t.type
        for _ in range(16):
            if isinstance(inner, T.TypeTag) and inner.name == "user":
                target_space = "user"
            if isinstance(inner, (T.Qualifier, T.TypeTag, T.Typedef)):
                inner = inner.type
            else:
                break
        if isinstance(inner, T.Composite):
            return PtrType(kernel_type_of(inner), target_space)
        if isinstance(inner, (T.FuncProto, T.Fwd, T.Void)):
            return PtrType(void, target_space)
        try:
            return PtrType(dsl_type(inner, target_space), target_space)
        except KernelTypeError:
            return PtrType(void, target_space)
    if isinstance(t, T.Composite):
        return kernel_type_of(t)
    if isinstance(t, T.Array):
        elem = dsl_type(t.type, space)
        if t.nelems == 0:
            arr = ArrayType.__new__(ArrayType)
            arr.elem, arr.count, arr.size, arr.align, arr.name = elem, 0, 0, elem.align, f"{elem.name}[]"
            return arr
        return ArrayType(elem, t.nelems)
    raise KernelTypeError(f"kernel type {t!r} has no DSL equivalent")


def member(kt: KernelType, name: str) -> Tuple[int, Type]:
    """(byte offset, DSL type) of member ``name`` of kernel struct/union ``kt``."""
    from ebpf.btf import types as T

    comp = kt.btf_type.btf.resolve(kt.btf_type)
    if not isinstance(comp, T.Composite):
        raise KernelTypeError(f"{kt.name} is not a struct or union")
    found = comp.find_member(name)
    if found is None:
        raise KernelTypeError(f"{kt.name} has no member {name!r}")
    if found.bitfield_size:
        raise KernelTypeError(f"{kt.name}.{name} is a bitfield: bitfields are not supported yet")
    return found.byte_offset, dsl_type(found.member.type, "kernel")


def field_relo(root: str, access: Tuple[Any, ...], value: int, kind: str = "FIELD_BYTE_OFFSET") -> Any:
    from ebpf.btf.relo import CoreRelo
    from ebpf.uapi import CoreReloKind

    return CoreRelo(CoreReloKind[kind], root, access, value)


def lookup_kernel_type(name: str) -> Optional[KernelType]:
    """``"struct task_struct"``/``"task_struct"`` from the kernel BTF, or None when absent."""
    from ebpf.btf import BTFError
    from ebpf.lang.types import ktype

    kt = ktype(name)
    try:
        kt.btf_type  # noqa: B018 - resolve now
    except BTFError:
        return None
    return kt


def enum_lookup(enum: str, name: str) -> Optional[int]:
    from ebpf.btf import BTFError, Kind, kernel_btf

    bare = enum.split(" ", 1)[1] if enum.startswith("enum ") else enum
    try:
        t = kernel_btf().type_by_name(bare, (Kind.ENUM, Kind.ENUM64))
    except BTFError:
        return None
    return t.value_of(name)  # type: ignore[attr-defined]


def func_proto(name: str) -> Any:
    """The FuncProto of kernel function ``name`` (BTF FUNC), or None."""
    from ebpf.btf import BTFError, Kind, kernel_btf

    try:
        f = kernel_btf().type_by_name(name, Kind.FUNC)
    except BTFError:
        return None
    return f


def btf_id_of(name: str, kind: str) -> int:
    from ebpf.btf import Kind, kernel_btf

    return int(kernel_btf().type_by_name(name, Kind[kind]).id)
