"""BTF: the kernel's type information, read fast and lazily.

``kernel_btf()`` gives the running kernel's types (parsed once per process), ``module_btf()``
a loaded module's, ``load()`` any raw ``.btf`` blob or ELF file's. Lookups by id, by name
and by CO-RE essential name, member offsets through anonymous members, sizes and enum
values inflate only the types they touch. ``CDumper``/``format_c`` print types as bpftool's
C dump does.

Importing this package loads nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from ebpf.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time each name loads on first use
    from ebpf.btf.cformat import CDumper, format_c
    from ebpf.btf.errors import BTFError
    from ebpf.btf.files import from_bytes, load
    from ebpf.btf.kernel import kernel_btf, module_btf, module_names
    from ebpf.btf.kinds import FuncLinkage, IntEncoding, Kind, VarLinkage
    from ebpf.btf.names import essential_name
    from ebpf.btf.spec import BTF
    from ebpf.btf.types import (
        Array,
        Composite,
        Const,
        Datasec,
        DeclTag,
        Enum,
        Enum64,
        EnumValue,
        Field,
        Float,
        Func,
        FuncProto,
        Fwd,
        Int,
        Member,
        Param,
        Pointer,
        Qualifier,
        Reference,
        Restrict,
        Struct,
        Type,
        Typedef,
        TypeTag,
        Union,
        Unknown,
        Var,
        VarSecinfo,
        Void,
        Volatile,
    )

_MODULES = {
    "ebpf.btf.spec": ("BTF",),
    "ebpf.btf.errors": ("BTFError",),
    "ebpf.btf.kinds": ("Kind", "IntEncoding", "VarLinkage", "FuncLinkage"),
    "ebpf.btf.files": ("load", "from_bytes"),
    "ebpf.btf.kernel": ("kernel_btf", "module_btf", "module_names"),
    "ebpf.btf.names": ("essential_name",),
    "ebpf.btf.cformat": ("CDumper", "format_c"),
    "ebpf.btf.types": (
        "Type", "Void", "Unknown", "Int", "Float", "Reference", "Pointer", "Array", "Typedef", "Qualifier",
        "Volatile", "Const", "Restrict", "TypeTag", "Func", "FuncProto", "Param", "Var", "DeclTag",
        "Composite", "Struct", "Union", "Member", "Field", "Enum", "Enum64", "EnumValue", "Fwd", "Datasec",
        "VarSecinfo",
    ),
}
_LAZY: Dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "BTF", "BTFError", "Kind", "IntEncoding", "VarLinkage", "FuncLinkage", "load", "from_bytes",
    "kernel_btf", "module_btf", "module_names", "essential_name", "CDumper", "format_c",
    "Type", "Void", "Unknown", "Int", "Float", "Reference", "Pointer", "Array", "Typedef", "Qualifier",
    "Volatile", "Const", "Restrict", "TypeTag", "Func", "FuncProto", "Param", "Var", "DeclTag",
    "Composite", "Struct", "Union", "Member", "Field", "Enum", "Enum64", "EnumValue", "Fwd", "Datasec",
    "VarSecinfo",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
