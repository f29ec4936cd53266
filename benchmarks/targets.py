"""What is compared: each tool in each implementation, and the line that says it is ready.

Implementations:

* ``ours``: ``ebpf TOOL`` through the console script pip installed (see :mod:`install_env`);
* ``ours-nopth``: the same install, started by an interpreter that skips only the sandbox's
  ``_sandboxing_egress_ca.pth`` (not part of the product: it imports ``certifi`` at every start);
* ``libbpf-tools``: the Debian binaries in /usr/sbin;
* ``bpftrace``: bpftrace 0.17 running the packaged ``.bt`` tool, or an equivalent program where
  there is none (or where the packaged one needs kprobes, which this kernel lacks); ready is its
  attach notification (``__BPFTRACE_NOTIFY_PROBES_ATTACHED=1``);
* ``bcc``: BCC's Python tools (``TOOL-bpfcc``), which compile C with clang at start.

Ready is the first line a tool prints after its probes are attached: the header of the event
tools, the ``Tracing ...`` banner of the summary tools (libbpf-tools, BCC and ours print it after
attaching), bpftrace's notification line (printed once every probe is attached).
"""

from __future__ import annotations

import os
import shutil
from typing import Dict, List, NamedTuple, Optional, Union

from install_env import Install, has_tool

TOOLS = ("opensnoop", "execsnoop", "exitsnoop", "softirqs", "hardirqs", "biolatency", "runqlat", "syscount")
IMPLS = ("ours", "ours-nopth", "libbpf-tools", "bpftrace", "bcc")

READY = {
    "opensnoop": r"^PID\s+COMM\s+FD\s+ERR\s+PATH",
    "execsnoop": r"^P?COMM\s+PID\s+PPID\s+RET\s+ARGS",  # BCC and libbpf-tools say PCOMM
    "exitsnoop": r"^PCOMM\s+PID\s+PPID\s+TID\s+AGE",
    "softirqs": r"^Tracing soft irq event time",
    "hardirqs": r"^Tracing hard irq event time",
    "biolatency": r"^Tracing block device I/O",
    "runqlat": r"^Tracing run queue latency",
    "syscount": r"^Tracing syscalls",
}
BPFTRACE_READY = r"^__BPFTRACE_NOTIFY_PROBES_ATTACHED"

# bpftrace programs for the tools bpftrace does not ship (or ships built on kprobes).
BPFTRACE_PROGRAMS = {
    "exitsnoop": (
        'BEGIN { printf("%-16s %-7s %-7s %-7s %s\\n", "PCOMM", "PID", "PPID", "TID", "EXIT_CODE"); } '
        'tracepoint:sched:sched_process_exit { printf("%-16s %-7d %-7d %-7d %d\\n", comm, pid, '
        "curtask->real_parent->tgid, tid, curtask->exit_code >> 8); }"
    ),
    "softirqs": (
        'BEGIN { printf("Tracing soft irq event time... Hit Ctrl-C to end.\\n"); } '
        "tracepoint:irq:softirq_entry { @start[cpu] = nsecs; } "
        "tracepoint:irq:softirq_exit /@start[cpu]/ { @usecs[args->vec] = sum((nsecs - @start[cpu]) / 1000); "
        "delete(@start[cpu]); } END { clear(@start); }"
    ),
    "hardirqs": (
        'BEGIN { printf("Tracing hard irq event time... Hit Ctrl-C to end.\\n"); } '
        "tracepoint:irq:irq_handler_entry { @start[cpu] = nsecs; } "
        "tracepoint:irq:irq_handler_exit /@start[cpu]/ { @usecs[args->irq] = sum((nsecs - @start[cpu]) / 1000); "
        "delete(@start[cpu]); } END { clear(@start); }"
    ),
    "biolatency": (
        'BEGIN { printf("Tracing block device I/O... Hit Ctrl-C to end.\\n"); } '
        "tracepoint:block:block_rq_issue { @start[args->dev, args->sector] = nsecs; } "
        "tracepoint:block:block_rq_complete /@start[args->dev, args->sector]/ { "
        "@usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000); "
        "delete(@start[args->dev, args->sector]); } END { clear(@start); }"
    ),
}
BPFTRACE_NOTES = {
    "exitsnoop": "one-liner on tracepoint:sched:sched_process_exit (no exitsnoop.bt)",
    "softirqs": "one-liner on tracepoint:irq:softirq_entry/exit (no softirqs.bt)",
    "hardirqs": "one-liner on tracepoint:irq:irq_handler_entry/exit (no hardirqs.bt)",
    "biolatency": "tracepoint:block:block_rq_issue/complete version (biolatency.bt needs kprobes)",
}


class Target(NamedTuple):
    tool: str
    impl: str
    argv: List[str]
    ready: str
    env: Dict[str, str]
    note: str = ""


class Unavailable(NamedTuple):
    tool: str
    impl: str
    reason: str


def target(tool: str, impl: str, install: Optional[Install]) -> Union[Target, Unavailable]:
    """The :class:`Target` for ``tool`` in ``impl``, or :class:`Unavailable` with the reason."""
    if impl in ("ours", "ours-nopth"):
        if install is None or not install.script:
            return Unavailable(tool, impl, "no ebpf install")
        script = install.script if impl == "ours" else install.nopth_script
        if script is None:
            return Unavailable(tool, impl, "no sandbox .pth to skip")
        if not has_tool(install, tool):
            return Unavailable(tool, impl, f"not available (no ebpf/tools/{tool}.py yet)")
        return Target(tool, impl, [script, tool], READY[tool], {})
    if impl == "libbpf-tools":
        path = f"/usr/sbin/{tool}"
        if not os.access(path, os.X_OK):
            return Unavailable(tool, impl, f"{path} missing")
        return Target(tool, impl, [path], READY[tool], {})
    if impl == "bpftrace":
        exe = shutil.which("bpftrace") or "/usr/bin/bpftrace"
        if not os.access(exe, os.X_OK):
            return Unavailable(tool, impl, "bpftrace missing")
        env = {"__BPFTRACE_NOTIFY_PROBES_ATTACHED": "1"}
        if tool in BPFTRACE_PROGRAMS:
            return Target(tool, impl, [exe, "-e", BPFTRACE_PROGRAMS[tool]], BPFTRACE_READY, env,
                          BPFTRACE_NOTES[tool])
        script = f"/usr/sbin/{tool}.bt"
        if not os.path.exists(script):
            return Unavailable(tool, impl, f"{script} missing")
        return Target(tool, impl, [exe, script], BPFTRACE_READY, env, f"{tool}.bt")
    if impl == "bcc":
        path = f"/usr/sbin/{tool}-bpfcc"
        if not os.access(path, os.X_OK):
            return Unavailable(tool, impl, f"{path} missing (apt-get install bpfcc-tools)")
        return Target(tool, impl, [path], READY[tool], {})
    raise ValueError(impl)
