"""The tools' Stopper: a signal that lands while the main thread holds the event's lock (inside
``Event.wait``) must stop the tool, not deadlock it (the suite once hung on --exec's SIGCHLD)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = r"""
import os, signal, time
from ebpf.tools.runtime import Stopper
stopper = Stopper()
with stopper._event._cond:  # where Event.wait() is between taking its lock and sleeping
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in this thread
    time.sleep(0.05)
start = time.monotonic()
assert stopper.wait(10) and stopper.signal == signal.SIGINT
print("woke after", round(time.monotonic() - start, 3))
"""


def test_signal_while_the_event_lock_is_held() -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[-1]) < 2
