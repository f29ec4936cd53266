"""The facts of every corpus blob (struct sizes, member bit offsets and bitfield sizes, renamed
fields absent, enum values, kind counts, long size, byte order) computed by our reader."""

from __future__ import annotations

import hashlib

import pytest
from test_btf_fixtures import Corpus, corpus_names

from ebpf.btf import Composite, Enum, Kind

NAMES = corpus_names()
COMPOSITES = (Kind.STRUCT, Kind.UNION)


@pytest.mark.parametrize("name", NAMES)
def test_blob_header_facts(corpus: Corpus, name: str) -> None:
    facts = corpus.facts(name)
    data = corpus.path(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == facts["sha256"]
    btf = corpus.btf(name)
    assert btf.count == facts["types"]
    assert btf.byte_order == facts["endian"]
    assert btf.long_size == facts["long_size"]
    assert {k.name: n for k, n in btf.kind_counts().items()} == facts["kinds"]
    split = facts.get("split")
    if split:
        assert btf.base is not None and btf.base.count == split["base_types"]
        assert btf.first_id == split["first_type_id"]
    else:
        assert btf.first_id == 1 and btf.base is None


@pytest.mark.parametrize("name", NAMES)
def test_struct_layouts(corpus: Corpus, name: str) -> None:
    facts = corpus.facts(name)
    btf = corpus.btf(name)
    for struct_name, expected in facts["structs"].items():
        found = btf.types_by_name(struct_name, Kind.STRUCT)
        if expected is None:
            assert not found, f"{struct_name} should be absent"
            continue
        assert found, f"{struct_name} missing"
        struct = found[0]
        assert isinstance(struct, Composite)
        assert struct.size == expected["size"], struct_name
        assert btf.size_of(struct) == expected["size"]
        if "type_id" in expected:
            assert struct.id == expected["type_id"]
            assert btf.base is not None
            assert len(btf.base.ids_by_name(struct_name, Kind.STRUCT)) == expected["same_name_structs_in_base"]
        for member_name, member in expected["members"].items():
            field = struct.find_member(member_name)
            where = f"{struct_name}.{member_name}"
            if member is None:
                assert field is None, f"{where} should be absent"
                continue
            assert field is not None, f"{where} missing"
            assert field.bit_offset == member["bit_offset"], where
            assert field.bitfield_size == member["bitfield_size"], where


@pytest.mark.parametrize("name", NAMES)
def test_enum_values(corpus: Corpus, name: str) -> None:
    btf = corpus.btf(name)
    for enum_name, values in corpus.facts(name)["enums"].items():
        enum = btf.type_by_name(enum_name, (Kind.ENUM, Kind.ENUM64))
        assert isinstance(enum, Enum)
        for enumerator, value in values.items():
            assert enum.value_of(enumerator) == value, f"{enum_name}.{enumerator}"


@pytest.mark.parametrize("name", NAMES)
def test_struct_copies(corpus: Corpus, name: str) -> None:
    btf = corpus.btf(name)
    for struct_name, copies in corpus.facts(name).get("struct_copies", {}).items():
        ids = btf.ids_by_name(struct_name, Kind.STRUCT)
        assert len(ids) == copies, struct_name
        # CO-RE sees them as candidates of one essential name, identical for what it asks
        assert [t.id for t in btf.candidates(struct_name, Kind.STRUCT)] == ids


def test_distilled_base_stubs(corpus: Corpus) -> None:
    """A distilled base keeps structs as name + size; the split blob's ids continue after it."""
    btf = corpus.btf("7.1-ci-bpf_testmod-amd64")
    task = btf.type_by_name("task_struct", Kind.STRUCT)
    assert isinstance(task, Composite) and task.members == () and task.size == 5504
    assert task.btf is btf.base and task.id < btf.first_id


def test_split_module_redefines_base_type(corpus: Corpus) -> None:
    """nf_conntrack re-defines file_system_type: own type first, then the base's."""
    btf = corpus.btf("6.1.0-56-amd64-nf_conntrack")
    ids = btf.ids_by_name("file_system_type", Kind.STRUCT)
    assert ids[0] >= btf.first_id and ids[1] < btf.first_id
    # a module type named by a base string, and one by its own string
    assert btf.type_by_id(ids[0]).name == "file_system_type"
    assert btf.type_by_name("nf_conn_counter").id >= btf.first_id


def test_big_endian_layout(corpus: Corpus) -> None:
    btf = corpus.btf("7.2.13-s390x")
    qstr = btf.type_by_name("qstr", Kind.STRUCT)
    assert isinstance(qstr, Composite)
    assert qstr.field("len").byte_offset == 0 and qstr.field("hash").byte_offset == 4


def test_32bit_pointers(corpus: Corpus) -> None:
    btf = corpus.btf("6.1.0-50-armmp-armhf")
    path = btf.type_by_name("path", Kind.STRUCT)
    assert btf.long_size == 4 and path.sizeof() == 8
    dentry = btf.type_by_name("path", Kind.STRUCT)
    assert isinstance(dentry, Composite) and dentry.field("dentry").type.sizeof() == 4


def test_forward_references(corpus: Corpus) -> None:
    """In the 7.x blobs type 1 is a CONST of a much later type."""
    btf = corpus.btf("7.2.13-amd64")
    first = btf.type_by_id(1)
    assert first.kind == Kind.CONST
    assert first.type_id > 1000  # type: ignore[attr-defined]
    assert btf.type_by_id(first.type_id).id == first.type_id  # type: ignore[attr-defined]


def test_dedup_free_blob(corpus: Corpus) -> None:
    """The 4.18 blob is not deduplicated: 476 task_structs, all CO-RE candidates."""
    btf = corpus.btf("4.18.0-147.5.1.el8_1-arm64")
    assert len(btf.ids_by_name("task_struct", Kind.STRUCT)) == 476
    sizes = {t.sizeof() for t in btf.candidates("task_struct___mine", Kind.STRUCT)}
    assert sizes == {corpus.facts("4.18.0-147.5.1.el8_1-arm64")["structs"]["task_struct"]["size"]}
