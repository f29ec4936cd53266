"""A DSL function's source: its AST (parsed once and cached), its names, and positions.

Errors and line info name the file, line and column of the *original* file, so the AST of the
dedented function text is shifted back to where the function really is. Names a function
uses but does not assign are resolved against its closure cells, then its module globals,
then builtins: that is how constants, maps, types and helpers reach the compiler.
"""

from __future__ import annotations

import ast
import builtins
import linecache
from typing import Any, Dict, List, Optional, Tuple

from ebpf.asm.instruction import SourcePos
from ebpf.errors import CompileError

__all__ = ["FuncSource", "source_of", "MISSING"]

MISSING = object()
_cache: Dict[Any, FuncSource] = {}


class FuncSource:
    """The parsed function: ``tree`` (an ast.FunctionDef), file name, and name resolution."""

    def __init__(self, fn: Any, tree: ast.FunctionDef, file: str, col_shift: int,
                 lines: Optional[List[str]] = None) -> None:
        self.fn = fn
        self.tree = tree
        self.file = file
        self.lines = lines  # the text's lines when it is not in linecache (python -c, stdin, exec)
        self.col_shift = col_shift
        self.name = fn.__name__
        self.globals: Dict[str, Any] = getattr(fn, "__globals__", {})
        closure: Dict[str, Any] = {}
        code = getattr(fn, "__code__", None)
        if code is not None and fn.__closure__:
            for name, cell in zip(code.co_freevars, fn.__closure__):
                try:
                    closure[name] = cell.cell_contents
                except ValueError:  # a cell not yet filled (a name bound after the def)
                    pass
        self.closure = closure
        self._positions: Dict[Tuple[int, int], SourcePos] = {}

    def lookup(self, name: str) -> Any:
        """The compile-time value of a free name, or MISSING."""
        if name in self.closure:
            return self.closure[name]
        if name in self.globals:
            return self.globals[name]
        return getattr(builtins, name, MISSING)

    def line_text(self, line: int) -> str:
        if self.lines is not None:
            return self.lines[line - 1].rstrip("\n") if 0 < line <= len(self.lines) else ""
        return linecache.getline(self.file, line).rstrip("\n")

    def pos(self, node: Any) -> Optional[SourcePos]:
        line = getattr(node, "lineno", None)
        if line is None:
            return None
        col = getattr(node, "col_offset", 0) + 1
        key = (line, col)
        found = self._positions.get(key)
        if found is None:
            found = self._positions[key] = SourcePos(self.file, line, col, self.line_text(line).strip())
        return found

    def error(self, message: str, node: Any = None) -> CompileError:
        line = getattr(node, "lineno", 0) or self.tree.lineno
        col = (getattr(node, "col_offset", 0) or 0) + 1
        return CompileError(message, self.file, line, col, self.line_text(line))


_modules: Dict[str, Tuple[Any, Dict[Tuple[str, int], ast.FunctionDef]]] = {}


def _functions_of(file: str, lines: List[str]) -> Dict[Tuple[str, int], ast.FunctionDef]:
    """Every function definition of ``lines`` (the text of ``file``) by (name, first line incl.
    decorators): the whole module is parsed once (cheaper than ``inspect`` and exact about
    lines and columns)."""
    key = (len(lines), hash(tuple(lines)))
    found = _modules.get(file)
    if found is not None and found[0] == key:
        return found[1]
    try:
        module = ast.parse("".join(lines), file)
    except SyntaxError as e:
        raise CompileError(f"syntax error: {e.msg}", file, e.lineno or 0, e.offset or 0) from None
    index: Dict[Tuple[str, int], ast.FunctionDef] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            index[(node.name, first)] = node
            index.setdefault((node.name, node.lineno), node)
    _modules[file] = (key, index)
    return index


def source_of(fn: Any) -> FuncSource:
    """The parsed source of ``fn`` (cached per function object).

    The text comes from :mod:`linecache` (files, IPython cells, Python 3.13's REPL), else from
    where :mod:`ebpf.lang.source_text` finds it (``python -c``, stdin, the REPL's history, a
    ``source=`` text); without either the error says how to give it.
    """
    key = (getattr(fn, "__code__", None), id(fn))
    found = _cache.get(key)
    if found is not None and found.fn is fn:
        return found
    code = getattr(fn, "__code__", None)
    name = getattr(fn, "__name__", repr(fn))
    if code is None:
        raise CompileError(f"{name!r} is not a Python function")
    file = code.co_filename
    where = (name, code.co_firstlineno)
    linecache.checkcache(file)
    lines = linecache.getlines(file)
    tree = _functions_of(file, lines).get(where) if lines else None
    recovered: Optional[List[str]] = None
    if tree is None:
        from ebpf.lang import source_text

        recovered = source_text.find_lines(code)
        if recovered is None:
            if lines:
                raise CompileError(f"cannot find the source of {name!r} in {file} (line {code.co_firstlineno})",
                                   file, code.co_firstlineno)
            raise CompileError(source_text.advice(name), file, code.co_firstlineno)
        tree = _functions_of(file, recovered).get(where)
        if tree is None:  # the text defines the code object, so this is not expected
            raise CompileError(f"cannot find the definition of {name!r} in its source text", file,
                               code.co_firstlineno)
    found = FuncSource(fn, tree, file, 0, recovered)
    _cache[key] = found
    return found
