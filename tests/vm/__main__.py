"""``python -m tests.vm KERNEL [--] CMD...``: run one command on one kernel, from the repository.

Examples::

    python -m tests.vm 6.1 -- uname -r
    python -m tests.vm 5.10 -- python -m ebpf.tools.opensnoop -d 2
    python -m tests.vm 6.12 -- pytest -q tests/kernel/test_attach_tracing.py
    python -m tests.vm --fetch 5.10 6.1 6.12      # download and unpack only

The command's output streams as it comes; the exit status is the command's (125 when the guest
could not run it, 124 on timeout). Kernels are cached under ``~/.cache/ebpf-vm``.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import kernels, machine


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.vm", description="Run a command in a guest kernel (qemu, TCG)")
    p.add_argument("kernel", nargs="?", help=f"one of {', '.join(machine.names())}")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command (default: uname -a)")
    p.add_argument("--fetch", nargs="+", metavar="KERNEL", help="only fetch these kernels into the cache")
    p.add_argument("--refresh", action="store_true", help="with --fetch: look for newer packages")
    p.add_argument("--smp", type=int, default=1, help="guest CPUs (default 1)")
    p.add_argument("--timeout", type=float, default=900, help="seconds before the VM is killed")
    p.add_argument("-v", "--verbose", action="store_true", help="print the guest's console at the end")
    argv = list(sys.argv[1:] if argv is None else argv)
    command: List[str] = []
    if "--" in argv:  # options may come after KERNEL when the command is set apart by --
        argv, command = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = p.parse_args(argv)
    command = command or args.command

    def say(text: str) -> None:
        print(f"[vm] {text}", file=sys.stderr, flush=True)

    try:
        if args.fetch:
            for name in args.fetch:
                k = kernels.fetch(name, refresh=args.refresh, log=say)
                say(f"{name}: {k.abi} in {k.vmlinux.parent}")
            return 0
        if args.kernel not in machine.names():
            p.error(f"kernel: choose from {', '.join(machine.names())}")
        result = machine.run(args.kernel, command or ["uname", "-a"], timeout=args.timeout, smp=args.smp,
                             on_line=lambda line: print(line, flush=True), log=say)
    except (kernels.FetchError, FileNotFoundError) as e:
        print(f"python -m tests.vm: {e}", file=sys.stderr)
        return 1
    say(f"{result.kernel} ({result.release}): status {result.status} in {result.seconds:.1f}s")
    if args.verbose or result.status is None:
        print(result.console, file=sys.stderr)
    if result.status is None:
        return 124 if "killed after" in result.output else 125
    return result.status


if __name__ == "__main__":
    sys.exit(main())
