"""The benchmark suite: ours against libbpf-tools, bpftrace and BCC, in one command.

    python benchmarks/run.py [--rounds N] [--cold-rounds N] [--quick] [--json out.json] [TOOL...]

Needs root. Installs the working tree with pip into a private venv (nothing else on the machine
changes), then measures time to ready, first event, peak RSS, time to exit (warm and cold),
compile/verifier time and instruction counts, event throughput and install footprint, prints
one table and writes everything (raw runs included) as JSON. The method is in README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import bench_footprint  # noqa: E402
import bench_progs  # noqa: E402
import bench_startup  # noqa: E402
import bench_throughput  # noqa: E402
import install_env  # noqa: E402
from harness import clean_env, median, time_command  # noqa: E402
from targets import IMPLS, TOOLS  # noqa: E402

TARGETS = {
    "ready": 1.3,  # ours / libbpf-tools, warm
    "ready_cold": 2.0,  # ours / libbpf-tools, cold
    "rss": 1.5,  # ours / libbpf-tools
    "faster": 5.0,  # bpftrace / ours and bcc / ours
}
SHORT = {"ours": "ours", "ours-nopth": "ours-nopth", "libbpf-tools": "libbpf", "bpftrace": "bpftrace", "bcc": "bcc"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the machine and the interpreter --------------------------------------------------------------


def machine() -> Dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) // 1024} MiB"
    except (OSError, ValueError):
        pass

    def version(argv: List[str]) -> str:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "missing"

    def dpkg(pkg: str) -> str:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "missing"

    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "kernel": platform.release(), "machine": platform.machine(), "cpu": cpu, "cpus": os.cpu_count(),
        "memory": mem, "python": f"{platform.python_version()} ({os.path.realpath(sys.executable)})",
        "libbpf-tools": dpkg("libbpf-tools"), "bpftrace": version(["bpftrace", "--version"]),
        "bcc": dpkg("bpfcc-tools"),
        "kernel_headers_for_bcc": os.path.realpath(f"/lib/modules/{platform.release()}/build"),
        "loadavg": os.getloadavg(),
    }


def interpreter_baselines(install: install_env.Install, rounds: int) -> Dict[str, Any]:
    """What starting Python costs before any of our code runs (medians, ms)."""
    res: Dict[str, Any] = {}
    env = clean_env()
    cmds = {
        "python -c pass": [install.python, "-c", "pass"],
        "python -S -c pass (no site at all)": [install.python, "-S", "-c", "pass"],
        "python -I -c pass": [install.python, "-I", "-c", "pass"],
    }
    if install.nopth_python:
        cmds["python -c pass without the sandbox .pth"] = [install.nopth_python, "-c", "pass"]
    if install.script:
        cmds["ebpf --help"] = [install.script, "--help"]
        if install.nopth_script:
            cmds["ebpf --help without the sandbox .pth"] = [install.nopth_script, "--help"]
    shim = _shim("python3")
    if shim:
        cmds[f"{shim} -c pass (a shell-script shim on PATH)"] = [shim, "-c", "pass"]
    shim_ebpf = _shim("ebpf")
    if shim_ebpf:
        cmds[f"{shim_ebpf} --help (a shell-script shim on PATH)"] = [shim_ebpf, "--help"]
    for name, argv in cmds.items():
        time_command(argv, 1, env)  # warm the page cache
        res[name] = median(time_command(argv, rounds, env))
    # where the sandbox .pth's time goes, from -X importtime of an empty program
    r = subprocess.run([install.python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, env=env)
    res["certifi import via the sandbox .pth (importtime, cumulative us)"] = _importtime_of(r.stderr, "certifi")
    return res


def _shim(name: str) -> Optional[str]:
    """The first ``name`` on PATH that is a shell script rather than the program (a pyenv shim):
    what a user typing ``name`` may really start. (pyenv puts the real interpreter's directory
    first in PATH for its children, so ``shutil.which`` from here would not see the shim.)"""
    for d in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            if _is_script(path):
                return path
    return None


def _is_script(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!" and b"python" not in f.readline()
    except OSError:
        return False


def _importtime_of(text: str, module: str) -> Optional[int]:
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return int(parts[1])
    return None


# ---- the table ------------------------------------------------------------------------------------


def _fmt(v: Optional[float], unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}{unit}"
    return f"{v:.1f}{unit}"


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _mark(ratio: Optional[float], limit: float, at_least: bool = False) -> str:
    if ratio is None:
        return "n/a"
    ok = ratio >= limit if at_least else ratio <= limit
    return "met" if ok else "MISSED"


def _both(ratio: Optional[float], at_least: float) -> str:
    """``7.1x met`` / ``1.5x MISSED`` / ``-``."""
    return "-" if ratio is None else f"{_fmt(ratio, 'x')} {_mark(ratio, at_least, True)}"


def _table(head: Sequence[str], rows: List[Sequence[str]]) -> List[str]:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    out = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
           for r in [head, *rows]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def render(res: Dict[str, Any]) -> str:
    lines: List[str] = []
    m = res["machine"]
    lines += [f"ebpf benchmarks, {m['date']}: {m['cpu']}, {m['cpus']} vCPUs, {m['memory']}, kernel {m['kernel']}",
              f"python {m['python']}; libbpf-tools {m['libbpf-tools']}; {m['bpftrace']}; bcc {m['bcc']}",
              f"measured: {res['install']['how']}; rounds: {res['rounds']} warm, {res['cold_rounds']} cold "
              f"(medians); suite took {res.get('elapsed_s', 0):.0f} s", ""]
    st = res.get("startup", {})
    for phase, title, metric in (
        ("warm", "Time to ready, warm (ms, process start -> first line after attach)", "ready_ms"),
        ("cold", "Time to ready, cold (page cache dropped, our caches empty; ms)", "ready_ms"),
    ):
        limit = TARGETS["ready" if phase == "warm" else "ready_cold"]
        fast = f">={TARGETS['faster']:.0f}x"
        head = ["tool", *[SHORT[i] for i in IMPLS], "ours/libbpf", f"<={limit}x", "nopth/libbpf",
                f"bpftrace/ours {fast}", f"bcc/ours {fast}"]
        rows = []
        for tool in res["tools"]:
            med = st.get(phase, {}).get(tool, {})
            vals = {i: med.get(i, {}).get(metric) for i in IMPLS}
            r1 = _ratio(vals["ours"], vals["libbpf-tools"])
            rn = _ratio(vals["ours-nopth"], vals["libbpf-tools"])
            rb = _ratio(vals["bpftrace"], vals["ours"])
            rc = _ratio(vals["bcc"], vals["ours"])
            rows.append([tool, *[_fmt(vals[i]) for i in IMPLS], _fmt(r1, "x"), _mark(r1, limit), _fmt(rn, "x"),
                         _both(rb, TARGETS["faster"]), _both(rc, TARGETS["faster"])])
        lines += [title + ":", *_table(head, rows), ""]
    # first event (opensnoop)
    ev = st.get("warm", {}).get("opensnoop", {})
    if ev:
        lines.append("opensnoop, first real event (ms from process start; warm / cold): " + ", ".join(
            f"{SHORT[i]} {_fmt(ev[i].get('event_ms'))} / "
            f"{_fmt(st.get('cold', {}).get('opensnoop', {}).get(i, {}).get('event_ms'))}" for i in IMPLS if i in ev))
        lines.append("")
    # RSS and exit
    head = ["tool", *[SHORT[i] for i in IMPLS], "ours/libbpf", f"<={TARGETS['rss']}x",
            *[f"exit {SHORT[i]}" for i in IMPLS if i != "ours-nopth"]]
    rows = []
    for tool in res["tools"]:
        med = st.get("warm", {}).get(tool, {})
        rss = {i: med.get(i, {}).get("peak_rss_kib") for i in IMPLS}
        r = _ratio(rss["ours"], rss["libbpf-tools"])
        rows.append([tool, *[_fmt(rss[i] / 1024 if rss[i] else None) for i in IMPLS], _fmt(r, "x"),
                     _mark(r, TARGETS["rss"]),
                     *[_fmt(med.get(i, {}).get("exit_ms")) for i in IMPLS if i != "ours-nopth"]])
    lines += ["Peak RSS (MiB, the tool's VmHWM, warm) and time to exit after SIGINT (ms):", *_table(head, rows), ""]
    # runs that went wrong
    bad = []
    for phase in ("warm", "cold"):
        for tool, by in st.get(phase, {}).items():
            for impl, med in by.items():
                if med.get("failed"):
                    errs = [r.get("error") for r in st.get("runs", {}).get(phase, {}).get(tool, {}).get(impl, [])
                            if r.get("error")]
                    bad.append(f"  {phase} {tool}/{impl}: {med['failed']} of {med['runs']} runs: "
                               f"{(errs[0] if errs else '')[:110]}")
    if bad:
        lines += ["Runs with an error (their missing values are left out of the medians):", *bad, ""]
    # availability
    un = st.get("unavailable", {})
    if un:
        lines.append("Not measured:")
        lines += [f"  {k}: {v}" for k, v in sorted(un.items())]
        lines.append("")
    notes = st.get("notes", {})
    if notes:
        lines.append("Notes: " + "; ".join(f"{k}: {v}" for k, v in sorted(notes.items())))
        lines.append("")
    # interpreter
    base = res.get("interpreter", {})
    if base:
        lines.append("Interpreter start (ms, medians): " + "; ".join(
            f"{k} {_fmt(v) if not k.startswith('certifi') else str(v) + ' us'}" for k, v in base.items()))
        lines.append("")
    # phases
    pr = res.get("progs", {})
    if pr:
        names = ["import", "compile", "btf", "core", "features", "map_create", "btf_load", "prog_load", "attach",
                 "other"]
        head = ["tool", "cache", "ready", "to_ready(script)", *names]
        rows = []
        for tool, rec in pr.items():
            for key, label in (("phases_warm", "warm"), ("phases_cold_cache", "empty")):
                p = rec.get(key)
                if not p or "phases_ms" not in p:
                    continue
                rows.append([tool, label, _fmt(p.get("harness_ready_ms")), _fmt(p.get("to_ready_ms")),
                             *[_fmt(p["phases_ms"].get(n)) for n in names]])
        if rows:
            lines += ["Where our start-up goes (ms, exclusive, medians; 'ready' includes interpreter start, "
                      "the phases are timed from the first line of the launcher):", *_table(head, rows), ""]
        head = ["tool", "ours progs", "ours xlated", "libbpf progs", "libbpf xlated", "ours verified",
                "libbpf verified", "PROG_LOAD ms ours", "PROG_LOAD ms libbpf", "per hook (ours/libbpf xlated)"]
        rows = []
        for tool, rec in pr.items():
            po = rec.get("programs_ours", {}).get("programs") or []
            pl = rec.get("programs_libbpf", {}).get("programs") or []
            by_hook: Dict[str, List[str]] = {}
            for p in po:
                by_hook.setdefault(p["hook"], ["-", "-"])[0] = str(p["xlated_insns"])
            for p in pl:
                by_hook.setdefault(p["hook"], ["-", "-"])[1] = str(p["xlated_insns"])
            vo, vl = rec.get("verifier_ours", {}), rec.get("verifier_libbpf", {})
            rows.append([tool, str(len(po)) if po else "-", str(sum(p["xlated_insns"] or 0 for p in po)) if po else "-",
                         str(len(pl)) if pl else "-", str(sum(p["xlated_insns"] or 0 for p in pl)) if pl else "-",
                         str(sum(p["verified_insns"] or 0 for p in po)) if po else "-",
                         str(sum(p["verified_insns"] or 0 for p in pl)) if pl else "-",
                         _fmt(vo.get("prog_load_ms")) + (f" ({vo['prog_loads']})" if "prog_loads" in vo else ""),
                         _fmt(vl.get("prog_load_ms")) + (f" ({vl['prog_loads']})" if "prog_loads" in vl else ""),
                         " ".join(f"{h}:{a}/{b}" for h, (a, b) in sorted(by_hook.items()))])
        lines += ["Programs attached (xlated = instructions the kernel kept; verified = instructions the verifier "
                  "walked; PROG_LOAD = strace -T sum, (count), probes included):", *_table(head, rows), ""]
    # throughput
    tp = res.get("throughput", {})
    if tp.get("tools"):
        head = ["attempted/s", "tool", "opens", "achieved/s", "seen", "lost", "seen %", "tool CPU %", "us/event"]
        rows = []
        for name, recs in tp["tools"].items():
            for r in recs:
                rows.append([str(r["rate"]), name, str(r.get("opens", "-")), _fmt(r.get("achieved_per_s")),
                             str(r.get("seen", "-")), str(r.get("lost", "-")), _fmt(r.get("seen_pct")),
                             _fmt(r.get("cpu_pct")), _fmt(r.get("cpu_us_per_event"))
                             if "error" not in r else r["error"][:60]])
        rows.sort(key=lambda r: (int(r[0]), r[1]))
        lines += [f"opensnoop under an open() storm ({tp['seconds']:.0f} s per rate, {tp['generator']}; output to a "
                  f"pipe read and discarded):", *_table(head, rows), ""]
    # footprint
    fp = res.get("footprint", {})
    if fp:
        mb = 1024 * 1024
        ours = fp["ours"]
        parts = ", ".join(f"{k} {v['bytes'] / mb:.1f}" for k, v in ours["packages"].items() if v)
        lines.append("Install footprint (MiB on disk):")
        lines.append(f"  ours          {ours['bytes'] / mb:6.1f}  ({parts}; without pyroute2, which only XDP/tc "
                     f"import: {ours['bytes_tracing_only'] / mb:.1f})")
        for name in ("libbpf-tools", "bpftrace", "bcc", "bcc-kernel-headers"):
            if name in fp:
                v = fp[name]
                extra = ""
                if name == "libbpf-tools":
                    extra = f"; the 8 tools here: {v.get('bytes_these_tools', 0) / mb:.1f}"
                lines.append(f"  {name:<13} {v['bytes'] / mb:6.1f}  ({v['note']}{extra})")
        if "python_interpreter" in fp:
            lines.append(f"  (Python itself, needed by ours and BCC: {fp['python_interpreter']['bytes'] / mb:.1f})")
        lines.append("")
    # targets
    lines.append("Targets: " + "; ".join(f"{k}: {v}" for k, v in res.get("targets_summary", {}).items()))
    return "\n".join(lines)


def summarize_targets(res: Dict[str, Any]) -> Dict[str, str]:
    st = res.get("startup", {})
    out: Dict[str, str] = {}

    def each(phase: str, metric: str, num: str, den: str, limit: float, at_least: bool = False) -> str:
        met, missed = [], []
        for tool in res["tools"]:
            med = st.get(phase, {}).get(tool, {})
            r = _ratio(med.get(num, {}).get(metric), med.get(den, {}).get(metric))
            if r is None:
                continue
            (met if (r >= limit if at_least else r <= limit) else missed).append(f"{tool} {r:.2f}x")
        if not met and not missed:
            return "n/a"
        return f"met by {len(met)}/{len(met) + len(missed)}" + (f" (missed: {', '.join(missed)})" if missed else "")

    out[f"ready <= {TARGETS['ready']}x libbpf-tools"] = each("warm", "ready_ms", "ours", "libbpf-tools",
                                                              TARGETS["ready"])
    out[f"cold ready <= {TARGETS['ready_cold']}x"] = each("cold", "ready_ms", "ours", "libbpf-tools",
                                                          TARGETS["ready_cold"])
    out[f"peak RSS <= {TARGETS['rss']}x"] = each("warm", "peak_rss_kib", "ours", "libbpf-tools", TARGETS["rss"])
    out[f"bpftrace >= {TARGETS['faster']:.0f}x slower to ready"] = each("warm", "ready_ms", "bpftrace", "ours",
                                                                         TARGETS["faster"], True)
    out[f"BCC >= {TARGETS['faster']:.0f}x slower to ready"] = each("warm", "ready_ms", "bcc", "ours",
                                                                    TARGETS["faster"], True)
    return out


# ---- main -----------------------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="ebpf benchmark suite (needs root)")
    p.add_argument("--rounds", type=int, default=None, help="warm rounds (default 7, --quick 2)")
    p.add_argument("--cold-rounds", type=int, default=None, help="cold rounds (default 3, --quick 1)")
    p.add_argument("--quick", action="store_true", help="few rounds, short storms: a smoke run of everything")
    p.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"), help="where to write the JSON")
    p.add_argument("--installed", action="store_true",
                   help="measure the interpreter's installed ebpf instead of a pip install of this tree")
    p.add_argument("--skip", action="append", default=[],
                   choices=["cold", "progs", "throughput", "footprint", "bcc", "bpftrace"], help="leave a part out")
    p.add_argument("tools", nargs="*", default=list(TOOLS))
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("run.py: needs root (BPF, drop_caches)", file=sys.stderr)
        return 1
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 7)
    cold_rounds = args.cold_rounds if args.cold_rounds is not None else (1 if args.quick else 3)
    if "cold" in args.skip:
        cold_rounds = 0
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="ebpf-bench-")
    res: Dict[str, Any] = {"machine": machine(), "tools": args.tools, "rounds": rounds, "cold_rounds": cold_rounds,
                           "targets": TARGETS}
    try:
        log("installing the tree into a private venv...")
        install = install_env.make(os.path.join(work, "env"), ROOT, use_installed=args.installed)
        res["install"] = install._asdict()
        res["install"]["pyc_missing"] = install_env.pyc_missing(install) if install.script else []
        log(f"  {install.how}")
        log("interpreter baselines...")
        res["interpreter"] = interpreter_baselines(install, 5 if args.quick else 10)
        impls = [i for i in IMPLS if i not in args.skip]
        bench = bench_startup.StartupBench(install, args.tools, impls, log=log, workdir=os.path.join(work, "startup"))
        log("warm-up runs...")
        bench.warm_up()
        log("warm rounds...")
        warm_runs = bench.rounds(rounds, cold=False)
        cold_runs = {}
        if cold_rounds:
            log("cold rounds...")
            cold_runs = bench.rounds(cold_rounds, cold=True)
        res["startup"] = {
            "warm": bench_startup.summarize(warm_runs), "cold": bench_startup.summarize(cold_runs),
            "unavailable": {f"{t}/{i}": why for (t, i), why in sorted(bench.unavailable.items())},
            "notes": {f"{t}/{i}": tg.note for (t, i), tg in bench.targets.items() if tg.note and i == "bpftrace"},
            "runs": {"warm": warm_runs, "cold": cold_runs},
        }
        if "progs" not in args.skip:
            log("compile/load/programs...")
            res["progs"] = bench_progs.run(install if install.script else None, args.tools, bench.warm_cache,
                                           rounds=1 if args.quick else 3, log=log)
        if "throughput" not in args.skip and "opensnoop" in args.tools:
            log("throughput...")
            tools: Dict[str, List[str]] = {}
            envs: Dict[str, Dict[str, str]] = {}
            if install.script and install_env.has_tool(install, "opensnoop"):
                tools["ours"] = [install.script, "opensnoop"]
                envs["ours"] = clean_env({"EBPF_CACHE_DIR": os.path.join(bench.warm_cache, "ebpf"),
                                          "XDG_CACHE_HOME": bench.warm_cache})
            tools["libbpf-tools"] = ["/usr/sbin/opensnoop"]
            rates = (10_000, 200_000) if args.quick else bench_throughput.RATES
            res["throughput"] = bench_throughput.run(tools, rates, 1.0 if args.quick else 3.0, envs, log=log)
        if "footprint" not in args.skip:
            res["footprint"] = bench_footprint.run(install.python, args.tools)
        bench.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["elapsed_s"] = time.monotonic() - t_start
    res["targets_summary"] = summarize_targets(res)
    table = render(res)
    res["table"] = table
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(table)
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
