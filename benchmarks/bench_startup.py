"""Time to ready, first event, peak RSS and time to exit of every tool in every implementation.

Warm runs first (interleaved: each round runs every tool in every implementation, the order of
the implementations rotating from round to round), then cold runs the same way, each preceded by
``sync; echo 3 > /proc/sys/vm/drop_caches`` and, for ours, an empty cache directory. A warm-up
run of each (tool, implementation) before the timed rounds fills our caches (the BTF index is
saved when a tool exits) and tells whether the implementation runs here at all.

Run alone: ``python benchmarks/bench_startup.py [--rounds N] [--cold-rounds N] [TOOL...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from harness import RunResult, clean_env, drop_caches, median, run_tool
from install_env import Install
from targets import IMPLS, TOOLS, Target, Unavailable, target

METRICS = ("ready_ms", "event_ms", "peak_rss_kib", "exit_ms", "cpu_ms")
Log = Callable[[str], None]


class EventMaker:
    """Opens a missing, unique path (the event opensnoop must report), every call."""

    def __init__(self) -> None:
        self.path = f"/tmp/ebpf-bench-missing-{uuid.uuid4().hex[:12]}"

    def __call__(self) -> None:
        try:
            os.close(os.open(self.path, os.O_RDONLY))
        except OSError:
            pass

    @property
    def regex(self) -> str:
        return re.escape(os.path.basename(self.path))


def why_not(result: RunResult) -> str:
    """One line saying why a run did not get ready: the tool's last words, or the harness's."""
    lines = [ln.strip() for ln in result.output.replace("\r", "").splitlines() if ln.strip()]
    lines = [ln for ln in lines if "RLIMIT_MEMLOCK" not in ln]
    tail = lines[-1] if lines else ""
    reason = result.error or f"exit status {result.returncode}"
    return f"{reason}: {tail[:160]}" if tail else reason


class StartupBench:
    def __init__(self, install: Optional[Install], tools: Sequence[str], impls: Sequence[str] = IMPLS,
                 log: Log = print, workdir: Optional[str] = None):
        self.install = install
        self.tools = list(tools)
        self.workdir = workdir or tempfile.mkdtemp(prefix="ebpf-bench-")
        self.warm_cache = os.path.join(self.workdir, "cache-warm")
        os.makedirs(self.warm_cache, exist_ok=True)
        self.log = log
        self.targets: Dict[Tuple[str, str], Target] = {}
        self.unavailable: Dict[Tuple[str, str], str] = {}
        for tool in self.tools:
            for impl in impls:
                t: Union[Target, Unavailable] = target(tool, impl, install)
                if isinstance(t, Target):
                    self.targets[tool, impl] = t
                else:
                    self.unavailable[tool, impl] = t.reason

    # ---- one run ------------------------------------------------------------------------------

    def _env(self, t: Target, cold: bool) -> Dict[str, str]:
        extra = dict(t.env)
        if t.impl.startswith("ours"):
            if cold:
                fresh = tempfile.mkdtemp(prefix="cache-cold-", dir=self.workdir)
                extra.update(EBPF_CACHE_DIR=os.path.join(fresh, "ebpf"), XDG_CACHE_HOME=fresh)
            else:
                extra.update(EBPF_CACHE_DIR=os.path.join(self.warm_cache, "ebpf"), XDG_CACHE_HOME=self.warm_cache)
        return clean_env(extra)

    def run_once(self, t: Target, cold: bool = False) -> RunResult:
        maker = EventMaker() if t.tool == "opensnoop" else None
        env = self._env(t, cold)
        if cold:
            drop_caches()
        return run_tool(t.argv, t.ready, event=maker.regex if maker else None, make_event=maker, env=env,
                        timeout=30.0 if cold else 20.0, exit_timeout=5.0)

    # ---- rounds ------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """One untimed run each: fills caches, and drops what does not run here (with the reason)."""
        for key, t in list(self.targets.items()):
            r = self.run_once(t)
            if r.ready_ms is None or (t.tool == "opensnoop" and r.event_ms is None):
                self.unavailable[key] = "does not run here: " + why_not(r)
                del self.targets[key]
                self.log(f"  {key[0]:<11} {key[1]:<13} not available: {self.unavailable[key]}")

    def rounds(self, n: int, cold: bool) -> Dict[str, Dict[str, List[Dict[str, Any]]]]:
        runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {tool: {} for tool in self.tools}
        for i in range(n):
            t_round = time.perf_counter()
            for tool in self.tools:
                impls = [impl for impl in IMPLS if (tool, impl) in self.targets]
                if not impls:
                    continue
                k = i % len(impls)
                for impl in impls[k:] + impls[:k]:
                    r = self.run_once(self.targets[tool, impl], cold)
                    rec = {m: getattr(r, m) for m in METRICS}
                    if r.error or r.ready_ms is None:
                        rec["error"] = why_not(r)
                    runs[tool].setdefault(impl, []).append(rec)
            self.log(f"  {'cold' if cold else 'warm'} round {i + 1}/{n}: {time.perf_counter() - t_round:.1f} s")
        return runs

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def summarize(runs: Dict[str, Dict[str, List[Dict[str, Any]]]]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Medians per tool and implementation (and how many runs failed)."""
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for tool, by_impl in runs.items():
        for impl, recs in by_impl.items():
            med: Dict[str, Any] = {m: median(r.get(m) for r in recs) for m in METRICS}
            med["runs"] = len(recs)
            med["failed"] = sum(1 for r in recs if r.get("error"))
            out.setdefault(tool, {})[impl] = med
    return out


def main(argv: Optional[List[str]] = None) -> int:
    from install_env import make

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cold-rounds", type=int, default=2)
    p.add_argument("--installed", action="store_true", help="measure the interpreter's installed ebpf")
    p.add_argument("tools", nargs="*", default=list(TOOLS))
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="ebpf-bench-")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    install = make(os.path.join(work, "env"), root, use_installed=args.installed)
    bench = StartupBench(install, args.tools, workdir=work, log=lambda s: print(s, file=sys.stderr))
    try:
        bench.warm_up()
        result = {"warm": summarize(bench.rounds(args.rounds, False)),
                  "cold": summarize(bench.rounds(args.cold_rounds, True)),
                  "unavailable": {f"{t}/{i}": why for (t, i), why in bench.unavailable.items()}}
        print(json.dumps(result, indent=1))
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
