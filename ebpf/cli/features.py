"""``ebpf features``: what this kernel offers to BPF tools (hooks, links, maps, helpers).

Prints a table (``--json``: one JSON object); ``--full`` adds every program and map type.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ebpf features", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--full", action="store_true", help="probe every program and map type too")
    return p


def run(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    from ebpf import features

    rows = features.summary(full=args.full)
    if args.json:
        out: dict = {}
        for section, f in rows:
            out.setdefault(section, {})[f.name] = {"supported": f.supported, "detail": f.detail}
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max(len(f.name) for _, f in rows)
    current = None
    for section, f in rows:
        if section != current:
            if current is not None:
                print()
            print(f"{section}:")
            current = section
        mark = "yes" if f.supported else "no"
        print(f"  {f.name:<{width}}  {mark:<3}  {f.detail}".rstrip())
    return 0
