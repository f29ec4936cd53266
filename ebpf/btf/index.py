"""The one pass over the type section: where each record starts and which name it has.

This is the only work proportional to the number of types that opening a blob does, so it
is written for CPython's speed rather than for beauty: no object per record, two
``array('I')`` appends per record, and the record length looked up in a dict keyed by the raw
info word (kind, kflag and vlen repeat a lot, so the dict stays small and the arithmetic runs
once per distinct info value). Everything else (kinds, members, names) is read later from
these offsets, and only for the types somebody asks about.
"""

from __future__ import annotations

from array import array
from typing import Dict, List, Optional, Sequence, Tuple

from ebpf.btf.errors import BTFError
from ebpf.btf.kinds import Kind

# Words (u32) that follow the 3-word common header of each kind: a fixed part and a part
# per vlen element. From Documentation/bpf/btf.rst, section 2.2.
_FIXED_WORDS: Dict[int, int] = {Kind.INT: 1, Kind.ARRAY: 3, Kind.VAR: 1, Kind.DECL_TAG: 1}
_ELEMENT_WORDS: Dict[int, int] = {
    Kind.STRUCT: 3, Kind.UNION: 3, Kind.ENUM: 2, Kind.FUNC_PROTO: 2, Kind.DATASEC: 3, Kind.ENUM64: 3,
}
KNOWN_KINDS = frozenset(int(k) for k in Kind if k != Kind.UNKN)

Layout = List[Tuple[int, int]]  # per kind number: (info bytes, bytes per element)


def record_words(info: int, layout: Optional[Layout] = None) -> int:
    """Length in words of a whole record whose info word is *info*; raises on unknown kinds.

    A kind this code does not know can still be skipped when the blob carries a layout
    section describing it (kernels newer than this reader); otherwise it is an error.
    """
    kind = (info >> 24) & 0x7F
    vlen = info & 0xFFFFFF
    if kind in KNOWN_KINDS:
        return 3 + _FIXED_WORDS.get(kind, 0) + _ELEMENT_WORDS.get(kind, 0) * vlen
    if layout is not None and 0 < kind < len(layout):
        info_sz, elem_sz = layout[kind]
        if info_sz % 4 == 0 and elem_sz % 4 == 0:
            return 3 + info_sz // 4 + elem_sz // 4 * vlen
    raise BTFError(f"unknown BTF kind {kind}")


def parse_layout(raw: bytes) -> Layout:
    """The layout section as (info_sz, elem_sz) per kind (its flags are unused)."""
    return [(raw[i], raw[i + 1]) for i in range(0, len(raw) - 3, 4)]


def build_index(
    words: Sequence[int], first_id: int, what: str, layout: Optional[Layout] = None
) -> Tuple[array, array]:
    """Word offsets of every record and each record's name offset, indexed by ``id - first_id``."""
    offsets = array("I")
    names = array("I")
    add_offset = offsets.append
    add_name = names.append
    skip: Dict[int, int] = {}
    end = len(words)
    pos = 0
    try:
        while pos < end:
            add_offset(pos)
            add_name(words[pos])
            info = words[pos + 1]
            try:
                pos += skip[info]
            except KeyError:
                try:
                    length = record_words(info, layout)
                except BTFError as e:
                    raise BTFError(
                        f"{what}: type [{first_id + len(offsets) - 1}] at byte {pos * 4} of the type "
                        f"section: {e}"
                    ) from None
                skip[info] = length
                pos += length
    except IndexError:
        pass  # the header of the last record is cut; reported below
    if pos != end:
        last = first_id + len(offsets) - 1
        raise BTFError(
            f"{what}: type [{last}] at byte {offsets[-1] * 4} runs past the end of the "
            f"{end * 4}-byte type section"
        )
    return offsets, names
