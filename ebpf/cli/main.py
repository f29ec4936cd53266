"""Entry point of the ``ebpf`` command: ``ebpf VERB ...`` or ``ebpf TOOL ...``.

Dispatch imports only the module of the verb or tool asked for: start-up time is a feature.
Every :class:`ebpf.errors.EbpfError` ends the command with one line on stderr and status 1;
``EBPF_DEBUG=1`` prints its traceback first (for us: where in the toolkit it was raised).
"""

from __future__ import annotations

import os
import sys
from typing import Callable, List, Optional

VERBS = {
    "asm": ("ebpf.cli.asm", "assemble eBPF text into bytecode, or load and attach it"),
    "disasm": ("ebpf.cli.disasm", "disassemble bytecode from a file or a loaded program"),
    "btf": ("ebpf.cli.btf", "look at kernel BTF: dump a type as C, find types by name"),
    "features": ("ebpf.cli.features", "probe what this kernel offers: hooks, links, maps, helpers"),
}


def _tools() -> dict:
    from ebpf.tools import TOOLS

    return TOOLS


def usage() -> str:
    lines = ["usage: ebpf VERB [args] | ebpf TOOL [args]", "", "verbs:"]
    for name, (_, desc) in VERBS.items():
        lines.append(f"  {name:<12} {desc}")
    tools = _tools()
    if tools:
        lines += ["", "tools:"]
        for name, desc in sorted(tools.items()):
            lines.append(f"  {name:<12} {desc}")
    lines += ["", "Run 'ebpf VERB --help' or 'ebpf TOOL --help' for the options of each."]
    return "\n".join(lines)


def error_line(exc: BaseException) -> str:
    """One line for the terminal: the message with its lines joined (a compile error's source
    line in parentheses)."""
    one_line = getattr(exc, "one_line", None)
    raw = one_line() if callable(one_line) else str(exc)
    text = " ".join(part.strip() for part in raw.splitlines() if part.strip())
    return text or type(exc).__name__


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    import importlib

    if name in VERBS:
        module_name = VERBS[name][0]
    elif name in _tools():
        module_name = f"ebpf.tools.{name}"
    else:
        print(f"ebpf: unknown verb or tool {name!r} (see 'ebpf --help')", file=sys.stderr)
        return 2
    return run_guarded(name, lambda: importlib.import_module(module_name).run(rest))


def run_guarded(name: str, call: Callable[[], Optional[int]]) -> int:
    """Run a verb or tool: an EbpfError becomes one line on stderr and status 1 (preceded by
    its traceback when ``EBPF_DEBUG=1``), Ctrl-C 130, a closed output pipe a quiet exit."""
    from ebpf.errors import EbpfError, debug_enabled

    try:
        return int(call() or 0)
    except EbpfError as e:
        if debug_enabled():
            import traceback

            traceback.print_exc()
        print(f"ebpf {name}: error: {error_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
