"""``ebpf asm FILE``: assemble eBPF text; write raw bytecode, or load, attach and show the maps.

    ebpf asm prog.s -o prog.bin
    ebpf asm prog.s --attach tracepoint:syscalls:sys_enter_openat -d 5
    ebpf asm prog.s --load --type xdp --log          # verify only; the verifier's log on stderr

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

from ebpf.errors import AssemblerError, AttachError, EbpfError, VerifierError

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
    how = p.add_mutually_exclusive_group()
    how.add_argument("--attach", metavar="KIND:TARGET",
                     help="load and attach: tracepoint:GROUP:NAME or raw_tracepoint:NAME")
    how.add_argument("--load", action="store_true",
                     help="load into the kernel (the verifier checks it) without attaching; needs --type")
    p.add_argument("-d", "--duration", type=float, default=None,
                   help="with --attach: seconds to stay attached (default: until Ctrl-C)")
    p.add_argument("--type", help="program type when loading (default: from --attach)")
    p.add_argument("--license", default="GPL", help="program license (default GPL)")
    p.add_argument("--name", default=None, help="program name (default: the file's stem)")
    p.add_argument("--log", nargs="?", const="-", metavar="FILE",
                   help="with --load/--attach: the verifier's whole log, whether it accepts the program or "
                        "not, on stderr, or written to FILE (give FILE after the source file)")
    p.add_argument("--log-level", type=int, default=1, metavar="N",
                   help="with --log: 1 the path the verifier checked (default), 2 every instruction's state; "
                        "add 4 for statistics")
    return p.parse_args(argv)


def read_source(path: str) -> str:
    """The source as text: UTF-8, else one line naming the first bad byte."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise EbpfError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        name = "stdin" if path == "-" else path
        raise AssemblerError(f"{name} is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None


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


def write_output(path: str, data: bytes, std: Any = None) -> None:
    """``data`` to a file, or to ``std`` (stdout unless given) when the path is ``-``."""
    if path == "-":
        std = std or sys.stdout
        std.buffer.write(data)
        std.flush()
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


def write_log(where: str, log: str) -> None:
    """The verifier's log to stderr (``-``) or to a file."""
    write_output(where, (log if log.endswith("\n") or not log else log + "\n").encode(), sys.stderr)


def rejected(e: VerifierError, log_to: Optional[str]) -> EbpfError:
    """The one-line error for a rejection, saying where the whole log is."""
    if log_to == "-":
        return EbpfError(str(e))  # the log is on stderr just above
    where = "the whole verifier log: --log" if log_to is None else f"verifier log in {log_to}"
    return EbpfError(f"{e}\n({where})")


def run_loaded(assembly: Any, args: argparse.Namespace, source_name: str) -> int:
    """--load or --attach: load (and attach), with the verifier's log when --log asks for it."""
    from ebpf.collection import CollectionSpec, load
    from ebpf.program import ProgramSpec, prog_type_of

    if args.attach:
        ptype, target = parse_hook(args.attach)
    elif args.type:
        ptype, target = args.type, ""
    else:
        raise EbpfError("--load needs --type (socket_filter, xdp, tracepoint, raw_tracepoint, ...)")
    if args.log is not None and not 1 <= args.log_level <= 7:
        raise EbpfError(f"--log-level {args.log_level}: use 1 or 2, plus 4 for statistics")
    name = args.name or os.path.splitext(os.path.basename(source_name))[0] or "asm"
    spec = CollectionSpec(
        [ProgramSpec(name, prog_type_of(args.type or ptype), assembly.instructions, args.license, attach_to=target,
                     log_level=args.log_level if args.log is not None else 0)],
        [map_spec_of(d) for d in assembly.maps],
    )
    try:
        coll = load(spec)
    except VerifierError as e:
        if args.log is not None:
            write_log(args.log, e.log)
        raise rejected(e, args.log) from None
    with coll:
        prog = coll.programs[name]
        if args.log is not None:
            write_log(args.log, prog.verifier_log)
        if not args.attach:
            kind = spec.programs[name].type.name.lower()
            print(f"verifier accepted {name} ({kind}, {len(assembly.instructions)} instructions)", flush=True)
            return 0
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

    if args.log is not None and not (args.load or args.attach):
        raise EbpfError("--log needs --load or --attach (the log is the kernel verifier's)")
    source = read_source(args.file)
    assembly = assemble(source, filename="<stdin>" if args.file == "-" else args.file)
    if args.attach or args.load:
        if args.output:
            write_output(args.output, raw_bytecode(assembly))
        return run_loaded(assembly, args, args.file)
    output: Optional[str] = args.output
    if output is None:
        if sys.stdout.isatty():
            raise EbpfError("nothing to do: give -o OUT (raw bytecode), --load or --attach KIND:TARGET")
        output = "-"
    write_output(output, raw_bytecode(assembly))
    return 0
