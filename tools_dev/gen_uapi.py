"""Regenerate ebpf/uapi/_generated.py and ebpf/uapi/_helpers.py from the kernel's uapi bpf.h.

Run: python tools_dev/gen_uapi.py path/to/include/uapi/linux/bpf.h > ebpf/uapi/_generated.py
     python tools_dev/gen_uapi.py --helpers path/to/include/uapi/linux/bpf.h > ebpf/uapi/_helpers.py
(the helper ids live apart so that start-up does not pay for their enum unless it is used).
The numbers are the kernel's ABI; this script only transcribes them.
"""

import re
import sys


def enum_body(text: str, name: str) -> list:
    m = re.search(r"^enum " + name + r" \{(.*?)\};", text, re.S | re.M)
    if not m:
        raise SystemExit(f"enum {name} not found")
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    out, value = [], -1
    known = {}
    for item in body.split(","):
        item = item.strip()
        if not item or item.startswith("__MAX") or item.startswith("#"):
            continue
        if "=" in item:
            key, val = (p.strip() for p in item.split("=", 1))
            value = known[val] if val in known else int(eval(val.replace("ULL", ""), {}))
        else:
            key = item
            value += 1
        known[key] = value
        out.append((key, value))
    return out


def emit(cls: str, doc: str, items: list, strip: str) -> str:
    lines = [f"class {cls}(IntEnum):", f'    """{doc}"""', ""]
    for key, value in items:
        short = key[len(strip):] if key.startswith(strip) else key
        lines.append(f"    {short} = {value}")
    return "\n".join(lines) + "\n\n\n"


HELPERS_DOC = (
    '"""Helper ids transcribed from include/uapi/linux/bpf.h (tools_dev/gen_uapi.py --helpers).\n\n'
    "Apart from :mod:`ebpf.uapi._generated` because building this enum (200+ members) costs more\n"
    "than a millisecond: :mod:`ebpf.uapi` imports it on first use of ``HelperId`` only.\n"
    '"""\n\n'
    "from enum import IntEnum\n\n\n"
)


def main() -> None:
    args = sys.argv[1:]
    helpers_only = args[:1] == ["--helpers"]
    text = open(args[-1]).read()
    if helpers_only:
        # helpers: FN(name, id, ...)
        m = re.search(r"#define ___BPF_FUNC_MAPPER\(FN, ctx\.\.\.\)(.*?)\n\s*/\*", text, re.S)
        assert m
        helpers = [(n, int(i)) for n, i in re.findall(r"FN\((\w+), (\d+)", m.group(1))]
        doc = "enum bpf_func_id: helper ids (name without the bpf_ prefix)."
        out = [HELPERS_DOC, emit("HelperId", doc, helpers, "")]
        sys.stdout.write("".join(out).rstrip() + "\n")
        return
    out = [
        '"""Kernel ABI numbers transcribed from include/uapi/linux/bpf.h (tools_dev/gen_uapi.py)."""\n\n'
        "from enum import IntEnum\n\n\n"
    ]
    out.append(emit("BpfCmd", "Commands of the bpf() system call.", enum_body(text, "bpf_cmd"), "BPF_"))
    out.append(emit("MapType", "enum bpf_map_type.", enum_body(text, "bpf_map_type"), "BPF_MAP_TYPE_"))
    out.append(emit("ProgType", "enum bpf_prog_type.", enum_body(text, "bpf_prog_type"), "BPF_PROG_TYPE_"))
    out.append(emit("AttachType", "enum bpf_attach_type.", enum_body(text, "bpf_attach_type"), "BPF_"))
    out.append(emit("LinkType", "enum bpf_link_type.", enum_body(text, "bpf_link_type"), "BPF_LINK_TYPE_"))
    out.append(emit("StatsType", "enum bpf_stats_type.", enum_body(text, "bpf_stats_type"), "BPF_STATS_"))
    out.append(emit("CoreReloKind", "enum bpf_core_relo_kind.", enum_body(text, "bpf_core_relo_kind"), "BPF_CORE_"))
    sys.stdout.write("".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
