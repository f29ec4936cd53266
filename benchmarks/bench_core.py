"""CO-RE start-up cost: load the running kernel's BTF and relocate a typical tool's program.

A "typical tool" here is 22 relocations (20 field offsets across task_struct, mm_struct, file,
dentry, request and sk_buff, a flavour guard and a type size), each on its own instruction,
resolved and patched by :func:`ebpf.btf.core.relocate`.

* **cold**: a fresh Python process imports the engine, opens /sys/kernel/btf/vmlinux and
  relocates the program once; once with the on-disk BTF index cache (the normal case after
  the first run since boot) and once without it (``EBPF_CACHE_DIR=``). Wall time of the whole
  process and its peak RSS (``wait4``), next to a bare ``python -c pass``.
* **warm**: in one process, the same program relocated again and again (a new relocator each
  time, as for a new program: candidate lists are shared, pruning starts afresh).
* ``bpftool btf dump file /sys/kernel/btf/vmlinux > /dev/null``, for scale: the whole BTF
  decoded and printed by C.

Run as any user that can read /sys/kernel/btf/vmlinux: ``python benchmarks/bench_core.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

VMLINUX = "/sys/kernel/btf/vmlinux"
ROUNDS = 7

#: (type, access) of the tool's field relocations
FIELDS: Sequence[Tuple[str, Tuple[Any, ...]]] = (
    ("struct task_struct", ("pid",)), ("struct task_struct", ("tgid",)),
    ("struct task_struct", ("real_parent",)), ("struct task_struct", ("comm",)),
    ("struct task_struct", ("flags",)), ("struct task_struct", ("mm",)),
    ("struct task_struct", ("start_time",)), ("struct task_struct___new", ("__state",)),
    ("struct mm_struct", ("arg_start",)), ("struct mm_struct", ("arg_end",)),
    ("struct mm_struct", ("exe_file",)), ("struct file", ("f_path", "dentry")),
    ("struct file", ("f_flags",)), ("struct file", ("f_inode",)),
    ("struct dentry", ("d_name", "name")), ("struct dentry", ("d_parent",)),
    ("struct request", ("__sector",)), ("struct request", ("__data_len",)),
    ("struct sk_buff", ("len",)), ("struct sk_buff", ("data",)),
)

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.bench_core import tool_program
t0 = time.perf_counter()
from ebpf.btf.core import relocate
from ebpf.btf.kernel import kernel_btf
t1 = time.perf_counter()
btf = kernel_btf()
t2 = time.perf_counter()
prog = tool_program(json.loads(sys.argv[2]))
t3 = time.perf_counter()
out = relocate(prog)
t4 = time.perf_counter()
assert len(out) == len(prog)
print(json.dumps({"import": t1 - t0, "btf": t2 - t1, "build": t3 - t2, "relocate": t4 - t3}))
"""


def tool_relocations() -> List[Any]:
    from ebpf.btf.relo import CoreRelo
    from ebpf.uapi import CoreReloKind as K

    relos = [CoreRelo(K.FIELD_BYTE_OFFSET, type_name, access) for type_name, access in FIELDS]
    relos.append(CoreRelo(K.FIELD_EXISTS, "struct task_struct___old", ("state",)))
    relos.append(CoreRelo(K.TYPE_SIZE, "struct task_struct"))
    return relos


def compiled_values(btf: Any) -> List[int]:
    """What the compiler would have put in the instructions, resolving against *btf*."""
    from ebpf.btf.core import resolve

    return [resolve(relo, btf).value for relo in tool_relocations()]


def tool_program(values: Sequence[int]) -> List[Any]:
    """The tool's instructions, each carrying one relocation compiled with *values*."""
    from ebpf import asm as A

    insns: List[Any] = []
    for relo, value in zip(tool_relocations(), values):
        if relo.access and relo.kind == 0:
            insn = A.add64(A.R3, value)
        else:
            insn = A.mov64(A.R1, value)
        insn.meta["core"] = relo._replace(local_value=value)
        insns.append(insn)
    insns.append(A.exit_())
    return insns


