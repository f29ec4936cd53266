"""Every kind and kind-flag meaning on hand-made blobs, in both byte orders, and bad blobs.

The blobs are written record by record following include/uapi/linux/btf.h, so each test
states exactly which bytes it feeds the reader.
"""

from __future__ import annotations

import os
import pathlib
import struct
import subprocess
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from test_btf_fixtures import BPFTOOL

from ebpf.btf import (
    BTF,
    Array,
    BTFError,
    CDumper,
    Composite,
    DeclTag,
    Enum,
    Enum64,
    Func,
    FuncLinkage,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Pointer,
    Struct,
    Typedef,
    TypeTag,
    Unknown,
    Var,
    VarLinkage,
    essential_name,
    from_bytes,
)


class Writer:
    """Builds a BTF blob record by record; type ids are assigned in the order types are added."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self._offsets: Dict[str, int] = {"": 0}
        self.records: List[List[int]] = []

    def s(self, text: str) -> int:
        if text not in self._offsets:
            self._offsets[text] = len(self.strings)
            self.strings += text.encode() + b"\0"
        return self._offsets[text]

    def add(self, kind: int, name: str = "", vlen: int = 0, kflag: int = 0, word: int = 0,
            extra: Sequence[int] = ()) -> int:
        info = (kflag << 31) | (kind << 24) | vlen
        self.records.append([self.s(name), info, word] + [v & 0xFFFFFFFF for v in extra])
        return len(self.records)

    def int_(self, name: str, size: int, encoding: int = 0, bits: Optional[int] = None, offset: int = 0) -> int:
        bits = size * 8 if bits is None else bits
        return self.add(Kind.INT, name, word=size, extra=[(encoding << 24) | (offset << 16) | bits])

    def ref(self, kind: int, target: int, name: str = "", kflag: int = 0) -> int:
        return self.add(kind, name, kflag=kflag, word=target)

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self.add(Kind.ARRAY, extra=[elem, index, nelems])

    def composite(self, kind: int, name: str, size: int, members: Sequence[Tuple[str, int, int, int]],
                  kflag: int = 0) -> int:
        extra: List[int] = []
        for mname, mtype, bit_off, bits in members:
            extra += [self.s(mname), mtype, (bits << 24) | bit_off if kflag else bit_off]
        return self.add(kind, name, len(members), kflag, size, extra)

    def enum(self, name: str, size: int, values: Sequence[Tuple[str, int]], signed: bool = False) -> int:
        extra: List[int] = []
        for vname, value in values:
            extra += [self.s(vname), value]
        return self.add(Kind.ENUM, name, len(values), int(signed), size, extra)

    def enum64(self, name: str, size: int, values: Sequence[Tuple[str, int]], signed: bool = False) -> int:
        extra: List[int] = []
        for vname, value in values:
            value &= 0xFFFFFFFFFFFFFFFF
            extra += [self.s(vname), value & 0xFFFFFFFF, value >> 32]
        return self.add(Kind.ENUM64, name, len(values), int(signed), size, extra)

    def proto(self, ret: int, params: Sequence[Tuple[str, int]]) -> int:
        extra: List[int] = []
        for pname, ptype in params:
            extra += [self.s(pname), ptype]
        return self.add(Kind.FUNC_PROTO, "", len(params), 0, ret, extra)

    def blob(self, order: str = "<", layout: Optional[bytes] = None, strings_first: bool = False) -> bytes:
        types = b"".join(struct.pack(f"{order}{len(r)}I", *r) for r in self.records)
        strings = bytes(self.strings)
        hdr_len = 32 if layout is not None else 24
        if strings_first:
            str_off, type_off = 0, len(strings) + (-len(strings)) % 4
            body = strings + b"\0" * ((-len(strings)) % 4) + types
        else:
            type_off, str_off = 0, len(types)
            body = types + strings
        header = struct.pack(f"{order}HBBIIIII", 0xEB9F, 1, 0, hdr_len, type_off, len(types), str_off, len(strings))
        if layout is not None:
            header += struct.pack(f"{order}II", len(body), len(layout))
            body += layout
        return header + body


def sample() -> Writer:
    """Every kind, with the kind flag set wherever it means something."""
    w = Writer()
    u32 = w.int_("unsigned int", 4)  # 1
    s32 = w.int_("int", 4, encoding=1)  # 2
    char = w.int_("char", 1, encoding=3)  # 3  signed char
    long_ = w.int_("long int", 8, encoding=1)  # 4
    ptr_char = w.ref(Kind.PTR, char)  # 5
    arr = w.array(char, u32, 16)  # 6
    arr2 = w.array(arr, u32, 3)  # 7  char[3][16]
    w.composite(Kind.STRUCT, "flags", 8, [("a", u32, 0, 3), ("b", u32, 3, 5), ("c", s32, 32, 0)], kflag=1)  # 8
    inner = w.composite(Kind.UNION, "", 4, [("x", u32, 0, 0), ("y", s32, 0, 0)])  # 9
    w.composite(Kind.STRUCT, "outer", 56, [("head", 8, 0, 0), ("", inner, 64, 0), ("name", arr2, 96, 0),
                                           ("p", ptr_char, 448, 0)])  # 10
    w.enum("color", 4, [("RED", 0), ("BLUE", 0xFFFFFFFF)])  # 11 unsigned
    w.enum("delta", 4, [("DOWN", -1), ("UP", 1)], signed=True)  # 12 signed
    w.enum64("big", 8, [("HUGE", 1 << 40), ("ALL", -1 & 0xFFFFFFFFFFFFFFFF)])  # 13
    w.enum64("sbig", 8, [("NEG", -(1 << 40))], signed=True)  # 14
    w.add(Kind.FWD, "opaque")  # 15
    w.add(Kind.FWD, "uopaque", kflag=1)  # 16
    w.ref(Kind.TYPEDEF, u32, "u32")  # 17
    vol = w.ref(Kind.VOLATILE, 17)  # 18
    const = w.ref(Kind.CONST, vol)  # 19
    w.ref(Kind.RESTRICT, ptr_char)  # 20
    proto = w.proto(s32, [("fmt", ptr_char), ("", 0)])  # 21 variadic
    w.add(Kind.FUNC, "printk", vlen=FuncLinkage.GLOBAL, word=proto)  # 22
    w.add(Kind.VAR, "jiffies", word=long_, extra=[VarLinkage.GLOBAL_ALLOCATED])  # 23
    w.add(Kind.DATASEC, ".data", vlen=1, word=8, extra=[23, 0, 8])  # 24
    w.add(Kind.FLOAT, "double", word=8)  # 25
    w.add(Kind.DECL_TAG, "user", word=10, extra=[3])  # 26 on outer.p
    w.add(Kind.DECL_TAG, "noinline", kflag=1, word=22, extra=[-1])  # 27 attribute style on printk
    w.ref(Kind.TYPE_TAG, ptr_char, "rcu")  # 28
    w.ref(Kind.TYPE_TAG, char, "aligned(8)", kflag=1)  # 29
    w.composite(Kind.STRUCT, "oldbits", 4, [("lo", w.int_("unsigned int", 4, bits=4), 0, 0),
                                            ("hi", u32, 4, 0)])  # 31 (30 is its int)
    w.ref(Kind.TYPEDEF, const, "cv_u32")  # 32
    w.composite(Kind.STRUCT, "task_struct___old", 8, [("pid", s32, 0, 0)])  # 33
    w.composite(Kind.STRUCT, "task_struct", 16, [("pid", s32, 64, 0)])  # 34
    return w


@pytest.fixture(params=["<", ">"], ids=["little", "big"])
def btf(request: pytest.FixtureRequest) -> BTF:
    return BTF(sample().blob(request.param), name="sample")


def test_byte_order(btf: BTF) -> None:
    assert btf.byte_order in ("little", "big")
    assert btf.count == 34 and btf.first_id == 1 and btf.last_id == 34


def test_ints(btf: BTF) -> None:
    char = btf.type_by_id(3)
    assert isinstance(char, Int) and char.signed and char.is_char and not char.is_bool and char.size == 1
    u32 = btf.type_by_name("unsigned int", Kind.INT)
    assert isinstance(u32, Int) and not u32.signed and u32.bits == 32
    assert btf.long_size == 8


def test_struct_with_bitfields(btf: BTF) -> None:
    flags = btf.type_by_name("flags")
    assert isinstance(flags, Struct)
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in flags.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 32, 0)]
    assert flags.field("b").bitfield_size == 5 and flags.sizeof() == 8 and flags.alignof() == 4


def test_int_encoded_bitfield_without_kind_flag(btf: BTF) -> None:
    old = btf.type_by_name("oldbits")
    assert isinstance(old, Struct)
    lo, hi = old.members
    assert (lo.bit_offset, lo.bitfield_size, lo.raw_bitfield_size) == (0, 4, 0)
    assert (hi.bit_offset, hi.bitfield_size) == (4, 0)


def test_members_through_anonymous_union(btf: BTF) -> None:
    outer = btf.type_by_name("outer", Kind.STRUCT)
    assert isinstance(outer, Composite)
    y = outer.find_member("y")
    assert y is not None and y.bit_offset == 64 and y.path == (1, 1)
    assert outer.member("y") is None  # not a direct member
    assert outer.field("head.b").bit_offset == 3 and outer.field("head.b").path == (0, 1)
    assert outer.find_member("nope") is None
    with pytest.raises(BTFError, match="no member 'nope'"):
        outer.field("nope")
    with pytest.raises(BTFError, match="not an embedded struct"):
        outer.field("p.x")


def test_arrays_and_sizes(btf: BTF) -> None:
    name = btf.type_by_name("outer").field("name")  # type: ignore[attr-defined]
    arr = name.type
    assert isinstance(arr, Array) and arr.nelems == 3 and arr.index_type.name == "unsigned int"
    assert arr.sizeof() == 48 and isinstance(arr.type, Array) and arr.type.nelems == 16
    assert btf.size_of(5) == 8  # pointer: sized by long
    assert btf.size_of(btf.type_by_name("outer")) == 56
    assert btf.align_of(5) == 8
    with pytest.raises(BTFError, match="has no size"):
        btf.size_of(21)
    with pytest.raises(BTFError, match="has no size"):
        btf.size_of(0)


def test_enums(btf: BTF) -> None:
    color, delta = btf.type_by_name("color"), btf.type_by_name("delta")
    assert isinstance(color, Enum) and not color.signed and color.value_of("BLUE") == 0xFFFFFFFF
    assert isinstance(delta, Enum) and delta.signed and delta.value_of("DOWN") == -1
    assert delta.value_of("SIDEWAYS") is None
    big, sbig = btf.type_by_name("big"), btf.type_by_name("sbig")
    assert isinstance(big, Enum64) and big.value_of("HUGE") == 1 << 40
    assert big.value_of("ALL") == 0xFFFFFFFFFFFFFFFF
    assert isinstance(sbig, Enum64) and sbig.value_of("NEG") == -(1 << 40)
    assert btf.ids_by_name("big", (Kind.ENUM, Kind.ENUM64)) == [13]


def test_forward_declarations(btf: BTF) -> None:
    opaque, uopaque = btf.type_by_name("opaque"), btf.type_by_name("uopaque")
    assert isinstance(opaque, Fwd) and not opaque.is_union
    assert isinstance(uopaque, Fwd) and uopaque.is_union


def test_modifiers_resolve(btf: BTF) -> None:
    cv = btf.type_by_name("cv_u32")
    assert isinstance(cv, Typedef)
    assert cv.resolve().name == "unsigned int"
    assert cv.unqualified() is cv
    assert btf.unqualified(cv.type_id).kind == Kind.TYPEDEF  # const volatile u32 -> u32
    assert btf.type_by_id(20).kind == Kind.RESTRICT and btf.resolve(20).kind == Kind.PTR
    assert btf.size_of(cv) == 4


def test_functions_and_variables(btf: BTF) -> None:
    func = btf.type_by_name("printk")
    assert isinstance(func, Func) and func.linkage == FuncLinkage.GLOBAL
    proto = func.type
    assert isinstance(proto, FuncProto) and proto.variadic and proto.type.name == "int"
    assert [p.name for p in proto.params] == ["fmt", ""]
    var = btf.type_by_name("jiffies")
    assert isinstance(var, Var) and var.linkage == VarLinkage.GLOBAL_ALLOCATED and var.sizeof() == 8
    sec = btf.type_by_name(".data", Kind.DATASEC)
    assert sec.vars[0].type is var and sec.sizeof() == 8  # type: ignore[attr-defined]
    assert btf.type_by_name("double").sizeof() == 8


def test_tags(btf: BTF) -> None:
    user = btf.type_by_name("user")
    assert isinstance(user, DeclTag) and user.component_idx == 3 and not user.attribute
    noinline = btf.type_by_name("noinline")
    assert isinstance(noinline, DeclTag) and noinline.component_idx == -1 and noinline.attribute
    assert btf.decl_tags(10) == [user] and btf.decl_tags(22, -1) == [noinline]
    assert btf.decl_tags(10, -1) == []
    rcu, aligned = btf.type_by_name("rcu"), btf.type_by_name("aligned(8)")
    assert isinstance(rcu, TypeTag) and not rcu.attribute and isinstance(rcu.type, Pointer)
    assert isinstance(aligned, TypeTag) and aligned.attribute
    assert btf.resolve(rcu).kind == Kind.PTR


def test_names_and_candidates(btf: BTF) -> None:
    assert essential_name("task_struct___old") == "task_struct"
    assert essential_name("task_struct___") == "task_struct___"
    assert essential_name("___GFP_BITS") == "___GFP_BITS"
    assert essential_name("a___b___c") == "a___b"
    assert [t.id for t in btf.candidates("task_struct")] == [33, 34]
    assert [t.id for t in btf.candidates("task_struct___new", Kind.STRUCT)] == [33, 34]
    assert btf.ids_by_name("task_struct") == [34]
    assert btf.ids_by_name("unsigned int") == [1, 30]
    assert btf.ids_by_name("unsigned int", Kind.STRUCT) == []
    assert btf.ids_by_name("") == [] and btf.ids_by_name("nosuch") == []
    assert btf.type_by_id(34).essential_name == "task_struct"
    with pytest.raises(BTFError, match="no STRUCT named 'nosuch'"):
        btf.type_by_name("nosuch", Kind.STRUCT)
    assert btf.name_of(22) == "printk" and btf.kind_of(22) == Kind.FUNC and btf.kind_of(0) == Kind.UNKN


def test_hashed_names_agree_with_search(btf: BTF) -> None:
    names = [name for _, _, name in btf.iter_names()]
    searched = {n: btf.ids_by_name(n) for n in names}
    flavours = {n: [t.id for t in btf.candidates(n)] for n in names}
    hashed = BTF(sample().blob("<" if btf.byte_order == "little" else ">"), name="hashed")
    hashed.build_name_hashes()
    assert {n: hashed.ids_by_name(n) for n in names} == searched
    assert {n: [t.id for t in hashed.candidates(n)] for n in names} == flavours


def test_memoised_identity(btf: BTF) -> None:
    assert btf.type_by_id(8) is btf.type_by_id(8) is btf[8]
    assert btf.type_by_id(0).kind == Kind.UNKN and btf.type_by_id(0).name == ""
    with pytest.raises(BTFError, match="out of range"):
        btf.type_by_id(35)
    with pytest.raises(BTFError, match="out of range"):
        btf.type_by_id(-1)


def test_string_section_first() -> None:
    """Sections may come in any order after the header."""
    btf = BTF(sample().blob(strings_first=True))
    assert btf.type_by_name("outer").sizeof() == 56


def test_thirty_two_bit_pointers() -> None:
    w = Writer()
    long_ = w.int_("long int", 4, encoding=1)
    ptr = w.ref(Kind.PTR, long_)
    w.composite(Kind.STRUCT, "pair", 8, [("a", ptr, 0, 0), ("b", ptr, 32, 0)])
    btf = BTF(w.blob())
    assert btf.long_size == 4 and btf.size_of(ptr) == 4 and btf.type_by_name("pair").alignof() == 4


def test_unknown_kind_skipped_with_layout() -> None:
    w = Writer()
    w.int_("int", 4, encoding=1)
    w.add(25, "future", vlen=2, word=7, extra=[1, 2, 3, 4, 5])  # 1 info word + 2 elements of 2 words
    w.int_("char", 1)
    layout = bytearray(4 * 26)
    layout[25 * 4 : 25 * 4 + 2] = bytes([4, 8])
    btf = BTF(w.blob(layout=bytes(layout)))
    future = btf.type_by_id(2)
    assert isinstance(future, Unknown) and future.raw_kind == 25 and future.name == "future"
    assert btf.type_by_id(3).name == "char"
    with pytest.raises(BTFError, match=r"type \[2\] at byte 16 of the type section: unknown BTF kind 25"):
        BTF(w.blob())


def test_split_blob_on_its_base() -> None:
    base_writer = sample()
    base = BTF(base_writer.blob(), name="base")
    split = Writer()
    split.strings = bytearray()  # a split string section starts right after the base's
    split._offsets = {}
    base_len = len(base_writer.strings)

    def s(text: str) -> int:
        if text in base_writer._offsets:
            return base_writer._offsets[text]
        if text not in split._offsets:
            split._offsets[text] = base_len + len(split.strings)
            split.strings += text.encode() + b"\0"
        return split._offsets[text]

    split.s = s  # type: ignore[method-assign]
    ptr = split.ref(Kind.PTR, 34) + 34  # ids continue after the base's 34
    split.composite(Kind.STRUCT, "task_struct", 8, [("next", ptr, 0, 0)])  # base string
    split.composite(Kind.STRUCT, "module_only", 4, [("pid", 2, 0, 0)])  # own string
    btf = BTF(split.blob(), base=base, name="split")
    assert btf.first_id == 35 and btf.last_id == 37
    assert btf.ids_by_name("task_struct") == [36, 34]
    assert btf.type_by_name("module_only").id == 37
    assert btf.type_by_id(36).members[0].type.type is base.type_by_id(34)  # type: ignore[attr-defined]
    assert btf.type_by_id(2) is base.type_by_id(2)
    assert btf.long_size == 8 and btf.size_of(35) == 8
    with pytest.raises(BTFError, match="split BTF"):
        BTF(split.blob(), name="split")


# ------------------------------------------------------------------ ELF input


def elf_with_sections(sections: Dict[str, bytes], big_endian: bool = False) -> bytes:
    """A minimal ELF64 relocatable file holding *sections* (PROGBITS) and .shstrtab."""
    order = ">" if big_endian else "<"
    names = b"\0"
    name_offsets = []
    for name in list(sections) + [".shstrtab"]:
        name_offsets.append(len(names))
        names += name.encode() + b"\0"
    body = b""
    placed = []
    for data in list(sections.values()) + [names]:
        placed.append((64 + len(body), len(data)))
        body += data + b"\0" * ((-len(data)) % 8)
    shoff = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack(f"{order}HHIQQQIHHHHHH", 1, 247, 1, 0, 0, shoff, 0, 64, 0, 0, 64,
                                 len(sections) + 2, len(sections) + 1)
    shdrs = b"\0" * 64
    for i, (off, size) in enumerate(placed):
        sh_type = 3 if i == len(placed) - 1 else 1
        shdrs += struct.pack(f"{order}IIQQQQIIQQ", name_offsets[i], sh_type, 0, 0, off, size, 0, 0, 1, 0)
    return header + body + shdrs


def test_elf_btf_section(tmp_path: pathlib.Path) -> None:
    from ebpf.btf import load

    blob = sample().blob()
    path = os.path.join(str(tmp_path), "prog.o")
    with open(path, "wb") as f:
        f.write(elf_with_sections({".text": b"\x95" + b"\0" * 7, ".BTF": blob}))
    btf = load(path)
    assert btf.type_by_name("outer").sizeof() == 56 and btf.name == path
    big = from_bytes(elf_with_sections({".BTF": sample().blob(">")}, big_endian=True))
    assert big.byte_order == "big" and big.type_by_name("outer").sizeof() == 56
    with pytest.raises(BTFError, match="no .BTF section"):
        from_bytes(elf_with_sections({".text": b"\0" * 8}))
    with pytest.raises(BTFError, match="malformed ELF"):
        from_bytes(b"\x7fELF" + b"\xff" * 60)


def test_elf_module_with_distilled_base() -> None:
    base_writer = Writer()
    base_writer.int_("int", 4, encoding=1)
    split = Writer()
    split.strings = bytearray()
    split._offsets = {}
    split.add(Kind.TYPEDEF, "", word=1)  # anonymous typedef (string offset 0 is the base's "")
    elf = elf_with_sections({".BTF": split.blob(), ".BTF.base": base_writer.blob()})
    btf = from_bytes(elf, name="mod.ko")
    assert btf.base is not None and btf.first_id == 2 and btf.resolve(2).name == "int"


# ------------------------------------------------------------------ bad blobs


def corrupt(blob: bytes, offset: int, fmt: str, value: int) -> bytes:
    raw = bytearray(blob)
    struct.pack_into(fmt, raw, offset, value)
    return bytes(raw)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda b: b[:10], "too short for a BTF header"),
        (lambda b: corrupt(b, 0, "<H", 0x1234), "not BTF: magic bytes 3412"),
        (lambda b: corrupt(b, 2, "<B", 2), "unsupported BTF version 2"),
        (lambda b: corrupt(b, 4, "<I", 16), "header length 16 is shorter"),
        (lambda b: corrupt(b, 4, "<I", 1 << 30), "header length .* runs past the end"),
        (lambda b: corrupt(b, 12, "<I", 1 << 20), "type section .* runs past the end"),
        (lambda b: corrupt(b, 20, "<I", 1 << 20), "string section .* runs past the end"),
        (lambda b: corrupt(b, 8, "<I", 2), "type section offset 2 is not 4-byte aligned"),
        (lambda b: corrupt(b, 12, "<I", struct.unpack_from("<I", b, 12)[0] - 2), "not a multiple of 4"),
        (lambda b: b[:-1], "string section .* runs past the end"),
        (lambda b: corrupt(b, 24 + 4, "<I", 0x1F << 24), r"type \[1\] at byte 0 .*unknown BTF kind 31"),
        (lambda b: corrupt(b, 24 + 4, "<I", 0), r"unknown BTF kind 0"),
        (lambda b: corrupt(b, 24 + 4, "<I", (Kind.STRUCT << 24) | 0xFFFF), r"runs past the end of the"),
    ],
)
def test_bad_blobs(make: object, message: str) -> None:
    blob = sample().blob()
    with pytest.raises(BTFError, match=message):
        BTF(make(blob))  # type: ignore[operator]


def test_unterminated_string_section() -> None:
    blob = bytearray(sample().blob())
    blob[-1] = ord("x")
    with pytest.raises(BTFError, match="does not end with a NUL"):
        BTF(bytes(blob))


def test_bad_references_fail_on_use() -> None:
    w = Writer()
    w.ref(Kind.PTR, 99)  # 1: points past the last type
    w.ref(Kind.TYPEDEF, 2, "loop")  # 2: typedef of itself
    w.add(Kind.STRUCT, "s", 1, 0, 4, [w.s("m"), 99, 0])  # 3: member of a missing type
    w.records.append([10**6, Kind.INT << 24, 4, 32])  # 4: name offset outside the strings
    btf = BTF(w.blob())
    pointer = btf.type_by_id(1)
    assert isinstance(pointer, Pointer)
    with pytest.raises(BTFError, match="type id 99 out of range"):
        _ = pointer.type
    with pytest.raises(BTFError, match="a loop"):
        btf.resolve(2)
    with pytest.raises(BTFError, match="a loop"):
        btf.size_of(2)
    struct_s = btf.type_by_id(3)
    assert isinstance(struct_s, Struct)
    with pytest.raises(BTFError, match="out of range"):
        _ = struct_s.members[0].type
    with pytest.raises(BTFError, match="string offset 1000000 is outside"):
        btf.type_by_id(4)
    with pytest.raises(BTFError):
        CDumper(btf).dump_all()


# ------------------------------------------------------------------ C, against bpftool


def c_sample() -> Writer:
    """Declarations whose C spelling is tricky: what bpftool's C dump is compared on."""
    w = sample()
    u8 = w.int_("unsigned char", 1)  # 35
    u64 = w.int_("long long unsigned int", 8)  # 36
    s32 = 2
    # gaps between bitfields, a bitfield after a char, trailing padding
    w.composite(Kind.STRUCT, "gappy", 24, [("a", u8, 0, 0), ("b", 1, 8, 3), ("c", 1, 40, 7),
                                           ("d", u64, 64, 0), ("e", u8, 128, 0)], kflag=1)  # 37
    # a packed struct: an int at an odd offset
    w.composite(Kind.STRUCT, "packed", 5, [("tag", u8, 0, 0), ("value", s32, 8, 0)])  # 38
    proto = w.proto(w.ref(Kind.PTR, s32), [("", 38), ("", 0)])  # 39 (ret ptr at 40)... see below
    fnptr = w.ref(Kind.PTR, proto)  # 41
    fnarr = w.array(fnptr, 1, 4)  # 42
    void_proto = w.proto(0, [])  # 43
    w.composite(Kind.STRUCT, "ops", 48, [("cb", fnarr, 0, 0), ("done", w.ref(Kind.PTR, void_proto), 256, 0),
                                         ("cv", 32, 320, 0)])  # 44 (45 is the pointer)
    w.ref(Kind.TYPEDEF, w.composite(Kind.STRUCT, "", 4, [("x", s32, 0, 0)]), "anon_t")  # 47 (46 the struct)
    w.composite(Kind.STRUCT, "empty", 0, [])  # 48
    w.composite(Kind.STRUCT, "flex", 4, [("n", s32, 0, 0), ("data", w.array(u8, 1, 0), 32, 0)])  # 50 (49)
    w.ref(Kind.TYPEDEF, w.ref(Kind.PTR, 15), "opaque_p")  # 52 (51)
    return w


