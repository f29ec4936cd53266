"""Writing BTF: the types of our own programs and maps, encoded for BPF_BTF_LOAD.

The kernel wants program BTF for three things we care about: func_info (which instruction
starts which function), line_info (the source line of instructions, which the verifier prints
in its log and ``bpftool prog dump xlated`` shows), and map key/value types. The builder
deduplicates strings and structurally identical types so a blob stays small.

Layout (include/uapi/linux/btf.h): a 24-byte header, the type section, the string section.
Each type is ``{u32 name_off; u32 info; u32 size_or_type}`` plus kind-specific data.
"""

from __future__ import annotations

import builtins
import struct
from typing import Dict, List, Optional, Sequence, Tuple

from ebpf.errors import BTFError

BTF_MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD, KIND_TYPEDEF = range(1, 9)
KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC = range(9, 16)
KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = range(16, 20)

INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
FUNC_STATIC, FUNC_GLOBAL, FUNC_EXTERN = 0, 1, 2
VAR_STATIC, VAR_GLOBAL = 0, 1

Member = Tuple[str, int, int, int]  # name, type id, bit offset, bitfield size (0: not a bitfield)
Entry = Tuple[int, int, int]  # DATASEC entry: var type id, offset, size


def _info(kind: int, vlen: int = 0, kflag: bool = False) -> int:
    if not 0 <= vlen <= 0xFFFF:
        raise BTFError(f"too many members/params/values ({vlen}) for one BTF type")
    return (int(kflag) << 31) | (kind << 24) | vlen


