"""``ebpf disasm``: raw bytecode (a file, or a loaded program by id) as assembly text.

    ebpf disasm prog.bin         # the text llvm-mc -triple=bpfel -mcpu=v4 reassembles to the same bytes
    ebpf disasm --id 42          # the kernel's translated (xlated) instructions of program 42

For a loaded program, the kernel reports map loads with the map's *id* where the fd was; they
are printed as ``map[id:N]`` in a comment-free listing (informational: ids are not fds).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import List

from ebpf.errors import EbpfError


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ebpf disasm", description="Disassemble eBPF bytecode.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("file", nargs="?", help="raw bytecode file, 8 bytes a slot ('-' for stdin)")
    src.add_argument("--id", type=int, help="id of a loaded program (see bpftool prog list)")
    p.add_argument("--annotate", action="store_true", help="name helper calls in comments")
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


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    from ebpf.asm import decode, disassemble

    if args.id is not None:
        from ebpf.program import Program

        with Program.from_id(args.id) as prog:
            data = prog.xlated()
        text = disassemble(decode(data), annotate=args.annotate)
        text = re.sub(r"map(_value)?\[fd:(\d+)\]", r"map\1[id:\2]", text)
    else:
        data = read_bytes(args.file)
        text = disassemble(decode(data, "big" if args.big_endian else "little"), annotate=args.annotate)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0
