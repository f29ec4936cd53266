"""One exception hierarchy for the whole toolkit.

Every failure a user can cause or meet (bad input, a kernel refusal, a missing hook) is an
:class:`EbpfError`, so that applications embedding us catch one type and CLI front ends print
one line instead of a traceback.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Optional


class EbpfError(Exception):
    """Base class of every error raised by the toolkit."""


def _clip(text: str, width: int) -> str:
    """Keep one-line messages short however long the input they quote (fuzzed lines run to megabytes)."""
    return text if len(text) <= width else text[: width - 3] + "..."


class AssemblerError(EbpfError):
    """Malformed assembly text, a bad register, an unresolved label or an out-of-range jump.

    The message quotes at most 80 characters of the line (``text`` keeps all of it)."""

    def __init__(self, message: str, line: Optional[int] = None, text: Optional[str] = None):
        self.line = line
        self.text = text
        where = f"line {line}: " if line is not None else ""
        shown = f" (in {_clip(text.strip(), 80)!r})" if text else ""
        super().__init__(f"{where}{_clip(message, 160)}{shown}")


class EncodingError(EbpfError):
    """Bytes that do not decode to eBPF instructions, or an instruction that cannot be encoded."""


class SyscallError(EbpfError, OSError):
    """A system call failed.

    Carries the command (``BPF_MAP_CREATE``, ``perf_event_open``...), the errno and its
    symbolic name, and a sentence that says what the failure usually means.
    """

    def __init__(self, command: str, err: int, hint: str = "", detail: str = ""):
        self.command = command
        self.errno_name = _errno.errorcode.get(err, f"errno {err}")
        self.hint = hint
        self.detail = detail
        text = f"{command} failed: {self.errno_name} ({os.strerror(err)})"
        if hint:
            text += f": {hint}"
        if detail:
            text += f"\n{detail}"
        OSError.__init__(self, err, text)

    def __str__(self) -> str:
        return str(self.args[1])


class PermissionDenied(SyscallError):
    """The kernel refused for lack of privileges (EPERM/EACCES outside the verifier)."""


class NotSupported(EbpfError):
    """The running kernel lacks a feature (a map type, a hook, kprobes, trampolines...)."""


class VerifierError(SyscallError):
    """BPF_PROG_LOAD was rejected; carries the verifier's log."""

    def __init__(self, err: int, log: str, summary: str, hint: str = ""):
        self.log = log
        self.summary = summary
        super().__init__("BPF_PROG_LOAD", err, hint=hint, detail=summary)


class MapError(EbpfError):
    """A map operation that cannot be done (bad key/value size, missing key...)."""


class MapKeyError(MapError, KeyError):
    """A key that is not in the map."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "key not found"


class CodecError(EbpfError, ValueError):
    """A value that does not fit the declared key/value type."""


class TracefsError(EbpfError):
    """tracefs is missing, cannot be mounted, or names no such event."""


class AttachError(EbpfError):
    """A program could not be attached to its hook."""


class LoadError(EbpfError):
    """A spec cannot be loaded (inconsistent spec, missing map, bad global)."""


class CompileError(EbpfError):
    """A DSL function that cannot be compiled: unsupported syntax, a type error, an unbounded
    loop, an unchecked optional pointer... Carries the Python file, line, column and source line."""

    def __init__(self, message: str, file: str = "", line: int = 0, col: int = 0, source: str = ""):
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.source = source
        where = f"{file}:{line}:{col}: " if file else ""
        text = f"{where}{message}"
        if source:
            text += f"\n    {source.strip()}"
        super().__init__(text)


class BTFError(EbpfError):
    """Malformed or truncated BTF, a type id or string offset out of range, or a missing type."""


class RelocationError(EbpfError):
    """A CO-RE relocation that cannot be resolved against the target kernel's BTF."""
