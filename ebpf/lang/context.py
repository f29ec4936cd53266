"""The typed context argument of each program kind.

* tracepoint: fields from the event's tracefs ``format`` (offset, size, signedness); the
  pointer fields of syscall events are user pointers (``const char *const *argv`` is a
  pointer to user pointers: ``ctx.argv[i]`` reads one with bpf_probe_read_user, and
  ``L.str(ctx.argv[i])`` its string), other events' are kernel pointers; ``__data_loc``
  strings are kernel pointers into the record;
* raw_tracepoint: ``ctx.args[i]`` (u64);
* tp_btf / fentry / fexit: arguments by name with their BTF types (pointers are BTF-typed, so
  ``ctx.prev.pid`` is a direct load), ``ctx.ret`` for fexit, ``ctx.args[i]`` raw;
* kprobe / uprobe: ``ctx.arg(i)`` from pt_regs (x86_64 and aarch64 layouts), ``ctx.ret`` for
  the return probes, ``ctx.ip``/``ctx.sp``, and arguments by name when the kernel function
  is in BTF;
* perf_event: ``ctx.sample_period``, ``ctx.addr``, ``ctx.ip``;
* xdp: ``struct xdp_md`` (``data``/``data_end`` are packet pointers); sched_cls,
  socket_filter, cgroup_skb: ``struct __sk_buff`` fields.

A context type answers attribute accesses by returning locations relative to the context
register; the compiler does the loads.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ebpf.lang.types import ArrayType, IntType, PtrType, Type, char, i16, i32, i64, u8, u16, u32, u64, void
from ebpf.lang.values import Loc, Static, Val

__all__ = ["CtxType", "context_for", "parse_format", "TpField"]


class CtxError(Exception):
    pass


class CtxType(Type):
    """Base: an opaque context (raw loads only through ``ctx.load(offset, type)``)."""

    name = "ctx"
    size = 8
    btf_typed = False

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        if name == "load":
            return Static(_CtxMethod(self, ctx, "load"))
        raise CtxError(f"the {self.name} context has no field {name!r}{self.known()}")

    def known(self) -> str:
        names = self.field_names()
        return f" (fields: {', '.join(names)})" if names else ""

    def field_names(self) -> List[str]:
        return []

    def method(self, comp: Any, ctx: Val, name: str, args: List[Any], node: Any) -> Any:
        if name == "load" and len(args) == 2:
            off = comp.const_int(args[0])
            t = comp.static_type(args[1])
            return Loc(t, ctx.reg, off, "ctx")
        raise CtxError(f"the {self.name} context has no method {name!r}")


class _CtxMethod:
    """``ctx.arg`` and friends: a bound method the compiler calls with the argument nodes."""

    def __init__(self, ctx_type: CtxType, ctx: Val, name: str) -> None:
        self.ctx_type = ctx_type
        self.ctx = ctx
        self.name = name

    PARAMS = {"arg": ("index", "type (pt_regs contexts only)"), "load": ("offset", "type")}
    REQUIRED = {"arg": 1, "load": 2}

    def dsl_call(self, comp: Any, node: Any) -> Any:
        params = self.PARAMS.get(self.name, ())
        if node.keywords or not self.REQUIRED.get(self.name, 0) <= len(node.args) <= len(params):
            raise comp.error(f"ctx.{self.name}() takes positional arguments {', '.join(params)}; "
                             f"{len(node.args) + len(node.keywords)} given", node)
        args = [comp.expr(a) for a in node.args]
        try:
            return self.ctx_type.method(comp, self.ctx, self.name, args, node)
        except CtxError as e:
            raise comp.error(str(e), node) from None


class _ArgsArray:
    """``ctx.args``: subscripted with a constant index, an 8-byte slot of the context."""

    def __init__(self, ctx: Val, count: Optional[int]) -> None:
        self.ctx = ctx
        self.count = count

    def dsl_subscript(self, comp: Any, index: Any, node: Any) -> Any:
        i = comp.const_int(comp.expr(index))
        if i < 0 or (self.count is not None and i >= self.count):
            raise CtxError(f"argument index {i} out of range (this hook has {self.count} arguments)")
        return Loc(u64, self.ctx.reg, 8 * i, "ctx")


# ---- tracepoints ------------------------------------------------------------------------------


class TpField(NamedTuple):
    name: str
    ctype: str
    offset: int
    size: int
    signed: bool


def parse_format(text: str) -> List[TpField]:
    """The fields of a tracefs ``format`` file (common_* fields included)."""
    out: List[TpField] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        parts = [p.strip() for p in line.split(";") if p.strip()]
        decl = parts[0][len("field:"):].strip()
        attrs: Dict[str, str] = {}
        for p in parts[1:]:
            k, _, v = p.partition(":")
            attrs[k.strip()] = v.strip()
        ctype, _, name = decl.rpartition(" ")
        if "[" in name and not name.endswith("[]"):
            ctype = ctype + " " + name[name.index("["):]
            name = name[: name.index("[")]
        elif name.endswith("[]"):
            name = name[:-2]
            ctype += "[]"
        name = name.lstrip("*")
        if "*" in decl.rpartition(" ")[2]:
            ctype += " *"
        out.append(TpField(name, ctype.strip(), int(attrs.get("offset", 0)), int(attrs.get("size", 0)),
                           attrs.get("signed", "0") == "1"))
    return out


_INT_OF = {(1, False): u8, (2, False): u16, (4, False): u32, (8, False): u64}


def _int(size: int, signed: bool) -> Optional[IntType]:
    from ebpf.lang.kernel import int_type

    try:
        return int_type(size, signed)
    except Exception:
        return None


class TracepointCtx(CtxType):
    def __init__(self, target: str) -> None:
        group, _, event = target.replace(":", "/").partition("/")
        self.group = group
        self.event = event
        self.name = f"tracepoint {group}/{event}"
        self._fields: Optional[Dict[str, TpField]] = None

    @property
    def fields(self) -> Dict[str, TpField]:
        if self._fields is None:
            from ebpf.sys.tracefs import tracepoint_format

            self._fields = {f.name: f for f in parse_format(tracepoint_format(self.group, self.event))}
        return self._fields

    def field_names(self) -> List[str]:
        return [n for n in self.fields if not n.startswith("common_")] + ["common_pid"]

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        f = self.fields.get(name)
        if f is None:
            return super().attr(comp, ctx, name, node)
        if f.ctype.startswith("__data_loc"):
            # u32: length << 16 | offset of the data from the start of the record
            loc = comp.load(Loc(u32, ctx.reg, f.offset, "ctx"))
            return comp.data_loc_pointer(ctx, loc)
        if f.ctype.endswith("*"):
            return Loc(self._pointer(f.ctype), ctx.reg, f.offset, "ctx")
        if f.ctype.endswith("]") and "[" in f.ctype:
            count_text = f.ctype[f.ctype.rindex("[") + 1 : -1]
            count = int(count_text) if count_text.isdigit() else 0
            if count:
                elem_size = f.size // count
                elem = char if "char" in f.ctype and elem_size == 1 else (_int(elem_size, f.signed) or u8)
                return Loc(ArrayType(elem, count), ctx.reg, f.offset, "ctx")
        t = _int(f.size, f.signed)
        if t is None:
            return Loc(ArrayType(u8, f.size), ctx.reg, f.offset, "ctx")
        return Loc(t, ctx.reg, f.offset, "ctx")


    def _pointer(self, ctype: str) -> PtrType:
        """A pointer field's type: ``char *``, ``const char *const *`` (argv), ``void *``...

        Every level points into the same space: a syscall's arguments are user memory (so
        ``ctx.argv[i]`` is read with bpf_probe_read_user, then the string it points to), other
        events' pointers are kernel memory."""
        space = "user" if self.group == "syscalls" else "kernel"
        base = ctype.split("*", 1)[0].replace("const", "").replace("volatile", "").split()
        t: Type = char if base in (["char"], ["signed", "char"]) else _C_INTS.get(" ".join(base), void)
        for _ in range(ctype.count("*")):
            t = PtrType(t, space)
        assert isinstance(t, PtrType)
        return t


