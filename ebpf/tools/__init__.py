"""The BCC tools rebuilt on ebpf. Each is ``ebpf/tools/NAME.py`` with ``run(argv) -> int``,
runnable as ``ebpf NAME`` or ``python -m ebpf.tools.NAME``.

``TOOLS`` lists them with one line each, without importing any of them.
"""

TOOLS = {
    "opensnoop": "trace open() family syscalls: pid, comm, fd, error, path",
    "execsnoop": "trace new processes via exec() syscalls",
    "exitsnoop": "trace process termination: exit code or signal, age",
    "softirqs": "summarize soft IRQ event time",
    "hardirqs": "summarize hard IRQ event time",
    "biolatency": "summarize block device I/O latency as a histogram",
    "runqlat": "summarize run queue (scheduler) latency as a histogram",
    "syscount": "summarize syscall counts and latencies",
}
