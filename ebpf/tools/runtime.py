"""What every tool's user-space side needs: argument types, stopping on Ctrl-C/SIGTERM,
interval loops, and the ``Lost N events`` line.

Tools stop cleanly on SIGINT and SIGTERM (the links close, nothing stays attached), print as
soon as they know something (line-buffered output, flushed), and exit 1 with one line when they
cannot run (``ebpf.cli.main`` turns any :class:`ebpf.errors.EbpfError` into that line).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any, Callable, List, Optional

from ebpf.errors import EbpfError


def positive_int(text: str) -> int:
    """argparse type: an integer >= 0 (BCC's ``positive_int``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def positive_nonzero_int(text: str) -> int:
    """argparse type: an integer > 0 (BCC's ``positive_nonzero_int``)."""
    value = positive_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be nonzero")
    return value


class Stopper:
    """Set by SIGINT/SIGTERM (or a duration); tools poll ``stopped`` or ``wait(seconds)``.

    Installing it makes Ctrl-C end the tool's loop instead of raising KeyboardInterrupt in the
    middle of a read, so the tool can print its last interval and detach in order.
    """

    def __init__(self, duration: Optional[float] = None):
        self._event = threading.Event()
        self.deadline = time.monotonic() + duration if duration else None
        self.signal: Optional[int] = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signal = signum
        self._event.set()

    @property
    def stopped(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._event.set()
        return self._event.is_set()

    def remaining(self, limit: Optional[float] = None) -> Optional[float]:
        """Seconds until the deadline (capped by ``limit``), or ``limit`` without one."""
        if self.deadline is None:
            return limit
        left = max(0.0, self.deadline - time.monotonic())
        return left if limit is None else min(left, limit)

    def wait(self, seconds: Optional[float]) -> bool:
        """Sleep up to ``seconds`` (or until the deadline); True if the tool should stop."""
        timeout = self.remaining(seconds)
        self._event.wait(timeout)
        return self.stopped

    def stop(self) -> None:
        self._event.set()


def interval_loop(stopper: Stopper, interval: Optional[float], count: Optional[int],
                  tick: Callable[[], None]) -> None:
    """Call ``tick`` every ``interval`` seconds, ``count`` times at most, and once more at the end
    when stopped in between (BCC's interval tools print what they have when interrupted)."""
    done = 0
    while True:
        stopped = stopper.wait(interval)
        tick()
        done += 1
        if stopped or (count is not None and done >= count):
            return


def tool_main(name: str, run: Callable[[List[str]], int]) -> None:
    """``python -m ebpf.tools.NAME``: the same error handling as ``ebpf NAME``."""
    from ebpf.cli.main import run_guarded

    sys.exit(run_guarded(name, lambda: run(sys.argv[1:])))


def lost_line(lost: int) -> str:
    return f"Lost {lost} events"


def require(condition: bool, message: str) -> None:
    """Fail the tool with one line when a precondition does not hold."""
    if not condition:
        raise EbpfError(message)


def choose_hooks(probe_event: str, forced: str = "auto") -> str:
    """How to hook scheduler/block/irq events, the way libbpf-tools choose: ``tp_btf`` where the
    kernel loads one on ``probe_event``, else ``raw_tp`` (kernel BTF for CO-RE reads), else the
    classic ``tracepoint``. ``forced`` (a tool's hidden ``--hook``) overrides the probe."""
    if forced != "auto":
        return forced
    from ebpf import features
    from ebpf.errors import PermissionDenied

    try:
        if features.have_tp_btf(probe_event):
            return "tp_btf"
    except PermissionDenied:  # --ebpf without privileges: assume what a kernel with BTF offers
        return "tp_btf" if features.have_btf() else "tracepoint"
    if features.have_btf():
        return "raw_tp"
    return "tracepoint"


def disassembly(coll: Any) -> str:
    """Every program of a DSL collection as assembly text (BCC's ``--ebpf``)."""
    from ebpf.asm.disasm import disassemble

    out = []
    for name, spec in coll.spec().programs.items():
        out.append(f"# {name}: {spec.type.name.lower()} {spec.attach_to}")
        out.append(disassemble(spec.instructions, annotate=True))
    return "\n".join(out)
