"""Lowering primitives of the front end: emitting IR, C conversions, memory and calls.

:class:`Lowering` holds a function's compile state (its IR, locals, what is known non-None,
which locals are definitely assigned) and the operations every construct is built from:
constants and moves, widening and narrowing with the register invariants of
:mod:`ebpf.lang.values`, loads and stores in each memory space (direct, through
``bpf_probe_read_kernel``/``_user``, with CO-RE records), zeroed stack objects, helper calls with their
arguments in r1..r5, and name resolution (locals, then the Python function's globals).
"""

from __future__ import annotations

import ast
import sys
from typing import Any, Dict, List, Optional, Set, Tuple

from ebpf.asm import opcodes as o
from ebpf.errors import CompileError
from ebpf.lang.helper_choice import probe_read_id
from ebpf.lang.ir import FP, LABEL, Frame, Function, Op
from ebpf.lang.isa import LATEST
from ebpf.lang.source import MISSING, FuncSource
from ebpf.lang.types import (
    ArrayType,
    BoolType,
    IntType,
    KernelType,
    PtrType,
    StructType,
    Type,
    VoidType,
    boolean,
    brief,
    char,
    i64,
    type_of,
    u32,
    void,
    wrap,
)
from ebpf.lang.values import CONST, REG, Item, Loc, Static, Val

_WRITABLE = ("stack", "map", "ringbuf", "global", "any", "ctx", "packet")

# The compiler recurses over the user's code (expressions, statements, inline bodies). Past
# _NESTING_UNCHECKED nested constructs it checks that _STACK_RESERVE Python frames are still
# left below the recursion limit, so that deep code is a CompileError, never a RecursionError.
_NESTING_UNCHECKED = 32
_STACK_RESERVE = 120


class Var:
    """A local variable: a register (scalars, pointers) or a location (structs, arrays)."""

    __slots__ = ("name", "type", "item", "range")

    def __init__(self, name: str, type: Type, item: Any) -> None:
        self.name = name
        self.type = type
        self.item = item
        self.range: Optional[Tuple[int, int]] = None  # known [lo, hi) of a loop counter


class Unit:
    """What the functions of one program share: its kind, context, collection, sub-programs."""

    def __init__(self, decl: Any, ctx_type: Any) -> None:
        self.decl = decl
        self.ctx_type = ctx_type
        self.btf_ctx = bool(getattr(ctx_type, "btf_typed", False))
        self.subprograms: Dict[Any, Any] = {}
        self.pending: List[Any] = []
        self.nesting = 0  # statements and expressions being compiled within each other
        self.isa = LATEST  # the instruction-set level compiled for (ebpf.lang.isa)

