"""Calls: ``L.*`` helpers and queries, map and ring buffer methods, casts, constructors,
inline functions and sub-programs.

Each ``L.name`` marker in :mod:`ebpf.lang.builtins` maps to a function here that checks its
arguments and emits the call. Map operations follow the conventions that make the verifier
happy without ceremony in the source: keys and values are spilled to the stack when they are
not already in memory, lookups (``m.get(k)``) return optional pointers, ``m.get(k, default)``
and ``m[k]`` (``default`` 0) read the value or the default (:func:`map_get`), ``m[k] += n``
(and ``m.increment(k, n)``) is an atomic add that inserts the key when it is missing. String
tests (``L.startswith``) are compiled by :mod:`ebpf.lang.strings`; ``L.str(p)`` reads the
string ``p`` points to into a ``char[64]`` (or ``size``) stack buffer.
"""

from __future__ import annotations

import ast
from typing import Any, Callable, Dict, List, Optional, Tuple

from ebpf.asm import opcodes as o
from ebpf.lang import helpers as H
from ebpf.lang import strings
from ebpf.lang.builtins import InlineFunction, Subprogram
from ebpf.lang.helper_choice import FALLBACKS, has, pick
from ebpf.lang.ir import FP, Function
from ebpf.lang.types import (
    ArrayType,
    IntType,
    KernelType,
    PtrType,
    Struct,
    StructType,
    Type,
    VoidType,
    boolean,
    char,
    common_type,
    i64,
    ktype,
    promote,
    type_of,
    u16,
    u32,
    u64,
    void,
)
from ebpf.lang.values import CONST, REG, Item, Loc, Static, Val, local_type

Handler = Callable[[Any, ast.Call], Item]
_HANDLERS: Dict[str, Handler] = {}


def _handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def _args(comp: Any, node: ast.Call, names: Tuple[str, ...], required: int) -> List[Optional[ast.expr]]:
    """Positional and keyword argument nodes in ``names`` order (None where absent)."""
    out: List[Optional[ast.expr]] = list(node.args) + [None] * (len(names) - len(node.args))
    if len(node.args) > len(names):
        raise comp.error(f"too many arguments: expected at most {len(names)}", node)
    for kw in node.keywords:
        if kw.arg not in names:
            raise comp.error(f"unexpected keyword argument {kw.arg!r}", kw)
        i = names.index(kw.arg)
        if out[i] is not None:
            raise comp.error(f"argument {kw.arg!r} given twice", kw)
        out[i] = kw.value
    for i in range(required):
        if out[i] is None:
            raise comp.error(f"missing argument {names[i]!r}", node)
    return out


def call(comp: Any, node: ast.Call) -> Item:
    func = comp.expr(node.func)
    if not isinstance(func, Static):
        raise comp.error("only helpers, inline functions, sub-programs and types can be called", node)
    obj = func.obj
    name = getattr(obj, "_ebpf_intrinsic", None)
    if name is not None:
        handler = _HANDLERS.get(name)
        if handler is None:
            raise comp.error(f"L.{name}() is not usable here", node)
        return handler(comp, node)
    if isinstance(obj, InlineFunction):
        return inline_call(comp, obj, node)
    if isinstance(obj, Subprogram):
        return sub_call(comp, obj, node)
    if hasattr(obj, "dsl_call"):
        return obj.dsl_call(comp, node)
    if isinstance(obj, IntType):
        a = _args(comp, node, ("value",), 0)
        if a[0] is None:
            return Val.const(obj, 0)
        return comp.convert(comp.rvalue(a[0]), obj, node)
    if isinstance(obj, ArrayType) or isinstance(obj, StructType) or (isinstance(obj, type) and issubclass(obj, Struct)):
        return construct(comp, type_of(obj), node)
    if obj is int:
        return comp.convert(comp.rvalue(_args(comp, node, ("value",), 1)[0]), i64, node)
    if obj is bool:
        return comp.convert(comp.rvalue(_args(comp, node, ("value",), 1)[0]), boolean, node)
    if obj is len:
        item = comp.expr(_args(comp, node, ("value",), 1)[0])
        if isinstance(item, Loc) and isinstance(item.type, ArrayType):
            return Val.const(u32, item.type.count)
        if isinstance(item, Static) and hasattr(item.obj, "__len__"):
            return comp.static_value(len(item.obj), node)
        raise comp.error("len() takes an array", node)
    if obj is min or obj is max:
        return min_max(comp, node, obj is min)
    if obj is abs:
        return absolute(comp, node)
    if obj is range:
        raise comp.error("range() is only valid as the iterable of a for loop", node)
    if obj is print:
        raise comp.error("print() is not available in the kernel: use L.printk(\"fmt %d\", value)", node)
    if getattr(obj, "_ebpf_static", False) or obj is ktype:
        args = [comp.expr(a) for a in node.args]
        if all(isinstance(a, Static) for a in args):
            return Static(obj(*(a.obj for a in args)))
    raise comp.error(f"cannot call {getattr(obj, '__name__', repr(obj))} in an eBPF program", node)


