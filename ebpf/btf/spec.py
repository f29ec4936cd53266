"""A parsed BTF blob: ids and names to types, lazily.

Opening a blob checks its header and runs one indexing pass over the type section
(:mod:`ebpf.btf.index`); types are inflated when first asked for and memoised, names are
searched in the string section on demand (:mod:`ebpf.btf.names`). A split blob (module BTF)
sits on a base: its type ids continue after the base's last id, its string offsets after
the base's string section, and lookups that miss its own types go on to the base.

The blob's bytes can be an mmap of the file: nothing is copied except, for a blob whose
byte order is not the host's, the type section (byte-swapped once into an array).
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Collection, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ebpf.btf import types as T
from ebpf.btf.decode import decode
from ebpf.btf.errors import BTFError
from ebpf.btf.header import Blob, Header, parse_header
from ebpf.btf.index import Layout, build_index, parse_layout
from ebpf.btf.kinds import Kind
from ebpf.btf.names import NameSearch, essential_name

TypeRef = Union[T.Type, int]
KindFilter = Union[None, Kind, Collection[Kind]]

#: libbpf gives up resolving chains of modifiers/typedefs/arrays longer than this.
MAX_RESOLVE_DEPTH = 32
_LONG_NAMES = (
    "long int", "long unsigned int", "long", "unsigned long", "long unsigned", "unsigned long int",
    "unsigned int long", "int long", "int long unsigned", "int unsigned long", "long int unsigned",
)
_KINDS = {int(k): k for k in Kind}
_REFERENCE_KINDS = frozenset({
    Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC, Kind.VAR, Kind.DECL_TAG,
    Kind.TYPE_TAG,
})
_HOST_ORDER = sys.byteorder


class BTF:
    """The types of one BTF blob (plus, for split BTF, those of its *base*).

    *data* is the raw blob (bytes or an mmap; it must stay unchanged while this object
    lives). *name* labels the blob in error messages. *index* lets a cache hand over the
    ``(offsets, name offsets)`` arrays instead of running the indexing pass again, and
    *name_hashes* a hashed name index (:mod:`ebpf.btf.names`).
    """

    first_id: int
    last_id: int
    count: int
    strings_end: int
    _offsets: Sequence[int]
    _name_offs: Sequence[int]
    _names: NameSearch

    def __init__(
        self, data: Blob, *, base: Optional[BTF] = None, name: str = "BTF",
        index: Optional[Tuple[Sequence[int], Sequence[int]]] = None,
        name_hashes: Optional[Sequence[int]] = None,
    ) -> None:
        header = parse_header(data, name)
        self.name = name
        self.header: Header = header
        self.base = base
        self.byte_order = header.byte_order
        if base is not None and base.byte_order != self.byte_order:
            raise BTFError(f"{name}: {self.byte_order}-endian split BTF on a {base.byte_order}-endian base")
        self.first_id = base.last_id + 1 if base is not None else 1
        self._data = data
        self._str_base = base.strings_end if base is not None else 0
        self.strings_end = self._str_base + header.str_len
        if base is None and (header.str_len == 0 or data[header.str_start] != 0):
            raise BTFError(
                f"{name}: the string section does not start with an empty string: "
                "this is split BTF (a module's), open it with its base BTF"
            )
        self._words = self._type_words(data, header)
        layout: Optional[Layout] = None
        if header.layout_len:
            start = header.layout_start
            layout = parse_layout(bytes(data[start : start + header.layout_len]))
        if index is None:
            index = build_index(self._words, self.first_id, name, layout)
        self._offsets, self._name_offs = index
        self.count = len(self._offsets)
        self.last_id = self.first_id + self.count - 1
        self._types: Dict[int, T.Type] = {0: T.Void(self, 0, "")}
        self._names = NameSearch(
            data, header.str_start, header.str_start + header.str_len, self._str_base, self._name_offs,
            self.first_id, self.string_bytes, base._names if base is not None else None,
        )
        self._names.hashes = name_hashes
        self._by_name: Dict[str, List[int]] = {}
        self._by_essential: Dict[str, List[int]] = {}
        self._sizes: Dict[int, int] = {}
        self._aligns: Dict[int, int] = {}
        self._long_size: Optional[int] = None
        self._decl_tags: Optional[Dict[int, List[int]]] = None

    @staticmethod
    def _type_words(data: Blob, header: Header) -> Union[memoryview, array]:
        section = memoryview(data)[header.type_start : header.type_start + header.type_len]
        if header.byte_order == _HOST_ORDER:
            return section.cast("I")
        swapped = array("I")
        swapped.frombytes(section)
        swapped.byteswap()
        return swapped

    @property
    def index(self) -> Tuple[Sequence[int], Sequence[int]]:
        """The ``(record offsets, name offsets)`` arrays of the indexing pass (for caches)."""
        return self._offsets, self._name_offs

    @property
    def name_hashes(self) -> Optional[Sequence[int]]:
        """The hashed name index in use, if any."""
        return self._names.hashes

    def build_name_hashes(self) -> Sequence[int]:
        """Build (~80 ms for vmlinux) and start using the hashed name index; for caches."""
        hashes = self._names.build_hashes()
        self._names.hashes = hashes
        return hashes

    def __repr__(self) -> str:
        base = f" on {self.base.name}" if self.base is not None else ""
        return f"<BTF {self.name}: types [{self.first_id}, {self.last_id}]{base}>"

    # ---------------------------------------------------------------- by id

    def type_by_id(self, type_id: int) -> T.Type:
        """The type *type_id* (0 is void); ids below :attr:`first_id` come from the base."""
        found = self._types.get(type_id)
        if found is not None:
            return found
        if self.first_id <= type_id <= self.last_id:
            found = decode(self, type_id, self._words, self._offsets[type_id - self.first_id])
            self._types[type_id] = found
            return found
        if 0 < type_id < self.first_id and self.base is not None:
            return self.base.type_by_id(type_id)
        raise BTFError(f"{self.name}: type id {type_id} out of range (ids go from 0 to {self.last_id})")

    __getitem__ = type_by_id

    def kind_of(self, type_id: int) -> Kind:
        """The kind of *type_id* without inflating it (UNKN for void and unknown kinds)."""
        if self.first_id <= type_id <= self.last_id:
            info = self._words[self._offsets[type_id - self.first_id] + 1]
            return _KINDS.get((info >> 24) & 0x7F, Kind.UNKN)
        if type_id == 0:
            return Kind.UNKN
        if 0 < type_id < self.first_id and self.base is not None:
            return self.base.kind_of(type_id)
        raise BTFError(f"{self.name}: type id {type_id} out of range (ids go from 0 to {self.last_id})")

    def name_of(self, type_id: int) -> str:
        """The name of *type_id* without inflating it ("" if anonymous)."""
        if self.first_id <= type_id <= self.last_id:
            off = self._name_offs[type_id - self.first_id]
            return self.string_at(off) if off else ""
        if type_id == 0:
            return ""
        if 0 < type_id < self.first_id and self.base is not None:
            return self.base.name_of(type_id)
        raise BTFError(f"{self.name}: type id {type_id} out of range (ids go from 0 to {self.last_id})")

    def referenced_ids(self, type_id: int) -> Tuple[int, ...]:
        """Ids of the types *type_id* refers to (members, parameters, targets...), read
        straight from its record without inflating it: for walks over a whole blob."""
        if not self.first_id <= type_id <= self.last_id:
            if 0 < type_id < self.first_id and self.base is not None:
                return self.base.referenced_ids(type_id)
            if type_id == 0:
                return ()
            raise BTFError(f"{self.name}: type id {type_id} out of range (ids go from 0 to {self.last_id})")
        words = self._words
        pos = self._offsets[type_id - self.first_id]
        info = words[pos + 1]
        kind = (info >> 24) & 0x7F
        vlen = info & 0xFFFFFF
        if kind in _REFERENCE_KINDS:
            return (words[pos + 2],)
        if kind == Kind.ARRAY:
            return words[pos + 3], words[pos + 4]
        if kind in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
            first = pos + (4 if kind != Kind.DATASEC else 3)
            return tuple(words[first : first + 3 * vlen : 3])
        if kind == Kind.FUNC_PROTO:
            return (words[pos + 2],) + tuple(words[pos + 4 : pos + 4 + 2 * vlen : 2])
        return ()

    def type_ids(self) -> range:
        """This blob's own type ids (not the base's)."""
        return range(self.first_id, self.last_id + 1)

    def types(self, kind: KindFilter = None) -> Iterator[T.Type]:
        """This blob's own types, inflating each one: meant for tools that want them all."""
        kinds = _kind_set(kind)
        for type_id in self.type_ids():
            if kinds is None or self.kind_of(type_id) in kinds:
                yield self.type_by_id(type_id)

    def kind_counts(self) -> Dict[Kind, int]:
        """How many of this blob's own types there are of each kind."""
        counts: Dict[Kind, int] = {}
        words = self._words
        for off in self._offsets:
            kind = _KINDS.get((words[off + 1] >> 24) & 0x7F, Kind.UNKN)
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    # ---------------------------------------------------------------- strings

    def string_at(self, offset: int) -> str:
        """The NUL-terminated string at *offset* of the string section (the base's, if below it)."""
        return self.string_bytes(offset).decode("utf-8", "replace")

    def string_bytes(self, offset: int) -> bytes:
        """Like :meth:`string_at`, undecoded."""
        if offset < self._str_base:
            assert self.base is not None
            return self.base.string_bytes(offset)
        rel = offset - self._str_base
        if rel >= self.header.str_len:
            raise BTFError(
                f"{self.name}: string offset {offset} is outside the string section "
                f"(which ends at {self.strings_end})"
            )
        start = self.header.str_start + rel
        end = self._data.find(b"\0", start, self.header.str_start + self.header.str_len)
        return bytes(self._data[start:end])

    # ---------------------------------------------------------------- by name

    def ids_by_name(self, name: str, kind: KindFilter = None) -> List[int]:
        """Ids of the types named *name* (of the given kinds): this blob's first, then the base's."""
        ids = self._by_name.get(name)
        if ids is None:
            ids = self._names.ids(name.encode("utf-8"))
            self._by_name[name] = ids
        ids = self._filter(ids, kind)
        if self.base is not None:
            ids = ids + self.base.ids_by_name(name, kind)
        return ids

    def types_by_name(self, name: str, kind: KindFilter = None) -> List[T.Type]:
        """The types named *name* (of the given kinds): this blob's first, then the base's."""
        return [self.type_by_id(i) for i in self.ids_by_name(name, kind)]

    def type_by_name(self, name: str, kind: KindFilter = None) -> T.Type:
        """The first type named *name* (of the given kinds); BTFError when there is none."""
        ids = self.ids_by_name(name, kind)
        if not ids:
            what = "type" if kind is None else " or ".join(k.name for k in sorted(_kind_set(kind) or ()))
            raise BTFError(f"{self.name}: no {what} named {name!r}")
        return self.type_by_id(ids[0])

    def candidates(self, name: str, kind: KindFilter = None) -> List[T.Type]:
        """Types whose essential name is that of *name*: CO-RE's candidates for a local type.

        ``candidates("task_struct___old", Kind.STRUCT)`` finds ``task_struct`` and any
        ``task_struct___flavour``. This blob's types come first, then the base's.
        """
        key = essential_name(name)
        ids = self._by_essential.get(key)
        if ids is None:
            ids = self._names.essential_ids(key.encode("utf-8"))
            self._by_essential[key] = ids
        found = [self.type_by_id(i) for i in self._filter(ids, kind)]
        if self.base is not None:
            found += self.base.candidates(key, kind)
        return found

    def _filter(self, ids: List[int], kind: KindFilter) -> List[int]:
        kinds = _kind_set(kind)
        if kinds is None:
            return list(ids)
        return [i for i in ids if self.kind_of(i) in kinds]

    def iter_names(self) -> Iterator[Tuple[int, Kind, str]]:
        """``(id, kind, name)`` of this blob's named types, without inflating them."""
        words, offsets, names, first = self._words, self._offsets, self._name_offs, self.first_id
        for i, off in enumerate(offsets):
            name_off = names[i]
            if name_off:
                kind = _KINDS.get((words[off + 1] >> 24) & 0x7F, Kind.UNKN)
                yield first + i, kind, self.string_at(name_off)

    # ---------------------------------------------------------------- resolution and layout

    def resolve(self, ref: TypeRef) -> T.Type:
        """*ref* behind typedefs, const/volatile/restrict and type tags."""
        return self._skip(ref, (T.Typedef, T.Qualifier, T.TypeTag))

    def unqualified(self, ref: TypeRef) -> T.Type:
        """*ref* behind const/volatile/restrict and type tags; typedefs are kept."""
        return self._skip(ref, (T.Qualifier, T.TypeTag))

    def _skip(self, ref: TypeRef, skipped: Tuple[type, ...]) -> T.Type:
        t = self.type_by_id(ref) if isinstance(ref, int) else ref
        for _ in range(MAX_RESOLVE_DEPTH):
            if not isinstance(t, skipped):
                return t
            assert isinstance(t, T.Reference)
            t = t.type
        raise BTFError(f"{self.name}: type [{_id(ref)}]: more than {MAX_RESOLVE_DEPTH} typedefs/qualifiers (a loop?)")

    @property
    def long_size(self) -> int:
        """Size of ``long``, hence of pointers (BTF has no pointer size of its own).

        Found as libbpf does, from an INT named like ``long``; a blob without one uses its
        base's, else the host's.
        """
        if self._long_size is None:
            if self.base is not None:
                self._long_size = self.base.long_size
            else:
                self._long_size = self._find_long_size() or struct.calcsize("P")
        return self._long_size

    def _find_long_size(self) -> int:
        for name in _LONG_NAMES:
            for type_id in self.ids_by_name(name, Kind.INT):
                size = self.type_by_id(type_id)
                if isinstance(size, T.Int) and size.size in (4, 8):
                    return size.size
        return 0

    def size_of(self, ref: TypeRef) -> int:
        """``sizeof`` in bytes: through typedefs and qualifiers, arrays multiplied out, pointers
        the size of ``long``. Void, functions and forward declarations have no size (BTFError)."""
        type_id = _id(ref)
        size = self._sizes.get(type_id)
        if size is not None:
            return size
        t = self.type_by_id(ref) if isinstance(ref, int) else ref
        count = 1
        for _ in range(MAX_RESOLVE_DEPTH):
            if isinstance(t, (T.Int, T.Composite, T.Enum, T.Datasec, T.Float)):
                size = count * t.size
                break
            if isinstance(t, T.Pointer):
                size = count * self.long_size
                break
            if isinstance(t, T.Array):
                count *= t.nelems
                t = t.type
            elif isinstance(t, (T.Typedef, T.Qualifier, T.TypeTag, T.Var, T.DeclTag)):
                t = t.type
            else:
                raise BTFError(f"{self.name}: type [{type_id}] ({_describe(t)}) has no size")
        else:
            raise BTFError(f"{self.name}: type [{type_id}]: more than {MAX_RESOLVE_DEPTH} levels to its size (a loop?)")
        self._sizes[type_id] = size
        return size

    def align_of(self, ref: TypeRef) -> int:
        """Natural alignment in bytes, as a C compiler would give it.

        A struct/union whose members are not naturally aligned, or whose size is not a
        multiple of its members' alignment, must have been packed: it gets 1.
        """
        return self._align(ref, 0)

    def _align(self, ref: TypeRef, depth: int) -> int:
        type_id = _id(ref)
        align = self._aligns.get(type_id)
        if align is not None:
            return align
        if depth > MAX_RESOLVE_DEPTH:
            raise BTFError(f"{self.name}: type [{type_id}]: types nest more than {MAX_RESOLVE_DEPTH} deep (a loop?)")
        t = self.type_by_id(ref) if isinstance(ref, int) else ref
        if isinstance(t, (T.Int, T.Enum, T.Float)):
            align = max(1, min(self.long_size, t.size))
        elif isinstance(t, T.Pointer):
            align = self.long_size
        elif isinstance(t, (T.Array, T.Typedef, T.Qualifier, T.TypeTag)):
            align = self._align(t.type_id, depth + 1)
        elif isinstance(t, T.Composite):
            align = 1
            for m in t.members:
                member_align = self._align(m.type_id, depth + 1)
                if not m.raw_bitfield_size and m.bit_offset % (8 * member_align):
                    align = 1
                    break
                align = max(align, member_align)
            else:
                if t.size % align:
                    align = 1
        else:
            raise BTFError(f"{self.name}: type [{type_id}] ({_describe(t)}) has no alignment")
        self._aligns[type_id] = align
        return align

    # ---------------------------------------------------------------- tags

    def decl_tags(self, ref: TypeRef, component_idx: Optional[int] = None) -> List[T.DeclTag]:
        """DECL_TAGs on *ref* (all of them, or those on member/parameter *component_idx*; -1
        for the ones on the type itself). Indexed on first use."""
        if self._decl_tags is None:
            by_target: Dict[int, List[int]] = {}
            words = self._words
            for i, off in enumerate(self._offsets):
                if (words[off + 1] >> 24) & 0x7F == Kind.DECL_TAG:
                    by_target.setdefault(words[off + 2], []).append(self.first_id + i)
            self._decl_tags = by_target
        tags = [self.type_by_id(i) for i in self._decl_tags.get(_id(ref), ())]
        found = [t for t in tags if isinstance(t, T.DeclTag)]
        if component_idx is not None:
            found = [t for t in found if t.component_idx == component_idx]
        if self.base is not None and _id(ref) < self.first_id:
            found = self.base.decl_tags(ref, component_idx) + found
        return found


def _id(ref: TypeRef) -> int:
    return ref if isinstance(ref, int) else ref.id


def _describe(t: T.Type) -> str:
    return f"{t.kind.name} {t.name!r}" if t.name else t.kind.name


def _kind_set(kind: KindFilter) -> Optional[Collection[Kind]]:
    if kind is None:
        return None
    if isinstance(kind, Kind):
        return (kind,)
    return frozenset(kind)
