"""Finding struct/union members by name, through anonymous members, with their bit offsets.

C lets the members of an anonymous struct or union be named as if they were the parent's
(``sk->skc_family`` is ``sk->__sk_common.skc_family``; ``task->__state`` may sit in an anonymous
union on some kernels). CO-RE matches fields by name the same way, so the search descends
into unnamed struct/union members in declaration order, depth first, as libbpf does, adding
up offsets on the way.
"""

from __future__ import annotations

from typing import Optional, Tuple

from ebpf.btf.errors import BTFError
from ebpf.btf.types import Composite, Field

_MAX_NESTING = 32


def find_member(outer: Composite, name: str) -> Optional[Field]:
    """The member *name* of *outer* or of its anonymous members, or None."""
    return _search(outer, name, 0, (), 0)


def _search(parent: Composite, name: str, base_bits: int, path: Tuple[int, ...], depth: int) -> Optional[Field]:
    for m in parent.members:
        if m.name == name:
            return Field(m, base_bits + m.bit_offset, m.bitfield_size, path + (m.index,))
        if m.name:
            continue
        inner = parent.btf.resolve(m.type_id)
        if not isinstance(inner, Composite):
            continue
        if depth >= _MAX_NESTING:
            raise BTFError(
                f"{parent.btf.name}: anonymous members of type [{parent.id}] nest more than "
                f"{_MAX_NESTING} levels deep (a loop?)"
            )
        found = _search(inner, name, base_bits + m.bit_offset, path + (m.index,), depth + 1)
        if found is not None:
            return found
    return None


def field_path(outer: Composite, dotted: str) -> Field:
    """The member at *dotted* (``"a.b.c"``) through embedded structs/unions; BTFError if absent."""
    current: Composite = outer
    bits = 0
    path: Tuple[int, ...] = ()
    parts = dotted.split(".")
    found: Optional[Field] = None
    for i, part in enumerate(parts):
        found = find_member(current, part)
        where = ".".join(parts[: i + 1])
        if found is None:
            kind = type(current).__name__.lower()
            label = f"{kind} {current.name}" if current.name else f"anonymous {kind} [{current.id}]"
            raise BTFError(f"{label} has no member {part!r} (looking up {where!r} in {outer.name or outer.id})")
        bits += found.bit_offset
        path += found.path
        if i + 1 < len(parts):
            inner = found.type.resolve()
            if not isinstance(inner, Composite):
                raise BTFError(
                    f"{where!r} of {outer.name or outer.id} is a {type(inner).__name__}, "
                    "not an embedded struct or union"
                )
            current = inner
    assert found is not None
    return Field(found.member, bits, found.bitfield_size, path)
