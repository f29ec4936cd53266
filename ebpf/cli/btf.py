"""``ebpf btf``: look at BTF. ``dump`` prints a type as C (as ``bpftool btf dump ... format c``
prints it), ``find`` lists the types whose name matches a pattern.

Without ``--file`` both read the running kernel's BTF; ``--file`` takes a raw ``.btf`` blob
(either byte order) or an ELF file with a ``.BTF`` section, ``--base`` the base of a split
(module) BTF. A module's BTF under /sys/kernel/btf gets the kernel's as its base by default.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from ebpf.btf.kinds import Kind
    from ebpf.btf.spec import BTF

_KEYWORDS = {
    "struct": ("STRUCT",),
    "union": ("UNION",),
    "enum": ("ENUM", "ENUM64"),
    "typedef": ("TYPEDEF",),
    "fwd": ("FWD",),
    "func": ("FUNC",),
    "var": ("VAR",),
    "int": ("INT",),
    "float": ("FLOAT",),
    "datasec": ("DATASEC",),
}
# what a bare name means, in order: what C calls a type definition first
_BARE = ("STRUCT", "UNION", "ENUM", "ENUM64", "TYPEDEF", "FWD")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebpf btf", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--file", "-f", metavar="F", help="BTF to read: raw .btf or ELF (default: running kernel)")
        p.add_argument("--base", "-B", metavar="B", help="base BTF of a split BTF --file (a module's)")

    dump = sub.add_parser("dump", help="print a type as C, as bpftool's C dump does")
    dump.add_argument(
        "type", nargs="?", metavar="TYPE",
        help="'struct task_struct', 'union bpf_attr', 'enum bpf_map_type', 'typedef pid_t', a bare "
        "name, or a type id",
    )
    dump.add_argument("--all", action="store_true", help="print every type (bpftool's whole vmlinux.h)")
    source(dump)

    find = sub.add_parser("find", help="list types whose name matches a glob or contains a substring")
    find.add_argument("pattern", metavar="PATTERN", help="glob (task_*) or substring (sk_buff)")
    find.add_argument("--kind", "-k", metavar="K", help="only this kind: struct, union, enum, typedef, func...")
    source(find)
    return parser


def run(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    btf = _open(args.file, args.base)
    if args.command == "dump":
        return _dump(btf, args.type, args.all)
    return _find(btf, args.pattern, args.kind)


def _open(path: Optional[str], base_path: Optional[str]) -> BTF:
    from ebpf.btf import kernel_btf, load
    from ebpf.btf.kernel import SYSFS_BTF, VMLINUX

    if path is None:
        if base_path is not None:
            from ebpf.btf import BTFError

            raise BTFError("--base needs --file (the split BTF to read on top of it)")
        return kernel_btf()
    if base_path is not None:
        return load(path, base=load(base_path))
    real = os.path.realpath(path)
    if os.path.dirname(real) == SYSFS_BTF and real != VMLINUX:
        return load(path, base=kernel_btf())
    return load(path)


def _kinds(keyword: str) -> Tuple[Kind, ...]:
    from ebpf.btf import BTFError, Kind

    names = _KEYWORDS.get(keyword.lower())
    if names is None:
        names = tuple(k.name for k in Kind if k.name == keyword.upper())
    if not names:
        raise BTFError(f"unknown kind {keyword!r} (one of {', '.join(_KEYWORDS)})")
    return tuple(Kind[n] for n in names)


def _dump(btf: BTF, spec: Optional[str], everything: bool) -> int:
    from ebpf.btf import BTFError, CDumper, Kind

    dumper = CDumper(btf)
    if everything:
        sys.stdout.write(dumper.dump_all())
        return 0
    if not spec:
        raise BTFError("say which type to dump (or --all)")
    words = spec.split()
    ids: List[int]
    if len(words) == 1 and words[0].strip("[]").isdigit():
        ids = [int(words[0].strip("[]"))]
        btf.type_by_id(ids[0])
    elif len(words) == 2:
        ids = btf.ids_by_name(words[1], _kinds(words[0]))
    elif len(words) == 1:
        ids = btf.ids_by_name(words[0], tuple(Kind[n] for n in _BARE))
        if not ids:
            ids = btf.ids_by_name(words[0])
    else:
        raise BTFError(f"cannot read {spec!r} as a type: say e.g. 'struct task_struct' or 'pid_t'")
    if not ids:
        raise BTFError(f"{btf.name}: no type {spec!r}")
    print("\n\n".join(dumper.definition(i) for i in ids))
    return 0


def _find(btf: BTF, pattern: str, kind: Optional[str]) -> int:
    from ebpf.btf import BTFError

    kinds = _kinds(kind) if kind else None
    glob = any(c in pattern for c in "*?[")

    def match(name: str, pat: str) -> bool:
        return fnmatch.fnmatchcase(name, pat) if glob else pat in name

    blobs: List[BTF] = []
    current: Optional[BTF] = btf
    while current is not None:
        blobs.insert(0, current)
        current = current.base
    lines = []
    for blob in blobs:
        for type_id, type_kind, name in blob.iter_names():
            if (kinds is None or type_kind in kinds) and match(name, pattern):
                lines.append(f"{type_id:>7}  {type_kind.name:<10}  {name}")
    if not lines:
        raise BTFError(f"{btf.name}: no type name matches {pattern!r}")
    print("\n".join(lines))
    return 0
