"""``Program.attach()``: pick the hook from the program type, its expected attach type and the
target text, the way libbpf reads SEC() names.

Targets by program type:

* TRACEPOINT ``"syscalls/sys_enter_openat"``; RAW_TRACEPOINT ``"sched_switch"``;
* TRACING: tp_btf, fentry/fexit/fmod_ret (target fixed at load), iterators (``map=`` ...);
  LSM (target fixed at load);
* KPROBE: ``"kprobe/SYM[+OFF]"``, ``"kretprobe/SYM"``, ``"ksyscall/NAME"``,
  ``"uprobe/PATH:SYM[+OFF]"``, ``"uretprobe/PATH:SYM"``, ``"usdt/PATH:PROVIDER:NAME"``, or a bare
  ``"SYM"`` (kprobe); expected attach type KPROBE_MULTI/UPROBE_MULTI take lists in ``symbols=``;
* PERF_EVENT ``"cpu-clock"`` (+ ``sample_freq=``/``sample_period=``);
* XDP a device; SCHED_CLS a device (+ ``direction=``); CGROUP_* a cgroup v2 directory.

Keyword options are passed on to the attach function (``pid=``, ``retprobe=``, ``cookie=``...).
A spec's ``extras[ATTACH_OPTIONS]`` (what a DSL decorator was given: ``sample_freq=``, ``mode=``,
``direction``...) are their defaults: an option given to ``attach()`` wins, and so does the
direction in a ``"DEV:egress"`` target; giving one of two alternatives (``sample_period`` for a
declared ``sample_freq``) replaces the other.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ebpf.attach.link import Link
from ebpf.errors import AttachError
from ebpf.uapi import AttachType, ProgType

_CGROUP_TYPES = (ProgType.CGROUP_SKB, ProgType.CGROUP_SOCK, ProgType.CGROUP_DEVICE, ProgType.CGROUP_SOCK_ADDR,
                 ProgType.CGROUP_SYSCTL, ProgType.CGROUP_SOCKOPT, ProgType.SOCK_OPS)

#: ``ProgramSpec.extras`` key of the attach options declared with the program (a dict).
ATTACH_OPTIONS = "attach_options"
#: Options that say one thing in two ways: giving one to ``attach()`` drops the declared other.
_ALTERNATIVES = (frozenset({"sample_period", "sample_freq"}), frozenset({"symbols", "addresses", "offsets"}))


def with_declared(spec: Any, options: Dict[str, Any]) -> Dict[str, Any]:
    """``options`` over the spec's declared attach options."""
    declared = dict(getattr(spec, "extras", {}).get(ATTACH_OPTIONS) or {})
    for group in _ALTERNATIVES:
        if not group.isdisjoint(options):
            for key in group:
                declared.pop(key, None)
    declared.update(options)
    return declared


def _need(target: str, what: str, name: str) -> str:
    if not target:
        raise AttachError(f"program {name!r}: no {what} to attach to")
    return target


