"""CO-RE's three relations between a local type and a target type, as libbpf defines them.

* :func:`fields_are_compat` (``bpf_core_fields_are_compat``): may a field of the local type be
  read as that target field? Any struct/union with any struct/union, ints of any size (but not
  the deprecated bitfield-like ints with a bit offset), pointers and floats of any kind, enums
  and forward declarations whose names agree modulo flavour (or one is anonymous), arrays by
  their elements.
* :func:`types_are_compat` (``bpf_core_types_are_compat``): the relation of TYPE_EXISTS,
  TYPE_SIZE and TYPE_ID_TARGET. Same kind (any enum with any enum) all the way through
  pointers, arrays and function prototypes; composites, enums and forwards by name only.
* :func:`types_match` (``bpf_core_types_match``): TYPE_MATCHES, stricter: ints of equal size
  and signedness, enums of equal size whose every local enumerator exists in the target,
  composites whose every local member has a target member of that name with a matching type,
  arrays of equal length, and behind pointers a struct/union also matches a forward
  declaration of the same kind.

Types carry the BTF they come from, so local and target may be different blobs. Names are
compared by essential name (``task_struct___old`` is ``task_struct``).
"""

from __future__ import annotations

from ebpf.btf import types as T
from ebpf.btf.names import essential_name
from ebpf.errors import RelocationError

#: libbpf's recursion limits (relo_core.c): levels of modifiers/pointers/arrays followed in
#: one chain, and levels of nesting (members, parameters) for the recursive relations.
MAX_DEPTH = 32
MAX_LEVEL = 32


def names_match(local_name: str, target_name: str) -> bool:
    """Essential names equal; an anonymous target only matches an anonymous local."""
    if not target_name:
        return not local_name
    return essential_name(local_name) == essential_name(target_name)


def kinds_compat(a: T.Type, b: T.Type) -> bool:
    """Same kind, or both enums (ENUM and ENUM64 are interchangeable): ``btf_kind_core_compat``."""
    return a.kind == b.kind or (isinstance(a, T.Enum) and isinstance(b, T.Enum))


def strip(t: T.Type) -> T.Type:
    """*t* behind typedefs, const/volatile/restrict and type tags (libbpf's skip_mods_and_typedefs)."""
    return t.btf.resolve(t)


def _int_offset_free(a: T.Type, b: T.Type) -> bool:
    return isinstance(a, T.Int) and isinstance(b, T.Int) and a.bit_offset == 0 and b.bit_offset == 0


def _loop(what: str, local: T.Type, target: T.Type) -> RelocationError:
    return RelocationError(
        f"{what}: types [{local.id}] of {local.btf.name} and [{target.id}] of {target.btf.name} "
        f"nest more than {MAX_DEPTH} levels deep (a loop?)"
    )


def fields_are_compat(local: T.Type, target: T.Type) -> bool:
    """May a local field of type *local* be relocated to a target field of type *target*?"""
    for _ in range(MAX_DEPTH):
        loc, targ = strip(local), strip(target)
        if isinstance(loc, T.Composite) and isinstance(targ, T.Composite):
            return True
        if not kinds_compat(loc, targ):
            return False
        if isinstance(loc, (T.Pointer, T.Float)):
            return True
        if isinstance(loc, (T.Enum, T.Fwd)):
            return not loc.name or not targ.name or essential_name(loc.name) == essential_name(targ.name)
        if isinstance(loc, T.Int):
            return _int_offset_free(loc, targ)
        if isinstance(loc, T.Array) and isinstance(targ, T.Array):
            local, target = loc.type, targ.type
            continue
        return False
    raise _loop("field compatibility", local, target)


def types_are_compat(local: T.Type, target: T.Type, level: int = MAX_LEVEL) -> bool:
    """libbpf's ``bpf_core_types_are_compat`` (the caller has matched the root names)."""
    if not kinds_compat(local, target):
        return False
    for _ in range(MAX_DEPTH):
        loc, targ = strip(local), strip(target)
        if not kinds_compat(loc, targ):
            return False
        if isinstance(loc, (T.Void, T.Composite, T.Enum, T.Fwd)):
            return True
        if isinstance(loc, T.Int):
            return _int_offset_free(loc, targ)
        if isinstance(loc, (T.Pointer, T.Array)) and isinstance(targ, (T.Pointer, T.Array)):
            local, target = loc.type, targ.type
            continue
        if isinstance(loc, T.FuncProto) and isinstance(targ, T.FuncProto):
            if len(loc.params) != len(targ.params):
                return False
            for lp, tp in zip(loc.params, targ.params):
                if level <= 0:
                    raise _loop("type compatibility", loc, targ)
                if not types_are_compat(strip(lp.type), strip(tp.type), level - 1):
                    return False
            local, target = loc.type, targ.type
            continue
        return False
    raise _loop("type compatibility", local, target)


def types_match(local: T.Type, target: T.Type, behind_ptr: bool = False, level: int = MAX_LEVEL) -> bool:
    """libbpf's ``bpf_core_types_match`` (TYPE_MATCHES; root names already matched)."""
    if level <= 0:
        raise _loop("type match", local, target)
    for _ in range(MAX_DEPTH):
        loc, targ = strip(local), strip(target)
        if not names_match(loc.name, targ.name):
            return False
        if isinstance(loc, T.Void):
            return isinstance(targ, T.Void)
        if isinstance(loc, T.Fwd):
            if isinstance(targ, T.Fwd):
                return loc.is_union == targ.is_union
            if behind_ptr:
                return isinstance(targ, T.Union) if loc.is_union else isinstance(targ, T.Struct)
            return False
        if isinstance(loc, T.Enum):
            return isinstance(targ, T.Enum) and _enums_match(loc, targ)
        if isinstance(loc, T.Composite):
            if behind_ptr:
                if loc.kind == targ.kind:
                    return True
                return isinstance(targ, T.Fwd) and targ.is_union == isinstance(loc, T.Union)
            return loc.kind == targ.kind and isinstance(targ, T.Composite) and _composites_match(loc, targ, level)
        if isinstance(loc, T.Int):
            return isinstance(targ, T.Int) and loc.size == targ.size and loc.signed == targ.signed
        if isinstance(loc, T.Pointer):
            if not isinstance(targ, T.Pointer):
                return False
            behind_ptr = True
            local, target = loc.type, targ.type
            continue
        if isinstance(loc, T.Array):
            if not isinstance(targ, T.Array) or loc.nelems != targ.nelems:
                return False
            local, target = loc.type, targ.type
            continue
        if isinstance(loc, T.FuncProto):
            if not isinstance(targ, T.FuncProto) or len(loc.params) != len(targ.params):
                return False
            for lp, tp in zip(loc.params, targ.params):
                if not types_match(lp.type, tp.type, behind_ptr, level - 1):
                    return False
            local, target = loc.type, targ.type
            continue
        return False
    raise _loop("type match", local, target)


def _enums_match(local: T.Enum, target: T.Enum) -> bool:
    if local.size != target.size or len(local.values) > len(target.values):
        return False
    return all(any(names_match(lv.name, tv.name) for tv in target.values) for lv in local.values)


def _composites_match(local: T.Composite, target: T.Composite, level: int) -> bool:
    if len(local.members) > len(target.members):
        return False
    for lm in local.members:
        for tm in target.members:
            if names_match(lm.name, tm.name) and types_match(lm.type, tm.type, False, level - 1):
                break
        else:
            return False
    return True