class BTFBuilder:
    """Accumulates types (ids from 1) and strings; :meth:`encode` gives the blob."""

    def __init__(self) -> None:
        self._types: List[bytes] = []
        self._dedup: Dict[bytes, builtins.int] = {}
        self._strings = bytearray(b"\0")
        self._string_offsets: Dict[str, builtins.int] = {"": 0}

    # --- strings and raw records ------------------------------------------------------------

    def string(self, text: str) -> builtins.int:
        """Offset of ``text`` in the string section (added once)."""
        off = self._string_offsets.get(text)
        if off is None:
            raw = text.encode()
            if b"\0" in raw:
                raise BTFError(f"BTF strings cannot contain NUL bytes: {text!r}")
            off = len(self._strings)
            self._strings += raw + b"\0"
            self._string_offsets[text] = off
        return off

    def _add(self, record: bytes, dedup: bool = True) -> builtins.int:
        if dedup:
            known = self._dedup.get(record)
            if known is not None:
                return known
        self._types.append(record)
        type_id = len(self._types)
        if dedup:
            self._dedup[record] = type_id
        return type_id

    def _head(self, name: str, kind: builtins.int, vlen: builtins.int, size_or_type: builtins.int,
              kflag: bool = False) -> bytes:
        return struct.pack("<III", self.string(name), _info(kind, vlen, kflag), size_or_type)

    @property
    def count(self) -> builtins.int:
        return len(self._types)

    # --- kinds ----------------------------------------------------------------------------

    def int(self, name: str, size: builtins.int, signed: bool = False, *, char: bool = False,
            bool_: bool = False) -> builtins.int:
        if size not in (1, 2, 4, 8, 16):
            raise BTFError(f"bad int size {size}")
        enc = (INT_SIGNED if signed else 0) | (INT_CHAR if char else 0) | (INT_BOOL if bool_ else 0)
        return self._add(self._head(name, KIND_INT, 0, size) + struct.pack("<I", enc << 24 | size * 8))

    def float(self, name: str, size: builtins.int) -> builtins.int:
        return self._add(self._head(name, KIND_FLOAT, 0, size))

    def pointer(self, target: builtins.int) -> builtins.int:
        return self._add(self._head("", KIND_PTR, 0, target))

    def array(self, elem: builtins.int, count: builtins.int, index_type: Optional[builtins.int] = None) -> builtins.int:
        if index_type is None:
            index_type = self.int("__ARRAY_SIZE_TYPE__", 4)
        return self._add(self._head("", KIND_ARRAY, 0, 0) + struct.pack("<III", elem, index_type, count))

    def _composite(self, kind: builtins.int, name: str, size: builtins.int, members: Sequence[Member]) -> builtins.int:
        kflag = any(bits for _, _, _, bits in members)
        body = b"".join(
            struct.pack("<III", self.string(m_name), m_type, (bits << 24 | off) if kflag else off)
            for m_name, m_type, off, bits in members
        )
        return self._add(self._head(name, kind, len(members), size, kflag) + body)

    def struct(self, name: str, size: builtins.int, members: Sequence[Member]) -> builtins.int:
        return self._composite(KIND_STRUCT, name, size, members)

    def union(self, name: str, size: builtins.int, members: Sequence[Member]) -> builtins.int:
        return self._composite(KIND_UNION, name, size, members)

    def enum(self, name: str, size: builtins.int, values: Sequence[Tuple[str, builtins.int]],
             signed: bool = False) -> builtins.int:
        if all(-(1 << 31) <= v < (1 << 32) for _, v in values):
            body = b"".join(struct.pack("<Ii", self.string(n), v if v < (1 << 31) else v - (1 << 32))
                            for n, v in values)
            return self._add(self._head(name, KIND_ENUM, len(values), size, signed) + body)
        body = b"".join(struct.pack("<III", self.string(n), v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF)
                        for n, v in values)
        return self._add(self._head(name, KIND_ENUM64, len(values), size, signed) + body)

    def fwd(self, name: str, union: bool = False) -> builtins.int:
        return self._add(self._head(name, KIND_FWD, 0, 0, union))

    def typedef(self, name: str, target: builtins.int) -> builtins.int:
        return self._add(self._head(name, KIND_TYPEDEF, 0, target))

    def const(self, target: builtins.int) -> builtins.int:
        return self._add(self._head("", KIND_CONST, 0, target))

    def volatile(self, target: builtins.int) -> builtins.int:
        return self._add(self._head("", KIND_VOLATILE, 0, target))

    def restrict(self, target: builtins.int) -> builtins.int:
        return self._add(self._head("", KIND_RESTRICT, 0, target))

    def type_tag(self, tag: str, target: builtins.int) -> builtins.int:
        return self._add(self._head(tag, KIND_TYPE_TAG, 0, target))

    def decl_tag(self, tag: str, target: builtins.int, component_idx: builtins.int = -1) -> builtins.int:
        return self._add(self._head(tag, KIND_DECL_TAG, 0, target) + struct.pack("<i", component_idx))

    def func_proto(self, ret: builtins.int, params: Sequence[Tuple[str, builtins.int]]) -> builtins.int:
        body = b"".join(struct.pack("<II", self.string(n), t) for n, t in params)
        return self._add(self._head("", KIND_FUNC_PROTO, len(params), ret) + body)

    def func(self, name: str, proto: builtins.int, linkage: builtins.int = FUNC_STATIC) -> builtins.int:
        return self._add(self._head(name, KIND_FUNC, linkage, proto))

    def var(self, name: str, type_id: builtins.int, linkage: builtins.int = VAR_GLOBAL) -> builtins.int:
        return self._add(self._head(name, KIND_VAR, 0, type_id) + struct.pack("<I", linkage))

    def datasec(self, name: str, size: builtins.int, entries: Sequence[Entry]) -> builtins.int:
        """``entries``: (var type id, offset, size) for each variable of the section."""
        body = b"".join(struct.pack("<III", t, off, sz) for t, off, sz in entries)
        return self._add(self._head(name, KIND_DATASEC, len(entries), size) + body, dedup=False)

    # --- output ---------------------------------------------------------------------------

    def encode(self) -> bytes:
        types = b"".join(self._types)
        strings = bytes(self._strings)
        header = HEADER.pack(BTF_MAGIC, 1, 0, HEADER.size, 0, len(types), len(types), len(strings))
        return header + types + strings