def run(argv: List[str], env: Optional[Dict[str, str]] = None, stdout: Any = subprocess.PIPE) -> Tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB and stdout of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, env=env, text=True)
    out = proc.stdout.read() if proc.stdout is not None else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    if proc.returncode:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode})")
    return wall, usage.ru_maxrss, out


def cold(env_extra: Dict[str, str], values: List[int]) -> Dict[str, float]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, **env_extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with .pyc files, as an installed package has
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    walls, rss, parts = [], [], []
    for _ in range(ROUNDS):
        wall, kib, out = run([sys.executable, "-c", CHILD, root, json.dumps(values)], env)
        walls.append(wall)
        rss.append(kib)
        parts.append(json.loads(out))
    result = {"wall": statistics.median(walls), "rss": statistics.median(rss)}
    for key in parts[0]:
        result[key] = statistics.median(p[key] for p in parts)
    return result


def warm() -> Dict[str, float]:
    import tracemalloc

    from ebpf.btf.core import relocate
    from ebpf.btf.kernel import kernel_btf

    prog = tool_program(compiled_values(kernel_btf()))
    relocate(prog)  # first use: candidates looked up, types inflated
    times = []
    for _ in range(200):
        t = time.perf_counter()
        relocate(prog)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    relocate(prog)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"relocate": statistics.median(times), "alloc_peak": peak}


def main() -> None:
    if not os.access(VMLINUX, os.R_OK):
        raise SystemExit(f"cannot read {VMLINUX}")
    run([sys.executable, "-m", "compileall", "-q", os.path.dirname(os.path.dirname(__file__)) + "/ebpf"])
    baseline = [run([sys.executable, "-c", "pass"]) for _ in range(ROUNDS)]
    base_wall = statistics.median(b[0] for b in baseline)
    base_rss = statistics.median(b[1] for b in baseline)
    from ebpf.btf import load

    values = compiled_values(load(VMLINUX))
    cache = tempfile.mkdtemp(prefix="bench-core-cache-")
    try:
        cold({"EBPF_CACHE_DIR": cache}, values)  # fill the index cache once
        cached = cold({"EBPF_CACHE_DIR": cache}, values)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    uncached = cold({"EBPF_CACHE_DIR": ""}, values)
    hot = warm()
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    tool: Optional[Tuple[float, float]] = None
    if os.path.exists(bpftool):
        with open(os.devnull, "w") as null:
            runs = [run([bpftool, "btf", "dump", "file", VMLINUX], stdout=null) for _ in range(ROUNDS)]
        tool = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))

    n = len(FIELDS) + 2
    print(f"CO-RE: {n} relocations of a typical tool against {VMLINUX} (medians of {ROUNDS} runs)\n")
    print(f"{'case':<44} {'wall ms':>9} {'BTF ms':>8} {'reloc ms':>9} {'peak RSS MiB':>13}")
    print(f"{'python -c pass (interpreter alone)':<44} {base_wall * 1e3:>9.1f} {'':>8} {'':>9} "
          f"{base_rss / 1024:>13.1f}")
    for label, r in (("cold process, BTF index cache present", cached), ("cold process, no BTF index cache", uncached)):
        print(f"{label:<44} {r['wall'] * 1e3:>9.1f} {r['btf'] * 1e3:>8.1f} {r['relocate'] * 1e3:>9.2f} "
              f"{r['rss'] / 1024:>13.1f}")
    print(f"{'warm (same process, new program)':<44} {'':>9} {'':>8} {hot['relocate'] * 1e3:>9.3f} "
          f"{'+%.2f' % (hot['alloc_peak'] / 2**20):>13}")
    if tool is not None:
        print(f"{'bpftool btf dump file vmlinux > /dev/null':<44} {tool[0] * 1e3:>9.1f} {'':>8} {'':>9} "
              f"{tool[1] / 1024:>13.1f}")
    print(f"\ncold breakdown (cached): import {cached['import'] * 1e3:.1f} ms, "
          f"kernel BTF {cached['btf'] * 1e3:.1f} ms, "
          f"building the program {cached['build'] * 1e3:.1f} ms, "
          f"relocation {cached['relocate'] * 1e3:.2f} ms")
    print("warm peak RSS column: Python allocations during one relocation (tracemalloc)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's ebpf
    main()