#: C integer names in tracepoint formats (Linux's LP64 ABIs), for ``int *``-style fields
_C_INTS: Dict[str, Type] = {
    "unsigned char": u8, "u8": u8, "short": i16, "unsigned short": u16, "u16": u16, "int": i32, "s32": i32,
    "unsigned int": u32, "u32": u32, "long": i64, "unsigned long": u64, "long long": i64,
    "unsigned long long": u64, "u64": u64, "size_t": u64, "pid_t": i32, "uid_t": u32, "gid_t": u32,
}


# ---- raw tracepoints and BTF-typed arguments ---------------------------------------------------


class RawTpCtx(CtxType):
    name = "raw_tracepoint"

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        if name == "args":
            return Static(_ArgsArray(ctx, None))
        if name == "arg":
            return Static(_CtxMethod(self, ctx, "arg"))
        return super().attr(comp, ctx, name, node)

    def method(self, comp: Any, ctx: Val, name: str, args: List[Any], node: Any) -> Any:
        if name == "arg":
            return Loc(u64, ctx.reg, 8 * comp.const_int(args[0]), "ctx")
        return super().method(comp, ctx, name, args, node)


class BtfArgsCtx(CtxType):
    """tp_btf, fentry, fexit: an array of u64 slots typed by the BTF prototype."""

    btf_typed = True

    def __init__(self, kind: str, target: str) -> None:
        self.kind = kind
        self.target = target
        self.name = f"{kind} {target}"
        self._params: Optional[List[Tuple[str, Type]]] = None
        self._ret: Optional[Type] = None
        self.names_from = ""  # tp_btf: the BTF record the argument names came from
        self.nameless = False  # the kernel's BTF names none of the arguments

    def _load(self) -> None:
        from ebpf.lang import kernel as K

        params: List[Tuple[str, Type]] = []
        if self.kind == "tp_btf":
            from ebpf.btf import kernel_btf

            raw, self.names_from = tp_btf_params(kernel_btf(), self.target)
        else:
            fn = K.func_proto(self.target)
            if fn is None:
                raise CtxError(f"kernel function {self.target!r} is not in the kernel's BTF")
            proto = fn.type
            raw = list(proto.params)
            if self.kind == "fexit":
                self._ret = K.dsl_type(proto.type, "btf")
        for i, p in enumerate(raw):
            params.append((p.name or f"arg{i}", K.dsl_type(p.type, "btf")))
        self.nameless = bool(raw) and not any(p.name for p in raw)
        self._params = params

    @property
    def params(self) -> List[Tuple[str, Type]]:
        if self._params is None:
            self._load()
        assert self._params is not None
        return self._params

    def field_names(self) -> List[str]:
        return [n for n, _ in self.params] + (["ret"] if self.kind == "fexit" else [])

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        for i, (pname, ptype) in enumerate(self.params):
            if pname == name:
                return _slot(ctx, i, ptype)
        if name == "ret" and self.kind == "fexit":
            assert self._ret is not None
            return _slot(ctx, len(self.params), self._ret)
        if name == "args":
            return Static(_ArgsArray(ctx, len(self.params) + (1 if self.kind == "fexit" else 0)))
        if name == "arg":
            return Static(_CtxMethod(self, ctx, "arg"))
        if self.nameless and name != "load":
            n = len(self.params)
            raise CtxError(f"the {self.name} context has no field {name!r}: this kernel's BTF does not name the "
                           f"arguments of {self.names_from} (Linux 5.10 and older without __traceiter_ records "
                           f"name none): use them by position, ctx.arg(0)..ctx.arg({n - 1})")
        return super().attr(comp, ctx, name, node)

    def method(self, comp: Any, ctx: Val, name: str, args: List[Any], node: Any) -> Any:
        if name == "arg":
            i = comp.const_int(args[0])
            if not 0 <= i < len(self.params):
                raise CtxError(f"{self.name} has {len(self.params)} arguments, not {i + 1}")
            return _slot(ctx, i, self.params[i][1])
        return super().method(comp, ctx, name, args, node)