def construct(comp: Any, t: Type, node: ast.Call) -> Item:
    """``Event(pid=1)`` / ``u8[16]()``: a zeroed stack object, fields set from keywords."""
    if node.args:
        raise comp.error(f"{t.name}(...) takes keyword arguments only (field=value)", node)
    loc = comp.stack_object(t, zero=False)
    covered = bytearray(t.size)
    if isinstance(t, StructType):
        for kw in node.keywords:
            f = t.field(kw.arg or "")
            if f is not None:
                covered[f.offset:f.offset + f.type.size] = b"\1" * f.type.size
    for i in range(0, (t.size + 7) // 8 * 8, 8):
        if not all(covered[i:i + 8]) or i + 8 > t.size:
            comp.emit(o.ST | o.MEM | o.DW, loc.base, 0, loc.off + i, 0)
    for kw in node.keywords:
        if kw.arg is None:
            raise comp.error("**kwargs are not supported", kw)
        _set_field(comp, loc, kw.arg, comp.expr(kw.value), kw)
    return loc


def _set_field(comp: Any, loc: Loc, name: str, item: Item, node: Any) -> None:
    f = comp.field(loc, name, node)
    if isinstance(f.type, (StructType, ArrayType)):
        if isinstance(item, Loc):
            comp.copy(f, item, node)
            return
        if isinstance(item, Static) and isinstance(item.obj, (str, bytes)):
            comp.store_bytes(f, item.obj.encode() if isinstance(item.obj, str) else item.obj)
            return
    comp.store(f, comp.value(item, node), node)


def min_max(comp: Any, node: ast.Call, is_min: bool) -> Val:
    if len(node.args) < 2 or node.keywords:
        raise comp.error("min()/max() take two or more integer arguments", node)
    vals = [comp.rvalue(a) for a in node.args]
    acc = vals[0]
    for b in vals[1:]:
        if not isinstance(acc.type, IntType) or not isinstance(b.type, IntType):
            raise comp.error("min()/max() take integers", node)
        t = common_type(acc.type, b.type)
        a64 = comp.to64(comp.convert(acc, t, node))
        b64 = comp.to64(comp.convert(b, t, node))
        r = comp.fresh(a64)
        skip = comp.new_label("mm")
        comp.compare_jump(ast.LtE() if is_min else ast.GtE(), Val.in_reg(t, r.reg), b64, skip, True, node)
        if b64.kind == CONST:
            comp.set_const(r.reg, b64.imm)
        else:
            comp.mov_reg(r.reg, b64.reg)
        comp.label(skip)
        acc = Val.in_reg(t, r.reg, False)
    return acc


def absolute(comp: Any, node: ast.Call) -> Val:
    v = comp.rvalue(_args(comp, node, ("value",), 1)[0])
    if not isinstance(v.type, IntType):
        raise comp.error("abs() takes an integer", node)
    t = promote(v.type)
    v = comp.to64(comp.convert(v, t, node))
    if not t.signed:
        return v
    r = comp.fresh(v)  # branch-free: m = x >> 63 (arithmetic); (x ^ m) - m
    m = comp.vreg()
    comp.mov_reg(m, r.reg)
    comp.emit(o.ALU64 | o.ARSH, m, 0, 0, 63)
    comp.emit(o.ALU64 | o.XOR | o.X, r.reg, m)
    comp.emit(o.ALU64 | o.SUB | o.X, r.reg, m)
    return Val.in_reg(t, r.reg, False)


# ================================================================= helper plumbing


def _ptr_arg(comp: Any, item: Item, node: Any) -> Tuple[Val, int]:
    """(address, size in bytes) of a memory argument: a struct/array or a non-null pointer."""
    if isinstance(item, Loc):
        if isinstance(item.type, (StructType, ArrayType, KernelType)):
            return comp.addr_of(item), item.type.size
        raise comp.error("expected a struct or array (memory), not a scalar", node)
    v = comp.value(item, node)
    if isinstance(v.type, PtrType):
        comp.need_nonnull(v, node)
        size = v.type.target.size if not isinstance(v.type.target, VoidType) else 0
        return v, size
    raise comp.error(f"expected memory (a struct, an array or a pointer), not {v.type.name}", node)


def _src_arg(comp: Any, item: Item, node: Any) -> Val:
    """An address to read from: a pointer, an integer address, or a kernel struct/array."""
    if isinstance(item, Loc) and isinstance(item.type, (StructType, ArrayType, KernelType)):
        return comp.addr_of(item)
    v = comp.value(item, node)
    if isinstance(v.type, PtrType):
        if v.type.nullable and v.kind != CONST:
            raise comp.null_error(node)
        return v
    if isinstance(v.type, IntType):
        return comp.to64(v)
    raise comp.error(f"expected an address, not {v.type.name}", node)


def _helper(comp: Any, name: str, args: List[Val], ret: Optional[Type] = None) -> Val:
    if name in FALLBACKS:  # bpf_probe_read_kernel & co.: bpf_probe_read where the kernel lacks them
        name = pick(name, comp.unit.decl.prog_type)
    sig = H.HELPERS[name]
    return comp.call_helper(sig.id, args, ret if ret is not None else sig.ret)


def _ctx(comp: Any, node: Any, what: str) -> Val:
    if comp.ctx is None:
        raise comp.error(f"{what} needs the program's context, which a sub-program does not have", node)
    return comp.ctx


def _simple(name: str, helper: str, ret: Type) -> None:
    def handle(comp: Any, node: ast.Call) -> Item:
        _args(comp, node, (), 0)
        return _helper(comp, helper, [], ret)

    _HANDLERS[name] = handle


for _n, _h, _t in (("get_current_pid_tgid", "get_current_pid_tgid", u64),
                   ("get_current_uid_gid", "get_current_uid_gid", u64),
                   ("ktime_get_ns", "ktime_get_ns", u64), ("ktime_get_boot_ns", "ktime_get_boot_ns", u64),
                   ("get_smp_processor_id", "get_smp_processor_id", u32),
                   ("get_prandom_u32", "get_prandom_u32", u32),
                   ("get_current_cgroup_id", "get_current_cgroup_id", u64), ("jiffies64", "jiffies64", u64)):
    _simple(_n, _h, _t)


def _half(name: str, helper: str, high: bool) -> None:
    def handle(comp: Any, node: ast.Call) -> Item:
        _args(comp, node, (), 0)
        v = _helper(comp, helper, [], u64)
        if high:
            r = comp.fresh(v)
            comp.emit(o.ALU64 | o.RSH, r.reg, 0, 0, 32)
            return Val.in_reg(u32, r.reg, True)
        return Val.in_reg(u32, v.reg, False)

    _HANDLERS[name] = handle


_half("pid", "get_current_pid_tgid", True)
_half("tid", "get_current_pid_tgid", False)
_half("uid", "get_current_uid_gid", False)
_half("gid", "get_current_uid_gid", True)


@_handler("get_current_comm")
def _comm(comp: Any, node: ast.Call) -> Item:
    (buf,) = _args(comp, node, ("buf",), 1)
    assert buf is not None
    addr, size = _ptr_arg(comp, comp.expr(buf), buf)
    return _helper(comp, "get_current_comm", [addr, Val.const(u32, size)])


def _task(comp: Any, node: ast.Call) -> Item:
    _args(comp, node, (), 0)
    task = ktype("task_struct")
    if comp.unit.btf_ctx and has("get_current_task_btf", comp.unit.decl.prog_type):  # Linux 5.11+
        v = _helper(comp, "get_current_task_btf", [], u64)
        return Val.in_reg(PtrType(task, "btf"), v.reg)
    v = _helper(comp, "get_current_task", [], u64)
    return Val.in_reg(PtrType(task, "kernel"), v.reg)


_HANDLERS["current_task"] = _task
_HANDLERS["get_current_task"] = _task


_BPF_MEMORY = ("map", "stack", "ringbuf", "global", "rodata")


def _reader(name: str) -> None:
    helper = {"probe_read": "probe_read_kernel", "probe_read_str": "probe_read_kernel_str"}.get(name, name)

    def handle(comp: Any, node: ast.Call) -> Item:
        dst, src, size = _args(comp, node, ("dst", "src", "size"), 2)
        assert dst is not None and src is not None
        addr, dsize = _ptr_arg(comp, comp.expr(dst), dst)
        n: Val
        if size is not None:
            n = comp.to64(comp.rvalue(size))
            if n.kind == CONST and dsize and n.imm > dsize:
                raise comp.error(f"size {n.imm} is larger than the destination ({dsize} bytes)", size)
        else:
            if not dsize:
                raise comp.error("the destination's size is unknown: pass size=", dst)
            n = Val.const(u32, dsize)
        source = _src_arg(comp, comp.expr(src), src)
        if "user" in helper and isinstance(source.type, PtrType) and source.type.space in _BPF_MEMORY:
            text = ast.unparse(src)
            raise comp.error(f"{text!r} points to eBPF memory ({source.type.space}), not user memory: "
                             f"pass the user address it holds (e.g. {text}[0] or {text}.field)", src)
        return _helper(comp, helper, [addr, n, source])

    _HANDLERS[name] = handle


for _n in ("probe_read", "probe_read_kernel", "probe_read_user", "probe_read_str", "probe_read_kernel_str",
           "probe_read_user_str"):
    _reader(_n)


@_handler("str")
def _str(comp: Any, node: ast.Call) -> Item:
    src, size = _args(comp, node, ("src", "size"), 1)
    assert src is not None
    n = comp.const_int(comp.expr(size), size) if size is not None else 64
    if n < 1:
        raise comp.error(f"L.str(): size must be at least 1, not {n}", size)
    item = comp.expr(src)
    if isinstance(item, Loc) and strings.is_char_array(item.type) and item.space not in ("kernel", "user"):
        return item  # already a string in eBPF memory
    source = _src_arg(comp, item, src)
    user = isinstance(source.type, PtrType) and source.type.space == "user"
    buf = comp.stack_object(ArrayType(char, n), zero=False)  # the helper writes every byte it is given
    helper = "probe_read_user_str" if user else "probe_read_kernel_str"
    _helper(comp, helper, [comp.addr_of(buf), Val.const(u32, n), source])
    return buf


@_handler("startswith")
def _startswith(comp: Any, node: ast.Call) -> Item:
    text, prefix = _args(comp, node, ("text", "prefix"), 2)
    assert text is not None and prefix is not None
    return strings.startswith(comp, comp.expr(text), comp.expr(prefix), node)


@_handler("printk")
def _printk(comp: Any, node: ast.Call) -> Item:
    if not node.args or node.keywords:
        raise comp.error("L.printk(fmt, *args): a format string and at most three integers", node)
    fmt = comp.expr(node.args[0])
    if not (isinstance(fmt, Static) and isinstance(fmt.obj, str)):
        raise comp.error("the printk format must be a string literal", node.args[0])
    if len(node.args) > 4:
        raise comp.error("bpf_trace_printk takes at most three arguments after the format", node)
    args = [comp.arg_value(comp.expr(a), a) for a in node.args[1:]]
    data = fmt.obj.encode() + b"\0"
    loc = comp.stack_object(ArrayType(char, len(data)), zero=False, temp=True)
    padded = data.ljust((len(data) + 7) // 8 * 8, b"\0")
    for i in range(0, len(padded), 4):
        comp.emit(o.ST | o.MEM | o.W, FP, 0, loc.off + i, int.from_bytes(padded[i:i + 4], "little", signed=True))
    return _helper(comp, "trace_printk", [comp.addr_of(loc), Val.const(u32, len(data))] + args)


@_handler("send_signal")
def _signal(comp: Any, node: ast.Call) -> Item:
    (sig,) = _args(comp, node, ("sig",), 1)
    assert sig is not None
    return _helper(comp, "send_signal", [comp.to64(comp.convert(comp.rvalue(sig), u32, sig))])


@_handler("get_func_ip")
def _func_ip(comp: Any, node: ast.Call) -> Item:
    _args(comp, node, (), 0)
    return _helper(comp, "get_func_ip", [_ctx(comp, node, "get_func_ip()")])


@_handler("loop")
def _loop(comp: Any, node: ast.Call) -> Item:
    count, cb, ctx = _args(comp, node, ("count", "callback", "ctx"), 2)
    assert count is not None and cb is not None
    fn = comp.expr(cb)
    if not (isinstance(fn, Static) and isinstance(fn.obj, Subprogram)):
        raise comp.error("L.loop's callback must be an @L.subprogram function (index, ctx) -> int", cb)
    info = subprogram_info(comp, fn.obj, cb)
    n = comp.to64(comp.convert(comp.rvalue(count), u32, count))
    r = comp.vreg()
    comp.emit(o.LD_IMM64, r, o.PSEUDO_FUNC, 0, 0, target=info.label)
    data: Val = Val.const(u64, 0)
    if ctx is not None:
        item = comp.expr(ctx)
        data = comp.addr_of(item) if isinstance(item, Loc) else comp.arg_value(item, ctx)
    return _helper(comp, "loop", [n, Val.in_reg(PtrType(void, "func"), r), data, Val.const(u64, 0)])


@_handler("log2")
def _log2(comp: Any, node: ast.Call) -> Item:
    return _log2_of(comp, node, 32)


@_handler("log2l")
def _log2l(comp: Any, node: ast.Call) -> Item:
    return _log2_of(comp, node, 64)


def _log2_of(comp: Any, node: ast.Call, bits: int) -> Val:
    """floor(log2(v)), 0 for 0, without branches: ``(c - x) >> 63`` is ``x > c`` for x < 2**63,
    so each halving step is arithmetic. Branch-free code keeps the verifier from exploring
    (and, when the result indexes memory, from multiplying) one path per outcome."""
    (arg,) = _args(comp, node, ("value",), 1)
    assert arg is not None
    v = comp.rvalue(arg)
    if not isinstance(v.type, IntType):
        raise comp.error("log2 takes an integer", arg)
    v = comp.to64(comp.convert(v, u32 if bits == 32 else u64, arg))
    if v.kind == CONST:
        return Val.const(u32, max(0, v.imm.bit_length() - 1))
    x = comp.fresh(v)
    res = comp.vreg()
    t = comp.vreg()
    first = True
    if bits == 64:  # r = 32 if v >> 32 else 0; x >>= r
        comp.mov_reg(res, x.reg)
        comp.emit(o.ALU64 | o.RSH, res, 0, 0, 32)
        comp.emit(o.ALU64 | o.NEG, res)
        comp.emit(o.ALU64 | o.RSH, res, 0, 0, 63)
        comp.emit(o.ALU64 | o.LSH, res, 0, 0, 5)
        comp.emit(o.ALU64 | o.RSH | o.X, x.reg, res)
        first = False
    for shift, bound in ((4, 0xFFFF), (3, 0xFF), (2, 0xF), (1, 0x3)):
        dst = res if first else t
        comp.emit(o.ALU64 | o.MOV, dst, 0, 0, bound)
        comp.emit(o.ALU64 | o.SUB | o.X, dst, x.reg)
        comp.emit(o.ALU64 | o.RSH, dst, 0, 0, 63)
        comp.emit(o.ALU64 | o.LSH, dst, 0, 0, shift)
        comp.emit(o.ALU64 | o.RSH | o.X, x.reg, dst)
        if not first:
            comp.emit(o.ALU64 | o.OR | o.X, res, t)
        first = False
    comp.emit(o.ALU64 | o.RSH, x.reg, 0, 0, 1)
    comp.emit(o.ALU64 | o.OR | o.X, res, x.reg)
    return Val.in_reg(u32, res, True)


@_handler("sizeof")
def _sizeof(comp: Any, node: ast.Call) -> Item:
    (arg,) = _args(comp, node, ("type",), 1)
    assert arg is not None
    start = len(comp.fn.ops)
    item = comp.expr(arg)
    del comp.fn.ops[start:]
    if isinstance(item, Static):
        return Val.const(u32, comp.static_type(item, arg).size)
    return Val.const(u32, item.type.size)


def _byteswap(bits: int) -> Handler:
    def handle(comp: Any, node: ast.Call) -> Item:
        (arg,) = _args(comp, node, ("value",), 1)
        assert arg is not None
        t = u16 if bits == 16 else u32
        v = comp.convert(comp.rvalue(arg), t, arg)
        if v.kind == CONST:
            return Val.const(t, int.from_bytes(v.imm.to_bytes(bits // 8, "little"), "big"))
        r = comp.fresh(v)
        comp.emit(o.ALU | o.END | o.TO_BE, r.reg, 0, 0, bits)
        return Val.in_reg(t, r.reg, True)

    return handle


_HANDLERS["ntohs"] = _HANDLERS["htons"] = _byteswap(16)
_HANDLERS["ntohl"] = _HANDLERS["htonl"] = _byteswap(32)


@_handler("bounded")
def _bounded(comp: Any, node: ast.Call) -> Item:
    raise comp.error("L.bounded() is only valid as the condition of a while loop", node)


# ================================================================= CO-RE queries


def _relo_const(comp: Any, relo: Any, value: int) -> Val:
    r = comp.vreg()
    if -(1 << 31) <= value < (1 << 31):
        comp.emit(o.ALU64 | o.MOV, r, 0, 0, value, meta={"core": relo})
    else:
        comp.emit(o.LD_IMM64, r, 0, 0, value, meta={"core": relo})
    return Val.in_reg(u64 if value >= 0 else i64, r, value >= 0)


def _kname(comp: Any, item: Item, node: Any) -> str:
    if isinstance(item, Static):
        if isinstance(item.obj, str):
            return ktype(item.obj).c_name if not item.obj.startswith("enum ") else item.obj
        if isinstance(item.obj, KernelType):
            return item.obj.c_name
    raise comp.error("expected a kernel type name such as \"struct task_struct\"", node)


@_handler("field_exists")
def _field_exists(comp: Any, node: ast.Call) -> Item:
    from ebpf.lang import kernel as K

    first, second = _args(comp, node, ("field", "name"), 1)
    assert first is not None
    if second is not None:
        root = _kname(comp, comp.expr(first), first)
        item2 = comp.expr(second)
        if not (isinstance(item2, Static) and isinstance(item2.obj, str)):
            raise comp.error("the field name must be a string", second)
        fname = item2.obj
        path: Tuple[Any, ...] = tuple(fname.split("."))
        kt = K.lookup_kernel_type(root)
        exists = 0
        if kt is not None:
            try:
                walk = Loc(kt, 0, 0, "btf")
                for part in path:
                    walk = comp.field(walk, str(part), node)
                exists = 1
            except Exception:
                exists = 0
        return _relo_const(comp, K.field_relo(kt.c_name if kt else root, path, exists, "FIELD_EXISTS"), exists)
    if not isinstance(first, ast.Attribute):
        raise comp.error("L.field_exists(obj.field) or L.field_exists(\"struct x\", \"field\")", node)
    start = len(comp.fn.ops)
    base = comp.expr(first.value)
    loc: Optional[Loc] = None
    if isinstance(base, Val) and isinstance(base.type, PtrType) and isinstance(base.type.target, KernelType):
        loc = Loc(base.type.target, 0, 0, "btf")
        root, prefix = base.type.target.c_name, ()
    elif isinstance(base, Loc) and isinstance(base.type, KernelType) and base.relo is not None:
        root, prefix = base.relo.type_name, tuple(base.relo.access)
        loc = base
    del comp.fn.ops[start:]
    if loc is None:
        raise comp.error("L.field_exists() takes a field of a kernel struct", first)
    try:
        comp.field(loc, first.attr, first)
        exists = 1
    except Exception:
        exists = 0
    return _relo_const(comp, K.field_relo(root, prefix + (first.attr,), exists, "FIELD_EXISTS"), exists)


@_handler("member")
def _member(comp: Any, node: ast.Call) -> Item:
    """``L.member(ptr, "name", type)``: a member found by name on the target kernel only (CO-RE),
    for fields the kernel compiled against may lack (``task_struct.state`` before 5.14 vs
    ``__state`` after): guarded by ``L.field_exists("struct x", "name")``, the branch of the
    missing one is dead code the loader poisons, so one program runs on both."""
    from ebpf.lang import kernel as K

    obj, name, typ = _args(comp, node, ("obj", "name", "type"), 3)
    assert obj is not None and name is not None and typ is not None
    base = comp.expr(obj)
    if isinstance(base, Loc) and isinstance(base.type, PtrType):
        base = comp.value(base, obj)
    if not (isinstance(base, Val) and isinstance(base.type, PtrType) and isinstance(base.type.target, KernelType)):
        raise comp.error("L.member() takes a pointer to a kernel struct, a member name and its type", obj)
    n = comp.expr(name)
    if not (isinstance(n, Static) and isinstance(n.obj, str) and n.obj):
        raise comp.error("the member name must be a string", name)
    t = comp.static_type(comp.expr(typ), typ)
    if not isinstance(t, (IntType, PtrType)):
        raise comp.error(f"L.member() reads an integer or a pointer, not a {t.name}", typ)
    comp.need_nonnull(base, obj)
    kt = base.type.target
    space = base.type.space
    try:
        off, _ = K.member(kt, n.obj)  # where this kernel has it; the loader moves it
    except Exception:  # noqa: BLE001 - absent here (or no BTF): the target kernel's BTF decides
        off = 0
    if isinstance(t, PtrType) and space == "btf" and t.space in ("any", "kernel"):
        t = PtrType(t.target, "btf", t.nullable)
    return Loc(t, comp.reg_of(base), off, space, K.field_relo(kt.c_name, (n.obj,), off))


@_handler("type_size")
def _type_size(comp: Any, node: ast.Call) -> Item:
    from ebpf.lang import kernel as K

    (arg,) = _args(comp, node, ("type",), 1)
    assert arg is not None
    name = _kname(comp, comp.expr(arg), arg)
    kt = K.lookup_kernel_type(name)
    if kt is None:
        raise comp.error(f"no kernel type {name!r} in this kernel's BTF", arg)
    return _relo_const(comp, K.field_relo(name, (), kt.size, "TYPE_SIZE"), kt.size)


@_handler("type_exists")
def _type_exists(comp: Any, node: ast.Call) -> Item:
    from ebpf.lang import kernel as K

    (arg,) = _args(comp, node, ("type",), 1)
    assert arg is not None
    name = _kname(comp, comp.expr(arg), arg)
    exists = 1 if K.lookup_kernel_type(name) is not None else 0
    return _relo_const(comp, K.field_relo(name, (), exists, "TYPE_EXISTS"), exists)


@_handler("enum_value")
def _enum_value(comp: Any, node: ast.Call) -> Item:
    from ebpf.lang import kernel as K

    enum, name = _args(comp, node, ("enum", "name"), 2)
    assert enum is not None and name is not None
    e, n = comp.expr(enum), comp.expr(name)
    if not (isinstance(e, Static) and isinstance(e.obj, str) and isinstance(n, Static) and isinstance(n.obj, str)):
        raise comp.error("L.enum_value(\"enum pid_type\", \"PIDTYPE_TGID\") takes two strings", node)
    ename = e.obj if e.obj.startswith("enum ") else f"enum {e.obj}"
    value = K.enum_lookup(ename, n.obj)
    if value is None:
        raise comp.error(f"{ename} has no enumerator {n.obj!r} in this kernel's BTF", node)
    return _relo_const(comp, K.field_relo(ename, (n.obj,), value, "ENUMVAL_VALUE"), value)


@_handler("cast")
def _cast(comp: Any, node: ast.Call) -> Item:
    value, target = _args(comp, node, ("value", "type"), 2)
    assert value is not None and target is not None
    t = comp.static_type(comp.expr(target), target)
    item = comp.expr(value)
    if isinstance(t, IntType):
        return comp.convert(comp.value(item, value), t, node)
    if isinstance(item, Loc) and isinstance(item.type, (StructType, ArrayType, KernelType)):
        v = comp.addr_of(item)
    else:
        v = comp.value(item, value)
    if isinstance(v.type, PtrType):
        return Val(PtrType(t, v.type.space, v.type.nullable), v.kind, v.reg, v.imm)
    if isinstance(v.type, IntType):
        space = "kernel" if isinstance(t, KernelType) else "any"
        if comp.unit.btf_ctx and isinstance(t, KernelType):
            space = "kernel"
        v = comp.to64(v)
        return Val(PtrType(t, space), v.kind if v.kind == REG else REG, comp.reg_of(v))
    raise comp.error(f"cannot cast a {v.type.name}", node)


@_handler("kfunc")
def _kfunc(comp: Any, node: ast.Call) -> Item:
    from ebpf.lang import kernel as K

    if not node.args:
        raise comp.error("L.kfunc(name, *args)", node)
    name_item = comp.expr(node.args[0])
    if not (isinstance(name_item, Static) and isinstance(name_item.obj, str)):
        raise comp.error("the kfunc name must be a string", node.args[0])
    fn = K.func_proto(name_item.obj)
    if fn is None:
        raise comp.error(f"no kernel function {name_item.obj!r} in BTF", node)
    proto = fn.type
    params = list(proto.params)
    if len(params) != len(node.args) - 1:
        raise comp.error(f"{name_item.obj} takes {len(params)} argument(s), got {len(node.args) - 1}", node)
    args: List[Val] = []
    for p, a in zip(params, node.args[1:]):
        pt = K.dsl_type(p.type, "btf")
        item = comp.expr(a)
        if isinstance(pt, IntType):
            args.append(comp.to64(comp.convert(comp.value(item, a), pt, a)))
        else:
            args.append(comp.arg_value(item, a))
    ret = K.dsl_type(proto.type, "btf")
    if isinstance(ret, PtrType):
        ret = PtrType(ret.target, "btf", True)
    return comp.call_helper(fn.id, args, ret if not isinstance(ret, VoidType) else u64, kfunc=True)


@_handler("helper")
def _generic_helper(comp: Any, node: ast.Call) -> Item:
    if not node.args:
        raise comp.error("L.helper(name_or_id, *args)", node)
    which = comp.expr(node.args[0])
    if isinstance(which, Static) and isinstance(which.obj, str):
        from ebpf.uapi import HelperId

        key = which.obj[4:] if which.obj.startswith("bpf_") else which.obj
        try:
            hid = int(HelperId[key])
        except KeyError:
            raise comp.error(f"unknown helper {which.obj!r}", node.args[0]) from None
    else:
        hid = comp.const_int(which, node.args[0])
    if len(node.args) > 6:
        raise comp.error("helpers take at most five arguments", node)
    args = [comp.arg_value(comp.expr(a), a) for a in node.args[1:]]
    return comp.call_helper(hid, args, i64)


# ================================================================= maps


class MapMethod:
    """``m.get``, ``events.reserve``...: a map declaration's method, called by the compiler."""

    def __init__(self, decl: Any, name: str) -> None:
        self.decl = decl
        self.name = name

    def __repr__(self) -> str:
        return f"<method {self.decl.name}.{self.name}>"

    def dsl_call(self, comp: Any, node: ast.Call) -> Item:
        handler = _MAP_METHODS.get(self.name)
        if handler is None:
            raise comp.error(f"map {self.decl.name!r} ({self.decl.kind}) has no method {self.name!r}", node)
        return handler(comp, self.decl, node)


def _need_kind(comp: Any, decl: Any, kinds: Tuple[str, ...], what: str, node: Any) -> None:
    if decl.kind not in kinds:
        raise comp.error(f"{what} works on {' / '.join(kinds)} maps; {decl.name!r} is a {decl.kind} map", node)


_KEYED = ("hash", "lru_hash", "percpu_hash", "lru_percpu_hash", "array", "percpu_array")


def map_lookup(comp: Any, decl: Any, key: Item, node: Any) -> Val:
    _need_kind(comp, decl, _KEYED, "lookup", node)
    kaddr = comp.spill_to_stack(key, decl.key, node)
    m = comp.map_ref(decl.name)
    v = comp.call_helper(1, [m, kaddr], u64)
    return Val.in_reg(PtrType(decl.value, "map", True), v.reg)


def map_read(comp: Any, decl: Any, key: Item, node: Any) -> Item:
    """``m[k]`` for a scalar value: the value, or 0 when the key is missing."""
    if isinstance(decl.value, (StructType, ArrayType)):
        raise comp.error(f"{decl.name}[key] holds a {decl.value.name}: use {decl.name}.get(key) and check None",
                         node)
    return map_get(comp, decl, key, Val.const(u32, 0), node)


def map_get(comp: Any, decl: Any, key: Item, default: Item, node: Any) -> Item:
    """``m.get(k, default)``: the value of ``k`` or ``default``, typed as the map's value.

    It reads, as ``m[k]`` does: a scalar is a value (``default`` converted to the value type,
    as an assignment converts), a struct or array value is a stack copy of the element, or of
    ``default`` (an object of the value type, e.g. ``Stat()``), so changing it leaves the map
    as it is; ``p = m.get(k)`` with a None check is the pointer for updates in place.
    """
    t = decl.value
    if isinstance(t, (StructType, ArrayType)):
        if not (isinstance(default, Loc) and default.type == t):
            got = default.type.name if isinstance(default, (Val, Loc)) else repr(getattr(default, "obj", default))
            raise comp.error(f"the default of {decl.name}.get(key, default) must be a {t.name} "
                             f"(e.g. {t.name}()) or None, not {got}", node)
        p = map_lookup(comp, decl, key, node)
        copy = comp.stack_object(t, zero=False)
        missing, done = comp.new_label("get"), comp.new_label("get")
        comp.emit(o.JMP | o.JEQ, p.reg, 0, 0, 0, target=missing)
        comp.copy(copy, Loc(t, p.reg, 0, "map"), node)
        comp.jump(done)
        comp.label(missing)
        comp.copy(copy, default, node)
        comp.label(done)
        return copy
    d = comp.convert(comp.value(default, node), t, node)
    p = map_lookup(comp, decl, key, node)
    res = comp.vreg()
    found = comp.new_label("get")
    comp._move_into(res, d, t)
    comp.emit(o.JMP | o.JEQ, p.reg, 0, 0, 0, target=found)
    comp._move_into(res, comp.load(Loc(t, p.reg, 0, "map"), node), t)
    comp.label(found)
    return Val.in_reg(t, res, comp._hz_for(t))


def map_update(comp: Any, decl: Any, key: Item, value: Item, flags: int, node: Any) -> Val:
    _need_kind(comp, decl, _KEYED, "update", node)
    kaddr = comp.spill_to_stack(key, decl.key, node)
    vaddr = comp.spill_to_stack(value, decl.value, node)
    m = comp.map_ref(decl.name)
    return comp.call_helper(2, [m, kaddr, vaddr, Val.const(u64, flags)], i64)


def map_delete(comp: Any, decl: Any, key: Item, node: Any) -> Val:
    _need_kind(comp, decl, ("hash", "lru_hash", "percpu_hash", "lru_percpu_hash"), "del", node)
    kaddr = comp.spill_to_stack(key, decl.key, node)
    m = comp.map_ref(decl.name)
    return comp.call_helper(3, [m, kaddr], i64)


def _add_into(comp: Any, loc: Loc, amount: Val, atomic: bool, node: Any) -> None:
    t = loc.type
    if atomic and isinstance(t, IntType) and t.size in (4, 8):
        v = comp.to64(comp.convert(amount, t, node))
        comp.emit(o.STX | o.ATOMIC | o.BYTES_SIZE[t.size], loc.base, comp.reg_of(v), loc.off, o.ADD)
        return
    comp.store(loc, comp.binop(ast.Add(), comp.load(loc, node), amount, node), node)


def map_increment(comp: Any, decl: Any, key: Item, amount: Val, node: Any) -> None:
    """``m[k] += n``: atomic add on the element, inserting ``n`` when the key is missing."""
    _need_kind(comp, decl, _KEYED, "+=", node)
    t = decl.value
    if not isinstance(t, IntType):
        raise comp.error(f"+= needs an integer value type; {decl.name!r} holds {t.name}", node)
    atomic = not decl.per_cpu
    kaddr = comp.spill_to_stack(key, decl.key, node)
    amount = comp.to64(comp.convert(amount, t, node))
    if amount.kind == CONST:
        amount = comp.fresh(amount)
    m = comp.map_ref(decl.name)
    p = comp.call_helper(1, [m, kaddr], u64)
    done = comp.new_label("inc")
    if decl.kind in ("array", "percpu_array"):
        comp.emit(o.JMP | o.JEQ, p.reg, 0, 0, 0, target=done)
        _add_into(comp, Loc(t, p.reg, 0, "map"), amount, atomic, node)
        comp.label(done)
        return
    missing = comp.new_label("ins")
    comp.emit(o.JMP | o.JEQ, p.reg, 0, 0, 0, target=missing)
    _add_into(comp, Loc(t, p.reg, 0, "map"), amount, atomic, node)
    comp.jump(done)
    comp.label(missing)
    slot = comp.stack_object(t, zero=False, temp=True)
    comp.store(slot, amount, node)
    m2 = comp.map_ref(decl.name)
    r = comp.call_helper(2, [m2, kaddr, comp.addr_of(slot), Val.const(u64, H.BPF_NOEXIST)], i64)
    comp.emit(o.JMP | o.JEQ, r.reg, 0, 0, 0, target=done)
    # lost a race with another CPU inserting the key: add to its element
    m3 = comp.map_ref(decl.name)
    p2 = comp.call_helper(1, [m3, kaddr], u64)
    comp.emit(o.JMP | o.JEQ, p2.reg, 0, 0, 0, target=done)
    _add_into(comp, Loc(t, p2.reg, 0, "map"), amount, atomic, node)
    comp.label(done)


_ATOMIC_OPS = {ast.Add: o.ADD, ast.Sub: o.ADD, ast.BitOr: o.OR, ast.BitAnd: o.AND, ast.BitXor: o.XOR}


def atomic_update(comp: Any, loc: Loc, op: ast.operator, amount: Val, node: Any) -> bool:
    """``x op= v`` on a map value or global: an atomic instruction when one exists for ``op``."""
    code = _ATOMIC_OPS.get(type(op))
    t = loc.type
    if code is None or loc.space not in ("map", "global") or not isinstance(t, IntType) or t.size not in (4, 8):
        return False
    v = comp.convert(amount, t, node)
    if isinstance(op, ast.Sub):
        v = comp.binop(ast.Sub(), Val.const(t, 0), v, node)
        v = comp.convert(v, t, node)
    v = comp.to64(v)
    base, off, meta = comp._direct(loc)
    comp.emit(o.STX | o.ATOMIC | o.BYTES_SIZE[t.size], base, comp.reg_of(v), off, code)
    return True


def _m_get(comp: Any, decl: Any, node: ast.Call) -> Item:
    key, default = _args(comp, node, ("key", "default"), 1)
    assert key is not None
    k = comp.expr(key)
    if default is None or isinstance(default, ast.Constant) and default.value is None:
        return map_lookup(comp, decl, k, key)  # the element's pointer, None when missing
    return map_get(comp, decl, k, comp.expr(default), node)


def _m_update(comp: Any, decl: Any, node: ast.Call) -> Item:
    key, value, flags = _args(comp, node, ("key", "value", "flags"), 2)
    assert key is not None and value is not None
    f = comp.const_int(comp.expr(flags), flags) if flags is not None else 0
    return map_update(comp, decl, comp.expr(key), comp.expr(value), f, node)


def _m_delete(comp: Any, decl: Any, node: ast.Call) -> Item:
    (key,) = _args(comp, node, ("key",), 1)
    assert key is not None
    return map_delete(comp, decl, comp.expr(key), node)


def _m_increment(comp: Any, decl: Any, node: ast.Call) -> Item:
    key, amount = _args(comp, node, ("key", "amount"), 1)
    assert key is not None
    n = comp.rvalue(amount) if amount is not None else Val.const(u64, 1)
    map_increment(comp, decl, comp.expr(key), n, node)
    return Static(None)


def _m_reserve(comp: Any, decl: Any, node: ast.Call) -> Item:
    _need_kind(comp, decl, ("ringbuf",), "reserve", node)
    (tnode,) = _args(comp, node, ("type",), 1)
    assert tnode is not None
    t = comp.static_type(comp.expr(tnode), tnode)
    m = comp.map_ref(decl.name)
    v = comp.call_helper(131, [m, Val.const(u64, t.size), Val.const(u64, 0)], u64)
    return Val.in_reg(PtrType(t, "ringbuf", True), v.reg)


def _release(helper: int) -> Callable[[Any, Any, ast.Call], Item]:
    def handle(comp: Any, decl: Any, node: ast.Call) -> Item:
        _need_kind(comp, decl, ("ringbuf",), "submit/discard", node)
        rec, flags = _args(comp, node, ("record", "flags"), 1)
        assert rec is not None
        v = comp.value(comp.expr(rec), rec)
        if not (isinstance(v.type, PtrType) and v.type.space == "ringbuf"):
            raise comp.error("submit()/discard() take a record from reserve()", rec)
        comp.need_nonnull(v, rec)
        f = comp.const_int(comp.expr(flags), flags) if flags is not None else 0
        comp.call_helper(helper, [v, Val.const(u64, f)], u64)
        return Static(None)

    return handle


def _m_output(comp: Any, decl: Any, node: ast.Call) -> Item:
    data, flags = _args(comp, node, ("data", "flags"), 1)
    assert data is not None
    item = comp.expr(data)
    if isinstance(item, Loc) and isinstance(item.type, (StructType, ArrayType)):
        addr, size = comp.addr_of(item), item.type.size
        if item.space not in ("stack", "map", "ringbuf", "global"):
            tmp = comp.stack_object(item.type, zero=False, temp=True)
            comp.copy(tmp, item, data)
            addr = comp.addr_of(tmp)
    else:
        v = comp.value(item, data)
        if isinstance(v.type, PtrType):
            comp.need_nonnull(v, data)
            addr, size = v, v.type.target.size
        else:
            addr, size = comp.spill_to_stack(v, v.type, data), v.type.size
    if decl.kind == "ringbuf":
        f = comp.const_int(comp.expr(flags), flags) if flags is not None else 0
        m = comp.map_ref(decl.name)
        return comp.call_helper(130, [m, addr, Val.const(u64, size), Val.const(u64, f)], i64)
    if decl.kind == "perf_event_array":
        f = comp.const_int(comp.expr(flags), flags) if flags is not None else H.BPF_F_CURRENT_CPU
        ctx = _ctx(comp, node, "perf event output")
        m = comp.map_ref(decl.name)
        return comp.call_helper(25, [ctx, m, Val.const(u64, f), addr, Val.const(u64, size)], i64)
    raise comp.error(f"output() works on ringbuf and perf_event_array maps, not {decl.kind}", node)


def _m_stackid(comp: Any, decl: Any, node: ast.Call) -> Item:
    _need_kind(comp, decl, ("stack_trace",), "stackid", node)
    user, flags = _args(comp, node, ("user", "flags"), 0)
    f = comp.const_int(comp.expr(flags), flags) if flags is not None else 0
    if user is not None and comp.const_int(comp.expr(user), user):
        f |= H.BPF_F_USER_STACK
    ctx = _ctx(comp, node, "stackid()")
    m = comp.map_ref(decl.name)
    return comp.call_helper(27, [ctx, m, Val.const(u64, f)], i64)


def _m_tail_call(comp: Any, decl: Any, node: ast.Call) -> Item:
    _need_kind(comp, decl, ("prog_array",), "tail_call", node)
    (index,) = _args(comp, node, ("index",), 1)
    assert index is not None
    i = comp.to64(comp.convert(comp.rvalue(index), u32, index))
    ctx = _ctx(comp, node, "tail_call()")
    m = comp.map_ref(decl.name)
    return comp.call_helper(12, [ctx, m, i], i64)


def _m_push(comp: Any, decl: Any, node: ast.Call) -> Item:
    _need_kind(comp, decl, ("queue", "stack"), "push", node)
    value, flags = _args(comp, node, ("value", "flags"), 1)
    assert value is not None
    vaddr = comp.spill_to_stack(comp.expr(value), decl.value, value)
    f = comp.const_int(comp.expr(flags), flags) if flags is not None else 0
    m = comp.map_ref(decl.name)
    return comp.call_helper(87, [m, vaddr, Val.const(u64, f)], i64)


def _pop(helper: int) -> Callable[[Any, Any, ast.Call], Item]:
    def handle(comp: Any, decl: Any, node: ast.Call) -> Item:
        _need_kind(comp, decl, ("queue", "stack"), "pop/peek", node)
        (dst,) = _args(comp, node, ("dst",), 1)
        assert dst is not None
        item = comp.expr(dst)
        if not isinstance(item, Loc) or item.type.size != decl.value.size:
            raise comp.error(f"pop()/peek() need a {decl.value.name} to write into", dst)
        m = comp.map_ref(decl.name)
        return comp.call_helper(helper, [m, comp.addr_of(item)], i64)

    return handle


_MAP_METHODS: Dict[str, Callable[[Any, Any, ast.Call], Item]] = {
    "get": _m_get, "lookup": _m_get, "update": _m_update, "delete": _m_delete, "increment": _m_increment,
    "reserve": _m_reserve, "submit": _release(132), "discard": _release(133), "output": _m_output,
    "stackid": _m_stackid, "tail_call": _m_tail_call, "push": _m_push, "pop": _pop(88), "peek": _pop(89),
}


# ================================================================= inline functions and sub-programs


def _bind(comp: Any, fn: Any, tree: ast.FunctionDef, node: ast.Call) -> List[Tuple[str, Optional[ast.expr], Any]]:
    """(parameter, argument node or None, default) for each parameter of ``tree``."""
    params = [a.arg for a in tree.args.args]
    if tree.args.vararg or tree.args.kwarg or tree.args.kwonlyargs:
        raise comp.error(f"{fn.__name__}: *args, **kwargs and keyword-only parameters are not supported", node)
    if len(node.args) > len(params):
        raise comp.error(f"{fn.__name__}() takes {len(params)} argument(s), got {len(node.args)}", node)
    given: Dict[str, ast.expr] = dict(zip(params, node.args))
    for kw in node.keywords:
        if kw.arg not in params or kw.arg in given:
            raise comp.error(f"{fn.__name__}(): bad keyword argument {kw.arg!r}", kw)
        given[kw.arg] = kw.value
    defaults = list(getattr(fn, "__defaults__", None) or ())
    first_default = len(params) - len(defaults)
    out: List[Tuple[str, Optional[ast.expr], Any]] = []
    for i, p in enumerate(params):
        if p in given:
            out.append((p, given[p], None))
        elif i >= first_default:
            out.append((p, None, defaults[i - first_default]))
        else:
            raise comp.error(f"{fn.__name__}() missing argument {p!r}", node)
    return out


def inline_call(comp: Any, inl: InlineFunction, node: ast.Call) -> Item:
    from ebpf.lang.frontend import MAX_INLINE_DEPTH, Compiler, Var
    from ebpf.lang.source import source_of

    if comp.depth >= MAX_INLINE_DEPTH:
        raise comp.error(f"inlining {inl.__name__} nests more than {MAX_INLINE_DEPTH} deep (recursion?)", node)
    src = source_of(inl.fn)
    child = Compiler(comp.unit, src, comp.fn, role="inline", parent=comp)
    tree = src.tree
    annotations = {a.arg: a.annotation for a in tree.args.args}
    for pname, arg, default in _bind(comp, inl.fn, tree, node):
        item: Item = comp.expr(arg) if arg is not None else comp.static_value(default, node)
        ann = annotations.get(pname)
        if isinstance(item, Val):
            t: Type = item.type
            if ann is not None:
                t = child.annotation_type(ann)
                item = comp.convert(item, t, arg)
            elif local_type(item) is not t:  # a literal argument makes an i64, as a local
                t = local_type(item)
                item = comp.convert(item, t, arg)
            r = comp.vreg()
            assert isinstance(item, Val)
            child._move_into(r, item, t)
            child.bind(pname, Var(pname, t, Val.in_reg(t, r, child._hz_for(t))))
            if isinstance(t, PtrType) and not t.nullable:
                child.nonnull.add(pname)
        elif isinstance(item, Loc):
            if isinstance(item.type, (StructType, ArrayType, KernelType)):
                child.bind(pname, Var(pname, item.type, item))
            else:
                v = comp.value(item, arg)
                r = comp.vreg()
                child._move_into(r, v, v.type)
                child.bind(pname, Var(pname, v.type, Val.in_reg(v.type, r, child._hz_for(v.type))))
        else:
            child.bind(pname, Var(pname, void, item))
    child.ret_label = comp.new_label("ret")
    child.ret_reg = comp.vreg()
    if tree.returns is not None:
        child.ret_hint = child.annotation_type(tree.returns)
    child.cur = tree
    mark = comp.fn.frame.scope()
    child.body(tree.body)
    comp.fn.frame.end_scope(mark)
    comp.label(child.ret_label)
    rt = child.ret_type
    if rt is None or isinstance(rt, VoidType):
        return Static(None)
    if child.reachable:
        pass  # falling off the end returns an unspecified value, like C
    if isinstance(rt, IntType):
        return Val.in_reg(rt, child.ret_reg, False)
    return Val.in_reg(rt, child.ret_reg)


class SubInfo:
    def __init__(self, label: str, params: List[Type], ret: Type, compiler: Any) -> None:
        self.label = label
        self.params = params
        self.ret = ret
        self.compiler = compiler


def subprogram_info(comp: Any, sp: Subprogram, node: Any) -> SubInfo:
    from ebpf.lang.frontend import Compiler
    from ebpf.lang.source import source_of

    unit = comp.unit
    info = unit.subprograms.get(sp)
    if info is not None:
        return info
    src = source_of(sp.fn)
    fn = Function(f"{sp.__name__}")
    sub = Compiler(unit, src, fn, role="sub")
    tree = src.tree
    if len(tree.args.args) > 5:
        raise sub.error("a sub-program takes at most five parameters", tree)
    params: List[Type] = []
    for a in tree.args.args:
        if a.annotation is None:
            raise sub.error(f"sub-program parameter {a.arg!r} needs a type annotation", a)
        params.append(sub.annotation_type(a.annotation))
    ret: Type = sub.annotation_type(tree.returns) if tree.returns is not None else i64
    info = SubInfo(f"sub.{sp.__name__}", params, ret, sub)
    unit.subprograms[sp] = info
    unit.pending.append(info)
    return info


def sub_call(comp: Any, sp: Subprogram, node: ast.Call) -> Item:
    info = subprogram_info(comp, sp, node)
    bound = _bind(comp, sp.fn, info.compiler.src.tree, node)
    args: List[Val] = []
    for (pname, arg, default), t in zip(bound, info.params):
        item: Item = comp.expr(arg) if arg is not None else comp.static_value(default, node)
        if isinstance(t, (StructType, ArrayType)):
            if not isinstance(item, Loc) or item.type.size != t.size:
                raise comp.error(f"argument {pname!r} must be a {t.name}", arg or node)
            args.append(comp.addr_of(item))
        elif isinstance(t, IntType):
            args.append(comp.to64(comp.convert(comp.value(item, arg), t, arg)))
        else:
            args.append(comp.arg_value(item, arg))
    ret = info.ret
    return comp.call_helper(0, args, ret if not isinstance(ret, VoidType) else i64, local=info.label)


__all__ = ["call", "MapMethod", "map_lookup", "map_read", "map_get", "map_update", "map_delete", "map_increment",
           "atomic_update", "subprogram_info", "inline_call", "sub_call", "char"]