def attach_program(program: Any, target: Optional[str] = None, **options: Any) -> Link:
    spec = getattr(program, "spec", None)
    name = getattr(program, "name", "?")
    target = target or (spec.attach_to if spec is not None else "") or ""
    ptype = spec.type if spec is not None else None
    at = spec.attach_type if spec is not None else None
    if ptype is None:
        raise AttachError(f"program {name!r} has no spec: use the attach function of its hook "
                          "(ebpf.attach.<hook>.attach_*)")
    given = set(options)
    options = with_declared(spec, options)
    if ptype == ProgType.TRACEPOINT:
        from ebpf.attach.tracepoint import attach_tracepoint

        return attach_tracepoint(program, _need(target, "tracepoint", name), **options)
    if ptype in (ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE):
        from ebpf.attach.tracepoint import attach_raw_tracepoint

        return attach_raw_tracepoint(program, _need(target, "raw tracepoint", name), **options)
    if ptype in (ProgType.TRACING, ProgType.LSM):
        if at == AttachType.TRACE_ITER:
            from ebpf.attach.iter import attach_iter

            return attach_iter(program, target or None, **options)
        from ebpf.attach.tracing import attach_tracing

        return attach_tracing(program, target or None, **options)
    if ptype == ProgType.KPROBE:
        return _attach_kprobe_type(program, target, at, name, options)
    if ptype == ProgType.PERF_EVENT:
        from ebpf.attach.perf_event import attach_perf_event

        return attach_perf_event(program, target or "cpu-clock", **options)
    if ptype == ProgType.XDP:
        from ebpf.attach.xdp import attach_xdp

        return attach_xdp(program, _need(target, "network device", name), **options)
    if ptype == ProgType.SCHED_CLS:
        from ebpf.attach.tc import attach_tc

        dev, _, direction = _need(target, "network device", name).partition(":")
        if at in (AttachType.TCX_INGRESS, AttachType.TCX_EGRESS):  # loaded for one direction
            direction = "ingress" if at == AttachType.TCX_INGRESS else "egress"
        if direction and "direction" not in given:  # over the declared one
            options["direction"] = direction
        return attach_tc(program, dev, **options)
    if ptype in _CGROUP_TYPES:
        from ebpf.attach.cgroup import attach_cgroup

        return attach_cgroup(program, _need(target, "cgroup", name), **options)
    raise AttachError(f"program {name!r}: attaching {ptype.name.lower()} programs is not supported")


def _attach_kprobe_type(program: Any, target: str, at: Any, name: str, options: dict) -> Link:
    if at == AttachType.TRACE_KPROBE_MULTI:
        from ebpf.attach.kprobe import attach_kprobe_multi

        if target and "symbols" not in options and "addresses" not in options:
            options["symbols"] = [s for s in target.replace("kprobe.multi/", "").split(",") if s]
        return attach_kprobe_multi(program, **options)
    if at == AttachType.TRACE_UPROBE_MULTI:
        from ebpf.attach.uprobe import attach_uprobe_multi

        path, _, syms = target.replace("uprobe.multi/", "").rpartition(":")
        if "symbols" not in options and "offsets" not in options:
            options["symbols"] = [s for s in syms.split(",") if s]
        return attach_uprobe_multi(program, path, **options)
    kind, sep, rest = _need(target, "probe", name).partition("/")
    if not sep:
        kind, rest = "kprobe", target
    if kind in ("kprobe", "kretprobe"):
        from ebpf.attach.kprobe import attach_kprobe

        sym, plus, off = rest.partition("+")
        if plus:
            options.setdefault("offset", int(off, 0))
        return attach_kprobe(program, sym, retprobe=kind == "kretprobe" or options.pop("retprobe", False), **options)
    if kind in ("ksyscall", "kretsyscall"):
        from ebpf.attach.kprobe import attach_ksyscall

        return attach_ksyscall(program, rest, retprobe=kind == "kretsyscall", **options)
    if kind in ("uprobe", "uretprobe"):
        from ebpf.attach.uprobe import attach_uprobe

        path, colon, sym = rest.rpartition(":")
        if not colon:
            raise AttachError(f"bad uprobe target {target!r}: expected uprobe/PATH:FUNCTION[+OFFSET]")
        if sym.startswith("0x") or sym.isdigit():
            return attach_uprobe(program, path, None, offset=int(sym, 0), retprobe=kind == "uretprobe", **options)
        return attach_uprobe(program, path, sym, retprobe=kind == "uretprobe", **options)
    if kind == "usdt":
        from ebpf.attach.usdt import attach_usdt

        parts = rest.rsplit(":", 2)
        if len(parts) != 3:
            raise AttachError(f"bad USDT target {target!r}: expected usdt/PATH:PROVIDER:NAME")
        return attach_usdt(program, parts[0], parts[1], parts[2], **options)
    raise AttachError(f"bad probe target {target!r}: kprobe/, kretprobe/, ksyscall/, uprobe/, uretprobe/ or usdt/")
