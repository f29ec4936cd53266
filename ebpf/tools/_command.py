"""``--exec CMD [ARGS...]``: the command a tool starts, traces, and ends with.

One lifecycle for every tool that offers the flag:

- :class:`Command` forks at once, so that the child's pid can be a load-time filter; the child
  waits on a pipe and never runs untraced: should the tool fail before :meth:`Command.start`,
  the child reads end-of-file and exits without running anything.
- :meth:`Command.start` (after the programs are attached, before the header) lets it exec and
  learns the result through a close-on-exec pipe, as ``subprocess`` does: end-of-file means
  the exec happened, four bytes are the errno of a failed one. A command that cannot be
  executed is an :class:`~ebpf.errors.EbpfError` (one line, exit status 1, no header).
- :meth:`Command.watch` stops the tool when the command ends (SIGCHLD).
- :meth:`Command.finish` (also on leaving the ``with`` block) ends a command still running when
  the tool stops: it gets the signal the tool got (SIGINT or SIGTERM; SIGTERM when the tool's
  duration or count ran out), then SIGKILL after :data:`KILL_AFTER` seconds; it is always
  reaped, never left behind as an orphan or a zombie.

The tool's exit status (:meth:`Command.exit_status`): when the command ends before the tool is
stopped, the command's own status: its exit code, or 128+N when signal N killed it (the shell's
convention); when the tool is stopped first (Ctrl-C, SIGTERM, ``-d``), 0, as without --exec.

The child gets SIGPIPE (and SIGXFSZ) back to their defaults before the exec: Python ignores
SIGPIPE, and an ignored signal stays ignored across exec (``... --exec yes | head`` would
otherwise never end).
"""

from __future__ import annotations

import os
import signal
import struct
import time
from typing import Any, List, Optional, Union

from ebpf.errors import EbpfError

__all__ = ["Command", "NoCommand", "command_for", "KILL_AFTER"]

KILL_AFTER = 2.0  # seconds between the forwarded signal and SIGKILL
_ERRNO = struct.Struct("=i")


class Command:
    """A command forked now, exec'd by :meth:`start`, signalled and reaped by :meth:`finish`."""

    def __init__(self, argv: List[str]) -> None:
        if not argv:
            raise EbpfError("--exec needs a command")
        self.argv = list(argv)
        self.status: Optional[int] = None  # the raw wait status, once reaped
        self.ended_first = False  # ended by itself before the tool was stopped
        self._stopper: Any = None
        go_r, self._go = os.pipe()
        self._err, err_w = os.pipe()  # both close-on-exec (PEP 446)
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child: execs or exits
            self._child(go_r, err_w)
        os.close(go_r)
        os.close(err_w)

    def _child(self, go_r: int, err_w: int) -> None:
        code = 127
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._go)
            os.close(self._err)
            if os.read(go_r, 1):  # nothing: the tool failed before attaching; never run untraced
                try:
                    os.execvp(self.argv[0], self.argv)
                except OSError as e:
                    os.write(err_w, _ERRNO.pack(e.errno or 0))
        except BaseException:  # noqa: BLE001 - never return into the tool's code in the child
            code = 126
        os._exit(code)

    def start(self) -> None:
        """Let the command exec; raise when it cannot be executed (it is reaped then)."""
        os.write(self._go, b"x")
        os.close(self._go)
        self._go = -1
        data = b""
        while True:
            chunk = os.read(self._err, _ERRNO.size)
            if not chunk:
                break
            data += chunk
        os.close(self._err)
        self._err = -1
        if data:
            (err,) = _ERRNO.unpack(data[: _ERRNO.size].ljust(_ERRNO.size, b"\0"))
            self._reap(block=True)
            raise EbpfError(f"cannot execute {self.argv[0]}: {os.strerror(err)}")

    def watch(self, stopper: Any) -> None:
        """Stop ``stopper`` when the command ends (a SIGCHLD handler; the handled signal also
        wakes the event loops)."""
        self._stopper = stopper

        def on_sigchld(signum: int, frame: Any) -> None:
            self._poll()

        signal.signal(signal.SIGCHLD, on_sigchld)
        self._poll()  # it may have ended before the handler was there

    def _poll(self) -> None:
        if self._reap(block=False) and self._stopper is not None and not self._stopper.stopped:
            self.ended_first = True
            self._stopper.stop()

    def _reap(self, block: bool) -> bool:
        """True once the command has ended (its status kept)."""
        if self.status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: nothing more to learn
            self.status = 0
            return True
        if pid == 0:
            return False
        self.status = status
        return True

    @property
    def running(self) -> bool:
        return not self._reap(block=False)

    def finish(self, sig: Optional[int] = None) -> None:
        """End the command if it still runs (``sig``, by default the signal that stopped the
        tool, else SIGTERM; SIGKILL after :data:`KILL_AFTER` s) and reap it."""
        for fd in (self._go, self._err):  # never started: the child exits on end-of-file
            if fd >= 0:
                os.close(fd)
        self._go = self._err = -1
        if not self.running:
            return
        if sig is None:
            sig = getattr(self._stopper, "signal", None) or signal.SIGTERM
        self._kill(sig)
        deadline = time.monotonic() + KILL_AFTER
        while self.running:
            if time.monotonic() >= deadline:
                self._kill(signal.SIGKILL)
                self._reap(block=True)
                return
            time.sleep(0.01)

    def _kill(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def exit_status(self) -> int:
        """The tool's exit status: the command's (128+N for signal N) when it ended first, else 0."""
        if not self.ended_first or self.status is None:
            return 0
        if os.WIFSIGNALED(self.status):
            return 128 + os.WTERMSIG(self.status)
        return os.WEXITSTATUS(self.status) if os.WIFEXITED(self.status) else 0

    def __enter__(self) -> Command:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


class NoCommand:
    """The same interface without ``--exec``: nothing to start, watch or end."""

    pid = 0
    running = False

    def start(self) -> None:
        pass

    def watch(self, stopper: Any) -> None:
        pass

    def finish(self, sig: Optional[int] = None) -> None:
        pass

    def exit_status(self) -> int:
        return 0

    def __enter__(self) -> NoCommand:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def command_for(argv: Optional[List[str]]) -> Union[Command, NoCommand]:
    """A :class:`Command` for ``--exec ARGV``, a :class:`NoCommand` without the flag."""
    return Command(argv) if argv else NoCommand()
