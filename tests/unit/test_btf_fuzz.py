"""Mutated blobs (bit flips, truncations, corrupted header fields and records) make the reader
raise BTFError and nothing else, however far a caller goes: parsing, inflating every type,
names, sizes, alignment, member lookups, enum values and the C dump."""

from __future__ import annotations

import struct
from typing import Callable, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_btf_fixtures import Corpus, corpus_names
from test_btf_synthetic import c_sample

from ebpf.btf import BTF, BTFError, CDumper, Composite, Enum, from_bytes

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
