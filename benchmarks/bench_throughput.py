"""Event throughput: an open() storm at increasing rates through opensnoop, ours and libbpf-tools'.

For each rate a load generator (C, built here with cc; a Python loop if there is no compiler)
opens a missing, unique path at that many opens per second (in 1 ms batches) for a few seconds,
while the tool traces every open on the machine with its output on a pipe that is read and
thrown away (as ``> /dev/null`` would, but the lines naming the storm's path are counted). Per
rate and tool: opens done, events seen (output lines with the storm's path), events lost (the
sum of the tool's ``Lost N events`` lines), and the CPU the tool's process used (utime + stime
from /proc/PID/stat, from just before the storm until its output has drained). The BPF programs
themselves run in the opening process and are not in that figure.

Run alone: ``python benchmarks/bench_throughput.py [--seconds 3] [RATE...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

from harness import clean_env, cpu_ticks_ms

RATES = (10_000, 50_000, 200_000)
LOST_RE = re.compile(rb"Lost (\d+) events")

STORM_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv) {
    const char *path = argv[1];
    double rate = atof(argv[2]), secs = atof(argv[3]), el = 0;
    struct timespec t0, pause = {0, 100000};
    long done = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        el = since(&t0);
        if (el >= secs)
            break;
        long goal = rate > 0 ? (long)(el * rate) + 1 : done + 1000;
        if (done >= goal) {
            nanosleep(&pause, NULL);
            continue;
        }
        for (int batch = 0; done < goal && batch < 256; batch++) { /* re-read the clock often */
            int fd = open(path, O_RDONLY);
            if (fd >= 0)
                close(fd);
            done++;
        }
    }
    printf("%ld %.6f\n", done, el);
    return 0;
}
"""

STORM_PY = r"""
import os, sys, time
path, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
t0 = time.monotonic(); done = 0
while True:
    el = time.monotonic() - t0
    if el >= secs:
        break
    goal = int(el * rate) + 1 if rate > 0 else done + 1000
    if done >= goal:
        time.sleep(0.0001)
        continue
    for _ in range(min(goal - done, 256)):
        try:
            os.close(os.open(path, os.O_RDONLY))
        except OSError:
            pass
        done += 1
print(done, el)
"""


