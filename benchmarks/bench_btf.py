"""Start-up cost of kernel BTF: open vmlinux BTF and answer a typical tool's lookups.

Each "cold" figure is a fresh Python process (median of several) that imports ebpf.btf,
opens /sys/kernel/btf/vmlinux and resolves the field offsets a tracing tool needs; it reports
its own time for that work, its peak RSS, and tracemalloc's peak in a separate run. Three cold
cases: no on-disk index cache (``EBPF_CACHE_DIR=``), the first run after a boot (it builds the
cache) and the usual run (cache present). "Warm" repeats the work inside one process: a second
full parse, and the same lookups on the shared, memoised kernel BTF. bpftool dumping the same
BTF, and a bare ``python -c pass``, are timed in the same run for scale.

    python benchmarks/bench_btf.py [--runs N]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Dict, List, Optional, Tuple

# The child (the measured process) imports only the above; the driver's modules load in main().

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMLINUX = "/sys/kernel/btf/vmlinux"
LOOKUPS: List[Tuple[str, str]] = [
    ("task_struct", "real_parent"), ("task_struct", "tgid"), ("task_struct", "pid"), ("task_struct", "comm"),
    ("file", "f_path"), ("path", "dentry"), ("dentry", "d_name"), ("qstr", "name"), ("sk_buff", "len"),
    ("sock_common", "skc_dport"),
]


def _lookups() -> None:
    from ebpf.btf import Kind, kernel_btf

    btf = kernel_btf()
    offsets = [btf.type_by_name(s, Kind.STRUCT).field(m).byte_offset for s, m in LOOKUPS]  # type: ignore[attr-defined]
    offsets.append(btf.type_by_name("bpf_map_type").value_of("BPF_MAP_TYPE_RINGBUF"))  # type: ignore[attr-defined]
    offsets += btf.ids_by_name("do_sys_openat2", Kind.FUNC)
    assert len(offsets) == len(LOOKUPS) + 2


def child(mode: str) -> None:
    """One measurement in this (fresh) process; prints JSON."""
    import json
    import resource

    if mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
    start = time.perf_counter()
    import ebpf.btf  # noqa: F401

    imported = time.perf_counter()
    from ebpf.btf import kernel_btf

    kernel_btf()
    opened = time.perf_counter()
    _lookups()
    done = time.perf_counter()
    result: Dict[str, float] = {
        "import_ms": (imported - start) * 1e3,
        "open_ms": (opened - imported) * 1e3,
        "lookups_ms": (done - opened) * 1e3,
        "total_ms": (done - start) * 1e3,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if mode == "tracemalloc":
        import tracemalloc

        result["traced_peak_kib"] = tracemalloc.get_traced_memory()[1] / 1024
    if mode == "warm":
        from ebpf.btf import load

        t0 = time.perf_counter()
        load(VMLINUX)
        result["reparse_ms"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        _lookups()
        result["relookup_ms"] = (time.perf_counter() - t0) * 1e3
    print(json.dumps(result))


def _run_child(mode: str, cache: Optional[str]) -> Tuple[Dict[str, float], float]:
    import json
    import subprocess

    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure an installed package: bytecode cached
    env["EBPF_CACHE_DIR"] = cache if cache is not None else ""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
           f"import bench_btf; bench_btf.child({mode!r})"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1e3
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def _timed(cmd: List[str]) -> Tuple[float, int]:
    import subprocess

    t0 = time.perf_counter()
    with open(os.devnull, "w") as null:
        proc = subprocess.Popen(cmd, stdout=null)
        _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{cmd} failed")
    return (time.perf_counter() - t0) * 1e3, usage.ru_maxrss


def main() -> None:
    import argparse
    import shutil
    import statistics
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not os.path.exists(VMLINUX):
        raise SystemExit(f"no {VMLINUX}")
    cache = tempfile.mkdtemp(prefix="bench-btf-")
    rows: List[Tuple[str, str, str, str]] = []
    try:
        _run_child("plain", None)  # compile bytecode once
        pass_ms = statistics.median(_timed([sys.executable, "-c", "pass"])[0] for _ in range(args.runs))

        def cold(label: str, cache_dir: Optional[str], fresh: bool) -> None:
            runs = []
            for _ in range(args.runs):
                if fresh and cache_dir:
                    shutil.rmtree(cache_dir, ignore_errors=True)
                runs.append(_run_child("plain", cache_dir))
            ours = statistics.median(r[0]["total_ms"] for r in runs)
            parts = {k: statistics.median(r[0][k] for r in runs) for k in ("import_ms", "open_ms", "lookups_ms")}
            wall = statistics.median(r[1] for r in runs)
            rss = statistics.median(r[0]["maxrss_kib"] for r in runs)
            detail = f"open {parts['open_ms']:.1f} (incl. imports) + lookups {parts['lookups_ms']:.1f}"
            rows.append((label, f"{ours:.1f}", f"{wall:.0f} ({pass_ms:.0f} bare)", f"{rss / 1024:.1f} MiB  {detail}"))

        cold("cold, no index cache", None, False)
        cold("cold, first run (saves cache at exit)", cache, True)
        _run_child("plain", cache)
        cold("cold, cache present", cache, False)
        traced, _ = _run_child("tracemalloc", cache)
        rows.append(("  tracemalloc peak (cache present)", "", "", f"{traced['traced_peak_kib'] / 1024:.2f} MiB"))
        traced, _ = _run_child("tracemalloc", None)
        rows.append(("  tracemalloc peak (no cache)", "", "", f"{traced['traced_peak_kib'] / 1024:.2f} MiB"))
        warm = [_run_child("warm", None)[0] for _ in range(args.runs)]
        rows.append(("warm: parse vmlinux again", f"{statistics.median(w['reparse_ms'] for w in warm):.1f}", "", ""))
        rows.append(("warm: same lookups again", f"{statistics.median(w['relookup_ms'] for w in warm):.3f}", "", ""))
        bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
        if os.path.exists(bpftool):
            for fmt in ("raw", "c"):
                runs = [_timed([bpftool, "btf", "dump", "file", VMLINUX, "format", fmt]) for _ in range(args.runs)]
                rows.append((
                    f"bpftool btf dump file vmlinux format {fmt}", "", f"{statistics.median(r[0] for r in runs):.0f}",
                    f"{statistics.median(r[1] for r in runs) / 1024:.1f} MiB",
                ))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"vmlinux BTF: {os.path.getsize(VMLINUX):,} bytes; {len(LOOKUPS)} member lookups + 1 enum + 1 func; "
          f"median of {args.runs}; python {sys.version.split()[0]}")
    header = ("case", "ours ms", "process wall ms", "peak RSS / detail")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
