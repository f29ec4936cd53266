"""Compile and load: DSL compile time, verifier time, and what the kernel keeps, per tool.

* **Phases** of our start-up (``startup_phases.py``: imports, DSL compile, kernel BTF, CO-RE,
  ``BPF_PROG_LOAD``, maps, attach, the rest), with our caches warm and with them empty.
* **Verifier time** the same way for ours and libbpf-tools: the durations ``strace -T`` gives the
  ``bpf(BPF_PROG_LOAD)`` calls of one run (feature probes included), summed.
* **Instruction counts** of the programs each tool has attached, read while it runs:
  ``bpftool -j perf list`` (the tool's pid, each program's tracepoint), ``bpftool -j prog show``
  (``bytes_xlated / 8``: instructions after verification, dead branches removed; jited bytes)
  and the tool's /proc/PID/fdinfo (``verified_insns``: how many the verifier walked). Programs
  are matched by the tracepoint they are attached to.

Run alone: ``python benchmarks/bench_progs.py [TOOL...]`` (uses the interpreter's ``ebpf``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence

from harness import clean_env, median, run_tool
from install_env import Install
from targets import READY

HERE = os.path.dirname(os.path.abspath(__file__))
PHASES = os.path.join(HERE, "startup_phases.py")
_LOAD_RE = re.compile(r"^\d+\s+bpf\(BPF_PROG_LOAD, .*?\)\s+=\s+(-?\d+).*<([0-9.]+)>\s*$")
_BPF_RE = re.compile(r"^\d+\s+bpf\((BPF_\w+), .*<([0-9.]+)>\s*$")


def _bpftool(*args: str) -> Any:
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, timeout=20).stdout
    return json.loads(out or b"[]")


def _fdinfo_progs(pid: int) -> Dict[int, Dict[str, str]]:
    """prog_id -> fdinfo fields of the BPF programs ``pid`` holds."""
    found: Dict[int, Dict[str, str]] = {}
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return found
    for fd in fds:
        try:
            if "bpf-prog" not in os.readlink(os.path.join(fd_dir, fd)):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        info = {k.strip(): v.strip() for k, v in info.items()}
        if "prog_id" in info:
            found[int(info["prog_id"])] = info
    return found


def attached_programs(pid: int) -> List[Dict[str, Any]]:
    """The programs ``pid`` has attached: hook, name, type and instruction counts."""
    perf = [e for e in _bpftool("perf", "list") if e.get("pid") == pid]
    if not perf:
        return []
    progs = {p["id"]: p for p in _bpftool("prog", "show")}
    fdinfo = _fdinfo_progs(pid)
    out = []
    for e in perf:
        p = progs.get(e["prog_id"], {})
        verified = fdinfo.get(e["prog_id"], {}).get("verified_insns")
        out.append({"hook": e.get("tracepoint"), "link": e.get("fd_type"), "prog_id": e["prog_id"],
                    "name": p.get("name"), "type": p.get("type"),
                    "xlated_insns": p["bytes_xlated"] // 8 if "bytes_xlated" in p else None,
                    "jited_bytes": p.get("bytes_jited"),
                    "verified_insns": int(verified) if verified else None})
    return sorted(out, key=lambda r: str(r["hook"]))


def programs_while_running(argv: Sequence[str], ready: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    seen: Dict[str, Any] = {}

    def look(pid: int) -> None:
        seen["programs"] = attached_programs(pid)

    r = run_tool(argv, ready, env=env, on_ready=look, linger=0.05)
    if r.ready_ms is None:
        seen["error"] = r.error or "not ready"
    return seen


def verifier_time(argv: Sequence[str], ready: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """``BPF_PROG_LOAD`` count and summed duration under ``strace -f -T``, and all bpf() calls."""
    if not shutil.which("strace"):
        return {"error": "no strace"}
    fd, path = tempfile.mkstemp(prefix="ebpf-strace-")
    os.close(fd)
    try:
        r = run_tool(["strace", "-f", "-T", "-e", "trace=bpf", "-o", path, *argv], ready, env=env, linger=0.05,
                     timeout=30)
        loads = ok = 0
        load_s = ok_s = all_s = 0.0
        calls: Dict[str, int] = {}
        with open(path) as f:
            for line in f:
                m = _LOAD_RE.match(line)
                if m:
                    loads += 1
                    load_s += float(m.group(2))
                    if int(m.group(1)) >= 0:
                        ok += 1
                        ok_s += float(m.group(2))
                m2 = _BPF_RE.match(line)
                if m2:
                    all_s += float(m2.group(2))
                    calls[m2.group(1)] = calls.get(m2.group(1), 0) + 1
        res: Dict[str, Any] = {"prog_loads": loads, "prog_load_ms": load_s * 1e3, "prog_loads_ok": ok,
                               "prog_load_ok_ms": ok_s * 1e3, "bpf_calls": calls, "bpf_ms": all_s * 1e3}
        if r.ready_ms is None:
            res["error"] = r.error or "not ready"
        return res
    finally:
        os.unlink(path)


def phases(install: Install, tool: str, cache_dir: Optional[str], rounds: int) -> Dict[str, Any]:
    """Median phase times of ``rounds`` runs (``cache_dir`` None: a fresh, empty cache each run)."""
    runs: List[Dict[str, Any]] = []
    work = tempfile.mkdtemp(prefix="ebpf-phases-")
    try:
        for i in range(rounds + (1 if cache_dir else 0)):  # a warm cache gets an unrecorded run first
            out = os.path.join(work, f"phases-{i}.json")
            cache = cache_dir or tempfile.mkdtemp(prefix="cache-", dir=work)
            env = clean_env({"EBPF_BENCH_PHASES": out, "EBPF_CACHE_DIR": os.path.join(cache, "ebpf"),
                             "XDG_CACHE_HOME": cache})
            r = run_tool([install.python, PHASES, tool], READY[tool], env=env, linger=0.05)
            if r.ready_ms is not None and os.path.exists(out) and (i or not cache_dir):
                with open(out) as f:
                    rec = json.load(f)
                rec["harness_ready_ms"] = r.ready_ms
                runs.append(rec)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not runs:
        return {"error": "no run got ready"}
    names = sorted({k for r in runs for k in r["phases_ms"]})
    res: Dict[str, Any] = {
        "runs": len(runs),
        "to_ready_ms": median(r["to_ready_ms"] for r in runs),
        "harness_ready_ms": median(r["harness_ready_ms"] for r in runs),
        "phases_ms": {n: median(r["phases_ms"].get(n, 0.0) for r in runs) for n in names},
        "counts": runs[-1]["counts"],
        "modules_imported": runs[-1]["modules_imported"],
        "top_imports_ms": runs[-1]["top_imports_ms"],
    }
    return res


def run(install: Optional[Install], tools: Sequence[str], warm_cache: str, rounds: int = 3,
        log: Any = print) -> Dict[str, Any]:
    from install_env import has_tool

    result: Dict[str, Any] = {}
    for tool in tools:
        rec: Dict[str, Any] = {}
        ours = install is not None and has_tool(install, tool)
        env_ours = clean_env({"EBPF_CACHE_DIR": os.path.join(warm_cache, "ebpf"), "XDG_CACHE_HOME": warm_cache})
        if ours:
            assert install is not None
            rec["phases_warm"] = phases(install, tool, warm_cache, rounds)
            rec["phases_cold_cache"] = phases(install, tool, None, max(1, rounds // 2))
            rec["verifier_ours"] = verifier_time([install.script, tool], READY[tool], env_ours)
            rec["programs_ours"] = programs_while_running([install.script, tool], READY[tool], env_ours)
        libbpf = f"/usr/sbin/{tool}"
        if os.access(libbpf, os.X_OK):
            rec["verifier_libbpf"] = verifier_time([libbpf], READY[tool])
            rec["programs_libbpf"] = programs_while_running([libbpf], READY[tool])
        log(f"  progs {tool}: done")
        result[tool] = rec
    return result


def main(argv: Optional[List[str]] = None) -> int:
    from install_env import base_python, base_site
    from targets import TOOLS

    tools = (argv if argv is not None else sys.argv[1:]) or list(TOOLS)
    py = base_python()
    install = Install(py, os.path.join(os.path.dirname(py), "ebpf"), base_site(), None, None, "installed")
    cache = tempfile.mkdtemp(prefix="ebpf-cache-")
    try:
        print(json.dumps(run(install, tools, cache, log=lambda s: print(s, file=sys.stderr)), indent=1))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