class Lowering:
    """The compile state of one function and the primitives that emit its IR."""

    def __init__(self, unit: Unit, src: FuncSource, fn: Function, role: str = "main",
                 parent: Optional[Lowering] = None) -> None:
        self.unit = unit
        self.src = src
        self.fn = fn
        self.role = role  # main | sub | inline
        self.parent = parent
        self.vars: Dict[str, Var] = {}
        self.nonnull: Set[str] = set()
        self.bound: Set[str] = set()  # locals assigned on every path to here
        self.loops: List[Tuple[str, str]] = []
        self.reachable = True
        self.cur: Any = src.tree
        self.ctx: Optional[Val] = parent.ctx if parent is not None else None
        self.depth: int = parent.depth + 1 if parent is not None else 0
        self.ret_label: Optional[str] = None
        self.ret_reg = 0
        self.ret_type: Optional[Type] = None
        self.ret_hint: Optional[Type] = None

    # ================================================================== errors and emission

    def error(self, message: str, node: Any = None) -> CompileError:
        return self.src.error(message, node if node is not None else self.cur)

    def enter(self, node: Any) -> None:
        """One more construct nested in those being compiled (pair with :meth:`leave`)."""
        unit = self.unit
        if unit.nesting >= _NESTING_UNCHECKED and _stack_deeper_than(sys.getrecursionlimit() - _STACK_RESERVE):
            raise self.error("nested too deeply to compile (expressions, blocks and inline calls within "
                             "each other); split it up", node)
        unit.nesting += 1

    def leave(self) -> None:
        self.unit.nesting -= 1

    def emit(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0,
             target: Optional[str] = None, meta: Optional[Dict[str, Any]] = None, nargs: int = 0) -> Op:
        op = Op(code, dst, src, off, imm, target, self.src.pos(self.cur), meta, nargs)
        self.fn.ops.append(op)
        return op

    def label(self, name: str) -> None:
        self.fn.ops.append(Op(LABEL, target=name))

    def jump(self, name: str) -> None:
        self.emit(o.JMP | o.JA, target=name)

    def new_label(self, hint: str = "L") -> str:
        return self.fn.new_label(hint)

    def vreg(self) -> int:
        return self.fn.vreg()

    def mov_reg(self, dst: int, src: int, w64: bool = True) -> None:
        self.emit((o.ALU64 if w64 else o.ALU) | o.MOV | o.X, dst, src)

    def set_const(self, dst: int, value: int, w64: bool = True) -> bool:
        """dst = value; returns True when the upper half of dst is known zero afterwards."""
        if not w64:
            self.emit(o.ALU | o.MOV, dst, 0, 0, wrap(value, 4, True))
            return True
        value = wrap(value, 8, True)
        if -(1 << 31) <= value < (1 << 31):
            self.emit(o.ALU64 | o.MOV, dst, 0, 0, value)
            return value >= 0
        if 0 <= value < (1 << 32):
            self.emit(o.ALU | o.MOV, dst, 0, 0, wrap(value, 4, True))
            return True
        self.emit(o.LD_IMM64, dst, 0, 0, value)
        return False

    def reg_of(self, v: Val) -> int:
        """A register holding ``v`` (constants are materialized, 64-bit canonical)."""
        if v.kind == REG:
            return v.reg
        r = self.vreg()
        self.set_const(r, v.imm, True)
        return r

    def fresh(self, v: Val) -> Val:
        """A copy of ``v`` in a new register (for in-place operations). A constant is written
        with all 64 bits (sign-extended): right for a narrow type's low half and for callers
        that go on in 64 bits after :meth:`to64` (which leaves constants as they are)."""
        r = self.vreg()
        if v.kind == CONST:
            hz = self.set_const(r, v.imm, True)
        else:
            self.mov_reg(r, v.reg)
            hz = v.hz
        return Val.in_reg(v.type, r, hz)

    # ================================================================== conversions

    def to64(self, v: Val) -> Val:
        """``v`` with all 64 bits meaningful (sign- or zero-extended per its type)."""
        t = v.type
        if v.kind == CONST or not isinstance(t, IntType) or t.size == 8:
            return v
        if not t.signed:
            if v.hz:
                return v
            r = self.vreg()
            self.emit(o.ALU | o.MOV | o.X, r, v.reg)
            return Val.in_reg(t, r, True)
        r = self.vreg()
        self.emit(o.ALU64 | o.MOV | o.X, r, v.reg, 32)  # movsx64 from 32 bits
        return Val.in_reg(t, r, False)

    def convert(self, v: Val, t: Type, node: Any = None) -> Val:
        """C's conversion of ``v`` to type ``t`` (assignment, casts, arguments)."""
        s = v.type
        if isinstance(t, IntType):
            if isinstance(s, PtrType):
                if t.size != 8:
                    raise self.error(f"cannot convert a pointer to {t.name} (only to u64/i64)", node)
                return Val(t, v.kind, v.reg, v.imm, False)
            if not isinstance(s, IntType):
                raise self.error(f"cannot convert {s.name} to {t.name}", node)
            if v.kind == CONST:
                if isinstance(t, BoolType):
                    return Val.const(boolean, 1 if v.imm else 0)
                return Val.const(t, v.imm)
            if isinstance(t, BoolType):
                if isinstance(s, BoolType):
                    return v
                return self.bool_of(v)
            if t.size == 8:
                if s.size == 8:
                    return Val.in_reg(t, v.reg, v.hz)
                w = self.to64(v)
                return Val.in_reg(t, w.reg, w.hz)
            if t.size == 4:
                return Val.in_reg(t, v.reg, v.hz if s.size <= 4 else False)
            # 1 or 2 bytes: no-op if the value already fits
            if s.size < t.size and (not s.signed or t.signed) or (s.size == t.size and s.signed == t.signed):
                return Val.in_reg(t, v.reg, v.hz)
            r = self.vreg()
            if t.signed:
                self.emit(o.ALU | o.MOV | o.X, r, v.reg, t.bits)  # movsx32
            else:
                self.mov_reg(r, v.reg, False)
                self.emit(o.ALU | o.AND, r, 0, 0, t.max)
            return Val.in_reg(t, r, True)
        if isinstance(t, PtrType):
            if isinstance(s, PtrType):
                if s.nullable and not t.nullable:
                    raise self.null_error(node)
                if t.target != s.target and not isinstance(t.target, VoidType) and not isinstance(s.target, VoidType):
                    raise self.error(f"pointer type mismatch: {s.name} is not {t.name}", node)
                return Val(t if t.space != "any" else PtrType(s.target, s.space, t.nullable), v.kind, v.reg, v.imm)
            if isinstance(s, IntType) and v.kind == CONST and v.imm == 0:
                return Val(PtrType(t.target, t.space, True), CONST, imm=0)
            raise self.error(f"cannot convert {s.name} to a pointer (use L.cast)", node)
        raise self.error(f"cannot convert {s.name} to {t.name}", node)

    def bool_of(self, v: Val) -> Val:
        if v.kind == CONST:
            return Val.const(boolean, 1 if v.imm else 0)
        r = self.vreg()
        end = self.new_label("b")
        self.emit(o.ALU64 | o.MOV, r, 0, 0, 1)
        w64 = not (isinstance(v.type, IntType) and v.type.size <= 4)
        self.emit((o.JMP if w64 else o.JMP32) | o.JNE, v.reg, 0, 0, 0, target=end)
        self.emit(o.ALU64 | o.MOV, r, 0, 0, 0)
        self.label(end)
        return Val.in_reg(boolean, r, True)

    # ================================================================== memory

    def addr_of(self, loc: Loc) -> Val:
        """A register holding the address of ``loc`` (a pointer of its space)."""
        r = self.vreg()
        self.mov_reg(r, loc.base)
        if loc.off or loc.relo is not None:
            meta = {"core": loc.relo} if loc.relo is not None else None
            self.emit(o.ALU64 | o.ADD, r, 0, 0, loc.off, meta=meta)
        return Val.in_reg(PtrType(loc.type, loc.space), r)

    def _direct(self, loc: Loc) -> Tuple[int, int, Optional[Dict[str, Any]]]:
        """(base register, offset, meta) for a single load/store of ``loc``."""
        meta = {"core": loc.relo} if loc.relo is not None else None
        if -0x8000 <= loc.off <= 0x7FFF:
            return loc.base, loc.off, meta
        a = self.addr_of(loc)
        return a.reg, 0, None

    def load(self, loc: Loc, node: Any = None) -> Val:
        """The scalar or pointer at ``loc`` as a value."""
        t = loc.type
        if isinstance(t, (StructType, ArrayType, KernelType)):
            raise self.error(f"a {t.name} is not a scalar value", node)
        size = getattr(t, "load_size", 8 if hasattr(t, "narrow") else t.size)
        vt: Type = getattr(t, "narrow", t)
        if size not in (1, 2, 4, 8):
            raise self.error(f"cannot load a {size}-byte value", node)
        r = self.vreg()
        if loc.space in ("kernel", "user"):  # through the probe-read helper (0 if the read fails)
            tmp = self.fn.frame.alloc(8, temp=True)
            addr = self.addr_of(loc)
            self.emit(o.ALU64 | o.MOV | o.X, 1, FP)
            self.emit(o.ALU64 | o.ADD, 1, 0, 0, tmp)
            self.emit(o.ALU64 | o.MOV, 2, 0, 0, size)
            self.mov_reg(3, addr.reg)
            helper = probe_read_id(loc.space, getattr(self.unit.decl, "prog_type", None))  # kernel / user
            self.emit(o.JMP | o.CALL, 0, o.CALL_HELPER, 0, helper, nargs=3)
            self.emit(o.LDX | o.MEM | o.BYTES_SIZE[size], r, FP, tmp)
        else:
            base, off, meta = self._direct(loc)
            self.emit(o.LDX | o.MEM | o.BYTES_SIZE[size], r, base, off, meta=meta)
        if isinstance(vt, PtrType):
            return Val.in_reg(vt, r)
        assert isinstance(vt, IntType)
        if vt.size < 4 and (size != vt.size or vt.signed):
            r2 = self.vreg()
            if vt.signed:
                self.emit(o.ALU | o.MOV | o.X, r2, r, vt.bits)
            else:
                self.mov_reg(r2, r, False)
                self.emit(o.ALU | o.AND, r2, 0, 0, vt.max)
            return Val.in_reg(vt, r2, True)
        if size == 8 and vt.size == 4:
            return Val.in_reg(vt, r, False)
        return Val.in_reg(vt, r, size < 8 or not vt.signed)

    def store(self, loc: Loc, v: Val, node: Any = None) -> None:
        t = loc.type
        if loc.space not in _WRITABLE:
            raise self.error(f"cannot write to {loc.space} memory", node)
        if isinstance(t, (StructType, ArrayType, KernelType)):
            raise self.error(f"cannot assign a scalar to a {t.name}", node)
        v = self.convert(v, t, node)
        size = t.size
        base, off, meta = self._direct(loc)
        if v.kind == CONST and -(1 << 31) <= wrap(v.imm, 8, True) < (1 << 31) or (v.kind == CONST and size <= 4):
            self.emit(o.ST | o.MEM | o.BYTES_SIZE[size], base, 0, off, wrap(v.imm, min(size, 4), True), meta=meta)
        else:
            self.emit(o.STX | o.MEM | o.BYTES_SIZE[size], base, self.reg_of(v), off, meta=meta)

    def zero(self, loc: Loc) -> None:
        """Zero a stack object (the verifier wants every byte written before it is read)."""
        size = (loc.type.size + 7) // 8 * 8
        for i in range(0, size, 8):
            self.emit(o.ST | o.MEM | o.DW, loc.base, 0, loc.off + i, 0)

    def copy(self, dst: Loc, src: Loc, node: Any = None) -> None:
        """``dst = src`` for structs and arrays of the same size."""
        size = min(dst.type.size, src.type.size)
        if dst.type.size != src.type.size and not (isinstance(dst.type, ArrayType) and isinstance(src.type, ArrayType)):
            raise self.error(f"cannot assign a {src.type.name} to a {dst.type.name}", node)
        if dst.space not in _WRITABLE:
            raise self.error(f"cannot write to {dst.space} memory", node)
        if src.space in ("kernel", "user"):
            helper = probe_read_id(src.space, getattr(self.unit.decl, "prog_type", None))
            self.call_helper(helper, [self.addr_of(dst), Val.const(u32, size), self.addr_of(src)], i64)
            return
        off = 0
        tmp = self.vreg()
        while off < size:
            # the widest word aligned on both sides (the verifier wants aligned stack accesses)
            chunk = next(c for c in (8, 4, 2, 1) if c <= size - off and (src.off + off) % c == (dst.off + off) % c == 0)
            sb, so, _ = self._direct(Loc(src.type, src.base, src.off + off, src.space))
            db, do, _ = self._direct(Loc(dst.type, dst.base, dst.off + off, dst.space))
            self.emit(o.LDX | o.MEM | o.BYTES_SIZE[chunk], tmp, sb, so)
            self.emit(o.STX | o.MEM | o.BYTES_SIZE[chunk], db, tmp, do)
            off += chunk

    def stack_object(self, t: Type, zero: bool = True, temp: bool = False) -> Loc:
        if t.size > Frame.LIMIT:  # before any code is made for it (the function's total: at its end)
            raise self.error(f"a {brief(t.name)} needs {t.size} bytes of stack; eBPF allows {Frame.LIMIT}")
        off = self.fn.frame.alloc(t.size, t.align, temp=temp)
        loc = Loc(t, FP, off, "stack")
        if zero:
            self.zero(loc)
        return loc

    def spill_to_stack(self, item: Item, t: Type, node: Any = None) -> Val:
        """A pointer to ``item`` as a ``t`` in memory the helpers accept (stack or map value)."""
        if isinstance(item, Loc):
            if item.space in ("stack", "map") and item.type.size == t.size and not isinstance(t, IntType):
                return self.addr_of(item)
            if isinstance(item.type, (StructType, ArrayType)):
                if item.type.size != t.size:
                    raise self.error(f"expected a {t.name}, got a {item.type.name}", node)
                if item.space in ("stack", "map", "ringbuf", "global"):
                    return self.addr_of(item)
                tmp = self.stack_object(t, zero=False, temp=True)
                self.copy(tmp, item, node)
                return self.addr_of(tmp)
        v = self.value(item, node)
        if isinstance(t, (StructType, ArrayType)):
            raise self.error(f"expected a {t.name}, got {v.type.name}", node)
        tmp = self.stack_object(t, zero=False, temp=True)
        self.store(tmp, v, node)
        return self.addr_of(tmp)

    def data_loc_pointer(self, ctx: Val, loc_word: Val) -> Val:
        r = self.vreg()
        self.mov_reg(r, loc_word.reg, False)
        self.emit(o.ALU | o.AND, r, 0, 0, 0xFFFF)
        self.emit(o.ALU64 | o.ADD | o.X, r, ctx.reg)
        return Val.in_reg(PtrType(char, "kernel"), r)

    # ================================================================== helper calls

    def call_helper(self, helper: int, args: List[Val], ret: Type, kfunc: bool = False,
                    local: Optional[str] = None) -> Val:
        """Call a helper (by id), a kfunc (by BTF id) or a sub-program (``local`` label)."""
        regs: List[Any] = []
        for a in args:
            if a.kind == CONST:
                regs.append(a)
            else:
                regs.append(a.reg)
        for i, a in enumerate(regs):
            if isinstance(a, Val):
                self.set_const(i + 1, a.imm, True)
            else:
                self.mov_reg(i + 1, a)
        if local is not None:
            self.emit(o.JMP | o.CALL, 0, o.CALL_PSEUDO, 0, 0, target=local, nargs=len(args))
        elif kfunc:
            self.emit(o.JMP | o.CALL, 0, o.CALL_KFUNC, 0, helper, nargs=len(args))
        else:
            self.emit(o.JMP | o.CALL, 0, o.CALL_HELPER, 0, helper, nargs=len(args))
        r = self.vreg()
        self.mov_reg(r, 0)
        if isinstance(ret, IntType) and ret.size < 8:
            return Val.in_reg(ret, r, False)
        return Val.in_reg(ret, r)

    def map_ref(self, name: str) -> Val:
        r = self.vreg()
        self.emit(o.LD_IMM64, r, o.PSEUDO_MAP_FD, 0, 0, target=name)
        return Val.in_reg(PtrType(void, "mapobj"), r)

    def arg_value(self, item: Item, node: Any = None) -> Val:
        """A helper argument: integers as 64-bit values, pointers checked non-null."""
        if isinstance(item, Loc) and isinstance(item.type, (StructType, ArrayType, KernelType)):
            return self.addr_of(item)
        v = self.value(item, node)
        if isinstance(v.type, PtrType):
            if v.type.nullable and v.kind != CONST:
                raise self.null_error(node)
            return v
        return self.to64(v)

    # ================================================================== names and values

    def bind(self, name: str, var: Var) -> None:
        self.vars[name] = var
        self.bound.add(name)

    def lookup(self, name: str, node: Any) -> Item:
        var = self.vars.get(name)
        if var is not None:
            if name not in self.bound:
                raise self.error(f"{name!r} may be unassigned here: assign it on every path before this use", node)
            item = var.item
            if isinstance(item, Val) and isinstance(var.type, PtrType) and var.type.nullable and name in self.nonnull:
                return Val(var.type.nonnull(), item.kind, item.reg, item.imm, item.hz)
            return item
        obj = self.src.lookup(name)
        if obj is MISSING:
            raise self.error(f"name {name!r} is not defined", node)
        return Static(obj)

    def static_value(self, obj: Any, node: Any) -> Item:
        from ebpf.lang.collection import GlobalDecl

        if isinstance(obj, bool):
            return Val.const(boolean, int(obj))
        if isinstance(obj, int):
            try:
                return Val.of_literal(int(obj))
            except OverflowError:
                raise self.error(f"constant {brief(obj)} does not fit in 64 bits", node) from None
        if isinstance(obj, GlobalDecl):
            return self.global_loc(obj)
        return Static(obj)

    def global_loc(self, g: Any) -> Loc:
        r = self.vreg()
        self.emit(o.LD_IMM64, r, o.PSEUDO_MAP_VALUE, 0, g.offset << 32, target=g.section)
        return Loc(g.type, r, 0, "global" if g.section != ".rodata" else "rodata")

    def value(self, item: Item, node: Any = None) -> Val:
        """``item`` as a scalar or pointer value (loading from memory when it is a location)."""
        if isinstance(item, Val):
            return item
        if isinstance(item, Loc):
            if item.space == "rodata":
                item = Loc(item.type, item.base, item.off, "global", item.relo)
            return self.load(item, node)
        obj = item.obj
        if isinstance(obj, (bool, int)) or type(obj).__name__ == "GlobalDecl":
            got = self.static_value(obj, node)
            return self.value(got, node)
        if obj is None:
            return Val(PtrType(void, "any", True), CONST, imm=0)
        raise self.error(f"{_describe(obj)} is not a value here", node)

    def const_int(self, item: Item, node: Any = None) -> int:
        if isinstance(item, Static) and isinstance(item.obj, int):
            return int(item.obj)
        if isinstance(item, Val) and item.kind == CONST:
            return item.imm
        raise self.error("expected a compile-time constant", node)

    def static_type(self, item: Item, node: Any = None) -> Type:
        if isinstance(item, Static):
            obj = item.obj
            if isinstance(obj, str):
                from ebpf.lang.types import ktype

                base = obj.strip().split("[")[0]
                if base not in ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "char", "bool"):
                    return ktype(obj)
            try:
                return type_of(obj)
            except TypeError as e:
                if isinstance(obj, str):
                    raise self.error(str(e), node) from None
        raise self.error("expected a type", node)

    def array_type(self, elem: Type, count: int, node: Any) -> ArrayType:
        """``elem[count]`` written in a program (``char[16]``)."""
        try:
            return elem[count]
        except TypeError as e:
            raise self.error(str(e), node) from None

    def null_error(self, node: Any) -> CompileError:
        text = ast.unparse(node) if isinstance(node, ast.AST) else "this pointer"
        return self.error(f"{text!r} may be None: check it first (e.g. `if {text} is None: return 0`)", node)

    def need_nonnull(self, v: Val, node: Any) -> Val:
        if isinstance(v.type, PtrType) and v.type.nullable:
            raise self.null_error(node)
        return v


def _stack_deeper_than(frames: int) -> bool:
    """Whether the Python stack holds more than ``frames`` frames (a walk in C, no Python loop)."""
    try:
        sys._getframe(frames)
    except ValueError:
        return False
    return True


def _describe(obj: Any) -> str:
    name = getattr(obj, "__name__", None)
    if name:
        return f"{type(obj).__name__} {name!r}"
    return repr(obj)
