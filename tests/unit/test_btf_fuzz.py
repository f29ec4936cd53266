"""Mutated blobs (bit flips, truncations, corrupted header fields and records) make the reader
raise BTFError and nothing else, however far a caller goes: parsing, inflating every type,
names, sizes, alignment, member lookups, enum values and the C dump. CO-RE relocation over
mutated and tangled BTF (types that refer to themselves, to later types, past the end) raises
ebpf.errors only: type names in messages, candidate matching, compatibility checks.
Seeded (derandomized) and bounded in examples, so the suite's time stays fixed."""

from __future__ import annotations

import struct
from typing import Callable, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_btf_fixtures import Corpus, corpus_names
from test_btf_synthetic import Writer, c_sample

from ebpf.asm import Instruction
from ebpf.btf import BTF, BTFError, CDumper, Composite, Enum, Kind, from_bytes
from ebpf.btf.core import Relocator
from ebpf.btf.core_spec import describe_type
from ebpf.btf.relo import CoreRelo
from ebpf.errors import EbpfError
from ebpf.uapi import CoreReloKind

INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x0FFFFF, 0x01000000,
               0x13000000, 0x84000003, 0x04FFFFFF]

Mutation = Tuple[str, int, int]
mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "truncate", "header", "word", "byte"]),
        st.integers(min_value=0, max_value=1 << 20),
        st.one_of(st.sampled_from(INTERESTING), st.integers(min_value=0, max_value=0xFFFFFFFF)),
    ),
    min_size=1,
    max_size=4,
)


