"""What every tool's user-space side needs: argument types, stopping on Ctrl-C/SIGTERM,
interval loops, the ``Lost N events`` line, and the parts every tool offers alike: the privilege
check (one wording), the hidden ``--ebpf`` listing, the compile step that reports a missing or
unreadable hook as its cause, the CPU filter check and ``--exec`` (:mod:`ebpf.tools._command`).

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
from typing import Any, Callable, List, Optional, Sequence

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
        self._stop = False  # the answer; the event only wakes wait()
        self.deadline = time.monotonic() + duration if duration else None
        self.signal: Optional[int] = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signal = signum
        self.stop()

    @property
    def stopped(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._stop = True
        return self._stop

    def remaining(self, limit: Optional[float] = None) -> Optional[float]:
        """Seconds until the deadline (capped by ``limit``), or ``limit`` without one."""
        if self.deadline is None:
            return limit
        left = max(0.0, self.deadline - time.monotonic())
        return left if limit is None else min(left, limit)

    def wait(self, seconds: Optional[float]) -> bool:
        """Sleep up to ``seconds`` (or until the deadline); True if the tool should stop."""
        timeout = self.remaining(seconds)
        if not self._stop:
            self._event.wait(timeout)
        return self.stopped

    def stop(self) -> None:
        """Stop, also from a signal handler (SIGINT, SIGTERM, --exec's SIGCHLD). A handler runs in
        the main thread, which may be inside ``Event.wait`` holding the event's lock: setting
        the event there would deadlock, so another thread sets it."""
        if self._stop:
            return
        self._stop = True
        threading.Thread(target=self._event.set, daemon=True).start()


def interval_loop(stopper: Stopper, interval: Optional[float], count: Optional[int],
                  tick: Callable[[], None], before_last: Optional[Callable[[], None]] = None) -> None:
    """Call ``tick`` every ``interval`` seconds, ``count`` times at most, and once more at the end
    when stopped in between (BCC's interval tools print what they have when interrupted).
    ``before_last`` runs once the loop knows it ends, before that last tick (``--exec``: end the
    command first, so that what it did while ending is counted)."""
    done = 0
    while True:
        stopped = stopper.wait(interval)
        if before_last is not None and (stopped or (count is not None and done + 1 >= count)):
            before_last()
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


def needs_root(reason: str) -> EbpfError:
    """The one wording of every tool's "not privileged enough" error: ``needs root: REASON``."""
    return EbpfError(f"needs root: {reason}")


def require_privileges() -> None:
    """One clear line before anything is loaded, instead of an EPERM deep in the loader."""
    from ebpf.sys.caps import has_bpf_privileges

    if not has_bpf_privileges():
        raise needs_root("loading eBPF programs takes CAP_SYS_ADMIN, or CAP_BPF and CAP_PERFMON")


def existing_tracepoints(group: str, names: Sequence[str]) -> List[str]:
    """The tracepoints of ``group`` among ``names`` that this kernel has. tracefs unreadable by
    this user (mode 0700: root only, whatever the capabilities) is the "needs root" error, not
    an absent tracepoint."""
    from ebpf.errors import PermissionDenied
    from ebpf.sys.tracefs import tracepoint_exists

    found = []
    for name in names:
        try:
            if tracepoint_exists(group, name):
                found.append(name)
        except PermissionDenied as e:
            raise needs_root(f"the tracepoint {group}/{name} is looked up in tracefs, and {e.hint}") from None
    return found


def require_tracepoints(targets: Sequence[str]) -> None:
    """Each ``group/name`` tracepoint exists and can be looked up (see :func:`existing_tracepoints`)."""
    for target in targets:
        group, _, name = target.replace(":", "/").partition("/")
        if not existing_tracepoints(group, [name]):
            raise EbpfError(f"this kernel has no tracepoint {group}/{name}")


def add_ebpf_option(parser: argparse.ArgumentParser) -> None:
    """BCC's hidden ``--ebpf``: print the programs and exit (here, their assembly)."""
    parser.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)


def compile_programs(coll: Any) -> Any:
    """``coll.spec()`` after checking the classic tracepoints it hooks (see
    :func:`require_tracepoints`). A tool's programs are ours, not the user's: when the kernel
    side of the environment fails the compiler (tracefs, BTF), the error is that cause, without
    the compiler's location in our source."""
    from ebpf.errors import CompileError

    require_tracepoints([p.target for p in coll.programs.values() if p.kind == "tracepoint"])
    try:
        return coll.spec()
    except CompileError as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, EbpfError) and not isinstance(cause, CompileError):
            raise cause from None
        raise EbpfError(f"the {coll.name} programs do not compile on this kernel: {e.message}") from None


def show_programs(args: argparse.Namespace, coll: Any) -> bool:
    """With ``--ebpf``: compile, print every program's assembly, and say so (the tool then exits 0)."""
    if not getattr(args, "ebpf", False):
        return False
    compile_programs(coll)
    print(disassembly(coll))
    return True


def check_cpu(cpu: Optional[int]) -> None:
    """A CPU filter must name a CPU of this machine: else the tool would print empty tables."""
    if cpu is None:
        return
    from ebpf.maps.cpus import possible_cpus

    cpus = possible_cpus()
    if cpu not in cpus:
        raise EbpfError(f"no CPU {cpu} on this machine (its CPUs are {_cpu_ranges(cpus)})")


def _cpu_ranges(cpus: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5`` (the kernel's cpulist format)."""
    parts: List[str] = []
    for cpu in sorted(cpus):
        if parts and parts[-1].endswith(f"-{cpu - 1}") or parts and parts[-1] == str(cpu - 1):
            parts[-1] = parts[-1].split("-")[0] + f"-{cpu}"
        else:
            parts.append(str(cpu))
    return ",".join(parts)


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
