"""CO-RE access specs: a field path followed through one BTF, and the values a field relocation takes.

A path (``CoreRelo.access``) is what libbpf calls the high-level spec: member names and array
indices from the root type, led by the index of the root pointer used as an array. Following
it through a type gives a :class:`FieldSpec`: one :class:`Accessor` per step (the member found,
through anonymous structs/unions, or the array element) and the bit offset reached.

:func:`local_spec` follows a path through the program's own (local) type, where every step
must exist; :func:`match_field` follows it through a target candidate the way libbpf's
``bpf_core_spec_match`` does: members found by name (searching anonymous members depth first),
each checked with :func:`~ebpf.btf.core_compat.fields_are_compat` against the local member
when the local type is known, array indices bounds checked (a zero-length array as the last
member is flexible). :func:`field_value` computes what each field relocation kind yields
(libbpf's ``bpf_core_calc_field_relo``), bitfields included, for either byte order.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

from ebpf.btf import types as T
from ebpf.btf.core_compat import MAX_DEPTH, fields_are_compat, strip
from ebpf.btf.errors import BTFError
from ebpf.errors import RelocationError
from ebpf.uapi import CoreReloKind

Step = Union[str, int]

#: libbpf's BPF_CORE_SPEC_MAX_LEN: accessors in one spec, anonymous members included.
MAX_SPEC_LEN = 64


class Accessor(NamedTuple):
    """One step of a followed path.

    For a member: *name* is its name, *parent* the struct/union that holds it (an anonymous
    one when the member was found inside it), *idx* its position there, *member* the
    member. For an array index (and for the first step, the root used as an array): *name*
    is "", *parent* the array (the root type for the first step), *idx* the index, and
    *type* the element reached.
    """

    name: str
    idx: int
    parent: T.Type
    type: T.Type
    member: Optional[T.Member]
    bitfield_size: int


class FieldSpec(NamedTuple):
    """A path followed through a root type: the accessors and the bit offset from the root."""

    root: T.Type
    accessors: Tuple[Accessor, ...]
    bit_offset: int
    raw_len: int  # accessors counting the anonymous members passed through (libbpf's raw spec)

    @property
    def last(self) -> Accessor:
        return self.accessors[-1]

    @property
    def btf_name(self) -> str:
        return self.root.btf.name


class Mismatch(Exception):
    """A path that does not lead anywhere in one type (not an error: the candidate is skipped)."""


class FieldValue(NamedTuple):
    """What a field relocation kind gives for a spec.

    *size*/*type* are the accessed field's byte size and (stripped) type for FIELD_BYTE_OFFSET
    of a non-bitfield field, used to adjust load/store sizes; 0/None otherwise. *validate*
    says whether the compiled instruction must hold this value for the local spec (libbpf
    skips that check for bitfields, whose offsets compilers choose freely).
    """

    value: int
    size: int = 0
    type: Optional[T.Type] = None
    validate: bool = True


def describe_type(t: T.Type) -> str:
    """``struct task_struct``, ``union (anon)``, ``int``, ``char *[16]``... for messages.

    Walked iteratively and at most ``MAX_DEPTH`` levels deep: a fuzzed or broken BTF may make
    a pointer, array or qualifier refer to itself, and a message must never fail to be built.
    """
    prefix = {T.Struct: "struct ", T.Union: "union ", T.Enum: "enum ", T.Enum64: "enum ", T.Fwd: "fwd "}
    outer: List[Tuple[str, str]] = []  # (before, after) the inner text, outermost first
    for _ in range(MAX_DEPTH):
        label = prefix.get(type(t), "")
        if t.name:
            inner = label + t.name
        elif isinstance(t, T.Void):
            inner = "void"
        elif isinstance(t, (T.Pointer, T.Array, T.Qualifier, T.TypeTag)):
            if isinstance(t, T.Pointer):
                outer.append(("", " *"))
            elif isinstance(t, T.Array):
                outer.append(("", f"[{t.nelems}]"))
            else:
                outer.append((f"{t.kind.name.lower()} ", ""))
            t = t.type
            continue
        else:
            inner = f"{label or t.kind.name.lower() + ' '}(anon) [{t.id}]"
        break
    else:
        inner = f"[{t.id}] (a loop?)"
    for before, after in reversed(outer):
        inner = before + inner + after
    return inner


def split_path(access: Sequence[Step]) -> Tuple[int, Tuple[Step, ...]]:
    """The root index (a leading int, default 0) and the steps after it."""
    if access and isinstance(access[0], int) and not isinstance(access[0], bool):
        return access[0], tuple(access[1:])
    return 0, tuple(access)


def _size(t: T.Type) -> int:
    try:
        return t.btf.size_of(t)
    except BTFError as e:
        raise Mismatch(f"{describe_type(t)} has no size ({e})") from None


def _root_accessor(root: T.Type, index: int) -> Tuple[Accessor, int]:
    if index < 0:
        raise RelocationError(f"negative array index {index} in a CO-RE access path")
    bits = index * _size(root) * 8 if index else 0
    return Accessor("", index, root, strip(root), None, 0), bits


def _path_text(root: T.Type, steps: Sequence[Step], upto: int) -> str:
    out = describe_type(root)
    for step in steps[:upto]:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out


def _array_step(
    current: T.Type, prev: Accessor, index: int, where: str
) -> Tuple[Accessor, int]:
    arr = strip(current)
    if not isinstance(arr, T.Array):
        raise Mismatch(f"{where} is {describe_type(arr)}, not an array")
    if index < 0:
        raise RelocationError(f"negative array index {index} in a CO-RE access path")
    flex = (
        arr.nelems == 0
        and bool(prev.name)
        and isinstance(prev.parent, T.Composite)
        and prev.idx == len(prev.parent.members) - 1
    )
    if not flex and index >= arr.nelems:
        raise Mismatch(f"index {index} is out of bounds of {where} ({arr.nelems} elements)")
    elem = strip(arr.type)
    return Accessor("", index, arr, elem, None, 0), index * _size(elem) * 8


def local_spec(root: T.Type, access: Sequence[Step]) -> FieldSpec:
    """Follow *access* through the local type *root*; :class:`Mismatch` if a step does not exist."""
    index, steps = split_path(access)
    acc, bits = _root_accessor(root, index)
    accessors = [acc]
    raw = 1
    for i, step in enumerate(steps):
        current = accessors[-1].type
        where = _path_text(root, steps, i)
        if isinstance(step, str):
            parent = strip(current)
            if not isinstance(parent, T.Composite):
                raise Mismatch(f"{where} is {describe_type(parent)}, not a struct or union")
            found = _find(parent, step, None, 0, [])
            if found is None:
                raise Mismatch(f"no field {step} in {describe_type(parent) if i else describe_type(root)}")
            holder, member, member_bits, depth = found
            bits += member_bits
            raw += depth + 1
            accessors.append(Accessor(step, member.index, holder, strip(member.type), member, member.bitfield_size))
        else:
            acc, step_bits = _array_step(current, accessors[-1], step, where)
            bits += step_bits
            raw += 1
            accessors.append(acc)
        if raw > MAX_SPEC_LEN:
            raise RelocationError(f"CO-RE access path {_path_text(root, steps, i + 1)} is too long")
    return FieldSpec(root, tuple(accessors), bits, raw)


def match_field(target_root: T.Type, access: Sequence[Step], local: Optional[FieldSpec]) -> FieldSpec:
    """Follow *access* through the target candidate *target_root*, checking each member
    against the local spec when there is one; :class:`Mismatch` (with the reason) if it
    does not match."""
    index, steps = split_path(access)
    acc, bits = _root_accessor(target_root, index)
    accessors = [acc]
    raw = 1
    for i, step in enumerate(steps):
        current = accessors[-1].type
        where = _path_text(target_root, steps, i)
        if isinstance(step, str):
            parent = strip(current)
            if not isinstance(parent, T.Composite):
                raise Mismatch(f"{where} is {describe_type(parent)}, not a struct or union")
            local_member = local.accessors[i + 1].member if local is not None else None
            incompatible: List[str] = []
            found = _find(parent, step, local_member, 0, incompatible)
            if found is None:
                if incompatible:
                    raise Mismatch(incompatible[0])
                raise Mismatch(f"no field {step} in {describe_type(parent) if i else describe_type(target_root)}")
            holder, member, member_bits, depth = found
            bits += member_bits
            raw += depth + 1
            accessors.append(Accessor(step, member.index, holder, strip(member.type), member, member.bitfield_size))
        else:
            acc, step_bits = _array_step(current, accessors[-1], step, where)
            bits += step_bits
            raw += 1
            accessors.append(acc)
        if raw > MAX_SPEC_LEN:
            raise Mismatch(f"{_path_text(target_root, steps, i + 1)} nests more than {MAX_SPEC_LEN} accessors")
    return FieldSpec(target_root, tuple(accessors), bits, raw)


def _find(
    parent: T.Composite, name: str, local_member: Optional[T.Member], depth: int, incompatible: List[str]
) -> Optional[Tuple[T.Composite, T.Member, int, int]]:
    """The member *name* of *parent* or of its anonymous members, depth first in declaration
    order: (holder, member, bit offset from *parent*, anonymous levels passed). A member of
    that name whose type is not compatible with *local_member*'s ends the search of its
    struct (libbpf's bpf_core_match_member); the reason is appended to *incompatible*."""
    for m in parent.members:
        if m.name == name:
            if local_member is not None and not fields_are_compat(local_member.type, m.type):
                incompatible.append(
                    f"field {name} of {describe_type(parent)} is {describe_type(strip(m.type))}, "
                    f"not compatible with the local {describe_type(strip(local_member.type))}"
                )
                return None
            return parent, m, m.bit_offset, depth
        if m.name:
            continue
        inner = strip(m.type)
        if not isinstance(inner, T.Composite):
            continue
        if depth >= MAX_SPEC_LEN:
            raise RelocationError(f"anonymous members of {describe_type(parent)} nest too deep (a loop?)")
        found = _find(inner, name, local_member, depth + 1, incompatible)
        if found is not None:
            holder, member, bits, level = found
            return holder, member, m.bit_offset + bits, level
    return None


def field_value(kind: CoreReloKind, spec: FieldSpec, byte_order: str) -> FieldValue:
    """The value of field relocation *kind* (not FIELD_EXISTS) for a followed path."""
    acc = spec.last
    if not acc.name:  # an array element (or the root itself) is accessed
        if kind == CoreReloKind.FIELD_BYTE_OFFSET:
            elem = acc.type
            for _ in range(MAX_DEPTH):
                if not isinstance(elem, T.Array):
                    break
                elem = strip(elem.type)
            else:
                raise RelocationError(f"{describe_type(acc.type)}: arrays nest more than {MAX_DEPTH} deep")
            return FieldValue(spec.bit_offset // 8, _value_size(elem), elem)
        if kind == CoreReloKind.FIELD_BYTE_SIZE:
            return FieldValue(_value_size(acc.type))
        raise RelocationError(f"{kind.name} cannot be applied to an array element access")
    member = acc.member
    assert member is not None
    field_type = acc.type
    bit_off = spec.bit_offset
    bit_sz = acc.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        if not isinstance(field_type, (T.Int, T.Enum)):
            raise RelocationError(f"bitfield {acc.name} has type {describe_type(field_type)}")
        byte_sz = field_type.size
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise RelocationError(
                    f"bitfield {acc.name} of {describe_type(acc.parent)} cannot be read with a 64-bit load"
                )
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = _value_size(field_type)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    if kind == CoreReloKind.FIELD_BYTE_OFFSET:
        if bitfield:
            return FieldValue(byte_off, validate=False)
        return FieldValue(byte_off, byte_sz, field_type)
    if kind == CoreReloKind.FIELD_BYTE_SIZE:
        return FieldValue(byte_sz, validate=not bitfield)
    if kind == CoreReloKind.FIELD_SIGNED:
        signed = (isinstance(field_type, T.Enum) and field_type.signed) or (
            isinstance(field_type, T.Int) and field_type.signed
        )
        return FieldValue(int(signed))
    if kind == CoreReloKind.FIELD_LSHIFT_U64:
        if byte_order == "big":
            value = (8 - byte_sz) * 8 + (bit_off - byte_off * 8)
        else:
            value = 64 - (bit_off + bit_sz - byte_off * 8)
        return FieldValue(value, validate=not bitfield)
    if kind == CoreReloKind.FIELD_RSHIFT_U64:
        return FieldValue(64 - bit_sz)
    raise RelocationError(f"{kind.name} is not a field relocation")


def _value_size(t: T.Type) -> int:
    try:
        return t.btf.size_of(t)
    except BTFError as e:
        raise RelocationError(f"{describe_type(t)} has no size: {e}") from None