def _bpftool_c(path: str) -> str:
    assert BPFTOOL is not None
    done = subprocess.run([BPFTOOL, "btf", "dump", "file", path, "format", "c"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(BPFTOOL is None, reason="needs bpftool")
@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_c_dump_matches_bpftool(tmp_path: pathlib.Path, order: str) -> None:
    path = os.path.join(str(tmp_path), "sample.btf")
    with open(path, "wb") as f:
        f.write(c_sample().blob(order))
    btf = BTF(c_sample().blob(order))
    assert CDumper(btf).dump_all() == _bpftool_c(path)


def test_c_definitions() -> None:
    btf = BTF(c_sample().blob())
    dump = CDumper(btf)
    assert dump.definition(btf.type_by_name("packed").id) == (
        "struct packed {\n\tunsigned char tag;\n\tint value;\n} __attribute__((packed));")
    assert dump.definition(btf.type_by_name("flags").id) == (
        "struct flags {\n\tunsigned int a: 3;\n\tunsigned int b: 5;\n\tint c;\n};")
    assert dump.definition(btf.type_by_name("delta").id) == "enum delta {\n\tDOWN = -1,\n\tUP = 1,\n};"
    assert dump.definition(btf.type_by_name("anon_t").id) == "typedef struct {\n\tint x;\n} anon_t;"
    assert dump.definition(btf.type_by_name("printk").id) == "int printk(char *fmt, ...);"
    assert dump.definition(btf.type_by_name("empty").id) == "struct empty {};"
    assert dump.definition(btf.type_by_name("uopaque").id) == "union uopaque;"
