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
    loop, an unchecked optional pointer... Carries the Python file, line, column and source line.

    ``str()`` is ``FILE:LINE:COL: message`` and the source line under it (as Python shows a
    SyntaxError); :meth:`one_line` is both on one line, for the command line.
    """

    def __init__(self, message: str, file: str = "", line: int = 0, col: int = 0, source: str = ""):
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.source = source
        text = f"{self.where()}{message}"
        if source.strip():
            text += f"\n    {source.strip()}"
        super().__init__(text)

    def where(self) -> str:
        """``FILE:LINE:COL: `` (``FILE:LINE: `` without a column, nothing without a file)."""
        if not self.file:
            return ""
        return f"{self.file}:{self.line}:{self.col}: " if self.col else f"{self.file}:{self.line}: "

    def one_line(self) -> str:
        text = f"{self.where()}{self.message}"
        return f"{text} (in {self.source.strip()!r})" if self.source.strip() else text


class BTFError(EbpfError):
    """Malformed or truncated BTF, a type id or string offset out of range, or a missing type."""


class RelocationError(EbpfError):
    """A CO-RE relocation that cannot be resolved against the target kernel's BTF."""


def debug_enabled() -> bool:
    """``EBPF_DEBUG=1`` (any value but empty or 0): errors keep their whole traceback, through
    the compiler and the loader, and the command line prints it before its one-line message."""
    return os.environ.get("EBPF_DEBUG", "") not in ("", "0")


def for_the_caller(exc: EbpfError) -> EbpfError:
    """``exc`` as a public API raises it to its caller: the frames inside the toolkit and the
    exceptions it was raised from are dropped (the message says what the user must fix), so the
    traceback ends at the user's call. Unchanged under :func:`debug_enabled`."""
    if not debug_enabled():
        exc.__traceback__ = None
        exc.__cause__ = None
        exc.__suppress_context__ = True
    return exc
