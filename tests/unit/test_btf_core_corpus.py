"""Every fact of every corpus blob, computed by the CO-RE relocation engine.

Member offsets come from FIELD_BYTE_OFFSET (and the bitfield kinds), presence from
FIELD_EXISTS, struct sizes from TYPE_SIZE, enum values from ENUMVAL_VALUE: relocations
resolved against each blob as a target, the way a program compiled elsewhere would be.
"""

from __future__ import annotations

import re
from typing import Any, Dict

import pytest
from test_btf_core_fixtures import extract_bitfield, fix
from test_btf_fixtures import Corpus, corpus_names

from ebpf import asm as A
from ebpf.asm import opcodes as o
from ebpf.btf import Composite, Kind
from ebpf.btf.core import CoreTarget, Relocator, relocate
from ebpf.btf.relo import CoreRelo
from ebpf.errors import RelocationError
from ebpf.uapi import CoreReloKind as K

NAMES = corpus_names()
VMLINUX = [n for n in NAMES if "bpf_testmod" not in n and "nf_conntrack" not in n]
SPLIT = [n for n in NAMES if n not in VMLINUX and not n.endswith(".base-amd64")]


def _bitfield_ok(name: str, where: str, struct: str, member: str, fact: Dict[str, Any], target: Any,
                 byte_order: str) -> None:
    off = fix(K.FIELD_BYTE_OFFSET, f"struct {struct}", (member,), target).value
    size = fix(K.FIELD_BYTE_SIZE, f"struct {struct}", (member,), target).value
    lshift = fix(K.FIELD_LSHIFT_U64, f"struct {struct}", (member,), target).value
    rshift = fix(K.FIELD_RSHIFT_U64, f"struct {struct}", (member,), target).value
    bits = fact["bitfield_size"]
    assert size in (1, 2, 4, 8) and off % size == 0, where
    assert off * 8 <= fact["bit_offset"] and fact["bit_offset"] + bits <= (off + size) * 8, where
    assert rshift == 64 - bits, where
    for pattern in (1, (1 << bits) - 1, 0b1011 & ((1 << bits) - 1), 1 << (bits - 1)):
        got = extract_bitfield(fact["bit_offset"], bits, off, size, lshift, rshift, byte_order, pattern)
        assert got == pattern, f"{name}: {where}: read {got:#x} for {pattern:#x}"


@pytest.mark.parametrize("name", NAMES)
def test_struct_facts_by_relocation(core_corpus: Corpus, name: str) -> None:
    facts = core_corpus.facts(name)
    target = core_corpus.btf(name)
    order = target.byte_order
    checked = 0
    for struct, expected in facts["structs"].items():
        tname = f"struct {struct}"
        if expected is None:
            assert fix(K.TYPE_EXISTS, tname, (), target).value == 0, f"{name}: {struct} should be absent"
            assert fix(K.TYPE_SIZE, tname, (), target).value == 0
            missing = fix(K.FIELD_BYTE_OFFSET, tname, ("pid",), target)
            assert missing.poison and f"no struct {struct}" in missing.reason
            assert fix(K.FIELD_EXISTS, tname, ("pid",), target).value == 0
            continue
        assert fix(K.TYPE_EXISTS, tname, (), target).value == 1
        assert fix(K.TYPE_SIZE, tname, (), target).value == expected["size"], f"{name}: sizeof {struct}"
        for member, fact in expected["members"].items():
            where = f"{struct}.{member}"
            offset = fix(K.FIELD_BYTE_OFFSET, tname, (member,), target)
            exists = fix(K.FIELD_EXISTS, tname, (member,), target)
            if fact is None:
                assert exists.value == 0, f"{name}: {where} should be absent"
                assert offset.poison and offset.value == 0, f"{name}: {where} should poison"
                assert f"no field {member}" in offset.reason, offset.reason
                continue
            assert exists.value == 1 and not offset.poison, f"{name}: {where} missing"
            if fact["bitfield_size"]:
                _bitfield_ok(name, where, struct, member, fact, target, order)
            else:
                assert offset.value * 8 == fact["bit_offset"], f"{name}: {where}"
                size = fix(K.FIELD_BYTE_SIZE, tname, (member,), target).value
                assert fix(K.FIELD_RSHIFT_U64, tname, (member,), target).value == 64 - 8 * size
            checked += 1
    assert checked or name.endswith(".base-amd64")


