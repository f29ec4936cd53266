"""The shared cache-file rules (ebpf.cache_files): a cache somebody else could write is not used,
files are opened without following links or blocking on FIFOs, written atomically with private
modes, and every bit flip in an entry is caught by its checksum."""

from __future__ import annotations

import os
import pathlib
import random
import stat

import pytest
from deadline import deadline  # noqa: F401  (a fixture)

from ebpf import cache_files

NOBODY = 65534


@pytest.fixture()
def root(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A cache root of ours (tmp_path is 0700 under the sticky /tmp)."""
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache_files, "_notes", [])
    return tmp_path / "cache"


def test_written_private_and_atomic(root: pathlib.Path) -> None:
    assert cache_files.write("sub", "entry", [b"abc", b"def"])
    assert cache_files.read("sub", "entry") == b"abcdef"
    assert stat.S_IMODE((root / "sub" / "entry").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "sub").stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert sorted(os.listdir(root / "sub")) == ["entry"]  # no temporary file left
    ((name, mtime),) = cache_files.entries("sub")
    assert name == "entry" and mtime == (root / "sub" / "entry").stat().st_mtime_ns
    cache_files.remove("sub", ["entry", "missing"])
    assert cache_files.read("sub", "entry") is None


@pytest.mark.parametrize("where", ["root", "sub"])
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_dir_writable_by_others_is_not_used(root: pathlib.Path, where: str, mode: int) -> None:
    assert cache_files.write("sub", "entry", [b"x"])
    victim = root if where == "root" else root / "sub"
    victim.chmod(mode)
    assert cache_files.read("sub", "entry") is None
    assert not cache_files.write("sub", "other", [b"y"])
    assert not (root / "sub" / "other").exists()
    assert any("writable by" in note for note in cache_files.refusals())


def test_dir_of_another_user_is_not_used(root: pathlib.Path) -> None:
    assert cache_files.write("sub", "entry", [b"x"])
    os.chown(root / "sub", NOBODY, NOBODY)
    assert cache_files.read("sub", "entry") is None
    assert any(f"owned by uid {NOBODY}" in note for note in cache_files.refusals())


def test_file_of_another_user_or_writable_is_not_used(root: pathlib.Path) -> None:
    assert cache_files.write("sub", "entry", [b"x"])
    entry = root / "sub" / "entry"
    entry.chmod(0o622)
    assert cache_files.read("sub", "entry") is None
    entry.chmod(0o600)
    os.chown(entry, NOBODY, NOBODY)
    assert cache_files.read("sub", "entry") is None
    os.chown(entry, os.geteuid(), os.getegid())
    assert cache_files.read("sub", "entry") == b"x"


def test_above_the_root_sticky_is_allowed_plain_world_writable_is_not(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("EBPF_CACHE_DIR", str(shared / "mine" / "cache"))
    shared.chmod(0o1777)  # like /tmp: others cannot rename our "mine" away
    assert cache_files.write("sub", "entry", [b"x"])
    assert cache_files.read("sub", "entry") == b"x"
    shared.chmod(0o777)  # others could swap "mine" for a directory of theirs
    assert cache_files.read("sub", "entry") is None
    shared.chmod(0o1777)
    os.chown(shared / "mine", NOBODY, NOBODY)  # planted in the sticky directory by someone else
    assert cache_files.read("sub", "entry") is None


def test_symlinks_are_not_followed(root: pathlib.Path, tmp_path: pathlib.Path) -> None:
    assert cache_files.write("sub", "entry", [b"x"])
    (tmp_path / "elsewhere").write_bytes(b"planted")
    (root / "sub" / "link").symlink_to(tmp_path / "elsewhere")
    assert cache_files.read("sub", "link") is None
    os.rename(root / "sub", root / "real")
    (root / "sub").symlink_to(root / "real")  # a link below the root
    assert cache_files.read("sub", "entry") is None


def test_symlinked_root_is_resolved_then_checked(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "alias").symlink_to(real)
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path / "alias"))
    assert cache_files.write("sub", "entry", [b"x"])
    assert (real / "sub" / "entry").read_bytes() == b"x"


@pytest.mark.usefixtures("deadline")
def test_fifo_does_not_block(root: pathlib.Path) -> None:
    assert cache_files.write("sub", "entry", [b"x"])
    os.mkfifo(root / "sub" / "fifo", 0o600)
    assert cache_files.read("sub", "fifo") is None
    assert cache_files.open_file("sub", "fifo") is None


def test_unwritable_place_is_no_error(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path / "file" / "cache"))
    assert not cache_files.write("sub", "entry", [b"x"])
    assert cache_files.read("sub", "entry") is None
    monkeypatch.setenv("EBPF_CACHE_DIR", "")
    assert cache_files.cache_root() is None and not cache_files.write("sub", "entry", [b"x"])


def test_every_bit_flip_is_caught() -> None:
    rng = random.Random(7)
    payload = [bytes(rng.randrange(256) for _ in range(200)), b"tail"]
    sealed = b"".join(cache_files.seal(b"TESTFMT1", payload))
    assert bytes(cache_files.unseal(sealed, b"TESTFMT1") or b"") == b"".join(payload)
    for bit in range(len(sealed) * 8):
        raw = bytearray(sealed)
        raw[bit // 8] ^= 1 << (bit % 8)
        assert cache_files.unseal(bytes(raw), b"TESTFMT1") is None, bit
    assert cache_files.unseal(sealed[:-1], b"TESTFMT1") is None
    assert cache_files.unseal(sealed, b"OTHERFMT") is None
