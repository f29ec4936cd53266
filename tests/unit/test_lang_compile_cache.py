"""The on-disk compile cache: a warm compile reads the program back, a change recompiles."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import random
import sys
from typing import Any, List

import pytest
from deadline import deadline  # noqa: F401  (a fixture)

from ebpf.asm import encode

NOBODY = 65534

TOOL = '''
from ebpf import lang as L
from ebpf.lang import u32, u64

LIMIT = {limit}

coll = L.Collection("cachetest")
counts = coll.array_map("counts", value=u64, max_entries=4)


@coll.socket_filter
def prog(ctx):
    i = u32(L.get_smp_processor_id()) & 3
    if i < LIMIT:
        counts[i] += 1
    return 0
'''


def load_module(path: pathlib.Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> List[str]:
    """Names of the programs really compiled (not read from the cache)."""
    import ebpf.lang.compiler as compiler

    real = compiler.compile_program
    seen: List[str] = []

    def counting(decl: Any) -> Any:
        seen.append(decl.name)
        return real(decl)

    monkeypatch.setattr(compiler, "compile_program", counting)
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path / "cache"))
    return seen


def compile_tool(tmp_path: pathlib.Path, limit: int, tag: str) -> bytes:
    src = tmp_path / f"cachetool_{tag}.py"
    src.write_text(TOOL.format(limit=limit))
    module = load_module(src, f"cachetool_{tag}")
    return encode(module.coll.spec().programs["prog"].instructions)


def test_second_compile_comes_from_the_cache(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    first = compile_tool(tmp_path, 2, "a")
    assert compiles == ["prog"]
    assert list((tmp_path / "cache" / "programs").iterdir())
    again = compile_tool(tmp_path, 2, "a")
    assert compiles == ["prog"] and again == first


def test_a_changed_constant_recompiles(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    first = compile_tool(tmp_path, 2, "b")
    changed = compile_tool(tmp_path, 3, "b")
    assert compiles == ["prog", "prog"] and changed != first


def test_empty_cache_dir_switches_it_off(tmp_path: pathlib.Path, compiles: List[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBPF_CACHE_DIR", "")
    compile_tool(tmp_path, 2, "c")
    compile_tool(tmp_path, 2, "c")
    assert compiles == ["prog", "prog"]


# ---- a cache somebody else could have written, or that rotted ----------------------------------


def cached_entry(tmp_path: pathlib.Path) -> pathlib.Path:
    (entry,) = (tmp_path / "cache" / "programs").iterdir()
    return entry


def test_bit_flips_are_detected(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    """Each flipped bit of an entry: the program read back is the one compiled, or it is recompiled."""
    src = tmp_path / "cachetool_flip.py"
    src.write_text(TOOL.format(limit=2))
    decl = load_module(src, "cachetool_flip").coll.programs["prog"]
    first = decl.compile()
    want = (encode(first.instructions), [i.source for i in first.instructions])
    entry = cached_entry(tmp_path)
    good = entry.read_bytes()
    rng = random.Random(1)
    bits = sorted(rng.sample(range(len(good) * 8), 300))
    for bit in bits:
        raw = bytearray(good)
        raw[bit // 8] ^= 1 << (bit % 8)
        entry.write_bytes(bytes(raw))
        spec = decl.compile()
        assert (encode(spec.instructions), [i.source for i in spec.instructions]) == want, f"bit {bit}"
    assert len(compiles) > 250  # nearly every flip was caught and recompiled (a flip in the name is a miss too)


def test_entry_of_another_user_is_not_used(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    compile_tool(tmp_path, 2, "d")
    os.chown(cached_entry(tmp_path), NOBODY, NOBODY)
    compile_tool(tmp_path, 2, "d")
    assert compiles == ["prog", "prog"]


def test_group_writable_dir_is_not_used(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    compile_tool(tmp_path, 2, "e")
    (tmp_path / "cache" / "programs").chmod(0o770)
    compile_tool(tmp_path, 2, "e")
    assert compiles == ["prog", "prog"]
    (tmp_path / "cache" / "programs").chmod(0o700)
    compile_tool(tmp_path, 2, "e")
    assert compiles == ["prog", "prog"]  # the entry the first compile wrote


@pytest.mark.usefixtures("deadline")
def test_fifo_does_not_hang(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    compile_tool(tmp_path, 2, "f")
    entry = cached_entry(tmp_path)
    entry.unlink()
    os.mkfifo(entry, 0o600)
    compile_tool(tmp_path, 2, "f")
    assert compiles == ["prog", "prog"]


def test_warm_start_imports_neither_pickle_nor_the_compiler(tmp_path: pathlib.Path, compiles: List[str]) -> None:
    compile_tool(tmp_path, 2, "g")
    assert not cached_entry(tmp_path).read_bytes().startswith(b"\x80")  # a pickle's PROTO opcode
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('cachetool_g', {str(tmp_path / 'cachetool_g.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "module.coll.spec()\n"
        "assert 'ebpf.lang.compiler' not in sys.modules, 'compiled: not read from the cache'\n"
        "assert 'pickle' not in sys.modules, 'pickle imported'\n"
    )
    import subprocess

    repo = pathlib.Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_old_entries_are_pruned(tmp_path: pathlib.Path, compiles: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ebpf.lang import compile_cache

    monkeypatch.setattr(compile_cache, "MAX_FILES", 4)
    programs = tmp_path / "cache" / "programs"
    programs.mkdir(parents=True, mode=0o700)
    (tmp_path / "cache").chmod(0o700)
    for i in range(6):
        old = programs / f"stale-{i}.pkl"
        old.write_bytes(b"x")
        os.utime(old, ns=(i, i))
    compile_tool(tmp_path, 2, "h")
    left = sorted(p.name for p in programs.iterdir())
    assert len(left) == 2 and not any(name.startswith("stale-0") for name in left), left
