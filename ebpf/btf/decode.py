"""Inflating one type record into its :mod:`ebpf.btf.types` object.

Called only when somebody asks for a type, never for the whole blob. The index pass has
already checked that every record (header, fixed part and vlen elements) lies inside the
type section, so the reads here need no bounds checks; names go through
:meth:`BTF.string_at`, which checks string offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Sequence

from ebpf.btf import types as T
from ebpf.btf.kinds import Kind

if TYPE_CHECKING:
    from ebpf.btf.spec import BTF


def _s32(value: int) -> int:
    return value - 0x100000000 if value & 0x80000000 else value


def decode(btf: BTF, type_id: int, words: Sequence[int], pos: int) -> T.Type:
    """The type *type_id* whose record starts at word *pos* of *words*."""
    info = words[pos + 1]
    kind = (info >> 24) & 0x7F
    name = btf.string_at(words[pos]) if words[pos] else ""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        return T.Unknown(btf, type_id, name, kind)
    return decoder(btf, type_id, name, info, words, pos)


Decoder = Callable[["BTF", int, str, int, Sequence[int], int], T.Type]


def _int(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    data = w[p + 3]
    return T.Int(btf, tid, name, w[p + 2], (data >> 24) & 0x0F, (data >> 16) & 0xFF, data & 0xFF)


def _float(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.Float(btf, tid, name, w[p + 2])


def _reference(cls: type) -> Decoder:
    def decode_reference(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
        return cls(btf, tid, name, w[p + 2])

    return decode_reference


def _type_tag(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.TypeTag(btf, tid, name, w[p + 2], bool(info >> 31))


def _func(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.Func(btf, tid, name, w[p + 2], info & 0xFFFF)


def _var(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.Var(btf, tid, name, w[p + 2], w[p + 3])


def _decl_tag(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.DeclTag(btf, tid, name, w[p + 2], _s32(w[p + 3]), bool(info >> 31))


def _array(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.Array(btf, tid, w[p + 3], w[p + 4], w[p + 5])


def _composite(cls: type) -> Decoder:
    def decode_composite(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
        kflag = bool(info >> 31)
        string_at = btf.string_at
        members = tuple(
            T.Member(btf, string_at(w[q]) if w[q] else "", w[q + 1], w[q + 2], kflag, i)
            for i, q in enumerate(range(p + 3, p + 3 + 3 * (info & 0xFFFFFF), 3))
        )
        return cls(btf, tid, name, w[p + 2], members)

    return decode_composite


def _enum(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    signed = bool(info >> 31)
    string_at = btf.string_at
    values = tuple(
        T.EnumValue(string_at(w[q]) if w[q] else "", _s32(w[q + 1]) if signed else w[q + 1])
        for q in range(p + 3, p + 3 + 2 * (info & 0xFFFFFF), 2)
    )
    return T.Enum(btf, tid, name, w[p + 2], signed, values)


def _enum64(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    signed = bool(info >> 31)
    string_at = btf.string_at
    values = []
    for q in range(p + 3, p + 3 + 3 * (info & 0xFFFFFF), 3):
        value = w[q + 1] | (w[q + 2] << 32)
        if signed and value >> 63:
            value -= 1 << 64
        values.append(T.EnumValue(string_at(w[q]) if w[q] else "", value))
    return T.Enum64(btf, tid, name, w[p + 2], signed, tuple(values))


def _fwd(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    return T.Fwd(btf, tid, name, bool(info >> 31))


def _func_proto(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    string_at = btf.string_at
    params = tuple(
        T.Param(btf, string_at(w[q]) if w[q] else "", w[q + 1])
        for q in range(p + 3, p + 3 + 2 * (info & 0xFFFFFF), 2)
    )
    return T.FuncProto(btf, tid, w[p + 2], params)


def _datasec(btf: BTF, tid: int, name: str, info: int, w: Sequence[int], p: int) -> T.Type:
    secinfos = tuple(
        T.VarSecinfo(btf, w[q], w[q + 1], w[q + 2]) for q in range(p + 3, p + 3 + 3 * (info & 0xFFFFFF), 3)
    )
    return T.Datasec(btf, tid, name, w[p + 2], secinfos)


_DECODERS: Dict[int, Decoder] = {
    Kind.INT: _int,
    Kind.PTR: _reference(T.Pointer),
    Kind.ARRAY: _array,
    Kind.STRUCT: _composite(T.Struct),
    Kind.UNION: _composite(T.Union),
    Kind.ENUM: _enum,
    Kind.FWD: _fwd,
    Kind.TYPEDEF: _reference(T.Typedef),
    Kind.VOLATILE: _reference(T.Volatile),
    Kind.CONST: _reference(T.Const),
    Kind.RESTRICT: _reference(T.Restrict),
    Kind.FUNC: _func,
    Kind.FUNC_PROTO: _func_proto,
    Kind.VAR: _var,
    Kind.DATASEC: _datasec,
    Kind.FLOAT: _float,
    Kind.DECL_TAG: _decl_tag,
    Kind.TYPE_TAG: _type_tag,
    Kind.ENUM64: _enum64,
}
