"""Types as C, written the way ``bpftool btf dump file F format c`` writes them.

bpftool's output (libbpf's btf_dump) is what kernel developers read and diff, so we match it
character for character: the same declarator syntax (``struct dentry * (*mount)(...)``), the
same inlining of anonymous structs/unions/enums, the same explicit padding (``long: 64;``,
``int: 28;`` between bitfields) chosen by the same natural-alignment rules, ``__attribute__((
packed))`` where the layout shows packing, and the same ``___N`` suffixes for distinct types
that share a name. Behaviour was established by comparing with bpftool 7.1 (libbpf 1.1)
output on real kernels; the tests keep it that way.

Two entry points: :meth:`CDumper.dump_all` writes the whole blob as a header (what bpftool
prints), :meth:`CDumper.definition` one type's definition as it appears there. The latter
renders only that type, unless a name it mentions is shared by several types (a census of
names says so): then the ``___N`` numbering depends on the order bpftool emits everything,
so bpftool's dump is replayed from the first type until ours has been printed.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple, Union

from ebpf.btf import types as T
from ebpf.btf.errors import BTFError
from ebpf.btf.kinds import Kind
from ebpf.btf.spec import BTF

_NOT, _BUSY, _DONE = 0, 1, 2  # ordering and emission states
_TABS = "\t" * 13  # libbpf indents at most this deep
_MODS = (Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)
_HEADER = (
    "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
    "#endif\n\n"
)
_FOOTER = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n"
    "#endif /* __VMLINUX_H__ */\n"
)
# GCC's Arm SIMD typedefs name internal types that clang lacks; bpftool aliases them.
_MISSING_BASE_TYPES = {
    "__Poly8_t": "unsigned char", "__Poly16_t": "unsigned short",
    "__Poly64_t": "unsigned long long", "__Poly128_t": "unsigned __int128",
}
_TYPE_NS, _IDENT_NS = 0, 1  # struct/union/enum tags vs typedefs and enumerators
# Real structs have holes of at most a page (511 lines of `long: 64;` in vmlinux); a corrupt
# size or offset could ask for gigabytes of padding lines.
_MAX_PADDING_BITS = 1 << 20


def _indent(level: int) -> str:
    return _TABS[: min(level, len(_TABS))]


class CDumper:
    """Writes the types of *btf* as C; one instance keeps bpftool's naming state."""

    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self.ptr_bits = btf.long_size * 8
        self._out: List[str] = []
        self._order: Dict[int, int] = {0: _DONE}
        self._emit: Dict[int, int] = {0: _DONE}
        self._fwd_emitted: Set[int] = set()
        self._referenced: Optional[Set[int]] = None
        self._queue: List[int] = []
        self._names: Tuple[Dict[str, int], Dict[str, int]] = ({}, {})
        self._resolved: Dict[int, str] = {}
        self._mentioned: Optional[Set[Tuple[int, str]]] = None
        self._census: Optional[Tuple[Dict[str, int], Dict[str, int]]] = None
        self._recording: Optional[Dict[int, str]] = None
        self._next = 1

    # ------------------------------------------------------------ public

    def dump_all(self) -> str:
        """Every type of the blob (the base's too, for split BTF) as bpftool's header."""
        self._reset()
        self._recording = None
        self._out.append(_HEADER)
        for type_id in range(1, self.btf.last_id + 1):
            self._dump_type(type_id)
        self._out.append(_FOOTER)
        return self._take()

    def definition(self, type_id: int) -> str:
        """The C definition of *type_id* as it appears in :meth:`dump_all` (no trailing blank line).

        Structs, unions, enums, typedefs and forward declarations are what bpftool defines;
        functions and variables are printed as declarations for convenience.
        """
        try:
            return self._definition(type_id)
        except RecursionError:
            raise BTFError(f"{self.btf.name}: type [{type_id}] nests too deeply to print (a loop?)") from None

    def _definition(self, type_id: int) -> str:
        t = self.btf.type_by_id(type_id)
        if self._recording is None or type_id not in self._recording:
            scratch = CDumper(self.btf)  # renders in isolation, noting the names it uses
            scratch._census = self._name_census()
            scratch._mentioned = set()
            text = scratch._render_definition(t)
            if not self._may_be_renamed(scratch._mentioned):
                return text
        return self._simulate_until(t)

    def _simulate_until(self, t: T.Type) -> str:
        """Run bpftool's dump in order until *t* has been printed, and return what it printed.

        A shared name's ``___N`` depends on everything printed before; the types a tool asks
        about usually come early (their dependencies pull them forward), so this rarely runs
        the whole dump. Types bpftool never prints on their own are rendered at the end with
        the names the whole dump settled on.
        """
        if self._recording is None:
            self._reset()
            self._recording = {}
            self._next = 1
        last = self.btf.last_id
        while t.id not in self._recording and self._next <= last:
            self._dump_type(self._next)
            self._next += 1
            self._out = []
        if t.id in self._recording:
            return self._recording[t.id].rstrip("\n")
        return self._render_definition(t)

    # ------------------------------------------------------------ plumbing

    def _reset(self) -> None:
        self._out = []
        self._order = {0: _DONE}
        self._emit = {0: _DONE}
        self._fwd_emitted = set()
        self._queue = []
        self._names = ({}, {})
        self._resolved = {}

    def _take(self) -> str:
        text = "".join(self._out)
        self._out = []
        return text

    def _render_definition(self, t: T.Type) -> str:
        if isinstance(t, T.Composite):
            self._struct_def(t, 0)
        elif isinstance(t, T.Enum):
            self._enum_def(t, 0)
        elif isinstance(t, T.Typedef):
            self._typedef_def(t, 0)
        elif isinstance(t, T.Fwd):
            self._fwd_def(t)
        elif isinstance(t, (T.Func, T.Var)):
            self._type_decl(t.type_id, t.name, 0)
        else:
            self._type_decl(t.id, "", 0)
        self._out.append(";")
        return self._take()

    def _may_be_renamed(self, mentioned: Set[Tuple[int, str]]) -> bool:
        """Whether a name in *mentioned* is shared, so bpftool could number it ``___N``."""
        census = self._name_census()
        return any(census[ns].get(name, 0) > 1 for ns, name in mentioned)

    def _name_census(self) -> Tuple[Dict[str, int], Dict[str, int]]:
        """How many types could claim each name in each namespace, an upper bound.

        An anonymous enum counts twice: bpftool writes it out (and counts its enumerators)
        wherever it is used, which may be more than once.
        """
        if self._census is None:
            tags: Dict[str, int] = {}
            idents: Dict[str, int] = {}
            btf = self.btf
            for type_id in range(1, btf.last_id + 1):
                kind = btf.kind_of(type_id)
                if kind in (Kind.STRUCT, Kind.UNION, Kind.INT):
                    name = btf.name_of(type_id)
                    tags[name] = tags.get(name, 0) + 1
                elif kind == Kind.TYPEDEF:
                    name = btf.name_of(type_id)
                    idents[name] = idents.get(name, 0) + 1
                elif kind in (Kind.ENUM, Kind.ENUM64):
                    t = btf.type_by_id(type_id)
                    assert isinstance(t, T.Enum)
                    for value in t.values:
                        idents[value.name] = idents.get(value.name, 0) + (1 if t.name else 2)
                    if isinstance(t, T.Enum64) or t.values:
                        tags[t.name] = tags.get(t.name, 0) + 1
            self._census = (tags, idents)
        return self._census

    # ------------------------------------------------------------ names

    def _resolve_name(self, t: T.Type, ns: int) -> str:
        if not t.name:
            return ""
        name = self._resolved.get(t.id)
        if name is not None:
            return name
        name = t.name
        if not (isinstance(t, T.Fwd) or (type(t) is T.Enum and not t.values)):
            if self._mentioned is not None:
                self._mentioned.add((ns, name))
            count = self._names[ns].get(name, 0) + 1
            self._names[ns][name] = count
            if count > 1:
                name = f"{name}___{count}"
        self._resolved[t.id] = name
        return name

    def _type_name(self, t: T.Type) -> str:
        return self._resolve_name(t, _TYPE_NS)

    def _ident_name(self, t: T.Type) -> str:
        return self._resolve_name(t, _IDENT_NS)

    def _enumerator_name(self, name: str) -> str:
        if self._mentioned is not None:
            self._mentioned.add((_IDENT_NS, name))
        count = self._names[_IDENT_NS].get(name, 0) + 1
        self._names[_IDENT_NS][name] = count
        return f"{name}___{count}" if count > 1 else name

    # ------------------------------------------------------------ ordering (what to emit, when)

    def _dump_type(self, type_id: int) -> None:
        self._queue = []
        try:
            self._order_type(type_id, False)
            for queued in self._queue:
                self._emit_type(queued, 0)
        except RecursionError:
            raise BTFError(f"{self.btf.name}: types nest too deeply to print (from type [{type_id}])") from None

    def _mark_referenced(self) -> Set[int]:
        if self._referenced is None:
            referenced: Set[int] = set()
            refs = self.btf.referenced_ids
            for type_id in range(1, self.btf.last_id + 1):
                referenced.update(refs(type_id))
            self._referenced = referenced
        return self._referenced

    def _order_type(self, type_id: int, through_ptr: bool) -> bool:
        """Queue the named definitions *type_id* needs first; True if it is a strong (by value)
        dependency that is now satisfied, False if a forward declaration will do."""
        state = self._order.get(type_id, _NOT)
        if state == _DONE:
            return True
        kind = self.btf.kind_of(type_id)
        if kind in (Kind.FUNC, Kind.VAR, Kind.DATASEC, Kind.DECL_TAG):
            self._order[type_id] = _DONE
            return False
        t = self.btf.type_by_id(type_id)
        if state == _BUSY:
            if isinstance(t, T.Composite) and through_ptr and t.name:
                return False
            raise BTFError(f"{self.btf.name}: unsatisfiable type cycle through type [{type_id}]")
        if isinstance(t, (T.Int, T.Float)):
            self._order[type_id] = _DONE
            return False
        if isinstance(t, T.Pointer):
            strong = self._order_type(t.type_id, True)
            self._order[type_id] = _DONE
            return strong
        if isinstance(t, T.Array):
            return self._order_type(t.type_id, False)
        if isinstance(t, T.Composite):
            if through_ptr and t.name:
                return False
            self._order[type_id] = _BUSY
            for m in t.members:
                self._order_type(m.type_id, False)
            if t.name:
                self._queue.append(type_id)
            self._order[type_id] = _DONE
            return True
        if isinstance(t, (T.Enum, T.Fwd)):
            if t.name or type_id not in self._mark_referenced():
                self._queue.append(type_id)
            self._order[type_id] = _DONE
            return True
        if isinstance(t, T.Typedef):
            strong = self._order_type(t.type_id, through_ptr)
            if through_ptr and not strong:
                return False
            self._queue.append(type_id)
            self._order[type_id] = _DONE
            return True
        if isinstance(t, (T.Qualifier, T.TypeTag)):
            return self._order_type(t.type_id, through_ptr)
        if isinstance(t, T.FuncProto):
            strong = self._order_type(t.type_id, through_ptr)
            for p in t.params:
                if self._order_type(p.type_id, through_ptr):
                    strong = True
            return strong
        raise BTFError(f"{self.btf.name}: cannot print type [{type_id}] of unknown kind")

    # ------------------------------------------------------------ emission

    def _top_level(self, t: T.Type) -> None:
        """A definition at the top of the file; recorded when simulating the full dump."""
        start = len(self._out)
        if isinstance(t, T.Composite):
            self._struct_def(t, 0)
        elif isinstance(t, T.Enum):
            self._enum_def(t, 0)
        elif isinstance(t, T.Typedef):
            self._typedef_def(t, 0)
        self._out.append(";\n\n")
        if self._recording is not None:
            self._recording[t.id] = "".join(self._out[start:])

    def _emit_type(self, type_id: int, container: int) -> None:
        state = self._emit.get(type_id, _NOT)
        if state == _DONE:
            return
        t = self.btf.type_by_id(type_id)
        if state == _BUSY:
            if type_id in self._fwd_emitted:
                return
            if isinstance(t, T.Composite):
                if type_id == container or not t.name:
                    return
                self._struct_fwd(t)
                self._out.append(";\n\n")
                self._fwd_emitted.add(type_id)
            elif isinstance(t, T.Typedef):
                if t.name != "__builtin_va_list":
                    self._top_level(t)
                self._fwd_emitted.add(type_id)
            return
        if isinstance(t, T.Int):
            alias = _MISSING_BASE_TYPES.get(self._type_name(t))
            if alias is not None:
                self._out.append(f"typedef {alias} {t.name};\n\n")
            self._emit[type_id] = _DONE
        elif isinstance(t, T.Enum):
            if container == 0:
                self._top_level(t)
            self._emit[type_id] = _DONE
        elif isinstance(t, (T.Pointer, T.Qualifier, T.TypeTag, T.Array)):
            self._emit_type(t.type_id, container)
        elif isinstance(t, T.Fwd):
            self._fwd_def(t)
            self._out.append(";\n\n")
            if self._recording is not None:
                self._recording[type_id] = self._out[-2] + ";\n\n"
            self._emit[type_id] = _DONE
        elif isinstance(t, T.Typedef):
            self._emit[type_id] = _BUSY
            self._emit_type(t.type_id, type_id)
            if type_id not in self._fwd_emitted and t.name != "__builtin_va_list":
                self._top_level(t)
            self._emit[type_id] = _DONE
        elif isinstance(t, T.Composite):
            self._emit[type_id] = _BUSY
            if container == 0 or not t.name:
                inner = container if not t.name else type_id
                for m in t.members:
                    self._emit_type(m.type_id, inner)
            elif type_id not in self._fwd_emitted and type_id != container:
                self._struct_fwd(t)
                self._out.append(";\n\n")
                self._fwd_emitted.add(type_id)
            if container == 0:
                self._top_level(t)
                self._emit[type_id] = _DONE
            else:
                self._emit[type_id] = _NOT
        elif isinstance(t, T.FuncProto):
            self._emit_type(t.type_id, container)
            for p in t.params:
                self._emit_type(p.type_id, container)

    # ------------------------------------------------------------ definitions

    def _struct_fwd(self, t: T.Composite) -> None:
        keyword = "struct" if isinstance(t, T.Struct) else "union"
        name = self._type_name(t)
        self._out.append(f"{keyword} {name}" if t.name else keyword)

    def _fwd_def(self, t: T.Fwd) -> None:
        self._out.append(("union " if t.is_union else "struct ") + self._type_name(t))

    def _enum_fwd(self, t: T.Enum) -> None:
        self._out.append("enum " + self._type_name(t))

    def _typedef_def(self, t: T.Typedef, level: int) -> None:
        name = self._ident_name(t)
        if t.type_id == 0 and name == "__gnuc_va_list":
            self._out.append("typedef __builtin_va_list __gnuc_va_list")
            return
        self._out.append("typedef ")
        self._type_decl(t.type_id, name, level)

    def _enum_def(self, t: T.Enum, level: int) -> None:
        name = self._type_name(t)
        self._out.append(f"enum {name}" if t.name else "enum")
        if not t.values:
            return
        out = self._out
        out.append(" {")
        pad = _indent(level + 1)
        wide = isinstance(t, T.Enum64)
        for value in t.values:
            number = value.value if t.signed else value.value & (0xFFFFFFFFFFFFFFFF if wide else 0xFFFFFFFF)
            suffix = ("LL" if t.signed else "ULL") if wide else ""
            out.append(f"\n{pad}{self._enumerator_name(value.name)} = {number}{suffix},")
        out.append(f"\n{_indent(level)}}}")

    def _align(self, type_id: int) -> int:
        try:
            return self.btf.align_of(type_id)
        except BTFError:
            return 0

    def _is_packed(self, t: T.Composite) -> bool:
        widest = 1
        for m in t.members:
            align = self._align(m.type_id)
            if align and not m.raw_bitfield_size and m.bit_offset % (8 * align):
                return True
            widest = max(widest, align)
        return t.size % widest != 0

    def _struct_def(self, t: T.Composite, level: int) -> None:
        is_struct = isinstance(t, T.Struct)
        align = self._align(t.id)
        packed = is_struct and self._is_packed(t)
        keyword = "struct" if is_struct else "union"
        name = self._type_name(t)
        out = self._out
        out.append(f"{keyword} {name} {{" if t.name else f"{keyword} {{")
        pad = _indent(level + 1)
        off = 0
        prev_bitfield = False
        for m in t.members:
            bits = m.raw_bitfield_size
            m_off = m.bit_offset
            m_align = 1 if packed else self._align(m.type_id)
            self._bit_padding(off, m_off, m_align, prev_bitfield and bits != 0, level + 1)
            out.append("\n" + pad)
            self._type_decl(m.type_id, m.name, level + 1)
            if bits:
                out.append(f": {bits}")
                off = m_off + bits
                prev_bitfield = True
            else:
                try:
                    size = self.btf.size_of(m.type_id)
                except BTFError:
                    size = 0
                off = m_off + size * 8
                prev_bitfield = False
            out.append(";")
        if is_struct:
            self._bit_padding(off, t.size * 8, align, False, level + 1)
        if t.members or t.size:
            out.append(f"\n{_indent(level)}}}")
        else:
            out.append("}")
        if packed:
            out.append(" __attribute__((packed))")

    def _bit_padding(self, cur: int, nxt: int, next_align: int, in_bitfield: bool, level: int) -> None:
        """Explicit padding from bit *cur* to bit *nxt*, as little as C's natural alignment
        of ``long``/``int``/``short``/``char`` anonymous bitfields needs."""
        if cur >= nxt:
            return
        if nxt - cur > _MAX_PADDING_BITS:
            raise BTFError(f"{self.btf.name}: a {(nxt - cur) // 8}-byte hole in a struct is too big to print")
        pads = (("long", self.ptr_bits), ("int", 32), ("short", 16), ("char", 8))
        choice = pads[-1]
        new_off = cur
        for choice in pads:  # the widest type whose alignment lands before the next member
            new_off = -(-cur // choice[1]) * choice[1]
            if new_off <= nxt:
                break
        pad_type, pad_bits = choice
        pad = _indent(level)
        out = self._out
        if cur < new_off <= nxt:
            aligned = -(-cur // (next_align * 8)) * next_align * 8 if next_align else cur
            if (
                in_bitfield
                or (new_off == nxt and aligned != new_off)
                or (new_off != nxt and nxt - new_off <= new_off - cur)
            ):
                out.append(f"\n{pad}{pad_type}: {new_off - cur if in_bitfield else 0};")
            cur = new_off
        while cur != nxt:
            bits = min(nxt - cur, pad_bits)
            if bits == pad_bits:
                out.append(f"\n{pad}{pad_type}: {pad_bits};")
                cur += bits
                continue
            for small_type, small_bits in reversed(pads):
                if small_bits >= bits:
                    out.append(f"\n{pad}{small_type}: {bits};")
                    cur += bits
                    break
            else:  # pragma: no cover - char (8 bits) always fits a remainder
                break

    # ------------------------------------------------------------ declarators

    def _type_decl(self, type_id: int, fname: str, level: int) -> None:
        """``<type> <fname>`` with C's declarator syntax (pointers, arrays, function pointers)."""
        stack: List[int] = []
        while True:
            stack.append(type_id)
            if type_id == 0:
                break
            t = self.btf.type_by_id(type_id)
            if isinstance(t, (T.Pointer, T.Qualifier, T.TypeTag, T.FuncProto, T.Array)):
                type_id = t.type_id
                if len(stack) > 4096:
                    raise BTFError(f"{self.btf.name}: declarator of type [{stack[0]}] loops")
                continue
            break
        self._type_chain(stack, fname, level)

    def _emit_mods(self, stack: List[int]) -> None:
        while stack:
            kind = self.btf.kind_of(stack[-1])
            if kind == Kind.VOLATILE:
                self._out.append("volatile ")
            elif kind == Kind.CONST:
                self._out.append("const ")
            elif kind == Kind.RESTRICT:
                self._out.append("restrict ")
            else:
                return
            stack.pop()

    def _drop_mods(self, stack: List[int]) -> None:
        while stack and self.btf.kind_of(stack[-1]) in _MODS:
            stack.pop()

    def _name(self, fname: str, last_was_ptr: bool) -> None:
        self._out.append(" " + fname if fname and not last_was_ptr else fname)

    def _type_chain(self, stack: List[int], fname: str, level: int) -> None:
        out = self._out
        last_was_ptr = True
        while stack:
            type_id = stack.pop()
            if type_id == 0:
                self._emit_mods(stack)
                out.append("void")
                last_was_ptr = False
                continue
            t = self.btf.type_by_id(type_id)
            if isinstance(t, (T.Int, T.Float)):
                self._emit_mods(stack)
                out.append(t.name)
            elif isinstance(t, T.Composite):
                self._emit_mods(stack)
                if not t.name:
                    self._struct_def(t, level)
                else:
                    self._struct_fwd(t)
            elif isinstance(t, T.Enum):
                self._emit_mods(stack)
                if not t.name:
                    self._enum_def(t, level)
                else:
                    self._enum_fwd(t)
            elif isinstance(t, T.Fwd):
                self._emit_mods(stack)
                self._fwd_def(t)
            elif isinstance(t, T.Typedef):
                self._emit_mods(stack)
                out.append(self._ident_name(t))
            elif isinstance(t, T.Pointer):
                out.append("*" if last_was_ptr else " *")
            elif isinstance(t, T.Volatile):
                out.append(" volatile")
            elif isinstance(t, T.Const):
                out.append(" const")
            elif isinstance(t, T.Restrict):
                out.append(" restrict")
            elif isinstance(t, T.TypeTag):
                self._emit_mods(stack)
                out.append(f' __attribute__((btf_type_tag("{t.name}")))')
            elif isinstance(t, T.Array):
                self._drop_mods(stack)
                if not stack:
                    self._name(fname, last_was_ptr)
                    out.append(f"[{t.nelems}]")
                    return
                multidim = self.btf.kind_of(stack[-1]) == Kind.ARRAY
                if fname and not last_was_ptr:
                    out.append(" ")
                if not multidim:
                    out.append("(")
                self._type_chain(stack, fname, level)
                if not multidim:
                    out.append(")")
                out.append(f"[{t.nelems}]")
                return
            elif isinstance(t, T.FuncProto):
                self._drop_mods(stack)
                if stack:
                    out.append(" (")
                    self._type_chain(stack, fname, level)
                    out.append(")")
                else:
                    self._name(fname, last_was_ptr)
                out.append("(")
                params = t.params
                if not params or (len(params) == 1 and params[0].type_id == 0):
                    out.append("void)")
                    return
                for i, p in enumerate(params):
                    if i:
                        out.append(", ")
                    if i == len(params) - 1 and p.type_id == 0:
                        out.append("...")
                        break
                    self._type_decl(p.type_id, p.name, level)
                out.append(")")
                return
            else:
                return
            last_was_ptr = isinstance(t, T.Pointer)
        self._name(fname, last_was_ptr)


def format_c(btf: BTF, ref: Union[T.Type, int]) -> str:
    """One type's C definition, as bpftool prints it in its full C dump."""
    type_id = ref if isinstance(ref, int) else ref.id
    return CDumper(btf).definition(type_id)
