"""Expressions and conditions: typed values from Python expressions, and branches from tests.

Arithmetic follows the C rules of :mod:`ebpf.lang.types` (32-bit instructions for values of
4 bytes or less), constants fold with the same rules (:func:`c_arith`). Conditions compile to
jumps rather than to values (``and``/``or`` short-circuit, chains evaluate each operand once,
``x in (1, 2)`` becomes comparisons, ``k in m`` a lookup), and record which names the test
proves non-None on each side (:meth:`Expressions.facts`) for the optional-pointer checks.
"""

from __future__ import annotations

import ast
from typing import Any, Optional, Set, Tuple

from ebpf.asm import opcodes as o
from ebpf.errors import CompileError
from ebpf.lang import strings
from ebpf.lang.ir import FP
from ebpf.lang.lowering import Lowering, _describe
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
    common_type,
    literal_type,
    promote,
    u32,
    wrap,
)
from ebpf.lang.values import CONST, REG, Item, Loc, Static, Val

_ARITH = {
    ast.Add: o.ADD, ast.Sub: o.SUB, ast.Mult: o.MUL, ast.FloorDiv: o.DIV, ast.Mod: o.MOD,
    ast.BitAnd: o.AND, ast.BitOr: o.OR, ast.BitXor: o.XOR, ast.LShift: o.LSH, ast.RShift: o.RSH,
}
_CMP_U = {ast.Eq: o.JEQ, ast.NotEq: o.JNE, ast.Lt: o.JLT, ast.LtE: o.JLE, ast.Gt: o.JGT, ast.GtE: o.JGE}
_CMP_S = {ast.Eq: o.JEQ, ast.NotEq: o.JNE, ast.Lt: o.JSLT, ast.LtE: o.JSLE, ast.Gt: o.JSGT, ast.GtE: o.JSGE}
_NEGATE = {o.JEQ: o.JNE, o.JNE: o.JEQ, o.JLT: o.JGE, o.JGE: o.JLT, o.JLE: o.JGT, o.JGT: o.JLE,
           o.JSLT: o.JSGE, o.JSGE: o.JSLT, o.JSLE: o.JSGT, o.JSGT: o.JSLE}
_SWAP = {o.JEQ: o.JEQ, o.JNE: o.JNE, o.JLT: o.JGT, o.JGT: o.JLT, o.JLE: o.JGE, o.JGE: o.JLE,
         o.JSLT: o.JSGT, o.JSGT: o.JSLT, o.JSLE: o.JSGE, o.JSGE: o.JSLE}


