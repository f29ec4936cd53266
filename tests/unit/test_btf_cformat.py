"""C output against bpftool's (``bpftool btf dump file F format c``) on corpus blobs: the
big-endian s390x, the 32-bit armhf, an old (4.14, kflag bitfields) one and split BTF on a
full and on a distilled base; plus single definitions against the full dump."""

from __future__ import annotations

import subprocess
from typing import Dict, Optional

import pytest
from test_btf_fixtures import BPFTOOL, Corpus, corpus_names

from ebpf.btf import BTF, CDumper, Kind

COMPARED = [
    "7.2.13-s390x",
    "6.1.0-50-armmp-armhf",
    "4.14.348-265.565.amzn2-amd64",
    "6.1.0-56-amd64-nf_conntrack",
    "7.1-ci-bpf_testmod-amd64",
]
_bpftool_cache: Dict[str, str] = {}


def bpftool_c(corpus: Corpus, name: str) -> str:
    if name not in _bpftool_cache:
        assert BPFTOOL is not None
        cmd = [BPFTOOL]
        base: Optional[str] = corpus.base_name(name)
        if base:
            cmd += ["-B", str(corpus.path(base))]
        cmd += ["btf", "dump", "file", str(corpus.path(name)), "format", "c"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        _bpftool_cache[name] = done.stdout
    return _bpftool_cache[name]


@pytest.mark.skipif(BPFTOOL is None, reason="needs bpftool")
@pytest.mark.parametrize("name", [n for n in COMPARED if n in corpus_names()])
def test_full_dump_matches_bpftool(corpus: Corpus, name: str) -> None:
    ours = CDumper(corpus.btf(name)).dump_all()
    theirs = bpftool_c(corpus, name)
    if ours != theirs:  # show the first differing lines, not 5 MB
        for i, (a, b) in enumerate(zip(ours.splitlines(), theirs.splitlines())):
            assert a == b, f"line {i + 1}"
    assert ours == theirs


def recorded_definitions(btf: BTF) -> Dict[int, str]:
    """Each top-level definition of the full dump, by type id."""
    full = CDumper(btf)
    full._reset()
    full._recording = {}
    for type_id in range(1, btf.last_id + 1):
        full._dump_type(type_id)
    return {i: text.rstrip("\n") for i, text in full._recording.items()}


@pytest.mark.parametrize("name", ["6.1.0-56-amd64-nf_conntrack", "7.2.13-s390x"])
def test_definitions_match_full_dump(corpus: Corpus, name: str) -> None:
    """A single definition (fast path or partial simulation) equals its part of the full dump."""
    btf = corpus.btf(name)
    recorded = recorded_definitions(btf)
    dumper = CDumper(btf)
    ids = sorted(recorded)
    if len(ids) > 3000:  # every shared-name case, and a sample of the rest
        census = dumper._name_census()
        shared = {n for ns in census for n, c in ns.items() if c > 1}
        ids = [i for i in ids if btf.name_of(i) in shared] + ids[::7]
    for type_id in ids:
        assert dumper.definition(type_id) == recorded[type_id], type_id


def test_renamed_duplicates(corpus: Corpus) -> None:
    """A module re-defining a base struct: bpftool calls the second one ``___2``."""
    btf = corpus.btf("6.1.0-56-amd64-nf_conntrack")
    own, base = btf.ids_by_name("file_system_type", Kind.STRUCT)
    dumper = CDumper(btf)
    assert dumper.definition(base).startswith("struct file_system_type {\n")
    mine = dumper.definition(own)
    assert mine.startswith("struct file_system_type___2 {\n")
    assert "\tstruct file_system_type___2 *next;\n" in mine
