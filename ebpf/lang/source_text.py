"""The text of a function that has no source file: ``python -c``, stdin, a REPL, ``exec``.

The compiler reads a function's source through :mod:`linecache`, which already knows files,
IPython/Jupyter cells and Python 3.13's REPL inputs (they register their text there). For the
rest Python keeps no text, so it is looked for where it still is:

* the text given to ``L.Collection(name, source=text)`` (an ``exec``'d string);
* ``python -c TEXT``: the command line (``sys.orig_argv``, else ``/proc/self/cmdline``);
* ``python - < file`` and ``python -i < file``: stdin, when it is a regular file (read again from
  its start, without moving the interpreter's position);
* an interactive session: the readline history (the lines typed, one statement after another).

A candidate text is used only when compiling it yields a code object *equal* to the function's
(same bytecode, constants, names and line numbers): an exec'd string and ``python -c`` are both
``"<string>"``, and a REPL numbers each statement from 1, so name and line alone could pick the
wrong text. Interactive input is tried statement by statement.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import types
from typing import Iterator, List, Optional, Tuple

__all__ = ["give", "find_lines", "advice"]

_given: List[str] = []
_MAX_STDIN = 16 << 20
_DEF = re.compile(r"\s*(@|(async\s+)?def\s|class\s)")
_CONTINUES = re.compile(r"(else|elif|except|finally)\b|[)\]}]")
_MAX_GROW = 8


def give(text: str) -> None:
    """Remember ``text`` as the source of functions defined by executing it."""
    if not isinstance(text, str):
        from ebpf.errors import CompileError

        raise CompileError(f"source= takes the program's text (a str), not {type(text).__name__}")
    if text not in _given:
        _given.append(text)


def find_lines(code: types.CodeType) -> Optional[List[str]]:
    """Lines of a text that defines ``code`` (numbered as ``code`` is), or None."""
    file = code.co_filename
    for text, whole in _candidates(file):
        lines = text.splitlines(True)
        chunks = [text] if whole else []
        if file == "<stdin>":  # interactive: each statement compiled on its own, from line 1
            chunks += _statements(lines, code.co_firstlineno)
        for chunk in chunks:
            if _defines(chunk, file, code):
                return chunk.splitlines(True)
    return None


def advice(name: str) -> str:
    """The error text when no source is found: why, and what to do."""
    return (f"cannot find the source of {name!r}: Python keeps no text of code typed at "
            "a prompt, piped in or exec'd; give it with L.Collection(name, source=text), or register it in "
            "linecache (as IPython does), or run the program from a file")


def _candidates(file: str) -> Iterator[Tuple[str, bool]]:
    """(text, whole) pairs: ``whole`` texts are tried as one module."""
    for text in reversed(_given):
        yield text, True
    if file == "<string>" and sys.argv[:1] == ["-c"]:
        command = _command()
        if command is not None:
            yield command, True
    if file == "<stdin>":
        piped = _stdin_text()
        if piped is not None:
            yield piped, True
        history = _history()
        if history is not None:
            yield history, False


def _command() -> Optional[str]:
    """The TEXT of ``python [options] -c TEXT``."""
    argv = getattr(sys, "orig_argv", None)
    if argv is None:  # Python 3.9
        try:
            with open("/proc/self/cmdline", "rb") as f:
                argv = [os.fsdecode(a) for a in f.read().split(b"\0")[:-1]]
        except OSError:
            return None
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if not arg.startswith("-") or arg in ("-", "--"):
            return None
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs" and args:
                args.pop(0)
            continue
        for i, letter in enumerate(arg[1:], 1):
            if letter == "c":
                return arg[i + 1:] or (args[0] if args else None)
            if letter in "WX":  # options with an argument (attached or next)
                if i == len(arg) - 1 and args:
                    args.pop(0)
                break
            if letter == "m":
                return None
    return None


def _stdin_text() -> Optional[str]:
    try:
        st = os.fstat(0)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_STDIN:
            return None
        data = os.pread(0, st.st_size, 0)
    except OSError:
        return None
    from importlib.util import decode_source

    try:
        return decode_source(data)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None


def _history() -> Optional[str]:
    """The lines typed in this interactive session (when readline records them)."""
    readline = sys.modules.get("readline")
    if readline is None:
        return None
    try:
        n = readline.get_current_history_length()
        items = [readline.get_history_item(i) for i in range(n + 1)]  # 1-based (0 too for libedit)
    except Exception:  # noqa: BLE001 - a readline without history
        return None
    return "".join(item + "\n" for item in items if item is not None)


def _statements(lines: List[str], first: int) -> Iterator[str]:
    """Texts of statements that start at column 0 and define something on their line ``first``:
    up to the next line at column 0 that does not continue them (tried a few lines further
    when the text does not compile yet: decorators, a signature over several lines)."""
    for start in range(len(lines) - 1, -1, -1):
        head = lines[start]
        if not head.strip() or head[0] in " \t#":
            continue
        at = start + first - 1
        if at >= len(lines) or not _DEF.match(lines[at]):
            continue
        end = at + 1
        for _ in range(_MAX_GROW):
            while end < len(lines) and not _ends_statement(lines[end]):
                end += 1
            yield "".join(lines[start:end])
            if end >= len(lines):
                break
            end += 1


def _ends_statement(line: str) -> bool:
    return bool(line.strip()) and line[0] not in " \t#" and not _CONTINUES.match(line)


def _defines(text: str, file: str, code: types.CodeType) -> bool:
    import __future__

    for flags in (0, __future__.annotations.compiler_flag):
        try:
            module = compile(text, file, "exec", flags, dont_inherit=True)
        except (SyntaxError, ValueError, OverflowError, RecursionError):
            return False
        if _contains(module, code):
            return True
    return False


def _contains(outer: types.CodeType, code: types.CodeType) -> bool:
    for const in outer.co_consts:
        if isinstance(const, types.CodeType) and (const == code or _contains(const, code)):
            return True
    return False