class Expressions(Lowering):
    """Expressions (values) and conditions (jumps)."""

    def assign_name(self, name: str, item: Item, node: Any) -> None:
        """Bind a local (statements define it; walrus expressions need it)."""
        raise NotImplementedError

    # ================================================================== expressions

    def expr(self, node: ast.expr) -> Item:
        method = getattr(self, "x_" + type(node).__name__, None)
        if method is None:
            raise self.error(f"unsupported expression: {type(node).__name__}", node)
        self.enter(node)
        try:
            return method(node)
        finally:
            self.leave()

    def rvalue(self, node: ast.expr) -> Val:
        return self.value(self.expr(node), node)

    def x_Constant(self, node: ast.Constant) -> Item:
        v = node.value
        if isinstance(v, (bool, int)):
            return self.static_value(v, node)
        if v is None or isinstance(v, (str, bytes)):
            return Static(v)
        raise self.error(f"unsupported constant {v!r} (integers only: no floating point)", node)

    def x_Name(self, node: ast.Name) -> Item:
        item = self.lookup(node.id, node)
        if isinstance(item, Static):
            return self.static_value(item.obj, node)
        return item

    def x_NamedExpr(self, node: ast.NamedExpr) -> Item:
        item = self.expr(node.value)
        self.assign_name(node.target.id, item, node)
        return self.lookup(node.target.id, node)

    def x_Attribute(self, node: ast.Attribute) -> Item:
        base = self.expr(node.value)
        return self.attribute(base, node.attr, node)

    def attribute(self, base: Item, name: str, node: Any) -> Item:
        from ebpf.lang.collection import GlobalDecl, MapDecl

        if isinstance(base, Static):
            obj = base.obj
            if isinstance(obj, MapDecl):
                from ebpf.lang.intrinsics import MapMethod

                return Static(MapMethod(obj, name))
            if isinstance(obj, GlobalDecl):
                loc = self.global_loc(obj)
                if name == "value":
                    return loc
                return self.attribute(loc, name, node)
            if hasattr(obj, "dsl_attr"):
                return obj.dsl_attr(self, name, node)
            if isinstance(obj, type) and issubclass(obj, Struct) and name in ("size",):
                return Val.const(u32, obj.layout().size)
            try:
                return self.static_value(getattr(obj, name), node)
            except AttributeError:
                raise self.error(f"{_describe(obj)} has no attribute {name!r}", node) from None
        if isinstance(base, Loc) and name == "value" and base.space in ("global", "rodata") and base.off == 0:
            return base  # g.value: the global itself (assignable for .bss)
        if isinstance(base, Loc) and isinstance(base.type, PtrType):
            base = self.value(base, getattr(node, "value", node))
        if isinstance(base, Val):
            from ebpf.lang.context import CtxError, CtxType

            if isinstance(base.type, CtxType):
                try:
                    return base.type.attr(self, base, name, node)
                except CtxError as e:
                    raise self.error(str(e), node) from None
            if isinstance(base.type, PtrType):
                self.need_nonnull(base, getattr(node, "value", node))
                target = base.type.target
                if isinstance(target, (StructType, KernelType)):
                    return self.field(Loc(target, self.reg_of(base), 0, base.type.space), name, node, root=True)
                raise self.error(f"a pointer to {target.name} has no field {name!r}", node)
            raise self.error(f"a {base.type.name} has no attribute {name!r}", node)
        return self.field(base, name, node)

    def field(self, loc: Loc, name: str, node: Any, root: bool = False) -> Loc:
        t = loc.type
        if isinstance(t, StructType):
            f = t.field(name)
            if f is None:
                raise self.error(f"struct {t.name} has no field {name!r} (fields: {', '.join(t.fields)})", node)
            return Loc(f.type, loc.base, loc.off + f.offset, loc.space, loc.relo)
        if isinstance(t, KernelType):
            from ebpf.lang import kernel as K

            try:
                off, ft = K.member(t, name)
            except K.KernelTypeError as e:
                raise self.error(str(e), node) from None
            except Exception as e:  # BTF missing or broken
                raise self.error(f"kernel type {t.name}: {e}", node) from None
            space = loc.space
            if isinstance(ft, PtrType) and ft.space == "kernel" and space == "btf":
                ft = PtrType(ft.target, "btf", ft.nullable)
            if root or loc.relo is None:
                relo = K.field_relo(t.c_name, (name,), off)
                return Loc(ft, loc.base, loc.off + off, space, relo)
            relo = loc.relo._replace(access=loc.relo.access + (name,), local_value=loc.relo.local_value + off)
            return Loc(ft, loc.base, loc.off + off, space, relo)
        raise self.error(f"a {t.name} has no fields", node)

    def x_Subscript(self, node: ast.Subscript) -> Item:
        base = self.expr(node.value)
        index = node.slice
        if isinstance(index, ast.Index):  # Python 3.8 AST (kept for old parsers)
            index = index.value  # type: ignore[attr-defined]
        return self.subscript(base, index, node)

    def subscript(self, base: Item, index: ast.expr, node: Any) -> Item:
        from ebpf.lang.collection import MapDecl

        if isinstance(base, Static):
            obj = base.obj
            if isinstance(obj, MapDecl):
                from ebpf.lang.intrinsics import map_read

                return map_read(self, obj, self.expr(index), node)
            if hasattr(obj, "dsl_subscript"):
                return obj.dsl_subscript(self, index, node)
            if isinstance(obj, (type, Type)):
                count = self.const_int(self.expr(index), node)
                return Static(self.array_type(self.static_type(base, node), count, node))
            raise self.error(f"{_describe(obj)} cannot be indexed", node)
        if isinstance(base, Loc) and isinstance(base.type, PtrType):
            base = self.value(base, node)
        if isinstance(base, Val):
            if not isinstance(base.type, PtrType):
                raise self.error(f"a {base.type.name} cannot be indexed", node)
            self.need_nonnull(base, node.value if isinstance(node, ast.Subscript) else node)
            target = base.type.target
            loc = Loc(target, self.reg_of(base), 0, base.type.space)
            if isinstance(target, ArrayType):
                return self.element(loc, index, node)
            i = self.expr(index)
            if isinstance(target, VoidType):
                raise self.error("cannot index a void pointer (use L.cast)", node)
            if isinstance(i, Val) and i.kind == CONST or isinstance(i, Static):
                k = self.const_int(i, node)
                return Loc(target, loc.base, k * target.size, loc.space)
            if base.type.space in ("user", "kernel"):  # an address read through the probe helpers: any index
                iv = self.value(i, index)
                if not isinstance(iv.type, IntType):
                    raise self.error(f"a pointer index must be an integer, not {iv.type.name}", index)
                return Loc(target, self.pointer_arith(o.ADD, base, iv, node).reg, 0, base.type.space)
            raise self.error("a pointer takes constant indexes only (p[0]); index arrays instead", node)
        if isinstance(base.type, ArrayType):
            return self.element(base, index, node)
        raise self.error(f"a {base.type.name} cannot be indexed", node)

    def element(self, loc: Loc, index: ast.expr, node: Any) -> Loc:
        t = loc.type
        assert isinstance(t, ArrayType)
        elem = t.elem
        i = self.expr(index)
        if isinstance(i, Static) or isinstance(i, Val) and i.kind == CONST:
            k = self.const_int(i, index)
            if t.count and not 0 <= k < t.count:
                raise self.error(f"index {k} out of range for {t.name}", node)
            relo = None
            if loc.relo is not None:
                relo = loc.relo._replace(access=loc.relo.access + (k,),
                                         local_value=loc.relo.local_value + k * elem.size)
            return Loc(elem, loc.base, loc.off + k * elem.size, loc.space, relo)
        iv = self.value(i, index)
        if not isinstance(iv.type, IntType):
            raise self.error(f"array index must be an integer, not {iv.type.name}", index)
        known = self._known_range(index)
        iv = self.to64(iv)
        if t.count and not (known is not None and known[0] >= 0 and known[1] <= t.count):
            self.emit(o.JMP | o.JGE, iv.reg, 0, 0, t.count, target=self.oob_label())
        r = self.vreg()
        self.mov_reg(r, iv.reg)
        if elem.size & (elem.size - 1) == 0:
            shift = elem.size.bit_length() - 1
            if shift:
                self.emit(o.ALU64 | o.LSH, r, 0, 0, shift)
        else:
            self.emit(o.ALU64 | o.MUL, r, 0, 0, elem.size)
        # pointer += scalar (never scalar += pointer: the verifier tracks the frame of the
        # destination register, and a sub-program's stack pointer must stay its own)
        if loc.base == FP:
            a = self.addr_of(Loc(t, loc.base, loc.off, loc.space))
            self.emit(o.ALU64 | o.ADD | o.X, a.reg, r)
            return Loc(elem, a.reg, 0, loc.space)
        p = self.vreg()
        self.mov_reg(p, loc.base)
        self.emit(o.ALU64 | o.ADD | o.X, p, r)
        return Loc(elem, p, loc.off, loc.space, None)

    def _known_range(self, index: ast.expr) -> Optional[Tuple[int, int]]:
        if isinstance(index, ast.Name):
            var = self.vars.get(index.id)
            if var is not None:
                return var.range
        return None

    def oob_label(self) -> str:
        lbl = getattr(self.fn, "oob", None)
        if lbl is None:
            lbl = self.fn.new_label("oob")
            self.fn.oob = lbl  # type: ignore[attr-defined]
        return lbl

    def x_UnaryOp(self, node: ast.UnaryOp) -> Item:
        if isinstance(node.op, ast.Not):
            return self.cond_value(node)
        v = self.rvalue(node.operand)
        if not isinstance(v.type, IntType):
            raise self.error(f"bad operand type for unary {type(node.op).__name__}: {v.type.name}", node)
        t = promote(v.type)
        if v.kind == CONST:  # a literal operand gives a literal result (Val.literal)
            imm = v.imm if isinstance(node.op, ast.UAdd) else -v.imm if isinstance(node.op, ast.USub) else ~v.imm
            if v.literal and isinstance(node.op, ast.USub) and imm >= -(1 << 63):
                # a negative literal is the number Python reads (-2147483648 is not u32 2147483648)
                return Val.of_literal(imm)
            return Val.const(t, imm, literal=v.literal)
        if isinstance(node.op, ast.UAdd):
            return self.convert(v, t, node)
        v = self.convert(v, t, node)
        if t.size == 8:
            v = self.to64(v)
        r = self.fresh(v)
        w = o.ALU64 if t.size == 8 else o.ALU
        if isinstance(node.op, ast.USub):
            self.emit(w | o.NEG, r.reg)
        else:
            self.emit(w | o.XOR, r.reg, 0, 0, -1)
        return Val.in_reg(t, r.reg, t.size <= 4)

    def x_BinOp(self, node: ast.BinOp) -> Item:
        if isinstance(node.op, ast.Div):
            raise self.error("'/' is not supported (no floating point): use '//' for integer division", node)
        left = self.expr(node.left)
        right = self.expr(node.right)
        if isinstance(node.op, ast.Pow):
            if isinstance(left, (Val, Static)) and isinstance(right, (Val, Static)):
                try:
                    a, b = self.const_int(left), self.const_int(right)
                except CompileError:
                    raise self.error("'**' needs compile-time constants", node) from None
                if b < 0 or b > 64 and abs(a) > 1:  # a float, or past 64 bits (and slow to compute)
                    raise self.error("'**' takes an exponent from 0 to 64 (integers of 64 bits)", node)
                return self.static_value(a ** b, node)
        return self.binop(node.op, self.value(left, node.left), self.value(right, node.right), node)

    def binop(self, op: ast.operator, a: Val, b: Val, node: Any, dst: Optional[int] = None) -> Val:
        """``a op b``; with ``dst`` the result is computed in that register (in-place updates)."""
        code = _ARITH.get(type(op))
        if code is None:
            raise self.error(f"unsupported operator {type(op).__name__}", node)
        if isinstance(a.type, PtrType) or isinstance(b.type, PtrType):
            return self.pointer_arith(code, a, b, node)
        if not isinstance(a.type, IntType) or not isinstance(b.type, IntType):
            raise self.error(f"unsupported operand types: {a.type.name} and {b.type.name}", node)
        shift = code in (o.LSH, o.RSH)
        t = promote(a.type) if shift else common_type(a.type, b.type)
        if a.kind == CONST and b.kind == CONST:
            return Val.const(t, c_arith(code, a.imm, b.imm, t, b.type), literal=a.literal and b.literal)
        w64 = t.size == 8
        cls = o.ALU64 if w64 else o.ALU
        off = 0
        if code in (o.DIV, o.MOD) and t.signed:
            off = 1
        if code == o.RSH and t.signed:
            code = o.ARSH
        if shift:
            bv = b
        else:
            bv = self.convert(b, t, node)
        av = self.convert(a, t, node)
        if w64:
            av = self.to64(av)
            if not shift:
                bv = self.to64(bv)
        if bv.kind == CONST:
            imm = bv.imm
            if shift:
                imm &= t.bits - 1
            elif code in (o.DIV, o.MOD) and imm == 0:  # eBPF's answers: x // 0 == 0, x % 0 == x
                res = Val.const(t, 0) if code == o.DIV else av
                return res if dst is None else self._target(res, dst)
            if not w64 or -(1 << 31) <= imm < (1 << 31):
                r = self._target(av, dst)
                self.emit(cls | code, r.reg, 0, off, wrap(imm, 4, True))
                hz = not w64 or (code == o.RSH and imm >= 32) or (code == o.AND and 0 <= imm)
                return Val.in_reg(t, r.reg, hz)
        breg = self.reg_of(bv)
        r = self._target(av, dst)
        self.emit(cls | code | o.X, r.reg, breg, off)
        return Val.in_reg(t, r.reg, not w64)

    def _target(self, av: Val, dst: Optional[int]) -> Val:
        if dst is None:
            return self.fresh(av)
        if av.kind == CONST:
            self.set_const(dst, av.imm)
        elif av.reg != dst:
            self.mov_reg(dst, av.reg)
        return Val.in_reg(av.type, dst, av.hz)

    def pointer_arith(self, code: int, a: Val, b: Val, node: Any) -> Val:
        if code not in (o.ADD, o.SUB) or not isinstance(a.type, PtrType) or isinstance(b.type, PtrType):
            raise self.error("only pointer + integer and pointer - integer are supported", node)
        self.need_nonnull(a, node)
        scale = max(1, a.type.target.size) if not isinstance(a.type.target, VoidType) else 1
        r = self.fresh(a)
        if b.kind == CONST:
            self.emit(o.ALU64 | code, r.reg, 0, 0, b.imm * scale)
        else:
            bv = self.to64(b)
            if scale != 1:
                s = self.fresh(bv)
                self.emit(o.ALU64 | o.MUL, s.reg, 0, 0, scale)
                bv = s
            self.emit(o.ALU64 | code | o.X, r.reg, bv.reg)
        return Val.in_reg(a.type, r.reg)

    def x_BoolOp(self, node: ast.BoolOp) -> Item:
        return self.cond_value(node)

    def x_Compare(self, node: ast.Compare) -> Item:
        if len(node.ops) == 1 and not isinstance(node.ops[0], (ast.Is, ast.IsNot, ast.In, ast.NotIn)):
            left = self.expr(node.left)
            if strings.is_text(left):
                return strings.compare_value(self, node.ops[0], left, self.expr(node.comparators[0]), node)
            a = self.value(left, node.left)
            right = self.expr(node.comparators[0])
            if strings.is_text(right):
                return strings.compare_value(self, node.ops[0], a, right, node)
            b = self.value(right, node.comparators[0])
            if a.kind == CONST and b.kind == CONST and isinstance(a.type, IntType) and isinstance(b.type, IntType):
                return Val.const(boolean, int(self._fold_compare(node.ops[0], a, b)))
            return self._compare_value(node.ops[0], a, b, node)
        return self.cond_value(node)

    def _compare_value(self, op: ast.cmpop, a: Val, b: Val, node: Any) -> Val:
        r = self.vreg()
        end = self.new_label("c")
        self.emit(o.ALU64 | o.MOV, r, 0, 0, 1)
        self.compare_jump(op, a, b, end, True, node)
        self.emit(o.ALU64 | o.MOV, r, 0, 0, 0)
        self.label(end)
        return Val.in_reg(boolean, r, True)

    def _fold_compare(self, op: ast.cmpop, a: Val, b: Val) -> bool:
        assert isinstance(a.type, IntType) and isinstance(b.type, IntType)
        t = common_type(a.type, b.type)
        x, y = t.wrap(a.imm), t.wrap(b.imm)
        return {ast.Eq: x == y, ast.NotEq: x != y, ast.Lt: x < y, ast.LtE: x <= y, ast.Gt: x > y,
                ast.GtE: x >= y}[type(op)]

    def x_IfExp(self, node: ast.IfExp) -> Item:
        t_facts, f_facts = self.facts(node.test)
        folded = self.fold_test(node.test)
        if folded is not None:
            return self.expr(node.body if folded else node.orelse)
        r = self.vreg()
        other = self.new_label("ie")
        end = self.new_label("ie")
        saved = set(self.nonnull)
        self.cond(node.test, other, False)
        self.nonnull = saved | t_facts
        a = self.rvalue(node.body)
        a64 = self.to64(a) if isinstance(a.type, IntType) else a
        if a64.kind == CONST:
            self.set_const(r, a64.imm)
        else:
            self.mov_reg(r, a64.reg)
        self.jump(end)
        self.label(other)
        self.nonnull = saved | f_facts
        b = self.rvalue(node.orelse)
        b64 = self.to64(b) if isinstance(b.type, IntType) else b
        if b64.kind == CONST:
            self.set_const(r, b64.imm)
        else:
            self.mov_reg(r, b64.reg)
        self.label(end)
        self.nonnull = saved
        if isinstance(a.type, IntType) and isinstance(b.type, IntType):
            return Val.in_reg(common_type(a.type, b.type), r)
        if isinstance(a.type, PtrType) or isinstance(b.type, PtrType):
            pt = a.type if isinstance(a.type, PtrType) else b.type
            assert isinstance(pt, PtrType)
            nullable = (isinstance(a.type, PtrType) and a.type.nullable) or (isinstance(b.type, PtrType)
                                                                             and b.type.nullable)
            nullable = nullable or not (isinstance(a.type, PtrType) and isinstance(b.type, PtrType))
            return Val.in_reg(PtrType(pt.target, pt.space, nullable), r)
        raise self.error("both branches of a conditional expression must be integers or pointers", node)

    def x_Call(self, node: ast.Call) -> Item:
        from ebpf.lang.intrinsics import call

        return call(self, node)

    def x_Tuple(self, node: ast.Tuple) -> Item:
        items = [self.expr(e) for e in node.elts]
        if all(isinstance(i, Static) or isinstance(i, Val) and i.kind == CONST for i in items):
            return Static(tuple(i.obj if isinstance(i, Static) else i.imm for i in items))  # type: ignore[union-attr]
        raise self.error("tuples of run-time values are not supported", node)

    x_List = x_Tuple

    def x_JoinedStr(self, node: ast.JoinedStr) -> Item:
        raise self.error("f-strings are not supported: use L.printk(\"fmt %d\", value)", node)

    # ================================================================== conditions

    def fold_test(self, node: ast.expr) -> Optional[bool]:
        """The truth of a condition known at compile time (constants, Python globals), or None."""
        if isinstance(node, ast.Constant):
            return bool(node.value)
        if isinstance(node, ast.Name) and node.id not in self.vars:
            obj = self.src.lookup(node.id)
            if isinstance(obj, (bool, int)) or obj is None:
                return bool(obj)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.fold_test(node.operand)
            return None if inner is None else not inner
        return None

    def facts(self, node: ast.expr) -> Tuple[Set[str], Set[str]]:
        """Names known non-None when ``node`` is true, and when it is false."""
        if isinstance(node, ast.Name):
            return {node.id}, set()
        if isinstance(node, ast.NamedExpr):
            return {node.target.id}, set()
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = node.left, node.comparators[0]
            if isinstance(left, ast.NamedExpr):
                left = left.target
            if isinstance(left, ast.Name) and isinstance(right, ast.Constant) and right.value is None:
                if isinstance(node.ops[0], (ast.Is, ast.Eq)):
                    return set(), {left.id}
                if isinstance(node.ops[0], (ast.IsNot, ast.NotEq)):
                    return {left.id}, set()
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            t, f = self.facts(node.operand)
            return f, t
        if isinstance(node, ast.BoolOp):
            parts = [self.facts(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return set().union(*(p[0] for p in parts)), set.intersection(*(p[1] for p in parts))
            return set.intersection(*(p[0] for p in parts)), set().union(*(p[1] for p in parts))
        return set(), set()

    def cond(self, node: ast.expr, target: str, jump_if: bool) -> None:
        """Jump to ``target`` when ``node``'s truth is ``jump_if``; fall through otherwise."""
        folded = self.fold_test(node)
        if folded is not None:
            if folded == jump_if:
                self.jump(target)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.cond(node.operand, target, not jump_if)
            return
        if isinstance(node, ast.BoolOp):
            saved = set(self.nonnull)
            is_and = isinstance(node.op, ast.And)
            if is_and != jump_if:  # and/False or or/True: every operand can jump straight there
                for v in node.values:
                    self.cond(v, target, jump_if)
                    t, f = self.facts(v)
                    self.nonnull |= t if is_and else f
            else:
                skip = self.new_label("s")
                for v in node.values[:-1]:
                    self.cond(v, skip, not jump_if)
                    t, f = self.facts(v)
                    self.nonnull |= t if is_and else f
                self.cond(node.values[-1], target, jump_if)
                self.label(skip)
            self.nonnull = saved
            return
        if isinstance(node, ast.Compare):
            self.compare_chain(node, target, jump_if)
            return
        val = self.value(self.expr(node), node)
        if val.kind == CONST:
            if bool(val.imm) == jump_if:
                self.jump(target)
            return
        w32 = isinstance(val.type, IntType) and val.type.size <= 4
        self.emit((o.JMP32 if w32 else o.JMP) | (o.JNE if jump_if else o.JEQ), val.reg, 0, 0, 0, target=target)

    def compare_chain(self, node: ast.Compare, target: str, jump_if: bool) -> None:
        ops = node.ops
        if len(ops) == 1:
            self.compare_one(ops[0], node.left, node.comparators[0], target, jump_if, node)
            return
        # a < b < c: (a < b) and (b < c), b evaluated once
        left = self.rvalue(node.left)
        skip = self.new_label("s")
        for i, (op, right_node) in enumerate(zip(ops, node.comparators)):
            right = self.rvalue(right_node)
            if right.kind == REG and i + 1 < len(ops):
                right = self.fresh(right)
            last = i + 1 == len(ops)
            if jump_if:
                if last:
                    self.compare_jump(op, left, right, target, True, node)
                else:
                    self.compare_jump(op, left, right, skip, False, node)
            else:
                self.compare_jump(op, left, right, target, False, node)
            left = right
        self.label(skip)

    def compare_one(self, op: ast.cmpop, left_node: ast.expr, right_node: ast.expr, target: str, jump_if: bool,
                    node: Any) -> None:
        from ebpf.lang.collection import MapDecl

        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(right_node, ast.Constant) and right_node.value is None):
                raise self.error("'is' compares with None only", node)
            v = self.rvalue(left_node)
            if not isinstance(v.type, PtrType):
                raise self.error(f"only pointers can be None; this is a {v.type.name}", node)
            want_null = isinstance(op, ast.Is) == jump_if
            self.emit(o.JMP | (o.JEQ if want_null else o.JNE), self.reg_of(v), 0, 0, 0, target=target)
            return
        if isinstance(op, (ast.In, ast.NotIn)):
            right = self.expr(right_node)
            positive = isinstance(op, ast.In) == jump_if
            if isinstance(right, Static) and isinstance(right.obj, MapDecl):
                from ebpf.lang.intrinsics import map_lookup

                p = map_lookup(self, right.obj, self.expr(left_node), node)
                self.emit(o.JMP | (o.JNE if positive else o.JEQ), p.reg, 0, 0, 0, target=target)
                return
            if isinstance(right, Static) and isinstance(right.obj, (tuple, list, set, frozenset, range)):
                left = self.expr(left_node)
                if strings.is_text(left):
                    strings.member_jump(self, left, list(right.obj), positive, target, node)
                    return
                v = self.value(left, left_node)
                consts = [Val.const(literal_type(int(c)), int(c)) for c in right.obj]
                if positive:
                    for c in consts:
                        self.compare_jump(ast.Eq(), v, c, target, True, node)
                else:
                    skip = self.new_label("s")
                    for c in consts:
                        self.compare_jump(ast.Eq(), v, c, skip, True, node)
                    self.jump(target)
                    self.label(skip)
                return
            raise self.error("'in' works with a map or a constant tuple", node)
        left = self.expr(left_node)
        if strings.is_text(left):
            strings.compare_jump(self, op, left, self.expr(right_node), target, jump_if, node)
            return
        a = self.value(left, left_node)
        right = self.expr(right_node)
        if strings.is_text(right):
            strings.compare_jump(self, op, a, right, target, jump_if, node)
            return
        b = self.value(right, right_node)
        self.compare_jump(op, a, b, target, jump_if, node)

    def compare_jump(self, op: ast.cmpop, a: Val, b: Val, target: str, jump_if: bool, node: Any) -> None:
        if isinstance(a.type, PtrType) or isinstance(b.type, PtrType):
            code = _CMP_U.get(type(op))
            if code is None:
                raise self.error("unsupported pointer comparison", node)
            w32 = False
            t: Optional[IntType] = None
        else:
            if not isinstance(a.type, IntType) or not isinstance(b.type, IntType):
                raise self.error(f"cannot compare {a.type.name} and {b.type.name}", node)
            t = common_type(a.type, b.type)
            if a.kind == CONST and b.kind == CONST:
                if self._fold_compare(op, a, b) == jump_if:
                    self.jump(target)
                return
            code = (_CMP_S if t.signed else _CMP_U)[type(op)]
            # without jmp32 (ISA v2) 32-bit values are compared widened: a zero-extended register
            # is compared itself, so the verifier learns the bounds of the value the code uses
            w32 = t.size <= 4 and self.unit.isa >= 3
            a = self.convert(a, t, node)
            b = self.convert(b, t, node)
            if not w32:
                a, b = self.to64(a), self.to64(b)
        if not jump_if:
            code = _NEGATE[code]
        if a.kind == CONST:
            a, b = b, a
            code = _SWAP[code]
        cls = o.JMP32 if w32 else o.JMP
        if b.kind == CONST:
            imm = b.imm
            if w32:
                self.emit(cls | code, a.reg, 0, 0, wrap(imm, 4, True), target=target)
                return
            if -(1 << 31) <= wrap(imm, 8, True) < (1 << 31):
                self.emit(cls | code, a.reg, 0, 0, wrap(imm, 8, True), target=target)
                return
        self.emit(cls | code | o.X, a.reg, self.reg_of(b), 0, 0, target=target)

    def cond_value(self, node: ast.expr) -> Val:
        folded = self.fold_test(node)
        if folded is not None:
            return Val.const(boolean, int(folded))
        r = self.vreg()
        end = self.new_label("bv")
        self.emit(o.ALU64 | o.MOV, r, 0, 0, 0)
        self.cond(node, end, False)
        self.emit(o.ALU64 | o.MOV, r, 0, 0, 1)
        self.label(end)
        return Val.in_reg(boolean, r, True)


def c_arith(code: int, a: int, b: int, t: IntType, bt: Type) -> int:
    """Constant folding with the documented C/eBPF semantics (see ebpf.lang.types)."""
    x = t.wrap(a)
    if code in (o.LSH, o.RSH):
        n = b & (t.bits - 1)
        if code == o.LSH:
            return t.wrap(x << n)
        return t.wrap(x >> n) if t.signed else (x & ((1 << t.bits) - 1)) >> n
    y = t.wrap(b)
    if code == o.ADD:
        return t.wrap(x + y)
    if code == o.SUB:
        return t.wrap(x - y)
    if code == o.MUL:
        return t.wrap(x * y)
    if code == o.AND:
        return t.wrap(x & y)
    if code == o.OR:
        return t.wrap(x | y)
    if code == o.XOR:
        return t.wrap(x ^ y)
    if code == o.DIV:
        if y == 0:
            return 0
        q = abs(x) // abs(y)
        return t.wrap(q if (x < 0) == (y < 0) else -q)
    if code == o.MOD:
        if y == 0:
            return x
        r = abs(x) % abs(y)
        return t.wrap(r if x >= 0 else -r)
    raise ValueError(code)
