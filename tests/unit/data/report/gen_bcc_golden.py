"""Regenerate bcc_golden.json with BCC's own histogram printers (needs Debian's python3-bpfcc).

Run once with the system Python: /usr/bin/python3 tests/unit/data/report/gen_bcc_golden.py
The output file is committed; tests never import BCC.
"""

import ast
import contextlib
import io
import json
import random

import bcc.table as t

rng = random.Random(7)
cases = []
for n in range(60):
    kind = "linear" if n % 3 == 2 else "log2"
    size = t.log2_index_max if kind == "log2" else rng.choice([5, 20, 100])
    vals = [0] * size
    top = rng.choice([3, 10, 20, 33, 40, 64]) if kind == "log2" else size - 1
    for _ in range(rng.randrange(0, 12)):
        vals[rng.randrange(0, min(top, size - 1) + 1)] = rng.choice([1, 2, 7, 100, 12345, 10**9])
    strip = n % 4 == 1
    val_type = rng.choice(["usecs", "nsecs", "msecs", "kbytes", "value"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if kind == "log2":
            t._print_log2_hist(vals, val_type, strip)
        else:
            t._print_linear_hist(vals, val_type, strip)
    cases.append({"kind": kind, "vals": vals, "val_type": val_type, "strip": strip, "out": buf.getvalue()})
    if kind == "log2":
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            t._print_json_hist(vals, val_type)  # 0.26 prints the dict's repr
        cases[-1]["json_data"] = ast.literal_eval(buf.getvalue())["data"]
with open(__file__.replace("gen_bcc_golden.py", "bcc_golden.json"), "w") as f:
    json.dump(cases, f, separators=(",", ":"))