def build_storm(workdir: str) -> Tuple[List[str], str]:
    """The load generator's argv prefix and its kind: a C binary if there is a compiler, else Python."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        src = os.path.join(workdir, "storm.c")
        exe = os.path.join(workdir, "storm")
        with open(src, "w") as f:
            f.write(STORM_C)
        if subprocess.run([cc, "-O2", "-o", exe, src], capture_output=True).returncode == 0:
            return [exe], "C (open/close of a missing path, paced in 1 ms batches)"
    script = os.path.join(workdir, "storm.py")
    with open(script, "w") as f:
        f.write(STORM_PY)
    return [sys.executable, "-S", script], "Python (os.open of a missing path, paced in 1 ms batches)"


class _Counter(threading.Thread):
    """Reads a pipe to its end, counting occurrences of ``marker`` and ``Lost N events`` totals."""

    def __init__(self, fd: int, marker: bytes):
        super().__init__(daemon=True)
        self.fd = fd
        self.marker = marker
        self.count = 0
        self.lost = 0
        self.bytes = 0
        self.tail = b""
        self.lines: List[bytes] = []  # lines that are neither events nor empty (kept short)

    def run(self) -> None:
        keep = len(self.marker) - 1
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            self.bytes += len(chunk)
            data = self.tail + chunk
            self.count += data.count(self.marker) - self.tail.count(self.marker)
            for m in LOST_RE.finditer(data):
                if m.end() > len(self.tail):  # not counted with the previous chunk
                    self.lost += int(m.group(1))
            self.tail = data[-max(keep, 64):]
            if len(self.lines) < 20:
                self.lines += [ln for ln in chunk.splitlines() if ln.strip() and self.marker not in ln][:5]
        os.close(self.fd)


def _attached(pid: int, tracepoint: str) -> bool:
    """Whether ``pid`` holds a BPF program attached to ``tracepoint`` (bpftool perf list)."""
    try:
        out = subprocess.run(["bpftool", "-j", "perf", "list"], capture_output=True, timeout=10).stdout
        return any(e.get("pid") == pid and e.get("tracepoint") == tracepoint for e in json.loads(out or b"[]"))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False


def storm_through(argv: Sequence[str], storm: Sequence[str], rate: int, seconds: float,
                  env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """One tool, one rate: start the tool, wait until it is attached, storm, drain, stop."""
    path = f"/tmp/ebpf-storm-{uuid.uuid4().hex[:10]}-{rate}"
    marker = os.path.basename(path).encode()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w,
                            env=env if env is not None else clean_env(), start_new_session=True)
    os.close(out_w)
    os.close(err_w)
    out, err = _Counter(out_r, marker), _Counter(err_r, marker)
    out.start()
    err.start()
    rec: Dict[str, Any] = {"rate": rate}
    seen0 = 0
    try:
        deadline = time.monotonic() + 20
        while not _attached(proc.pid, "sys_exit_openat"):
            if proc.poll() is not None or time.monotonic() > deadline:
                words = b" | ".join(err.lines[-3:] + out.lines[-3:]).decode(errors="replace")
                rec["error"] = f"never attached: {words}"
                return rec
            time.sleep(0.05)
        time.sleep(0.2)
        cpu0 = cpu_ticks_ms(proc.pid)
        seen0 = out.count
        t0 = time.monotonic()
        r = subprocess.run(list(storm) + [path, str(rate), str(seconds)], capture_output=True, text=True)
        t_storm = time.monotonic() - t0
        opens = int(r.stdout.split()[0]) if r.stdout.strip() else 0
        # drain: until no new event for 0.5 s (at most 10 s)
        last, still = out.count, time.monotonic()
        while time.monotonic() - still < 0.5 and time.monotonic() - t0 < seconds + 10:
            time.sleep(0.05)
            if out.count != last:
                last, still = out.count, time.monotonic()
        cpu1 = cpu_ticks_ms(proc.pid)
        t_all = time.monotonic() - t0
        rec.update(opens=opens, achieved_per_s=opens / t_storm if t_storm else None, storm_s=t_storm)
        if cpu0 is not None and cpu1 is not None:
            rec.update(cpu_ms=cpu1 - cpu0, cpu_pct=100.0 * (cpu1 - cpu0) / 1e3 / t_all)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.join(5)
        err.join(5)
        if "opens" in rec:  # counted once the tool has exited: C stdio flushes its buffer at exit
            seen = out.count - seen0
            rec.update(seen=seen, lost=out.lost + err.lost,
                       seen_pct=100.0 * seen / rec["opens"] if rec["opens"] else None)
            if rec.get("cpu_ms") is not None:
                rec["cpu_us_per_event"] = 1e3 * rec["cpu_ms"] / seen if seen else None
    return rec


def run(tools: Dict[str, List[str]], rates: Sequence[int] = RATES, seconds: float = 3.0,
        env_for: Optional[Dict[str, Dict[str, str]]] = None, log: Any = print) -> Dict[str, Any]:
    """``tools`` maps a name to an argv; returns per tool a list of per-rate records."""
    work = tempfile.mkdtemp(prefix="ebpf-storm-")
    try:
        storm, kind = build_storm(work)
        result: Dict[str, Any] = {"generator": kind, "seconds": seconds, "tools": {}}
        for rate in rates:
            for name, argv in tools.items():
                rec = storm_through(argv, storm, rate, seconds, (env_for or {}).get(name))
                result["tools"].setdefault(name, []).append(rec)
                log(f"  storm {rate}/s {name}: {rec}")
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--ours", default=shutil.which("ebpf") or "ebpf", help="our ebpf console script")
    p.add_argument("rates", nargs="*", type=int, default=list(RATES))
    args = p.parse_args(argv)
    res = run({"ours": [args.ours, "opensnoop"], "libbpf-tools": ["/usr/sbin/opensnoop"]}, args.rates, args.seconds,
              log=lambda s: print(s, file=sys.stderr))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