def tp_btf_params(btf: Any, event: str) -> Tuple[List[Any], str]:
    """The arguments of tracepoint ``event`` as BTF parameters (``.name``, ``.type``), after the
    tracepoint's ``void *__data``, and the BTF record they come from.

    The names are where the kernel keeps them: the ``__bpf_trace_<event>`` FUNC (most kernels),
    else the ``__traceiter_<event>`` FUNC (5.10-5.18 builds whose pahole left the former out,
    e.g. Debian's 5.10), else the ``btf_trace_<event>`` typedef the kernel attaches by, whose
    prototype has the types but no names (then only positions are known)."""
    from ebpf.btf import BTFError, Kind

    for prefix in ("__bpf_trace_", "__traceiter_"):
        try:
            fn: Any = btf.type_by_name(prefix + event, Kind.FUNC)
        except BTFError:
            continue
        return list(btf.resolve(fn.type).params)[1:], prefix + event
    try:
        td: Any = btf.type_by_name(f"btf_trace_{event}", Kind.TYPEDEF)
    except BTFError:
        raise CtxError(f"no tp_btf tracepoint {event!r} in the kernel's BTF (no btf_trace_{event})") from None
    return list(btf.resolve(btf.resolve(td.type).type).params)[1:], f"btf_trace_{event}"