@pytest.mark.parametrize("name", NAMES)
def test_enum_facts_by_relocation(core_corpus: Corpus, name: str) -> None:
    target = core_corpus.btf(name)
    for enum, values in core_corpus.facts(name)["enums"].items():
        for enumerator, value in values.items():
            got = fix(K.ENUMVAL_VALUE, f"enum {enum}", (enumerator,), target)
            exists = fix(K.ENUMVAL_EXISTS, f"enum {enum}", (enumerator,), target).value
            if value is None:
                assert exists == 0 and got.poison, f"{name}: {enumerator}"
                assert f"no value {enumerator}" in got.reason
            else:
                assert exists == 1 and got.value == value and not got.poison, f"{name}: {enumerator}"


def _version(name: str) -> tuple:
    m = re.match(r"(\d+)\.(\d+)", name)
    assert m, name
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("name", VMLINUX)
def test_flavours_follow_the_state_rename(core_corpus: Corpus, name: str) -> None:
    """``task_struct___old.state`` resolves on <= 5.13, ``task_struct___new.__state`` on >= 5.14."""
    target = core_corpus.btf(name)
    members = core_corpus.facts(name)["structs"]["task_struct"]["members"]
    old = fix(K.FIELD_BYTE_OFFSET, "struct task_struct___old", ("state",), target)
    new = fix(K.FIELD_BYTE_OFFSET, "struct task_struct___new", ("__state",), target)
    old_exists = fix(K.FIELD_EXISTS, "struct task_struct___old", ("state",), target).value
    new_exists = fix(K.FIELD_EXISTS, "struct task_struct___new", ("__state",), target).value
    if _version(name) <= (5, 13):
        assert old_exists == 1 and new_exists == 0 and new.poison
        assert old.value * 8 == members["state"]["bit_offset"]
        assert fix(K.FIELD_BYTE_SIZE, "struct task_struct___old", ("state",), target).value == 8  # long
    else:
        assert old_exists == 0 and new_exists == 1 and old.poison
        assert new.value * 8 == members["__state"]["bit_offset"]
        assert fix(K.FIELD_BYTE_SIZE, "struct task_struct___new", ("__state",), target).value == 4
        assert "no field state in struct task_struct" in old.reason


@pytest.mark.parametrize("name", VMLINUX)
def test_program_relocated_for_each_kernel(core_corpus: Corpus, name: str) -> None:
    """A small program patched for each kernel: offsets, a root-as-array index, an array index,
    a pointer load resized on 32-bit kernels, an ALU immediate and a guarded missing field."""
    target = core_corpus.btf(name)
    facts = core_corpus.facts(name)["structs"]["task_struct"]
    members = facts["members"]
    long_size = core_corpus.facts(name)["long_size"]

    def core(insn: A.Instruction, kind: K, access: tuple, value: int) -> A.Instruction:
        insn.meta["core"] = CoreRelo(kind, "struct task_struct", access, value)
        return insn

    prog = [
        core(A.ldx(8, A.R2, A.R1, 2232), K.FIELD_BYTE_OFFSET, ("real_parent",), 2232),
        core(A.ldx(4, A.R3, A.R2, 2220), K.FIELD_BYTE_OFFSET, ("tgid",), 2220),
        core(A.ldx(1, A.R4, A.R1, 9216 + 2643), K.FIELD_BYTE_OFFSET, (1, "comm", 3), 9216 + 2643),
        core(A.mov64(A.R5, 1), K.FIELD_EXISTS, ("state",), 1),
        A.jeq(A.R5, 0, 1),
        core(A.ldx(8, A.R6, A.R1, 16), K.FIELD_BYTE_OFFSET, ("state",), 16),
        core(A.ld_imm64(A.R7, 9216), K.TYPE_SIZE, (), 9216),
        A.exit_(),
    ]
    out = relocate(prog, target)
    assert len(out) == len(prog)
    assert out[0].off * 8 == members["real_parent"]["bit_offset"] and out[0].width == long_size
    assert out[1].off * 8 == members["tgid"]["bit_offset"] and out[1].width == 4
    assert out[2].off == facts["size"] + members["comm"]["bit_offset"] // 8 + 3 and out[2].width == 1
    has_state = members["state"] is not None
    assert out[3].imm == int(has_state)
    if has_state:
        assert out[5].off * 8 == members["state"]["bit_offset"] and out[5].width == 8
    else:
        assert out[5].is_call and out[5].imm == 0xBAD2310 and "core_poison" in out[5].meta
    assert out[6].imm == facts["size"]
    assert [i.size for i in out] == [i.size for i in prog]


