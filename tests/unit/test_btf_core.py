"""The CO-RE engine on synthetic BTF: access paths, every relocation kind, compatibility rules,
candidates and ambiguity, patching, poisoning and the verifier message that names it."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from test_btf_core_fixtures import extract_bitfield, fix

from ebpf import asm as A
from ebpf.asm import opcodes as o
from ebpf.btf import BTF, Kind, from_bytes
from ebpf.btf.builder import BTFBuilder
from ebpf.btf.core import POISON_IMM, CoreTarget, PoisonInfo, Relocator, parse_type_name, poisoned_slots, relocate
from ebpf.btf.core_compat import fields_are_compat, names_match, types_are_compat, types_match
from ebpf.btf.relo import CoreRelo, has_core_relocations
from ebpf.errors import RelocationError
from ebpf.uapi import CoreReloKind as K
from ebpf.verifier import describe


def build(make: Any, name: str = "synthetic") -> BTF:
    b = BTFBuilder()
    make(b)
    return from_bytes(b.encode(), name=name)


def target_types(b: BTFBuilder, long_size: int = 8) -> Dict[str, int]:
    t: Dict[str, int] = {}
    t["int"] = b.int("int", 4, signed=True)
    t["uint"] = b.int("unsigned int", 4)
    t["ulong"] = b.int("long unsigned int", long_size)
    t["long"] = b.int("long int", long_size, signed=True)
    t["char"] = b.int("char", 1, signed=True, char=True)
    t["inner"] = b.struct("inner", 8, [("a", t["int"], 0, 0), ("b", t["uint"], 32, 0)])
    anon = b.union("", 8, [("x", t["int"], 0, 0), ("y", t["ulong"], 0, 0)])
    arr = b.array(t["inner"], 3)
    flex = b.array(t["char"], 0)
    ptr = b.pointer(t["int"])
    t["outer"] = b.struct("outer", 72, [
        ("first", t["int"], 0, 0), ("", anon, 64, 0), ("in", t["inner"], 128, 0), ("arr", arr, 192, 0),
        ("bf1", t["uint"], 384, 3), ("bf2", t["uint"], 387, 5), ("sbf", t["int"], 392, 4),
        ("ptr", ptr, 448, 0), ("flex", flex, 512, 0),
    ])
    zero = b.array(t["char"], 0)
    b.struct("zero_mid", 8, [("z", zero, 0, 0), ("after", t["int"], 0, 0)])
    b.typedef("outer_t", t["outer"])
    t["color"] = b.enum("color", 4, [("RED", 0), ("GREEN", 1), ("BLUE___v2", 7)])
    b.enum("sign", 4, [("NEG", -5)], signed=True)
    b.enum("big", 8, [("HUGE", 1 << 40)])
    b.typedef("myint", t["int"])
    return t


TARGET = build(target_types, "target")
TGT = CoreTarget(TARGET)


def off(access: tuple, type_name: str = "struct outer", kind: K = K.FIELD_BYTE_OFFSET) -> int:
    got = fix(kind, type_name, access, TGT)
    assert not got.poison, got.reason
    return got.value


# ------------------------------------------------------------------ access paths


def test_paths_through_anonymous_members_arrays_and_root_index() -> None:
    assert off(("first",)) == 0
    assert off(("x",)) == 8 and off(("y",)) == 8  # inside the anonymous union
    assert off(("y",), kind=K.FIELD_BYTE_SIZE) == 8
    assert off(("in", "b")) == 20
    assert off(("arr", 2, "b")) == 24 + 16 + 4
    assert off(("arr",), kind=K.FIELD_BYTE_SIZE) == 24
    assert off(("arr", 1), kind=K.FIELD_BYTE_SIZE) == 8
    assert off((2, "first")) == 2 * 72  # the root pointer used as an array
    assert off((0,)) == 0 and off((0,), kind=K.FIELD_BYTE_SIZE) == 72
    assert off(("flex", 100)) == 64 + 100  # flexible array: any index
    assert off(("first",), "typedef outer_t") == 0
    assert off(("in", "b"), "outer") == 20  # a bare name


def test_out_of_bounds_and_wrong_steps_do_not_match() -> None:
    bad = fix(K.FIELD_BYTE_OFFSET, "struct outer", ("arr", 3), TGT)
    assert bad.poison and "out of bounds" in bad.reason
    assert fix(K.FIELD_EXISTS, "struct outer", ("arr", 3), TGT).value == 0
    assert fix(K.FIELD_EXISTS, "struct outer", ("arr", 2), TGT).value == 1
    zero = fix(K.FIELD_EXISTS, "struct zero_mid", ("z", 1), TGT)  # zero-length, not last: no flex
    assert zero.value == 0 and "out of bounds" in zero.reason
    not_array = fix(K.FIELD_BYTE_OFFSET, "struct outer", ("first", 1), TGT)
    assert not_array.poison and "not an array" in not_array.reason
    not_struct = fix(K.FIELD_BYTE_OFFSET, "struct outer", ("first", "x"), TGT)
    assert not_struct.poison and "not a struct or union" in not_struct.reason
    missing = fix(K.FIELD_BYTE_OFFSET, "struct outer", ("nope",), TGT)
    assert missing.poison and missing.reason == "no field nope in struct outer"
    nested = fix(K.FIELD_BYTE_OFFSET, "struct outer", ("in", "nope"), TGT)
    assert nested.reason == "no field nope in struct inner"
    absent = fix(K.FIELD_BYTE_OFFSET, "struct nothing", ("a",), TGT)
    assert absent.poison and absent.reason == "no struct nothing in target BTF target"
    with pytest.raises(RelocationError, match="negative"):
        fix(K.FIELD_BYTE_OFFSET, "struct outer", ("arr", -1), TGT)
    with pytest.raises(RelocationError, match="array element"):
        fix(K.FIELD_LSHIFT_U64, "struct outer", ("arr", 1), TGT)


def test_bitfields_little_endian() -> None:
    for name, bit_offset, bits in (("bf1", 384, 3), ("bf2", 387, 5), ("sbf", 392, 4)):
        vals = [off((name,), kind=k) for k in (K.FIELD_BYTE_OFFSET, K.FIELD_BYTE_SIZE, K.FIELD_LSHIFT_U64,
                                                K.FIELD_RSHIFT_U64)]
        assert vals[0] == 48 and vals[1] == 4
        assert vals[3] == 64 - bits
        for pattern in range(1 << bits):
            assert extract_bitfield(bit_offset, bits, vals[0], vals[1], vals[2], vals[3], "little", pattern) == pattern
    assert off(("bf1",), kind=K.FIELD_LSHIFT_U64) == 61 and off(("bf2",), kind=K.FIELD_LSHIFT_U64) == 56
    assert off(("sbf",), kind=K.FIELD_SIGNED) == 1 and off(("bf1",), kind=K.FIELD_SIGNED) == 0


def test_bitfield_needing_a_wider_load() -> None:
    def make(b: BTFBuilder) -> None:
        u8 = b.int("unsigned char", 1)
        b.struct("s", 4, [("pad", u8, 0, 6), ("across", u8, 6, 5)])  # bits 6..10 straddle two bytes

    t = CoreTarget(build(make))
    vals = [fix(k, "struct s", ("across",), t).value
            for k in (K.FIELD_BYTE_OFFSET, K.FIELD_BYTE_SIZE, K.FIELD_LSHIFT_U64, K.FIELD_RSHIFT_U64)]
    assert vals[:2] == [0, 2]
    for pattern in range(32):
        assert extract_bitfield(6, 5, vals[0], vals[1], vals[2], vals[3], "little", pattern) == pattern


def test_signedness() -> None:
    assert off(("first",), kind=K.FIELD_SIGNED) == 1
    assert off(("in", "b"), kind=K.FIELD_SIGNED) == 0
    assert off(("ptr",), kind=K.FIELD_SIGNED) == 0


def test_enum_values_and_type_kinds() -> None:
    assert off(("GREEN",), "enum color", K.ENUMVAL_VALUE) == 1
    assert off(("BLUE",), "enum color", K.ENUMVAL_VALUE) == 7  # enumerators match by essential name
    assert off(("BLUE___mine",), "enum color", K.ENUMVAL_VALUE) == 7
    assert off(("NEG",), "enum sign", K.ENUMVAL_VALUE) == -5
    assert off(("HUGE",), "enum big", K.ENUMVAL_VALUE) == 1 << 40
    assert off(("HUGE",), "big", K.ENUMVAL_EXISTS) == 1
    missing = fix(K.ENUMVAL_VALUE, "enum color", ("PURPLE",), TGT)
    assert missing.poison and missing.reason == "no value PURPLE in enum color"
    assert fix(K.ENUMVAL_EXISTS, "enum color", ("PURPLE",), TGT).value == 0
    assert fix(K.ENUMVAL_EXISTS, "enum nothing", ("X",), TGT).value == 0
    assert off((), "struct outer", K.TYPE_SIZE) == 72
    assert off((), "enum color", K.TYPE_SIZE) == 4
    assert off((), "typedef myint", K.TYPE_SIZE) == 4
    assert off((), "struct outer___flavour", K.TYPE_EXISTS) == 1
    assert off((), "struct outer", K.TYPE_ID_TARGET) == TARGET.ids_by_name("outer", Kind.STRUCT)[0]
    for kind in (K.TYPE_EXISTS, K.TYPE_SIZE, K.TYPE_ID_TARGET):
        got = fix(kind, "struct nothing", (), TGT)
        assert got.value == 0 and not got.poison
    with pytest.raises(RelocationError, match="TYPE_MATCHES needs the local definition"):
        fix(K.TYPE_MATCHES, "struct outer", (), TGT)


def test_type_names() -> None:
    assert parse_type_name("struct task_struct") == (((Kind.STRUCT,),), "task_struct")
    assert parse_type_name("enum pid_type")[0] == ((Kind.ENUM, Kind.ENUM64),)
    assert parse_type_name("typedef pid_t")[0] == ((Kind.TYPEDEF,),)
    assert parse_type_name("unsigned int")[1] == "unsigned int"
    assert parse_type_name("pid_type", K.ENUMVAL_VALUE)[0] == ((Kind.ENUM, Kind.ENUM64),)
    with pytest.raises(RelocationError, match="anonymous"):
        parse_type_name("struct ")
    with pytest.raises(RelocationError, match="needs an enum"):
        parse_type_name("struct x", K.ENUMVAL_VALUE)


# ------------------------------------------------------------------ candidates


def two_layouts(b: BTFBuilder) -> None:
    i = b.int("int", 4, signed=True)
    myint = b.typedef("myint", i)
    b.struct("foo", 8, [("a", i, 0, 0), ("b", i, 32, 0), ("only_in_1", i, 32, 0)])
    b.struct("foo___2", 8, [("b", i, 0, 0), ("a", i, 32, 0), ("only_in_2", i, 0, 0)])
    b.struct("dup", 4, [("a", i, 0, 0)])
    b.struct("dup", 4, [("a", myint, 0, 0)])  # a copy, as non-deduplicated BTF has


def test_ambiguity_is_an_error_identical_copies_are_not() -> None:
    t = CoreTarget(build(two_layouts))
    with pytest.raises(RelocationError, match=r"ambiguous.*foo.*foo___2.*bit offset 0.*bit offset 32"):
        fix(K.FIELD_BYTE_OFFSET, "struct foo", ("a",), t)
    with pytest.raises(RelocationError, match="ambiguous"):
        fix(K.FIELD_EXISTS, "struct foo", ("a",), t)  # both exist, but at different offsets
    assert fix(K.TYPE_SIZE, "struct foo", (), t).value == 8  # they agree on this
    assert len(t.candidates((Kind.STRUCT,), "dup")) == 2
    assert fix(K.FIELD_BYTE_OFFSET, "struct dup", ("a",), t).value == 0
    ids = t.main.ids_by_name("dup", Kind.STRUCT)
    assert fix(K.TYPE_ID_TARGET, "struct dup", (), t).value == ids[0]
    with pytest.raises(RelocationError, match="ambiguous"):
        fix(K.TYPE_ID_TARGET, "struct foo", (), t)  # different layouts, different ids


def test_candidates_are_pruned_per_relocator() -> None:
    t = CoreTarget(build(two_layouts))
    r = Relocator(t)
    assert r.resolve(CoreRelo(K.FIELD_BYTE_OFFSET, "struct foo", ("only_in_1",), 4)).value == 4
    # foo___2 was ruled out for this program: only_in_2 is now missing
    assert r.resolve(CoreRelo(K.FIELD_EXISTS, "struct foo", ("only_in_2",), 1)).value == 0
    assert r.resolve(CoreRelo(K.FIELD_BYTE_OFFSET, "struct foo", ("a",), 0)).value == 0  # no longer ambiguous
    # a relocation that matches nothing does not prune
    r2 = Relocator(t)
    assert r2.resolve(CoreRelo(K.FIELD_EXISTS, "struct foo", ("nope",), 1)).value == 0
    assert r2.resolve(CoreRelo(K.FIELD_BYTE_OFFSET, "struct foo", ("only_in_2",), 0)).value == 0
    # a fresh relocator starts again from every candidate
    assert fix(K.FIELD_BYTE_OFFSET, "struct foo", ("only_in_2",), t).value == 0
    assert fix(K.FIELD_EXISTS, "struct foo", ("only_in_1",), t).value == 1


def test_modules_are_searched_only_without_vmlinux_candidates() -> None:
    def vmlinux(b: BTFBuilder) -> None:
        i = b.int("int", 4, signed=True)
        b.struct("shared", 8, [("x", i, 0, 0)])

    def module(b: BTFBuilder) -> None:
        i = b.int("int", 4, signed=True)
        b.struct("shared", 8, [("x", i, 32, 0)])
        b.struct("mod_only", 8, [("y", i, 32, 0)])

    main, mod = build(vmlinux, "vmlinux"), build(module, "mod")
    calls: List[int] = []

    def modules() -> List[BTF]:
        calls.append(1)
        return [mod]

    t = CoreTarget(main, modules)
    assert fix(K.FIELD_BYTE_OFFSET, "struct shared", ("x",), t).value == 0  # vmlinux's, not the module's
    assert calls == []  # module BTF not even read
    assert fix(K.FIELD_BYTE_OFFSET, "struct mod_only", ("y",), t).value == 4
    assert calls == [1]
    assert fix(K.TYPE_EXISTS, "struct mod_only", (), t).value == 1
    assert calls == [1]


# ------------------------------------------------------------------ local types and compatibility


def local_types(b: BTFBuilder) -> None:
    i = b.int("int", 4, signed=True)
    u64 = b.int("long long unsigned int", 8)
    s64 = b.int("long long int", 8, signed=True)
    e = b.enum("color", 4, [("RED", 0)])
    other = b.enum("paint", 4, [("RED", 0)])
    anon_e = b.enum("", 4, [("RED", 0)])
    inner = b.struct("inner", 8, [("a", i, 0, 0), ("b", u64, 0, 0)])
    b.struct("outer", 72, [
        ("first", i, 0, 0), ("in", inner, 128, 0), ("ptr", b.pointer(i), 448, 0),
    ])
    b.struct("outer___as_struct", 72, [("first", inner, 0, 0)])  # int in the target: incompatible
    b.struct("outer___wide", 72, [("in", b.struct("inner___wide", 16, [("b", u64, 0, 0)]), 128, 0)])
    b.struct("outer___signed", 72, [("in", b.struct("inner___signed", 16, [("b", s64, 0, 0)]), 128, 0)])
    b.struct("holder", 8, [("e", e, 0, 0)])
    b.struct("holder___other", 8, [("e", other, 0, 0)])
    b.struct("holder___anon", 8, [("e", anon_e, 0, 0)])
    b.typedef("myint", b.pointer(i))


def target_holder(b: BTFBuilder) -> None:
    e = b.enum("color", 4, [("RED", 0), ("GREEN", 1)])
    b.struct("holder", 8, [("e", e, 32, 0)])
    target_types(b)


LOCAL = build(local_types, "local")


def test_fields_compatibility_with_a_local_type() -> None:
    t = CoreTarget(build(target_holder))
    ok = fix(K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), t, local_btf=LOCAL)
    assert (ok.value, ok.expected, ok.orig_size, ok.new_size) == (20, 16, 8, 4)
    bad = fix(K.FIELD_EXISTS, "struct outer___as_struct", ("first",), t, local_btf=LOCAL)
    assert bad.value == 0 and "not compatible" in bad.reason
    assert fix(K.FIELD_EXISTS, "struct outer___as_struct", ("first",), t).value == 1  # names only: found
    assert fix(K.FIELD_EXISTS, "struct holder", ("e",), t, local_btf=LOCAL).value == 1
    assert fix(K.FIELD_EXISTS, "struct holder___other", ("e",), t, local_btf=LOCAL).value == 0  # enum names differ
    assert fix(K.FIELD_EXISTS, "struct holder___anon", ("e",), t, local_btf=LOCAL).value == 1  # anonymous: ok
    # a local BTF without the type (a flavour the compiler made up) falls back to names
    assert fix(K.FIELD_BYTE_OFFSET, "struct outer___nolocal", ("first",), t, local_btf=LOCAL).value == 0


def test_compat_relations_directly() -> None:
    tb = build(target_holder)
    local_int = LOCAL.type_by_name("int")
    local_ptr_td = LOCAL.type_by_name("myint", Kind.TYPEDEF)
    target_td = tb.type_by_name("myint", Kind.TYPEDEF)
    assert fields_are_compat(local_int, tb.type_by_name("long unsigned int"))
    assert not fields_are_compat(local_int, tb.type_by_name("inner", Kind.STRUCT))
    assert fields_are_compat(LOCAL.type_by_name("inner", Kind.STRUCT), tb.type_by_name("outer", Kind.STRUCT))
    assert not types_are_compat(local_ptr_td, target_td)  # pointer vs int behind the typedefs
    assert types_are_compat(LOCAL.type_by_name("outer", Kind.STRUCT), tb.type_by_name("outer", Kind.STRUCT))
    assert names_match("task_struct___x", "task_struct") and not names_match("a", "") and names_match("", "")


def test_type_matches_is_stricter_than_exists() -> None:
    def local(b: BTFBuilder) -> None:
        i = b.int("int", 4, signed=True)
        u = b.int("unsigned int", 4)
        b.struct("inner", 8, [("a", i, 0, 0)])
        b.struct("inner___unsigned", 8, [("a", u, 0, 0)])
        b.struct("inner___extra", 8, [("a", i, 0, 0), ("zzz", i, 32, 0)])
        b.enum("color", 4, [("GREEN", 1)])
        b.enum("color___more", 4, [("GREEN", 1), ("PINK", 9)])
        fwd = b.fwd("inner")
        b.struct("refs", 8, [("p", b.pointer(fwd), 0, 0)])
        b.struct("arrs", 8, [("v", b.array(i, 2), 0, 0)])

    def target(b: BTFBuilder) -> None:
        t = target_types(b)
        b.struct("refs", 8, [("p", b.pointer(t["inner"]), 0, 0)])
        b.struct("arrs", 12, [("v", b.array(t["int"], 3), 0, 0)])

    lb, t = build(local), CoreTarget(build(target))
    for name, exists, matches in (("inner", 1, 1), ("inner___unsigned", 1, 0), ("inner___extra", 1, 0),
                                  ("refs", 1, 1), ("arrs", 1, 0)):
        assert fix(K.TYPE_EXISTS, f"struct {name}", (), t, local_btf=lb).value == exists, name
        assert fix(K.TYPE_MATCHES, f"struct {name}", (), t, local_btf=lb).value == matches, name
    assert fix(K.TYPE_MATCHES, "enum color", (), t, local_btf=lb).value == 1
    assert fix(K.TYPE_MATCHES, "enum color___more", (), t, local_btf=lb).value == 0
    fwd = lb.type_by_name("inner", Kind.FWD)
    target_inner = t.main.type_by_name("inner", Kind.STRUCT)
    assert not types_match(fwd, target_inner)  # a forward declaration is not the struct...
    assert types_match(fwd, target_inner, behind_ptr=True)  # ...except behind a pointer


# ------------------------------------------------------------------ patching


def core(insn: A.Instruction, kind: K, type_name: str, access: tuple, value: int) -> A.Instruction:
    insn.meta["core"] = CoreRelo(kind, type_name, access, value)
    return insn


def test_loads_stores_alu_and_ld_imm64_are_patched() -> None:
    prog: List[Any] = [
        core(A.ldx(4, A.R0, A.R1, 100), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 100),
        core(A.stx(4, A.R1, A.R0, 100), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 100),
        core(A.st(4, A.R1, 100, 7), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 100),
        core(A.add64(A.R1, 100), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 100),
        A.label("here"),
        core(A.mov32(A.R2, 9), K.ENUMVAL_VALUE, "enum sign", ("NEG",), 9),
        core(A.ld_imm64(A.R3, 1), K.ENUMVAL_VALUE, "enum big", ("HUGE",), 1),
        A.exit_(),
    ]
    assert has_core_relocations(prog)
    r = Relocator(TGT)
    out = r.relocate(prog)
    assert [i.off for i in out[:3]] == [20, 20, 20] and out[2].imm == 7
    assert out[3].imm == 20
    assert out[4] == A.label("here")
    assert out[5].imm == -5 and out[6].imm == 1 << 40
    assert out[0].meta["core_fix"].value == 20 and prog[0].off == 100  # copies, originals untouched
    assert [index for index, _ in r.fixes] == [0, 1, 2, 3, 5, 6]
    assert not has_core_relocations([A.exit_()])


def test_malformed_relocations_are_errors_naming_the_instruction() -> None:
    cases = [
        (core(A.ldx(4, A.R0, A.R1, 99), K.FIELD_BYTE_OFFSET, "struct outer", ("first",), 100),
         r"instruction 0.*holds 99.*expects 100"),
        (core(A.add64(A.R1, A.R2), K.FIELD_BYTE_OFFSET, "struct outer", ("first",), 0), "without an immediate"),
        (core(A.add64(A.R1, 0), K.ENUMVAL_VALUE, "enum big", ("HUGE",), 0), "does not fit"),
        (core(A.ja(0), K.FIELD_BYTE_OFFSET, "struct outer", ("first",), 0), "only loads/stores"),
        (core(A.ld_map_value(A.R1, 5, 0), K.FIELD_BYTE_OFFSET, "struct outer", ("first",), 0), "LD_IMM64"),
        (core(A.ldx(4, A.R0, A.R1, 0), K.TYPE_ID_LOCAL, "struct outer", (), 0), "TYPE_ID_LOCAL needs"),
    ]
    for insn, message in cases:
        with pytest.raises(RelocationError, match=message):
            relocate([insn], TGT)
    insn = core(A.ldx(4, A.R0, A.R1, 0), K.FIELD_BYTE_OFFSET, "struct outer", (1000, "first"), 0)
    with pytest.raises(RelocationError, match="16-bit offset"):
        relocate([insn], TGT)
    insn.source = A.SourcePos("tool.py", 7, 0, "x = t.first")
    with pytest.raises(RelocationError, match=r"tool.py:7"):
        relocate([insn], TGT)
    local_id = core(A.mov64(A.R1, 0), K.TYPE_ID_LOCAL, "struct outer", (), 0)
    assert relocate([local_id], TGT, local_type_ids={"struct outer": 3})[0].imm == 3


def test_poisoning_keeps_slots_labels_and_says_why() -> None:
    prog = [
        A.mov64(A.R0, 0),
        core(A.ldx(8, A.R0, A.R1, 16), K.FIELD_BYTE_OFFSET, "struct outer", ("state",), 16),
        core(A.ld_imm64(A.R2, 5), K.ENUMVAL_VALUE, "enum color", ("PURPLE",), 5),
        A.exit_(),
    ]
    prog[2].label = "load"
    out = relocate(prog, TGT)
    assert len(out) == 5 and sum(i.size for i in out) == sum(i.size for i in prog)
    assert [(i.opcode, i.imm) for i in out[1:4]] == [(o.JMP | o.CALL, POISON_IMM)] * 3
    assert out[2].label == "load" and out[3].label is None
    assert "core" not in out[1].meta and isinstance(out[1].meta["core_poison"], PoisonInfo)
    assert out[1].comment is not None and out[1].comment.startswith("instruction poisoned by CO-RE")
    slots = poisoned_slots(out)
    assert sorted(slots) == [1, 2, 3]
    assert slots[1] == ("CO-RE relocation field_byte_offset of struct outer.state cannot be resolved against "
                        "target BTF target (no field state in struct outer)")
    assert "no value PURPLE in enum color" in slots[2] and slots[2] == slots[3]


def test_load_size_adjustment_without_local_types() -> None:
    def target32(b: BTFBuilder) -> None:
        target_types(b, long_size=4)

    t32 = CoreTarget(build(target32, "arm32"))
    # a pointer and an unsigned long read as 8 bytes shrink to 4 on a 32-bit target
    (ptr,) = relocate([core(A.ldx(8, A.R0, A.R1, 56), K.FIELD_BYTE_OFFSET, "struct outer", ("ptr",), 56)], t32)
    assert (ptr.off, ptr.width) == (56, 4)
    (y,) = relocate([core(A.ldx(8, A.R0, A.R1, 8), K.FIELD_BYTE_OFFSET, "struct outer", ("y",), 8)], t32)
    assert y.width == 4
    # a signed one cannot change size: poisoned
    (first,) = relocate([core(A.ldx(8, A.R0, A.R1, 0), K.FIELD_BYTE_OFFSET, "struct outer", ("first",), 0)], TGT)
    assert first.is_call and "only pointers and unsigned integers" in first.meta["core_poison"].reason
    # nor a sign-extending load of an unsigned field
    (sx,) = relocate([core(A.ldsx(2, A.R0, A.R1, 20), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 20)], TGT)
    assert sx.is_call
    # bytes of an array or a struct keep their access size
    (arr,) = relocate([core(A.ldx(1, A.R0, A.R1, 24), K.FIELD_BYTE_OFFSET, "struct outer", ("arr",), 24)], TGT)
    assert (arr.off, arr.width) == (24, 1)
    (elem,) = relocate([core(A.ldx(1, A.R0, A.R1, 64), K.FIELD_BYTE_OFFSET, "struct outer", ("flex", 3), 64)], TGT)
    assert (elem.off, elem.width) == (67, 1)
    # an array element has the element's size: a 4-byte load of a (signed) char is poisoned
    (wide,) = relocate([core(A.ldx(4, A.R0, A.R1, 64), K.FIELD_BYTE_OFFSET, "struct outer", ("flex", 0), 64)], TGT)
    assert wide.is_call and "1 byte (char)" in wide.meta["core_poison"].reason


def test_load_size_adjustment_with_local_types() -> None:
    t = CoreTarget(build(target_holder))
    # local u64 inner.b, target u32: the 8-byte load becomes a 4-byte one
    (ok,) = relocate([core(A.ldx(8, A.R0, A.R1, 16), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 16)],
                     t, local_btf=LOCAL)
    assert (ok.off, ok.width) == (20, 4)
    # local s64: libbpf refuses to resize signed fields and poisons
    (bad,) = relocate([core(A.ldx(8, A.R0, A.R1, 16), K.FIELD_BYTE_OFFSET, "struct outer___signed",
                            ("in", "b"), 16)], t, local_btf=LOCAL)
    assert bad.is_call
    # the instruction must access what the local field is
    with pytest.raises(RelocationError, match="accesses 4 bytes, the local field has 8"):
        relocate([core(A.ldx(4, A.R0, A.R1, 16), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 16)],
                 t, local_btf=LOCAL)
    # and hold the offset the local type gives, whatever the record says
    with pytest.raises(RelocationError, match="expects 16"):
        relocate([core(A.ldx(8, A.R0, A.R1, 8), K.FIELD_BYTE_OFFSET, "struct outer", ("in", "b"), 8)],
                 t, local_btf=LOCAL)


# ------------------------------------------------------------------ the verifier message


LOG = """func#0 @0
0: R1=ctx() R10=fp0
0: (85) call bpf_get_current_task_btf#158     ; R0=trusted_ptr_task_struct()
1: (85) call unknown#195896080
invalid func unknown#195896080
processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
"""


def test_verifier_message_names_the_poisoned_relocation() -> None:
    explanation = ("CO-RE relocation field_byte_offset of struct task_struct.state cannot be resolved on this "
                   "kernel (no field state in struct task_struct)")
    text = describe("prog", LOG, lambda slot: "call 195896080", {1: explanation})
    assert text.splitlines()[0] == f"program 'prog': instruction 1 was poisoned: {explanation}"
    generic = describe("prog", LOG, None)
    assert "poisoned by an unresolved CO-RE relocation" in generic
