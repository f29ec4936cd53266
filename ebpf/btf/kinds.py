"""BTF kind numbers and the small enumerations of include/uapi/linux/btf.h.

They are kernel constants: once the project keeps BTF constants in ``ebpf.uapi`` these can
move there; everything in :mod:`ebpf.btf` imports them from this module only.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

MAGIC = 0xEB9F
VERSION = 1
MAX_TYPE_ID = 0x000FFFFF
MAX_VLEN = 0x00FFFFFF


class Kind(IntEnum):
    """``BTF_KIND_*``: what a type record describes (bits 24-30 of its info word)."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(IntFlag):
    """``BTF_INT_*``: the encoding bits of an INT."""

    NONE = 0
    SIGNED = 1 << 0
    CHAR = 1 << 1
    BOOL = 1 << 2


class VarLinkage(IntEnum):
    """``BTF_VAR_*``: linkage of a VAR."""

    STATIC = 0
    GLOBAL_ALLOCATED = 1
    GLOBAL_EXTERN = 2


class FuncLinkage(IntEnum):
    """``enum btf_func_linkage``: linkage of a FUNC (kept in its vlen field)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


#: Kinds a type can be "seen through" to reach what it qualifies: CO-RE and sizes skip them.
QUALIFIERS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
#: Qualifiers plus typedefs: what ``resolve`` skips to reach the underlying type.
MODIFIERS = QUALIFIERS | {Kind.TYPEDEF}
