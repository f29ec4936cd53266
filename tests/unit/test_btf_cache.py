"""The on-disk index cache: written once, read back, ignored when it does not fit, and the
hashed name index it carries answers exactly like searching and like a brute-force scan."""

from __future__ import annotations

import os
import pathlib
import random
import struct
from typing import Dict, List

import pytest
from deadline import deadline  # noqa: F401  (a fixture)
from test_btf_fixtures import Corpus

from ebpf import cache_files
from ebpf.btf import cache as btf_cache
from ebpf.btf import essential_name, load
from ebpf.btf.cache import cache_dir, load_cached

NOBODY = 65534

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


# ---- a cache somebody else could have written ----------------------------------------------------


def poison(cached: pathlib.Path, victim: int, donor: int) -> None:
    """Make type *victim* decode from *donor*'s record: a valid, sealed index that lies."""
    payload = cache_files.unseal(cached.read_bytes(), btf_cache._MAGIC)
    assert payload is not None
    raw = bytearray(payload)
    at = btf_cache._HEADER.size
    (donor_off,) = struct.unpack_from("=I", raw, at + 4 * (donor - 1))
    struct.pack_into("=I", raw, at + 4 * (victim - 1), donor_off)
    cached.write_bytes(b"".join(cache_files.seal(btf_cache._MAGIC, [bytes(raw)])))


def poisoned_cache(corpus: Corpus, cache: pathlib.Path) -> pathlib.Path:
    """The cache file, rewritten so that ``pid_t`` (4 bytes) decodes as ``u64``."""
    path = str(corpus.path(BLOB))
    btf = load_cached(path, defer=False)
    (cached,) = cache.iterdir()
    (victim,) = btf.ids_by_name("pid_t")
    (donor,) = btf.ids_by_name("u64")
    assert (victim - 1) % max(1, btf.count // btf_cache._SAMPLES), "pid_t is a sampled record: pick another"
    poison(cached, victim, donor)
    assert load_cached(path, defer=False).type_by_name("pid_t").sizeof() == 8  # the poison works when trusted
    return cached


def test_planted_index_is_not_used(corpus: Corpus, cache: pathlib.Path) -> None:
    cached = poisoned_cache(corpus, cache)
    os.chown(cached, NOBODY, NOBODY)  # the same file, planted by another user
    assert load_cached(str(corpus.path(BLOB)), defer=False).type_by_name("pid_t").sizeof() == 4


def test_index_in_a_group_writable_dir_is_not_used(corpus: Corpus, cache: pathlib.Path) -> None:
    poisoned_cache(corpus, cache)
    cache.chmod(0o770)
    assert load_cached(str(corpus.path(BLOB)), defer=False).type_by_name("pid_t").sizeof() == 4
    cache.chmod(0o700)
    os.chown(cache, NOBODY, NOBODY)
    assert load_cached(str(corpus.path(BLOB)), defer=False).type_by_name("pid_t").sizeof() == 4


def test_bit_flips_in_the_index_are_caught(corpus: Corpus, cache: pathlib.Path) -> None:
    path = str(corpus.path(BLOB))
    btf = load_cached(path, defer=False)
    (cached,) = cache.iterdir()
    good = cached.read_bytes()
    (victim,) = btf.ids_by_name("pid_t")
    at = 24 + btf_cache._HEADER.size + 4 * (victim - 1)  # pid_t's record offset in the file
    for bit in range(32):
        raw = bytearray(good)
        raw[at + bit // 8] ^= 1 << (bit % 8)
        cached.write_bytes(bytes(raw))
        again = load_cached(path, defer=False)
        assert again.type_by_name("pid_t").sizeof() == 4, bit
        assert not isinstance(again.name_hashes, memoryview)  # not read from the file: rebuilt


@pytest.mark.usefixtures("deadline")
def test_fifo_in_the_cache_does_not_hang(corpus: Corpus, cache: pathlib.Path) -> None:
    path = str(corpus.path(BLOB))
    load_cached(path, defer=False)
    (cached,) = cache.iterdir()
    cached.unlink()
    os.mkfifo(cached, 0o600)
    assert load_cached(path, defer=False).type_by_name("pid_t").sizeof() == 4