def _slot(ctx: Val, index: int, t: Type) -> Loc:
    """Argument ``index`` of a BTF-typed context: an 8-byte slot (narrow types use its low bits)."""
    if isinstance(t, IntType) and t.size < 8:
        return Loc(_WideSlot(t), ctx.reg, 8 * index, "ctx")
    if isinstance(t, PtrType) or isinstance(t, IntType):
        return Loc(t, ctx.reg, 8 * index, "ctx")
    raise CtxError(f"argument {index} has type {t.name}, which cannot be read directly")


class _WideSlot(IntType):
    """A narrow integer argument stored in a u64 slot: loaded 8 bytes wide, typed narrow."""

    def __init__(self, t: IntType) -> None:
        super().__init__(t.name, t.size, t.signed)
        self.narrow = t


# ---- pt_regs ----------------------------------------------------------------------------------

# Offsets in struct pt_regs (x86_64) / user_pt_regs (aarch64): uapi layouts that do not change.
_REGS = {
    "x86_64": {"args": (112, 104, 96, 88, 72, 64), "ret": 80, "ip": 128, "sp": 152, "fp": 32},
    "aarch64": {"args": (0, 8, 16, 24, 32, 40, 48, 56), "ret": 0, "ip": 256, "sp": 248, "fp": 232},
}


def _arch() -> str:
    machine = os.uname().machine
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)


class PtRegsCtx(CtxType):
    def __init__(self, kind: str, target: str, base: int = 0) -> None:
        self.kind = kind
        self.target = target
        self.base = base
        self.name = f"{kind} {target}"
        arch = _arch()
        if arch not in _REGS:
            raise CtxError(f"pt_regs layout of {arch} is not known (x86_64 and aarch64 are)")
        self.regs = _REGS[arch]
        self._named: Optional[List[Tuple[str, Type]]] = None

    @property
    def named(self) -> List[Tuple[str, Type]]:
        if self._named is None:
            self._named = []
            if self.kind in ("kprobe", "kretprobe"):
                from ebpf.lang import kernel as K

                fn = K.func_proto(self.target.split("+")[0])
                if fn is not None:
                    for i, p in enumerate(fn.type.params):
                        try:
                            self._named.append((p.name or f"arg{i}", K.dsl_type(p.type, "kernel")))
                        except K.KernelTypeError:
                            self._named.append((p.name or f"arg{i}", u64))
        return self._named

    def field_names(self) -> List[str]:
        return [n for n, _ in self.named] + ["ip", "sp"] + (["ret"] if "ret" in self.kind else [])

    def _arg(self, ctx: Val, i: int, t: Type) -> Loc:
        offs = self.regs["args"]
        if not 0 <= i < len(offs):  # type: ignore[arg-type]
            raise CtxError(f"only the first {len(offs)} arguments are in registers")  # type: ignore[arg-type]
        if isinstance(t, IntType) and t.size < 8:
            t = _WideSlot(t)
        return Loc(t, ctx.reg, self.base + offs[i], "ctx")  # type: ignore[index]

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        if name in ("ip", "sp", "fp"):
            return Loc(u64, ctx.reg, self.base + int(self.regs[name]), "ctx")  # type: ignore[call-overload]
        if name == "ret":
            return Loc(u64, ctx.reg, self.base + int(self.regs["ret"]), "ctx")  # type: ignore[call-overload]
        if name == "arg":
            return Static(_CtxMethod(self, ctx, "arg"))
        for i, (pname, ptype) in enumerate(self.named):
            if pname == name:
                return self._arg(ctx, i, ptype)
        return super().attr(comp, ctx, name, node)

    def method(self, comp: Any, ctx: Val, name: str, args: List[Any], node: Any) -> Any:
        if name == "arg":
            t: Type = u64
            if len(args) > 1:
                t = comp.static_type(args[1])
            return self._arg(ctx, comp.const_int(args[0]), t)
        return super().method(comp, ctx, name, args, node)


