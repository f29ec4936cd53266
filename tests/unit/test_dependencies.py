"""Every third-party module the package imports (at any depth, lazily or not) belongs to a
distribution declared in pyproject's run-time ``dependencies``, and every declared dependency
is imported somewhere: a dependency kept only as a test extra breaks ``pip install .`` users on
the path that imports it, one declared but unused is dead weight in their install."""

from __future__ import annotations

import ast
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def declared() -> set:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
    assert block is not None
    return {re.split(r"[<>=!~;\[ ]", name, maxsplit=1)[0].lower() for name in re.findall(r'"([^"]+)"', block.group(1))}


def imported_top_level() -> set:
    names = set()
    for path in (ROOT / "ebpf").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.skipif(sys.version_info < (3, 10), reason="needs sys.stdlib_module_names (3.10)")
def test_imports_and_declared_dependencies_match() -> None:
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    third_party = {n for n in imported_top_level() if n != "ebpf" and n not in sys.stdlib_module_names}
    used = set()
    for name in sorted(third_party):
        dists = owners.get(name)
        assert dists, f"the package imports {name!r}, which no installed distribution provides"
        used.update(d.lower() for d in dists)
    assert used - declared() == set(), "imported but not declared in [project] dependencies"
    assert declared() - used == set(), "declared in [project] dependencies but never imported"
