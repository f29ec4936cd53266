"""Undo actions that must run even when the program does not close its links.

Most attachments die with their file descriptors, which the kernel closes whatever way the
process ends. A few do not: tracefs probe events (``uprobe_events``/``kprobe_events`` entries),
classic tc filters and legacy (BPF_PROG_ATTACH) cgroup attachments. Their undo actions are kept
here and run

* when the owning :class:`~ebpf.attach.link.Link` is closed (the normal way),
* at interpreter exit (``atexit``: normal exit, an uncaught exception, Ctrl-C),
* on SIGTERM and SIGHUP, when the application left those signals at their default action:
  our handler runs the actions, restores the default and re-sends the signal so that the
  process still dies of it.

Before an action runs, the fds of its link are closed (a probe event cannot be removed while a
perf event uses it). Nothing survives SIGKILL, so creators of tracefs events also sweep groups
left behind by dead processes (:func:`ebpf.attach.probe_events.remove_stale`).
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import threading
from typing import Any, Callable, Dict, List, Sequence, Tuple

_lock = threading.RLock()
_actions: Dict[int, Tuple[Callable[[], None], Sequence[Any], int]] = {}
_counter = itertools.count(1)
_installed = False
_SIGNALS = ("SIGTERM", "SIGHUP")


def register(action: Callable[[], None], fds: Sequence[Any] = ()) -> int:
    """Run ``action`` at exit unless :func:`unregister` is called first; returns a token."""
    global _installed
    with _lock:
        token = next(_counter)
        _actions[token] = (action, fds, os.getpid())
        if not _installed:
            _installed = True
            atexit.register(run_all)
            _install_signal_handlers()
    return token


def unregister(token: int) -> None:
    with _lock:
        _actions.pop(token, None)


def pending() -> int:
    """How many undo actions are waiting (for tests)."""
    return len(_actions)


def run_all() -> None:
    """Close the fds and run every pending action, newest first; errors are swallowed.

    Actions registered by another process (the parent of a fork) are dropped, not run.
    """
    pid = os.getpid()
    with _lock:
        items: List[Tuple[Callable[[], None], Sequence[Any]]] = []
        for token in sorted(_actions, reverse=True):
            action, fds, owner = _actions.pop(token)
            if owner == pid:
                items.append((action, fds))
    for _, fds in items:
        for fd in fds:
            try:
                fd.close()
            except Exception:
                pass
    for action, _ in items:
        try:
            action()
        except Exception:
            pass


def _handler(signum: int, frame: Any) -> None:
    run_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _handler)
        except (ValueError, OSError):
            pass
