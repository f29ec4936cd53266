"""The checks the VM tier runs inside a guest, all in one Python process (an import costs seconds
under TCG, so one interpreter serves every check of a boot).

``python tests/vm/guest_checks.py [NAME...]`` runs them in order and prints one line per check::

    @@check {"name": "opensnoop", "status": "ok", "seconds": 3.1, "detail": "..."}

``status`` is ``ok``, ``fail`` (``detail``: the tool's error line or what was missing) or
``unavailable`` (``detail`` starts with ``feature probe:``: the kernel lacks the hook).

Each tool runs as a user runs it (``ebpf.tools.NAME.run`` with the command line's argv, through
the CLI's error handling), with ``--json``: once its banner is out (programs loaded and attached),
a workload makes its event happen until the event is in the output (snoop tools) or for a second
(interval tools), then SIGINT stops it the way Ctrl-C does. The DSL checks compile a counter of
``do_sys_openat2`` calls of this process as a kprobe and as an fentry program, attach it and see
the count of our opens. The ``hook-*`` checks (:mod:`hook_checks`) attach a program to every hook
kind, see its event and compare the result with ``ebpf features``.
"""

from __future__ import annotations

import contextlib
import io
import json
import mmap
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from ebpf.features import HOOKS

MARK = "@@check"
TOOL_SECONDS = 1.5  # workload time of an interval tool once attached
BANNER_TIMEOUT = 120.0  # compile, relocate and load under TCG (5.10 is the slowest)
OPEN_TARGET = "do_sys_openat2"  # every kernel of the tier has it (5.6+), and opens are easy to make


class Check(NamedTuple):
    name: str
    argv: List[str]  # the tool's command line ([] for DSL checks)
    snoop: bool  # an event per line (stop as soon as ours is seen) vs one summary at the end


TOOLS = [
    Check("opensnoop", [], True),  # the snoop tools in text: their header says they are attached
    Check("execsnoop", [], True),
    Check("exitsnoop", [], True),
    Check("syscount", ["--json"], False),
    Check("runqlat", ["--json"], False),
    Check("softirqs", ["--json"], False),
    Check("hardirqs", ["--json"], False),
    Check("biolatency", ["--json"], False),
]
DSL = ["dsl-kprobe", "dsl-fentry"]
HOOK_PREFIX = "hook-"  # every hook kind live, and ebpf features agreeing (tests/vm/hook_checks.py)
NAMES = [c.name for c in TOOLS] + DSL + [HOOK_PREFIX + h for h in HOOKS]
# the default `pytest -q` smoke (one boot of 6.12): the tools, the DSL's kprobe and fentry, and of the
# hook checks two that only new kernels have (a kprobe.multi pattern, an LSM program that runs)
SMOKE = [c.name for c in TOOLS] + DSL + [HOOK_PREFIX + "kprobe_multi", HOOK_PREFIX + "lsm"]


# --- workloads: each makes its tool's event happen, and tells whether the output shows it -----

