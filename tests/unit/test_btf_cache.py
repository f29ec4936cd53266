"""The on-disk index cache: written once, read back, ignored when it does not fit, and the
hashed name index it carries answers exactly like searching and like a brute-force scan."""

from __future__ import annotations

import os
import pathlib
import random
from typing import Dict, List

import pytest
from test_btf_fixtures import Corpus

from ebpf.btf import essential_name, load
from ebpf.btf.cache import cache_dir, load_cached

BLOB = "6.11-ci-amd64"


@pytest.fixture()
def cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path))
    return tmp_path / "btf"


def test_written_then_read(corpus: Corpus, cache: pathlib.Path) -> None:
    path = str(corpus.path(BLOB))
    first = load_cached(path, defer=False)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith(f"{BLOB}.btf-") and files[0].stat().st_mode & 0o077 == 0
    second = load_cached(path, defer=False)
    assert isinstance(second.name_hashes, memoryview)  # came from the file
    assert second.count == first.count
    for name in ("task_struct", "file", "bpf_map_type", "pid_t", "do_sys_openat2"):
        assert second.ids_by_name(name) == first.ids_by_name(name) == corpus.btf(BLOB).ids_by_name(name)
    assert second.type_by_name("task_struct").sizeof() == 9536


def test_bad_cache_is_ignored(corpus: Corpus, cache: pathlib.Path) -> None:
    path = str(corpus.path(BLOB))
    load_cached(path, defer=False)
    (cached,) = cache.iterdir()
    raw = bytearray(cached.read_bytes())
    for i in range(40, len(raw) // 2, 997):  # scramble record offsets and names
        raw[i] ^= 0x5A
    cached.write_bytes(bytes(raw))
    btf = load_cached(path, defer=False)
    assert btf.type_by_name("task_struct").sizeof() == 9536
    cached.write_bytes(b"garbage")
    assert load_cached(path, defer=False).type_by_name("file").sizeof() == 232
    assert cached.read_bytes() != b"garbage"  # rewritten


def test_cache_switched_off(corpus: Corpus, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBPF_CACHE_DIR", "")
    assert cache_dir() is None
    btf = load_cached(str(corpus.path(BLOB)), defer=False)
    assert btf.name_hashes is None and not list(tmp_path.iterdir())


def test_unwritable_cache_dir(corpus: Corpus, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("EBPF_CACHE_DIR", str(blocker))
    assert load_cached(str(corpus.path(BLOB)), defer=False).type_by_name("pid_t").sizeof() == 4


@pytest.mark.parametrize("name", [BLOB, "7.1-ci-bpf_testmod.base-amd64", "7.2.13-s390x"])
def test_hashed_names_are_exact(corpus: Corpus, name: str) -> None:
    """Every name: hashed lookups equal a brute-force scan; a sample also equals searching."""
    hashed = load(corpus.path(name))
    hashed.build_name_hashes()
    searched = corpus.btf(name)
    by_name: Dict[str, List[int]] = {}
    by_essential: Dict[str, List[int]] = {}
    for type_id, _, type_name in searched.iter_names():
        by_name.setdefault(type_name, []).append(type_id)
        by_essential.setdefault(essential_name(type_name), []).append(type_id)
    for type_name, ids in by_name.items():
        assert hashed.ids_by_name(type_name) == ids, type_name
    for type_name, ids in by_essential.items():
        assert [t.id for t in hashed.candidates(type_name)] == ids, type_name
    sample = random.Random(1).sample(sorted(by_name), min(150, len(by_name)))
    for type_name in sample:
        assert searched.ids_by_name(type_name) == by_name[type_name], type_name
        assert [t.id for t in searched.candidates(type_name)] == by_essential[essential_name(type_name)]
    assert hashed.ids_by_name("no_such_type_anywhere") == []


def test_default_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EBPF_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert cache_dir() == os.path.join("/x/cache", "ebpf", "btf")


def test_saved_at_exit(corpus: Corpus, cache: pathlib.Path) -> None:
    """By default the index is written when the process ends, not while it starts."""
    import subprocess
    import sys

    path = str(corpus.path(BLOB))
    script = (
        "import os, sys\n"
        "from ebpf.btf.cache import load_cached\n"
        f"btf = load_cached({path!r})\n"
        "assert btf.name_hashes is None\n"
        f"assert not os.path.exists({str(cache)!r}) or not os.listdir({str(cache)!r})\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=repo)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list(cache.iterdir())) == 1
    assert isinstance(load_cached(path).name_hashes, memoryview)