class PerfEventCtx(PtRegsCtx):
    def __init__(self) -> None:
        super().__init__("perf_event", "")
        self.name = "perf_event"

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        if name == "sample_period":
            return Loc(u64, ctx.reg, 168 if _arch() == "x86_64" else 272, "ctx")
        if name == "addr":
            return Loc(u64, ctx.reg, 176 if _arch() == "x86_64" else 280, "ctx")
        return super().attr(comp, ctx, name, node)


# ---- networking ------------------------------------------------------------------------------

_XDP_MD = {"data": 0, "data_end": 4, "data_meta": 8, "ingress_ifindex": 12, "rx_queue_index": 16,
           "egress_ifindex": 20}
_SK_BUFF = {
    "len": 0, "pkt_type": 4, "mark": 8, "queue_mapping": 12, "protocol": 16, "vlan_present": 20,
    "vlan_tci": 24, "vlan_proto": 28, "priority": 32, "ingress_ifindex": 36, "ifindex": 40, "tc_index": 44,
    "hash": 68, "tc_classid": 72, "data": 76, "data_end": 80, "napi_id": 84, "family": 88,
    "remote_ip4": 92, "local_ip4": 96, "remote_port": 132, "local_port": 136, "data_meta": 140,
}
_PACKET_FIELDS = ("data", "data_end", "data_meta")


class NetCtx(CtxType):
    """``struct xdp_md`` or ``struct __sk_buff`` (uapi layouts): u32 fields, packet pointers."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = "xdp_md" if kind == "xdp" else "__sk_buff"
        self.layout = _XDP_MD if kind == "xdp" else _SK_BUFF

    def field_names(self) -> List[str]:
        return list(self.layout) + ([] if self.kind == "xdp" else ["cb", "tstamp"])

    def attr(self, comp: Any, ctx: Val, name: str, node: Any) -> Any:
        off = self.layout.get(name)
        if off is not None:
            if name in _PACKET_FIELDS:
                return Loc(_PacketWord(), ctx.reg, off, "ctx")
            return Loc(u32, ctx.reg, off, "ctx")
        if self.kind != "xdp":
            if name == "cb":
                return Loc(ArrayType(u32, 5), ctx.reg, 48, "ctx")
            if name == "tstamp":
                return Loc(u64, ctx.reg, 152, "ctx")
        return super().attr(comp, ctx, name, node)


class _PacketWord(PtrType):
    """``data``/``data_end``: a 4-byte context field the verifier turns into a packet pointer."""

    def __init__(self) -> None:
        super().__init__(u8, "packet")
        self.load_size = 4


def context_for(kind: str, target: str, explicit: Any = None) -> CtxType:
    """The context type of a program kind (``explicit`` overrides: any CtxType)."""
    if explicit is not None:
        return explicit
    if kind == "tracepoint":
        return TracepointCtx(target)
    if kind == "raw_tracepoint":
        return RawTpCtx()
    if kind in ("tp_btf", "fentry", "fexit"):
        return BtfArgsCtx(kind, target)
    if kind in ("kprobe", "kretprobe", "uprobe", "uretprobe"):
        return PtRegsCtx(kind, target)
    if kind == "perf_event":
        return PerfEventCtx()
    if kind in ("xdp",):
        return NetCtx("xdp")
    if kind in ("tc", "socket_filter", "cgroup_skb", "sched_cls", "sched_act", "lwt_in", "lwt_out", "sk_skb"):
        return NetCtx("skb")
    return CtxType()


_ = i32  # re-exported for ctx.load(off, i32) convenience in docs