def _records(text: str) -> List[Dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _open_marker() -> None:
    with open(f"/tmp/vmcheck-opensnoop-{os.getpid()}", "w"):
        pass


def _exec_marker() -> None:
    subprocess.run(["/bin/true", "vmcheck-execsnoop"], check=True)


def _exit_seven() -> None:
    subprocess.run(["/bin/sh", "-c", "exit 7"])


def _block_device() -> Optional[str]:
    """The first disk in /sys/block (the guest's scratch /dev/vda; on a host, its root disk)."""
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram", "zram", "dm-", "sr")) and os.path.exists(f"/dev/{name}"):
            return f"/dev/{name}"
    return None


_reads = [0]


def _disk_reads() -> None:
    """Block I/O (biolatency) and its interrupts (hardirqs): direct reads from the disk, or where
    it cannot be opened (a host's device cgroup), a file written and synced in $TMPDIR."""
    dev = _block_device()
    try:
        if dev is None:
            raise FileNotFoundError("no disk in /sys/block")
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        _synced_write()
        return
    buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
    try:
        for _ in range(8):
            _reads[0] += 1
            os.preadv(fd, [buf], (_reads[0] * 1048576) % (32 << 20))
    finally:
        os.close(fd)
        buf.close()


def _synced_write() -> None:
    import tempfile

    with tempfile.NamedTemporaryFile() as f:
        for _ in range(4):
            f.write(os.urandom(65536))
            f.flush()
            os.fsync(f.fileno())


def _wakeups() -> None:
    """Threads that sleep and wake: run queue latency (runqlat) and sched softirqs."""
    ts = [threading.Thread(target=time.sleep, args=(0.001,)) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def _syscalls() -> None:
    for _ in range(100):
        os.getppid()


def _any_count(rec: Dict[str, Any]) -> bool:
    for value in rec.values():
        if isinstance(value, dict) and any(isinstance(v, (int, float)) and v > 0 for v in value.values()):
            return True
        if isinstance(value, list) and any(isinstance(v, dict) and v.get("count", 0) > 0 for v in value):
            return True
    return False


WORKLOADS: Dict[str, Callable[[], None]] = {
    "opensnoop": _open_marker,
    "execsnoop": _exec_marker,
    "exitsnoop": _exit_seven,
    "syscount": _syscalls,
    "runqlat": _wakeups,
    "softirqs": _wakeups,
    "hardirqs": _disk_reads,
    "biolatency": _disk_reads,
}


def seen(name: str, out: str) -> bool:
    """Whether ``name``'s output shows the event its workload made."""
    lines = out.splitlines()
    if name == "opensnoop":
        return any(re.search(r" /tmp/vmcheck-opensnoop-\d+$", line) for line in lines)
    if name == "execsnoop":
        return any(line.endswith(" vmcheck-execsnoop") for line in lines)
    if name == "exitsnoop":
        return any(line.startswith("sh ") and line.endswith(" code 7") for line in lines)
    return any(_any_count(r) for r in _records(out))


# --- running one tool -------------------------------------------------------------------------

class Capture(io.StringIO):
    """A tool's stdout or stderr; written by the tool's thread, read by the workload's."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, s: str) -> int:
        with self.lock:
            return super().write(s)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


def run_tool(check: Check) -> Dict[str, Any]:
    import importlib

    from ebpf.cli.main import run_guarded

    module = importlib.import_module(f"ebpf.tools.{check.name}")
    out, err = Capture(), Capture()
    done = threading.Event()
    lock = threading.Lock()
    facts: Dict[str, Any] = {"attached": False}
    workload = WORKLOADS[check.name]
    me = os.getpid()

    def interrupt() -> None:
        with lock:
            if not done.is_set():
                os.kill(me, signal.SIGINT)

    def drive() -> None:
        deadline = time.monotonic() + BANNER_TIMEOUT
        while not done.is_set() and not (out.text() or err.text()):
            if time.monotonic() > deadline:
                facts["timeout"] = "no banner"
                interrupt()
                return
            time.sleep(0.05)
        if done.is_set():
            return
        facts["attached"] = True
        end = time.monotonic() + (30.0 if check.snoop else TOOL_SECONDS)
        while time.monotonic() < end and not done.is_set():
            try:
                workload()
            except Exception as e:  # noqa: BLE001 - the workload's failure is part of the report
                facts["workload"] = f"{type(e).__name__}: {e}"
            if check.snoop and seen(check.name, out.text()):
                break
            time.sleep(0.1)
        for _ in range(3):  # Ctrl-C, again if the tool did not take it in time
            interrupt()
            if done.wait(20):
                return

    signal.signal(signal.SIGINT, signal.default_int_handler)
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = run_guarded(check.name, lambda: module.run(list(check.argv)))
        except BaseException:  # noqa: BLE001 - a bug in a tool must not end the other checks
            rc = -1
            err.write(traceback.format_exc())
        finally:
            with lock:
                done.set()
    driver.join(5)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a late Ctrl-C must not reach the next check
    seconds = time.monotonic() - start
    text = out.text()
    if seen(check.name, text) and rc in (0, 130):
        return {"status": "ok", "seconds": seconds, "detail": _last_line(text)[:160]}
    problem = _last_line(err.text()) or facts.get("timeout") or facts.get("workload") or "no event seen"
    if rc == 0 and not seen(check.name, text):
        problem = (f"no event seen (attached: {facts['attached']}; workload: {facts.get('workload', 'ran')}; "
                   f"output: {_last_line(text)[:200]!r})")
    return {"status": "fail", "seconds": seconds, "detail": f"exit {rc}: {problem}", "stderr": err.text()[-3000:]}


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --- the DSL on kprobe and fentry -------------------------------------------------------------

def run_dsl(kind: str) -> Dict[str, Any]:
    from ebpf import features
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    if kind == "kprobe" and not features.have_kprobes():
        return {"status": "unavailable", "detail": "feature probe: this kernel has no kprobes"}
    if kind == "fentry":
        probe = features.can_attach_fentry(OPEN_TARGET)
        if not probe.supported:
            return {"status": "unavailable", "detail": f"feature probe: fentry: {probe.detail}"}
    coll = L.Collection(f"vm_{kind}")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)
    hook = coll.kprobe if kind == "kprobe" else coll.fentry

    @hook(OPEN_TARGET, name="count_opens")
    def count_opens(ctx):
        if L.get_current_pid_tgid() >> 32 == me:
            hits[0] += 1
        return 0

    start = time.monotonic()
    with coll.load(me=os.getpid()) as live:
        live.attach()
        for _ in range(25):
            os.close(os.open("/dev/null", os.O_RDONLY))
        count = live.maps["hits"][0]
    seconds = time.monotonic() - start
    if count >= 25:
        return {"status": "ok", "seconds": seconds, "detail": f"{count} opens counted"}
    return {"status": "fail", "seconds": seconds, "detail": f"counted {count} of 25 opens"}


def _hook_checks() -> Any:
    """tests/vm/hook_checks.py, whether this file runs as a script (in a guest) or as a module."""
    import importlib

    return importlib.import_module(f"{__package__}.hook_checks" if __package__ else "hook_checks")


def run_check(name: str) -> Dict[str, Any]:
    try:
        if name.startswith("dsl-"):
            return run_dsl(name[len("dsl-"):])
        if name.startswith(HOOK_PREFIX):
            return _hook_checks().run_hook(name[len(HOOK_PREFIX):])
        return run_tool(next(c for c in TOOLS if c.name == name))
    except BaseException as e:  # noqa: BLE001 - reported, and the next check runs
        return {"status": "fail", "detail": f"{type(e).__name__}: {e}".splitlines()[0],
                "stderr": traceback.format_exc()[-3000:]}


def main(names: List[str]) -> int:
    os.environ.setdefault("COLUMNS", "120")
    for name in names or NAMES:
        result = {"name": name, **run_check(name)}
        print(f"{MARK} {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