def test_pointer_loads_shrink_on_32_bit(core_corpus: Corpus) -> None:
    target = core_corpus.btf("6.1.0-50-armmp-armhf")
    assert target.long_size == 4
    dentry = fix(K.FIELD_BYTE_OFFSET, "struct path", ("dentry",), target)
    assert (dentry.value, dentry.new_size) == (4, 4)
    assert fix(K.FIELD_BYTE_SIZE, "struct path", ("dentry",), target).value == 4
    assert fix(K.FIELD_BYTE_OFFSET, "struct file", ("f_path", "dentry"), target).value == 8 + 4
    insn = A.ldx(8, A.R0, A.R1, 8)
    insn.meta["core"] = CoreRelo(K.FIELD_BYTE_OFFSET, "struct path", ("dentry",), 8)
    (out,) = relocate([insn], target)
    assert (out.off, out.width, out.opcode) == (4, 4, o.LDX | o.MEM | o.W)
    # the same load against a 64-bit kernel stays as it is
    (same,) = relocate([insn], core_corpus.btf("6.1.0-56-amd64"))
    assert (same.off, same.width) == (8, 8)


def test_big_endian_bitfields(core_corpus: Corpus) -> None:
    """s390x lays bitfields out from the most significant bit: LSHIFT differs, and a program
    using the four relocations reads the same values as on the little-endian build."""
    be = core_corpus.btf("7.2.13-s390x")
    le = core_corpus.btf("7.2.13-amd64")
    assert be.byte_order == "big" and le.byte_order == "little"
    checked = 0
    for struct in ("sk_buff", "task_struct", "sock", "inode", "request_queue", "perf_event_attr"):
        for target in (be, le):
            t = target.type_by_name(struct, Kind.STRUCT)
            assert isinstance(t, Composite)
            for member in t.members:
                if not member.bitfield_size or not member.name:
                    continue
                where = f"{target.byte_order}: {struct}.{member.name}"
                found = t.find_member(member.name)
                assert found is not None
                fact = {"bit_offset": found.bit_offset, "bitfield_size": found.bitfield_size}
                _bitfield_ok(target.name, where, struct, member.name, fact, target, target.byte_order)
                checked += 1
    assert checked > 20
    # one field, two layouts: the shift amounts are not the same numbers
    lsh_be = fix(K.FIELD_LSHIFT_U64, "struct perf_event_attr", ("disabled",), be).value
    lsh_le = fix(K.FIELD_LSHIFT_U64, "struct perf_event_attr", ("disabled",), le).value
    assert (lsh_be, lsh_le) == (0, 63)
    assert fix(K.FIELD_RSHIFT_U64, "struct perf_event_attr", ("disabled",), be).value == 63


def test_qstr_layout_is_reversed_on_big_endian(core_corpus: Corpus) -> None:
    be = core_corpus.btf("7.2.13-s390x")
    le = core_corpus.btf("7.2.13-amd64")
    assert fix(K.FIELD_BYTE_OFFSET, "struct qstr", ("len",), be).value == 0
    assert fix(K.FIELD_BYTE_OFFSET, "struct qstr", ("hash",), be).value == 4
    assert fix(K.FIELD_BYTE_OFFSET, "struct qstr", ("len",), le).value == 4
    assert fix(K.FIELD_BYTE_OFFSET, "struct qstr", ("hash",), le).value == 0
    assert fix(K.FIELD_BYTE_OFFSET, "struct dentry", ("d_name", "len"), be).value == 32


