"""``ebpf asm FILE``: assemble eBPF text; write raw bytecode, or load, attach and show the maps.

    ebpf asm prog.s -o prog.bin
    ebpf asm prog.s --attach tracepoint:syscalls:sys_enter_openat -d 5

Raw output is 8 bytes a slot, little-endian. Map loads in raw output become PSEUDO_MAP_IDX
loads whose immediate is the map's position among the file's ``.map`` declarations (the form
the kernel accepts with an fd_array), so ``ebpf disasm`` shows them as ``map[idx:N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, List, Optional, Tuple

from ebpf.errors import AssemblerError, AttachError, EbpfError

_HOOK_TYPES = {
    "tracepoint": "tracepoint",
    "tp": "tracepoint",
    "raw_tracepoint": "raw_tracepoint",
    "raw_tp": "raw_tracepoint",
}


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ebpf asm", description="Assemble eBPF text (LLVM/bpftool syntax).")
    p.add_argument("file", help="assembly source ('-' for stdin)")
    p.add_argument("-o", "--output", help="write raw bytecode here ('-' for stdout)")
    p.add_argument("--attach", metavar="KIND:TARGET",
                   help="load and attach: tracepoint:GROUP:NAME or raw_tracepoint:NAME")
    p.add_argument("-d", "--duration", type=float, default=None,
                   help="with --attach: seconds to stay attached (default: until Ctrl-C)")
    p.add_argument("--type", help="program type when loading (default: from --attach)")
    p.add_argument("--license", default="GPL", help="program license (default GPL)")
    p.add_argument("--name", default=None, help="program name (default: the file's stem)")
    return p.parse_args(argv)


def read_source(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise EbpfError(f"cannot read {path}: {e.strerror}") from None


def parse_hook(text: str) -> Tuple[str, str]:
    """``tracepoint:syscalls:sys_enter_openat`` -> ("tracepoint", "syscalls/sys_enter_openat")."""
    kind, _, target = text.partition(":")
    ptype = _HOOK_TYPES.get(kind)
    if ptype is None or not target:
        raise AttachError(f"bad --attach {text!r}: use tracepoint:GROUP:NAME or raw_tracepoint:NAME")
    if ptype == "tracepoint":
        group, _, name = target.replace("/", ":").partition(":")
        if not group or not name:
            raise AttachError(f"bad tracepoint {target!r}: use tracepoint:GROUP:NAME")
        target = f"{group}/{name}"
    return ptype, target


def raw_bytecode(assembly: Any) -> bytes:
    """Link and encode, turning symbolic map loads into PSEUDO_MAP_IDX form."""
    from ebpf.asm import encode, link
    from ebpf.asm import opcodes as o

    index = {decl.name: i for i, decl in enumerate(assembly.maps)}
    out = []
    for insn in link(assembly.instructions):
        if insn.opcode == o.LD_IMM64 and insn.reference is not None and insn.src in (
            o.PSEUDO_MAP_FD, o.PSEUDO_MAP_VALUE
        ):
            if insn.reference not in index:
                raise AssemblerError(f"map {insn.reference!r} is used but not declared with .map")
            insn = insn.copy()
            insn.src = o.PSEUDO_MAP_IDX if insn.src == o.PSEUDO_MAP_FD else o.PSEUDO_MAP_IDX_VALUE
            insn.imm = (insn.imm >> 32) << 32 | index[insn.reference]
            insn.reference = None
        out.append(insn)
    return encode(out)


def write_output(path: str, data: bytes) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise EbpfError(f"cannot write {path}: {e.strerror}") from None


def map_spec_of(decl: Any) -> Any:
    from ebpf.maps.spec import MapSpec

    return MapSpec(decl.name, decl.type, key=decl.key_size or None, value=decl.value_size or None,
                   max_entries=decl.max_entries, flags=decl.flags)


def _number_codec(size: int) -> Any:
    return {1: "u8", 2: "u16", 4: "u32", 8: "u64"}.get(size, size)


def format_map(name: str, m: Any) -> List[str]:
    """A map's contents as lines: ``key: value``, ints for 1/2/4/8-byte keys and values."""
    from ebpf.maps.live import Map

    info = m.info()
    typed: Any = Map.from_fd(os.dup(m.fd), key=_number_codec(info.key_size) if info.key_size else None,
                        value=_number_codec(info.value_size))
    with typed:
        try:
            items = sorted(typed.items(), key=lambda kv: repr(kv[0]))
        except (AttributeError, TypeError):
            return [f"map {name}: ({getattr(info.type, 'name', info.type)}, contents not listable)"]
    kind = getattr(info.type, "name", str(info.type)).lower()
    lines = [f"map {name} ({kind}, {len(items)} entries):"]
    for k, v in items:
        key = k.hex() if isinstance(k, (bytes, bytearray)) else k
        val = v.hex() if isinstance(v, (bytes, bytearray)) else v
        lines.append(f"  {key}: {val}")
    return lines


def run_attached(assembly: Any, args: argparse.Namespace, source_name: str) -> int:
    from ebpf.collection import CollectionSpec, load
    from ebpf.program import ProgramSpec, prog_type_of

    ptype, target = parse_hook(args.attach)
    name = args.name or os.path.splitext(os.path.basename(source_name))[0] or "asm"
    spec = CollectionSpec(
        [ProgramSpec(name, prog_type_of(args.type or ptype), assembly.instructions, args.license, attach_to=target)],
        [map_spec_of(d) for d in assembly.maps],
    )
    with load(spec) as coll:
        coll.attach()
        print(f"attached {name} to {args.attach}" + (f" for {args.duration:g}s" if args.duration else
                                                     ", Ctrl-C to stop"), flush=True)
        try:
            if args.duration is None:
                while True:
                    time.sleep(3600)
            else:
                time.sleep(args.duration)
        except KeyboardInterrupt:
            pass
        for mname, m in coll.maps.items():
            print("\n".join(format_map(mname, m)), flush=True)
    return 0


def run(argv: List[str]) -> int:
    args = parse_args(argv)
    from ebpf.asm import assemble

    source = read_source(args.file)
    assembly = assemble(source)
    if args.attach:
        if args.output:
            write_output(args.output, raw_bytecode(assembly))
        return run_attached(assembly, args, args.file)
    output: Optional[str] = args.output
    if output is None:
        if sys.stdout.isatty():
            raise EbpfError("nothing to do: give -o OUT (raw bytecode) or --attach KIND:TARGET")
        output = "-"
    write_output(output, raw_bytecode(assembly))
    return 0
