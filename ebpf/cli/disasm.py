"""``ebpf disasm``: raw bytecode (a file, or a loaded program by id) as assembly text.

    ebpf disasm prog.bin             # the text llvm-mc -triple=bpfel -mcpu=v4 reassembles to the same bytes
    ebpf disasm prog.bin --annotate  # helper calls named: call bpf_get_current_pid_tgid#14
    ebpf disasm --id 42              # the kernel's translated (xlated) instructions of program 42

For a loaded program, the kernel reports map loads with the map's *id* where the fd was; they
are printed as ``map[id:N]`` (informational: ids are not fds). The kernel also replaced each
helper id by the helper's address relative to ``__bpf_call_base``; the listing names the
function at that address from /proc/kallsyms, as ``bpftool prog dump xlated`` does
(``call bpf_get_current_pid_tgid#278656``, or ``call __htab_map_lookup_elem#...`` where the
kernel inlined a helper), and prints the bare number where kallsyms hides addresses.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Callable, List, Optional

from ebpf.errors import EbpfError


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ebpf disasm", description="Disassemble eBPF bytecode.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("file", nargs="?", help="raw bytecode file, 8 bytes a slot ('-' for stdin)")
    src.add_argument("--id", type=int, help="id of a loaded program (see bpftool prog list)")
    p.add_argument("--annotate", action="store_true",
                   help="name helper calls as bpftool does (call bpf_ktime_get_ns#5); always on with --id")
    p.add_argument("--big-endian", action="store_true", help="the file is big-endian bytecode")
    return p.parse_args(argv)


def read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise EbpfError(f"cannot read {path}: {e.strerror}") from None


def xlated_call_names() -> Optional[Callable[[int], Optional[str]]]:
    """Helper-call immediates of a translated program -> kernel function names, from kallsyms.

    The verifier rewrote ``imm`` to ``helper address - __bpf_call_base``; None when kallsyms
    shows no addresses (no privileges, kptr_restrict).
    """
    from ebpf.symbols.elf import SymbolError
    from ebpf.symbols.kallsyms import kernel_symbols

    try:
        syms = kernel_symbols()
        base = syms.address_of("__bpf_call_base")
    except SymbolError:
        return None

    def name(imm: int) -> Optional[str]:
        sym = syms.lookup(base + imm)
        return sym.name if sym is not None and sym.offset == 0 else None

    return name


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    from ebpf.asm import decode, disassemble

    if args.id is not None:
        from ebpf.program import Program

        with Program.from_id(args.id) as prog:
            data = prog.xlated()
        names = xlated_call_names()
        text = disassemble(decode(data), annotate=names is not None, call_names=names)
        text = re.sub(r"map(_value)?\[fd:(\d+)\]", r"map\1[id:\2]", text)
    else:
        data = read_bytes(args.file)
        text = disassemble(decode(data, "big" if args.big_endian else "little"), annotate=args.annotate)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0
