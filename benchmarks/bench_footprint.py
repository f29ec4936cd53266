"""Install footprint: the bytes on disk each implementation needs.

* ours: the files pip installed for ``ebpf`` (its RECORD, byte-code included) and for its
  dependencies cffi, construct, pyroute2, pycparser and pyelftools (their RECORDs, via importlib.metadata
  in the measured interpreter); pyroute2 is only imported for XDP/tc, so a tracing-only figure
  is given too. The Python interpreter and its standard library are listed apart (BCC's tools
  need one too; libbpf-tools and bpftrace do not).
* the others: the regular files of their Debian packages (``dpkg -L``, symlinks and directories
  not counted): libbpf-tools; bpftrace with the libraries it links (libbpfcc, libLLVM, libclang,
  libclang-cpp, libbpf, libdw); BCC's tools with libbcc, LLVM and clang libraries, its Python
  module, and the kernel headers it compiles against.

Run alone: ``python benchmarks/bench_footprint.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from typing import Any, Dict, List, Optional, Sequence

OUR_DEPS = ("cffi", "construct", "pyroute2", "pycparser", "pyelftools")
TRACING_ONLY_DEPS = ("cffi", "pycparser", "construct", "pyelftools")  # pyroute2: XDP/tc only

PACKAGE_SETS = {
    "libbpf-tools": (["libbpf-tools"], "the 61 tools (libbpf linked in statically), libelf and zlib not counted"),
    "bpftrace": (["bpftrace", "libbpfcc", "libllvm14", "libclang1-14", "libclang-cpp14", "libbpf1", "libdw1"],
                 "bpftrace and the libraries it links"),
    "bcc": (["bpfcc-tools", "python3-bpfcc", "libbpfcc", "libllvm14", "libclang-cpp14"],
            "BCC's tools, Python module, libbcc, LLVM and clang-cpp"),
    "bcc-kernel-headers": (["linux-headers-6.1.0-50-amd64", "linux-headers-6.1.0-50-common", "linux-kbuild-6.1"],
                           "what BCC compiles against (Debian's headers)"),
}


def _dist_sizes(python: str, names: Sequence[str]) -> Dict[str, Any]:
    """Bytes and file counts of installed distributions, as the interpreter ``python`` sees them."""
    code = (
        "import importlib.metadata as m, json, os, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try:\n"
        "        d = m.distribution(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[n] = None; continue\n"
        "    size = files = 0\n"
        "    for f in d.files or ():\n"
        "        p = f.locate()\n"
        "        if os.path.isfile(p) and not os.path.islink(p):\n"
        "            size += os.path.getsize(p); files += 1\n"
        "    out[n] = {'version': d.version, 'bytes': size, 'files': files}\n"
        "print(json.dumps(out))\n"
    )
    # from "/": run from a source tree, '' on sys.path would find the tree's egg-info instead
    r = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, cwd="/")
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {n: None for n in names}


def _dpkg_bytes(package: str) -> Optional[Dict[str, Any]]:
    r = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    size = files = 0
    for path in r.stdout.splitlines():
        if os.path.isfile(path) and not os.path.islink(path):
            size += os.path.getsize(path)
            files += 1
    v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True).stdout
    return {"version": v, "bytes": size, "files": files}


def _tree_bytes(root: str) -> int:
    """Bytes under ``root`` without site-packages, the standard library's test suite and the
    static libpython for embedding (config-*)."""
    total = 0
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("site-packages", "test") and not d.startswith("config-")]
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def run(python: str, tools: Sequence[str]) -> Dict[str, Any]:
    ours = _dist_sizes(python, ("ebpf", *OUR_DEPS))
    res: Dict[str, Any] = {"ours": {"packages": ours}}
    present = {k: v for k, v in ours.items() if v}
    res["ours"]["bytes"] = sum(v["bytes"] for v in present.values())
    res["ours"]["bytes_tracing_only"] = sum(v["bytes"] for k, v in present.items() if k in ("ebpf", *TRACING_ONLY_DEPS))
    stdlib = sysconfig.get_paths()["stdlib"]
    exe = os.path.realpath(sys.executable)
    res["python_interpreter"] = {"bytes": _tree_bytes(stdlib) + os.path.getsize(exe),
                                 "note": f"{exe} + {stdlib} without test/ and config-*/ (not counted above)"}
    for name, (packages, note) in PACKAGE_SETS.items():
        per = {p: _dpkg_bytes(p) for p in packages}
        res[name] = {"packages": per, "bytes": sum(v["bytes"] for v in per.values() if v), "note": note,
                     "missing": [p for p, v in per.items() if v is None]}
    res["libbpf-tools"]["bytes_these_tools"] = sum(
        os.path.getsize(f"/usr/sbin/{t}") for t in tools if os.path.isfile(f"/usr/sbin/{t}"))
    return res


def main(argv: Optional[List[str]] = None) -> int:
    from targets import TOOLS

    print(json.dumps(run(sys.executable, TOOLS), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