def mutate(blob: bytes, edits: List[Mutation]) -> bytes:
    raw = bytearray(blob)
    for op, where, value in edits:
        if not raw:
            break
        if op == "flip":
            i = where % len(raw)
            raw[i] ^= 1 << (value % 8)
        elif op == "truncate":
            del raw[where % len(raw) :]
        elif op == "header" and len(raw) >= 24:
            struct.pack_into("<I", raw, 4 * (1 + where % 5), value)
        elif op == "word" and len(raw) >= 8:
            struct.pack_into("<I", raw, 4 * (where % (len(raw) // 4)), value)
        elif op == "byte":
            raw[where % len(raw)] = value & 0xFF
    return bytes(raw)


def exercise(data: bytes, base: Optional[BTF] = None, dump: bool = True) -> None:
    """Everything a caller may do with a blob; only BTFError may come out."""
    try:
        btf = BTF(data, base=base, name="fuzzed")
    except BTFError:
        return
    calls: List[Callable[[], object]] = [btf.kind_counts, lambda: list(btf.iter_names()), lambda: btf.long_size]
    for type_id in btf.type_ids():
        calls.append(lambda i=type_id: _poke(btf, i))  # type: ignore[misc]
    for name in ("task_struct", "int", "bpf_testmod_struct_arg_1", "outer", "long int"):
        calls.append(lambda n=name: btf.types_by_name(n))  # type: ignore[misc]
        calls.append(lambda n=name: btf.candidates(n + "___x"))  # type: ignore[misc]
    if dump:
        calls.append(lambda: CDumper(btf).dump_all())
        calls.append(lambda: [CDumper(btf).definition(i) for i in list(btf.type_ids())[:40]])
    calls.append(lambda: btf.decl_tags(btf.first_id))
    for call in calls:
        try:
            call()
        except BTFError:
            pass


def _poke(btf: BTF, type_id: int) -> None:
    t = btf.type_by_id(type_id)
    repr(t)
    btf.name_of(type_id)
    btf.kind_of(type_id)
    for op in (btf.size_of, btf.align_of, btf.resolve, btf.unqualified):
        try:
            op(t)
        except BTFError:
            pass
    if isinstance(t, Composite):
        for m in t.members:
            repr(m)
            for get in ("type", "bitfield_size", "bit_offset"):
                try:
                    getattr(m, get)
                except BTFError:
                    pass
            try:
                t.find_member(m.name)
            except BTFError:
                pass
    if isinstance(t, Enum):
        for v in t.values:
            t.value_of(v.name)


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(edits=mutations, big=st.booleans())
def test_synthetic_blob(edits: List[Mutation], big: bool) -> None:
    exercise(mutate(c_sample().blob(">" if big else "<"), edits))


@pytest.mark.skipif("7.1-ci-bpf_testmod.base-amd64" not in corpus_names(), reason="no corpus")
@FUZZ
@given(edits=mutations)
def test_distilled_base(corpus: Corpus, edits: List[Mutation]) -> None:
    exercise(mutate(corpus.path("7.1-ci-bpf_testmod.base-amd64").read_bytes(), edits))


@pytest.mark.skipif("7.1-ci-bpf_testmod-amd64" not in corpus_names(), reason="no corpus")
@FUZZ
@given(edits=mutations)
def test_split_module_on_distilled_base(corpus: Corpus, edits: List[Mutation]) -> None:
    base = corpus.btf("7.1-ci-bpf_testmod.base-amd64")
    exercise(mutate(corpus.path("7.1-ci-bpf_testmod-amd64").read_bytes(), edits), base=base)


@pytest.mark.skipif("6.11-ci-bpf_testmod-amd64" not in corpus_names(), reason="no corpus")
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(edits=mutations)
def test_split_module_on_vmlinux(corpus: Corpus, edits: List[Mutation]) -> None:
    base = corpus.btf("6.11-ci-amd64")
    exercise(mutate(corpus.path("6.11-ci-bpf_testmod-amd64").read_bytes(), edits), base=base, dump=False)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(junk=st.binary(max_size=256))
def test_elf_garbage(junk: bytes) -> None:
    try:
        from_bytes(b"\x7fELF" + junk)
    except BTFError:
        pass


# ------------------------------------------------------------------ CO-RE over fuzzed BTF

_REF_KINDS = [Kind.ARRAY, Kind.PTR, Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.TYPE_TAG, Kind.STRUCT, Kind.UNION,
              Kind.ENUM, Kind.FWD, Kind.INT]
_NAMES = ["s", "s___v2", "u", "e", "t", ""]
_PATHS: List[Tuple[object, ...]] = [(), ("a",), ("b",), ("a", 1), ("a", 0, "b"), ("a", 1, 2), (1, "a"), (0, "b", "a"),
                                    ("a", "a", "a"), ("A",), ("V0",), (3,)]
_TYPE_NAMES = ["struct s", "struct s___v2", "union u", "enum e", "typedef t", "e", "int"]


@st.composite
def tangled_btf(draw: st.DrawFn) -> bytes:
    """A small BTF whose references point anywhere: at the type itself (an array of itself),
    at later types, at type 0 and past the last type."""
    w = Writer()
    w.int_("int", 4, encoding=1)  # 1
    count = draw(st.integers(min_value=2, max_value=10))
    ref = st.integers(min_value=0, max_value=count + 2)
    for i in range(2, count + 2):
        kind = draw(st.sampled_from(_REF_KINDS))
        name = draw(st.sampled_from(_NAMES))
        if kind == Kind.ARRAY:
            w.array(draw(ref), 1, draw(st.sampled_from([0, 1, 2, 0xFFFFFFFF])))
        elif kind in (Kind.STRUCT, Kind.UNION):
            members = [(m, draw(ref), draw(st.sampled_from([0, 8, 32, 0xFFFFFF])), 0)
                       for m in draw(st.lists(st.sampled_from(["a", "b", ""]), max_size=3))]
            w.composite(kind, name, draw(st.sampled_from([0, 4, 8, 0xFFFFFFFF])), members,
                        kflag=draw(st.integers(0, 1)))
        elif kind == Kind.ENUM:
            w.enum(name, draw(st.sampled_from([1, 4, 8, 3])), [("V0", 0), ("V1", -1)])
        elif kind == Kind.FWD:
            w.add(Kind.FWD, name or "s")
        elif kind == Kind.INT:
            w.int_(name or "int", draw(st.sampled_from([1, 4, 8])), bits=draw(st.sampled_from([0, 3, 32, 64, 128])))
        else:
            w.ref(kind, draw(ref), name if kind == Kind.TYPEDEF else "")
        assert len(w.records) == i
    return w.blob()


def exercise_core(target: BTF, local: Optional[BTF]) -> None:
    """CO-RE relocation of every kind along assorted paths: only ebpf.errors may come out."""
    for type_id in target.type_ids():
        try:
            describe_type(target.type_by_id(type_id))
        except EbpfError:
            pass
    relocator = Relocator(target, local_btf=local)
    for kind in CoreReloKind:
        for type_name in _TYPE_NAMES:
            for access in _PATHS if kind != CoreReloKind.TYPE_ID_LOCAL else [()]:
                relo = CoreRelo(kind, type_name, access)  # type: ignore[arg-type]
                try:
                    relocator.resolve(relo)
                except EbpfError:
                    pass
            insn = Instruction(0x61, 1, 2, 0, meta={"core": CoreRelo(kind, type_name, ("a",))})  # r1 = *(u32 *)(r2)
            try:
                relocator.relocate([insn])  # patching and poisoning too
            except EbpfError:
                pass


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(blob=tangled_btf(), with_local=st.booleans())
def test_core_over_tangled_btf(blob: bytes, with_local: bool) -> None:
    btf = BTF(blob, name="tangled")
    exercise_core(btf, btf if with_local else None)


def test_core_array_of_itself() -> None:
    """The case that once raised RecursionError while an error message named the type."""
    w = Writer()
    w.int_("int", 4, encoding=1)  # 1
    w.array(2, 1, 4)  # 2: an array of itself
    w.composite(Kind.STRUCT, "s", 16, [("a", 2, 0, 0), ("b", 1, 0, 0)])  # 3
    btf = BTF(w.blob(), name="loop")
    assert "(a loop?)" in describe_type(btf.type_by_id(2))
    for access in [("a",), ("a", 1), ("a", 1, 2)]:
        for kind in (CoreReloKind.FIELD_BYTE_OFFSET, CoreReloKind.FIELD_BYTE_SIZE, CoreReloKind.FIELD_EXISTS):
            try:
                Relocator(btf).resolve(CoreRelo(kind, "struct s", access))
            except EbpfError as e:
                assert "loop" in str(e) or "no size" in str(e), e


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(edits=mutations)
def test_core_over_mutated_blob(edits: List[Mutation]) -> None:
    try:
        btf = BTF(mutate(c_sample().blob(), edits), name="fuzzed")
    except BTFError:
        return
    exercise_core(btf, None)