def test_identical_copies_are_one_candidate(core_corpus: Corpus) -> None:
    """The non-deduplicated 4.18 blob holds task_struct 476 times: no ambiguity."""
    target = core_corpus.btf("4.18.0-147.5.1.el8_1-arm64")
    assert len(CoreTarget.of(target).candidates((Kind.STRUCT,), "task_struct")) == 476
    assert fix(K.FIELD_BYTE_OFFSET, "struct task_struct", ("comm",), target).value == 2336
    type_id = fix(K.TYPE_ID_TARGET, "struct task_struct", (), target).value
    assert type_id == target.ids_by_name("task_struct", Kind.STRUCT)[0]
    assert fix(K.TYPE_SIZE, "struct task_struct", (), target).value == 4352


@pytest.mark.parametrize("name", SPLIT)
def test_split_btf_candidates(core_corpus: Corpus, name: str) -> None:
    """Module BTF as a target: its base (vmlinux) is searched first, its own types only for
    what the base lacks."""
    split = core_corpus.btf(name)
    assert split.base is not None
    for struct, expected in core_corpus.facts(name)["structs"].items():
        if expected is None or "type_id" not in expected:
            continue
        cands = CoreTarget.of(split).candidates((Kind.STRUCT,), struct)
        if any(c.name != struct for c in cands):  # nf_conn___init: a flavour in the kernel itself
            with pytest.raises(RelocationError, match="ambiguous"):
                fix(K.TYPE_ID_TARGET, f"struct {struct}", (), split)
            continue
        got_id = fix(K.TYPE_ID_TARGET, f"struct {struct}", (), split).value
        if expected["same_name_structs_in_base"]:
            assert got_id == split.base.ids_by_name(struct, Kind.STRUCT)[0], struct  # vmlinux first
            assert got_id < split.first_id
        else:
            assert got_id == expected["type_id"] >= split.first_id, struct  # only the module has it


def test_nf_conntrack_on_its_base(core_corpus: Corpus) -> None:
    split = core_corpus.btf("6.1.0-56-amd64-nf_conntrack")
    base = core_corpus.btf("6.1.0-56-amd64")
    # nf_conn is a vmlinux type; nf_conn_counter only the module has
    assert fix(K.FIELD_BYTE_OFFSET, "struct nf_conn", ("status",), split).value == 128
    assert fix(K.FIELD_BYTE_OFFSET, "struct nf_conn_counter", ("bytes",), split).value == 8
    assert fix(K.TYPE_EXISTS, "struct nf_conn_counter", (), base).value == 0
    # vmlinux has a flavour of its own, struct nf_conn___init { struct nf_conn ct; }: both are
    # candidates of nf_conn, they agree on the size but not on the type id (libbpf: ambiguous)
    assert fix(K.TYPE_SIZE, "struct nf_conn", (), split).value == 248
    with pytest.raises(RelocationError, match=r"ambiguous.*nf_conn___init"):
        fix(K.TYPE_ID_TARGET, "struct nf_conn", (), split)
    # only nf_conn___init has ct: the field relocation is not ambiguous
    assert fix(K.FIELD_BYTE_OFFSET, "struct nf_conn___x", ("ct", "status"), split).value == 128
    # an explicit target of vmlinux plus that module, as the running kernel's target is built
    target = CoreTarget(base, [split])
    assert fix(K.FIELD_BYTE_OFFSET, "struct nf_conn_acct", ("counter", 1, "bytes"), target).value == 24
    # a relocator prunes per program but the candidate cache is shared
    r = Relocator(target)
    assert r.resolve(CoreRelo(K.TYPE_EXISTS, "struct bpf_ct_opts")).value == 1
