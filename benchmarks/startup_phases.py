"""What a tool's start-up is made of: run ``ebpf TOOL`` with timers around its phases.

    python benchmarks/startup_phases.py [--profile N] TOOL [ARGS...]

Started by the interpreter of the install being measured, this runs ``ebpf.cli.main.main``
exactly as the console script does, with timers (no behaviour change) on:

* every import (an import hook: time spent executing modules, per module);
* ``compile``: ``ebpf.lang.compile_cache.compile_cached`` (the cache key and a cache read, or on
  a miss ``ebpf.lang.compiler.compile_program``: the DSL to instructions);
* ``btf``: opening the kernel BTF (``ebpf.btf.kernel.kernel_btf``);
* ``core``: CO-RE relocation (``ebpf.btf.core.relocate``);
* ``prog_load``: the ``BPF_PROG_LOAD`` syscalls (the verifier), ``map_create``, ``btf_load``;
* ``features``: feature probes (``ebpf.features``), ``attach``: ``Program.attach``.

Times are exclusive (an import inside ``compile`` counts as import), so with ``other`` (the
tool's own code, argparse, building the collection...) they add up to the time from the start
of this script to the first byte the tool writes. The import hook costs some time itself, so
the sum is a little more than the tool needs without it. That moment is the tool's ready line: the
phases are then written as JSON to ``$EBPF_BENCH_PHASES`` (or stderr) and the tool goes on.
With ``--profile N`` a cProfile of the same span is printed (top N by cumulative time) instead,
and the process exits at ready.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

T_START = time.perf_counter()

WRAP = {
    "ebpf.lang.compile_cache": [("compile_cached", "compile")],  # key + cache read, or the compile
    "ebpf.lang.compiler": [("compile_program", "compile")],
    "ebpf.btf.kernel": [("kernel_btf", "btf")],
    "ebpf.btf.core": [("relocate", "core")],
    "ebpf.sys.bpf": [("prog_load", "prog_load"), ("map_create", "map_create"), ("btf_load", "btf_load")],
    "ebpf.program": [("Program.attach", "attach")],
}
WRAP_ALL = {"ebpf.features": "features"}  # every public function of the module


class Clock:
    """Exclusive time per region, for nested regions."""

    def __init__(self) -> None:
        self.stack: List[List[Any]] = []
        self.totals: Dict[str, float] = {}
        self.counts: Dict[str, int] = {}
        self.modules: Dict[str, float] = {}

    def enter(self, name: str) -> None:
        self.stack.append([name, time.perf_counter(), 0.0])

    def leave(self) -> float:
        name, start, child = self.stack.pop()
        dt = time.perf_counter() - start
        self.totals[name] = self.totals.get(name, 0.0) + dt - child
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.stack:
            self.stack[-1][2] += dt
        return dt - child


CLOCK = Clock()


def _timed(fn: Callable[..., Any], region: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        CLOCK.enter(region)
        try:
            return fn(*args, **kwargs)
        finally:
            CLOCK.leave()

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(fn, "__name__", region)
    return wrapper


def _patch(module: Any) -> None:
    for dotted, region in WRAP.get(module.__name__, ()):
        owner = module
        *path, attr = dotted.split(".")
        for p in path:
            owner = getattr(owner, p, None)
        if owner is not None and callable(getattr(owner, attr, None)):
            setattr(owner, attr, _timed(getattr(owner, attr), region))
    region = WRAP_ALL.get(module.__name__)
    if region:
        for name, value in list(vars(module).items()):
            if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == module.__name__ \
                    and not isinstance(value, type):
                setattr(module, name, _timed(value, region))


class _TimedLoader:
    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        CLOCK.enter("import")
        try:
            self.loader.exec_module(module)
        finally:
            CLOCK.modules[module.__name__] = CLOCK.leave()
        _patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _TimedFinder:
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _TimedLoader(spec.loader)
                return spec
        return None


class _FirstWrite:
    """sys.stdout/stderr stand-in noticing the tool's first output (its ready line)."""

    def __init__(self, stream: Any, on_first: Callable[[], None]):
        self._stream = stream
        self._on_first = on_first

    def write(self, text: str) -> int:
        if text and self._on_first is not None:
            hook, self._on_first = self._on_first, None  # type: ignore[assignment]
            hook()
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def report(t_ready: float) -> Dict[str, Any]:
    total = (t_ready - T_START) * 1e3
    phases = {k: v * 1e3 for k, v in CLOCK.totals.items()}
    phases["other"] = total - sum(phases.values())
    top = sorted(CLOCK.modules.items(), key=lambda kv: -kv[1])[:25]
    return {"to_ready_ms": total, "phases_ms": phases, "counts": dict(CLOCK.counts),
            "modules_imported": len(CLOCK.modules),
            "top_imports_ms": {k: v * 1e3 for k, v in top}}


def main() -> None:
    argv = sys.argv[1:]
    profile_n = 0
    if argv[:1] == ["--profile"]:
        profile_n = int(argv[1])
        argv = argv[2:]
    sys.argv = ["ebpf", *argv]
    profiler: Optional[Any] = None
    if profile_n:
        import cProfile

        profiler = cProfile.Profile()

    def at_ready() -> None:
        t = time.perf_counter()
        if profiler is not None:
            profiler.disable()
            import pstats

            out = sys.__stderr__
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile_n)
            out.flush()
            os._exit(0)
        import json

        data = json.dumps(report(t))
        path = os.environ.get("EBPF_BENCH_PHASES")
        if path:
            with open(path, "w") as f:
                f.write(data)
        else:
            sys.__stderr__.write(data + "\n")

    sys.meta_path.insert(0, _TimedFinder())
    for name in list(sys.modules):
        if name in WRAP or name in WRAP_ALL:
            _patch(sys.modules[name])
    sys.stdout = _FirstWrite(sys.stdout, at_ready)  # type: ignore[assignment]
    if profiler is not None:
        profiler.enable()
    from ebpf.cli.main import main as ebpf_main

    code = ebpf_main()
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
