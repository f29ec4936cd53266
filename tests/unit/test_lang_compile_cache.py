"""The on-disk compile cache: a warm compile reads the program back, a change recompiles."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from typing import Any, List

import pytest

from ebpf.asm import encode

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
