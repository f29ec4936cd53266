"""DSL compiler: compile time per program, and code size against clang -O2 (libbpf-tools).

Measures, for the DSL opensnoop (examples/opensnoop_dsl.py):

* the cost of ``import ebpf.lang`` and of the first compile in a process (imports of the
  compiler, tracefs formats) and of later compiles (fresh function objects: parse + compile);
* instruction counts: what we emit (slots), and what the kernel keeps after verification
  (``xlated_prog_len / 8``, dead ``.rodata`` branches pruned), next to the same numbers for
  libbpf-tools' opensnoop (clang -O2), read with ``bpftool -j prog show`` while it runs.

Run as root: ``python benchmarks/bench_lang.py [--json]``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "opensnoop_dsl.py"
sys.path.insert(0, str(ROOT))


def load_example(tag: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"opensnoop_dsl_{tag}", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _env() -> Dict[str, str]:
    """The environment of a normal run: byte-code caches allowed (so imports are not recompiles)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def import_cost() -> float:
    code = "import time; t = time.perf_counter(); import ebpf.lang; print(time.perf_counter() - t)"
    subprocess.run([sys.executable, "-c", "import ebpf.lang.compiler, ebpf.lang.intrinsics, ebpf.lang.context"],
                   cwd=ROOT, check=True, env=_env())  # warm the byte-code caches
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env=_env())
    return float(out.stdout.strip())


def first_compile_cost() -> float:
    code = ("import time, sys; sys.path.insert(0, 'benchmarks'); import bench_lang as b; m = b.load_example('x'); "
            "t = time.perf_counter(); m.tool.spec(); print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env=_env())
    return float(out.stdout.strip())


def warm_compiles(rounds: int) -> Dict[str, List[float]]:
    per_prog: Dict[str, List[float]] = {}
    for i in range(rounds):
        mod = load_example(f"w{i}")
        spec = mod.tool.spec()
        for name, p in spec.programs.items():
            per_prog.setdefault(name, []).append(p.extras["compile_seconds"])
    return per_prog


def our_sizes() -> Dict[str, Dict[str, int]]:
    mod = load_example("sizes")
    spec = mod.tool.spec()
    out: Dict[str, Dict[str, int]] = {}
    with mod.tool.load() as live:
        for name, prog in live.programs.items():
            out[name] = {"emitted": sum(i.size for i in spec.programs[name].instructions),
                         "xlated": prog.info()["xlated_prog_len"] // 8}
    return out


def clang_sizes() -> Optional[Dict[str, int]]:
    """xlated instruction counts of libbpf-tools' opensnoop programs, or None if unavailable."""
    if not os.path.exists("/usr/sbin/opensnoop") or shutil.which("bpftool") is None:
        return None
    proc = subprocess.Popen(["/usr/sbin/opensnoop", "-d", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found: Dict[str, int] = {}
        for _ in range(40):
            time.sleep(0.1)
            shown = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout
            for p in json.loads(shown or "[]"):
                name = p.get("name", "")
                if name.startswith("tracepoint__sy") and "open" in name:
                    found[name] = p["bytes_xlated"] // 8
            if found:
                return found
        return None
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    as_json = "--json" in sys.argv
    imp = import_cost()
    first = first_compile_cost()
    warm = warm_compiles(20)
    ours = our_sizes()
    clang = clang_sizes()
    result = {
        "import_ebpf_lang_ms": imp * 1e3,
        "first_compile_ms": first * 1e3,
        "compile_ms": {k: statistics.median(v) * 1e3 for k, v in warm.items()},
        "ours": ours,
        "clang_libbpf_tools": clang,
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(f"import ebpf.lang: {imp * 1e3:.1f} ms")
    print(f"first compile in a process (both programs, incl. compiler imports): {first * 1e3:.1f} ms")
    for name, ms in result["compile_ms"].items():
        print(f"compile {name}: {ms:.2f} ms (median of {len(warm[name])}; parse + compile + regalloc + link)")
    print(f"{'program':<40}{'emitted':>8}{'xlated':>8}")
    for name, sizes in ours.items():
        print(f"{'DSL ' + name:<40}{sizes['emitted']:>8}{sizes['xlated']:>8}")
    if clang:
        for name, n in clang.items():
            print(f"{'clang -O2 ' + name:<40}{'':>8}{n:>8}")
    else:
        print("libbpf-tools opensnoop not available: no clang comparison")


if __name__ == "__main__":
    main()
