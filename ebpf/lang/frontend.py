"""The front end: a Python function's AST to IR, type-checked as it goes.

One pass over the AST. Expressions give :mod:`ebpf.lang.values` items; statements emit IR
into an :class:`ebpf.lang.ir.Function`. The rules the verifier will enforce are checked here
first, with the Python line in the message: optional pointers (map lookups, ring buffer
reservations) must be tested against ``None`` before use (flow-sensitively: ``if p is None:
return 0`` narrows ``p`` for the rest of the block, ``p is not None and p.x`` narrows inside
the condition), loops need compile-time bounds, stack objects are zeroed when created, array
indexes that are not constants are bounds-checked (an index out of range ends the program,
returning 0).

Integer semantics are those documented in :mod:`ebpf.lang.types`. Values of 4 bytes or less
live in the low half of a register and are computed with 32-bit instructions; 8-byte values
with 64-bit ones.
"""

from __future__ import annotations

import ast
from typing import Any, List, Optional, Set

from ebpf.asm import opcodes as o
from ebpf.errors import CompileError
from ebpf.lang.expressions import Expressions, c_arith
from ebpf.lang.lowering import Unit, Var
from ebpf.lang.types import (
    ArrayType,
    IntType,
    KernelType,
    PtrType,
    StructType,
    Type,
    VoidType,
    brief,
    common_type,
    i32,
    i64,
    promote,
    type_of,
    u8,
    u16,
    u32,
    void,
)
from ebpf.lang.values import CONST, REG, Item, Loc, Static, Val, local_type

MAX_INLINE_DEPTH = 16
MAX_UNROLL = 4096


class Compiler(Expressions):
    """Compiles one Python function (a program, a sub-program, or an inlined body)."""

    # ================================================================== statements

    def body(self, stmts: List[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, node: ast.stmt) -> None:
        method = getattr(self, "s_" + type(node).__name__, None)
        if method is None:
            raise self.error(f"unsupported statement: {type(node).__name__}", node)
        saved = self.cur
        self.cur = node
        mark = self.fn.frame.temp_mark()
        self.enter(node)
        try:
            method(node)
        finally:
            self.leave()
        self.cur = saved
        self.fn.frame.release_temps(mark)

    def s_Pass(self, node: ast.Pass) -> None:
        pass

    def s_Global(self, node: ast.Global) -> None:
        pass

    s_Nonlocal = s_Global

    def s_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring
        if not isinstance(node.value, (ast.Call, ast.NamedExpr)):
            raise self.error("this expression has no effect", node)
        self.expr(node.value)

    def s_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple):
            raise self.error("tuple unpacking is not supported: assign one name at a time", node)
        item = self.expr(node.value)
        if isinstance(item, Val) and item.kind == REG and len(node.targets) > 1:
            item = self.fresh(item)
        for target in node.targets:
            self.assign(target, item, node)

    def s_AnnAssign(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise self.error("annotations only declare local variables", node)
        t = self.annotation_type(node.annotation)
        name = node.target.id
        if name in self.vars:
            raise self.error(f"{name!r} is already declared", node)
        if node.value is None:
            if isinstance(t, (StructType, ArrayType)):
                self.bind(name, Var(name, t, self.stack_object(t)))
            else:
                r = self.vreg()
                self.set_const(r, 0)
                self.bind(name, Var(name, t, Val.in_reg(t, r, True)))
            return
        item = self.expr(node.value)
        if isinstance(t, (StructType, ArrayType)):
            loc = self.stack_object(t, zero=not isinstance(item, Loc))
            if isinstance(item, Loc):
                self.copy(loc, item, node)
            else:
                raise self.error(f"cannot initialise a {t.name} from {self.value(item, node).type.name}", node)
            self.bind(name, Var(name, t, loc))
            return
        v = self.convert(self.value(item, node.value), t, node)
        r = self.vreg()
        self._move_into(r, v, t)
        self.bind(name, Var(name, t, Val.in_reg(t, r, self._hz_for(t))))
        if isinstance(v.type, PtrType) and not v.type.nullable:
            self.nonnull.add(name)

    def annotation_type(self, node: ast.expr) -> Type:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                parsed = ast.parse(node.value.strip(), mode="eval").body
            except SyntaxError:
                raise self.error(f"cannot parse the annotation {brief(repr(node.value))}", node) from None
            for inner in ast.walk(parsed):  # errors point at the string, not at line 1 of the file
                ast.copy_location(inner, node)
            node = parsed
        item = self.expr(node)
        if isinstance(item, Static):
            try:
                return type_of(item.obj)
            except TypeError as e:
                raise self.error(str(e), node) from None
        raise self.error("an annotation must name a type", node)

    def _hz_for(self, t: Type) -> bool:
        return isinstance(t, IntType) and not t.signed and t.size <= 4

    def _move_into(self, r: int, v: Val, t: Type) -> None:
        """r = v, keeping the register invariants of a variable of type t."""
        if v.kind == CONST:
            self.set_const(r, v.imm, not (isinstance(t, IntType) and t.size <= 4))
            return
        if self._hz_for(t) and not v.hz:
            self.mov_reg(r, v.reg, False)
            return
        self.mov_reg(r, v.reg)

    def assign(self, target: ast.expr, item: Item, node: Any) -> None:
        if isinstance(target, ast.Name):
            self.assign_name(target.id, item, node)
            return
        if isinstance(target, ast.Subscript):
            base = self.expr(target.value)
            from ebpf.lang.collection import MapDecl

            index = target.slice
            if isinstance(index, ast.Index):
                index = index.value  # type: ignore[attr-defined]
            if isinstance(base, Static) and isinstance(base.obj, MapDecl):
                from ebpf.lang.intrinsics import map_update

                map_update(self, base.obj, self.expr(index), item, 0, node)
                return
            loc = self.subscript(base, index, target)
        elif isinstance(target, ast.Attribute):
            loc = self.expr(target)
        else:
            raise self.error(f"cannot assign to {type(target).__name__}", node)
        if not isinstance(loc, Loc):
            raise self.error("cannot assign to this expression", target)
        if loc.space == "rodata":
            raise self.error(".rodata globals are read-only in programs (set them at load time)", node)
        if isinstance(loc.type, (StructType, ArrayType, KernelType)):
            if isinstance(item, Loc):
                self.copy(loc, item, node)
                return
            if isinstance(item, Static) and isinstance(item.obj, (str, bytes)) and isinstance(loc.type, ArrayType):
                self.store_bytes(loc, item.obj.encode() if isinstance(item.obj, str) else item.obj)
                return
            raise self.error(f"cannot assign {self.value(item, node).type.name} to a {loc.type.name}", node)
        self.store(loc, self.value(item, node), node)

    def store_bytes(self, loc: Loc, data: bytes) -> None:
        size = loc.type.size
        data = data[:size].ljust(size, b"\0")
        i = 0
        while i < size:
            # the widest immediate store aligned where it lands (the verifier wants aligned stack accesses)
            n = next(c for c in (4, 2, 1) if c <= size - i and (loc.off + i) % c == 0)
            t = {4: u32, 2: u16, 1: u8}[n]
            word = int.from_bytes(data[i:i + n], "little")
            self.store(Loc(t, loc.base, loc.off + i, loc.space), Val.const(u32, word))
            i += n

    def assign_name(self, name: str, item: Item, node: Any) -> None:
        var = self.vars.get(name)
        self.nonnull.discard(name)
        if isinstance(item, Static):
            if var is None and not isinstance(item.obj, (int, bool)) and item.obj is not None:
                self.bind(name, Var(name, void, item))  # a compile-time alias (a map, a type...)
                return
            item = self.value(item, node)
        if isinstance(item, Loc) and isinstance(item.type, (StructType, ArrayType, KernelType)):
            if var is not None and not isinstance(var.item, Loc):
                raise self.error(f"{name!r} holds a {var.type.name}, not a {item.type.name}", node)
            if var is not None and var.type != item.type:
                raise self.error(f"{name!r} holds a {var.type.name}, not a {item.type.name}", node)
            self.bind(name, Var(name, item.type, item))
            return
        v = self.value(item, node)
        if var is None:
            t = local_type(v)
            if t is not v.type:
                v = self.convert(v, t, node)
            if isinstance(t, PtrType) and v.kind == CONST:
                raise self.error(f"cannot infer the type of {name!r} from None: annotate it", node)
            r = self.vreg()
            self._move_into(r, v, t)
            self.bind(name, Var(name, t, Val.in_reg(t, r, self._hz_for(t))))
        else:
            if isinstance(var.item, Static) or isinstance(var.item, Loc):
                raise self.error(f"{name!r} cannot be reassigned with a {v.type.name}", node)
            t = var.type
            if isinstance(t, PtrType) and isinstance(v.type, PtrType) and v.type.nullable and not t.nullable:
                t = var.type = PtrType(t.target, t.space, True)
                var.item = Val.in_reg(t, var.item.reg)
            cv = self.convert(v, PtrType(t.target, t.space, True) if isinstance(t, PtrType) else t, node)
            self._move_into(var.item.reg, cv, t)
            var.range = None
            self.bound.add(name)
        if isinstance(v.type, PtrType) and not v.type.nullable:
            self.nonnull.add(name)

    def s_AugAssign(self, node: ast.AugAssign) -> None:
        from ebpf.lang.collection import MapDecl
        from ebpf.lang.intrinsics import atomic_update, map_increment

        target = node.target
        if isinstance(target, ast.Name):
            var = self.vars.get(target.id)
            if var is None or not isinstance(var.item, Val):
                obj = self.src.lookup(target.id) if var is None else None
                if type(obj).__name__ == "GlobalDecl":
                    gloc = self.global_loc(obj)
                    if gloc.space == "rodata":
                        raise self.error(".rodata globals are read-only in programs", node)
                    amount = self.rvalue(node.value)
                    if not atomic_update(self, gloc, node.op, amount, node):
                        self.store(gloc, self.binop(node.op, self.load(gloc), amount, node), node)
                    return
                raise self.error(f"{target.id!r} is not a local scalar variable", node)
            if target.id not in self.bound:
                raise self.error(f"{target.id!r} may be unassigned here: assign it on every path before this use",
                                 node)
            cur = var.item
            rhs = self.rvalue(node.value)
            if isinstance(var.type, IntType) and isinstance(rhs.type, IntType):
                shift = isinstance(node.op, (ast.LShift, ast.RShift))
                t_op = promote(var.type) if shift else common_type(var.type, rhs.type)
                if t_op == var.type:
                    self.binop(node.op, cur, rhs, node, dst=cur.reg)
                    var.range = None
                    return
            res = self.binop(node.op, cur, rhs, node)
            res = self.convert(res, var.type, node)
            self._move_into(cur.reg, res, var.type)
            var.range = None
            return
        if isinstance(target, ast.Subscript):
            base = self.expr(target.value)
            index = target.slice
            if isinstance(index, ast.Index):
                index = index.value  # type: ignore[attr-defined]
            if isinstance(base, Static) and isinstance(base.obj, MapDecl):
                if isinstance(node.op, (ast.Add, ast.Sub)):
                    amount = self.rvalue(node.value)
                    if isinstance(node.op, ast.Sub):
                        amount = self.binop(ast.Sub(), Val.const(i32, 0), amount, node)
                    map_increment(self, base.obj, self.expr(index), amount, node)
                    return
                raise self.error("only += and -= apply to map elements (or use m.get())", node)
            loc: Item = self.subscript(base, index, target)
        else:
            loc = self.expr(target)
        if not isinstance(loc, Loc):
            raise self.error("cannot assign to this expression", target)
        if loc.space == "rodata":
            raise self.error(".rodata globals are read-only in programs", node)
        amount = self.rvalue(node.value)
        if not atomic_update(self, loc, node.op, amount, node):
            self.store(loc, self.binop(node.op, self.load(loc, node), amount, node), node)

    def s_Delete(self, node: ast.Delete) -> None:
        from ebpf.lang.collection import MapDecl
        from ebpf.lang.intrinsics import map_delete

        for t in node.targets:
            if isinstance(t, ast.Subscript):
                base = self.expr(t.value)
                if isinstance(base, Static) and isinstance(base.obj, MapDecl):
                    index = t.slice
                    if isinstance(index, ast.Index):
                        index = index.value  # type: ignore[attr-defined]
                    map_delete(self, base.obj, self.expr(index), node)
                    continue
            raise self.error("del works on map elements only (del m[key])", node)

    def s_If(self, node: ast.If) -> None:
        folded = self.fold_test(node.test)
        if folded is not None:
            self.body(node.body if folded else node.orelse)
            return
        t_facts, f_facts = self.facts(node.test)
        saved = set(self.nonnull)
        bound0 = set(self.bound)
        other = self.new_label("else")
        self.cond(node.test, other, False)
        self.nonnull = saved | t_facts
        self.reachable = True
        self.body(node.body)
        body_state, body_reach = set(self.nonnull), self.reachable
        body_bound = set(self.bound)
        self.bound = set(bound0)
        if node.orelse:
            end = self.new_label("endif")
            if body_reach:
                self.jump(end)
            self.label(other)
            self.nonnull = saved | f_facts
            self.reachable = True
            self.body(node.orelse)
            self.label(end)
        else:
            self.label(other)
            self.nonnull = saved | f_facts
            self.reachable = True
        else_state, else_reach = set(self.nonnull), self.reachable
        else_bound = set(self.bound)
        if body_reach and else_reach:
            self.nonnull = body_state & else_state
            self.bound = body_bound & else_bound
        elif body_reach:
            self.nonnull, self.bound = body_state, body_bound
        elif else_reach:
            self.nonnull, self.bound = else_state, else_bound
        self.reachable = body_reach or else_reach

    def _assigned_names(self, stmts: List[ast.stmt]) -> Set[str]:
        names: Set[str] = set()
        for s in stmts:
            for n in ast.walk(s):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    names.add(n.id)
                elif isinstance(n, ast.NamedExpr):
                    names.add(n.target.id)
                elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
                    names.add(n.target.id)
        return names

    def s_For(self, node: ast.For) -> None:
        if node.orelse:
            raise self.error("for ... else is not supported", node)
        if not isinstance(node.target, ast.Name):
            raise self.error("the loop variable must be a plain name", node)
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" \
                and "range" not in self.vars:
            self.range_loop(node, it)
            return
        seq = self.expr(it)
        if isinstance(seq, Static) and isinstance(seq.obj, (tuple, list, range)):
            self.unrolled_loop(node, list(seq.obj))
            return
        raise self.error("loops are `for i in range(N)` with a constant N, or over a constant tuple", node)

    def range_loop(self, node: ast.For, call: ast.Call) -> None:
        args = []
        for a in call.args:
            item = self.expr(a)
            try:
                args.append(self.const_int(item, a))
            except CompileError:
                raise self.error(
                    "unbounded loop: range() needs compile-time constant bounds "
                    "(loop to a constant maximum and `break` when done)", a) from None
        if not 1 <= len(args) <= 3:
            raise self.error("range() takes 1 to 3 arguments", call)
        start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) > 2 else 1)
        if step == 0:
            raise self.error("range() step must not be zero", call)
        if not range(start, stop, step):
            return
        assert isinstance(node.target, ast.Name)
        name = node.target.id
        assigned = self._assigned_names(node.body)
        if name in assigned:
            raise self.error(f"the loop variable {name!r} must not be assigned in the loop", node)
        t = i64
        r = self.vreg()
        self.set_const(r, start)
        old = self.vars.get(name)
        var = Var(name, t, Val.in_reg(t, r))
        rng = range(start, stop, step)
        var.range = (min(rng[0], rng[-1]), max(rng[0], rng[-1]) + 1)
        self.bind(name, var)
        bound_before = set(self.bound)
        top, cont, brk = self.new_label("for"), self.new_label("cont"), self.new_label("brk")
        self.nonnull -= assigned
        self.label(top)
        self.loops.append((cont, brk))
        self.reachable = True
        self.body(node.body)
        self.loops.pop()
        self.label(cont)
        self.emit(o.ALU64 | o.ADD, r, 0, 0, step)
        self.emit(o.JMP | (o.JSLT if step > 0 else o.JSGT), r, 0, 0, stop, target=top)
        self.label(brk)
        self.reachable = True
        self.nonnull -= assigned
        self.bound = bound_before
        if old is not None:
            self.vars[name] = old
        else:
            var.range = None
            self.bound.discard(name)

    def unrolled_loop(self, node: ast.For, values: List[Any]) -> None:
        if len(values) > MAX_UNROLL:
            raise self.error(f"a constant sequence of {len(values)} items is too long to unroll", node)
        assert isinstance(node.target, ast.Name)
        name = node.target.id
        brk = self.new_label("brk")
        bound_before = set(self.bound)
        for value in values:
            cont = self.new_label("cont")
            self.vars.pop(name, None)
            if isinstance(value, int):
                lit = Val.of_literal(value)
                self.bind(name, Var(name, lit.type, lit))
            else:
                self.bind(name, Var(name, void, Static(value)))
            self.loops.append((cont, brk))
            self.reachable = True
            self.body(node.body)
            self.loops.pop()
            self.label(cont)
        self.vars.pop(name, None)
        self.label(brk)
        self.reachable = True
        self.bound = bound_before

    def s_While(self, node: ast.While) -> None:
        test = node.test
        bound: Optional[int] = None
        if isinstance(test, ast.Call) and len(test.args) == 2:
            fn = self.expr(test.func)
            if isinstance(fn, Static) and getattr(fn.obj, "_ebpf_intrinsic", "") == "bounded":
                bound = self.const_int(self.expr(test.args[1]), test.args[1])
                test = test.args[0]
        if bound is None:
            raise self.error(
                "unbounded loop: write `while L.bounded(cond, N):` (at most N iterations) "
                "or `for i in range(N):`", node)
        if node.orelse:
            raise self.error("while ... else is not supported", node)
        assigned = self._assigned_names(node.body)
        self.nonnull -= assigned
        bound_before = set(self.bound)
        count = self.vreg()
        self.set_const(count, 0)
        top, cont, brk = self.new_label("while"), self.new_label("cont"), self.new_label("brk")
        self.label(top)
        self.cond(test, brk, False)
        saved = set(self.nonnull)
        self.nonnull |= self.facts(test)[0]
        self.loops.append((cont, brk))
        self.reachable = True
        self.body(node.body)
        self.loops.pop()
        self.nonnull = saved
        self.label(cont)
        self.emit(o.ALU64 | o.ADD, count, 0, 0, 1)
        self.emit(o.JMP | o.JLT, count, 0, 0, bound, target=top)
        self.label(brk)
        self.reachable = True
        self.bound = bound_before

    def s_Break(self, node: ast.Break) -> None:
        if not self.loops:
            raise self.error("'break' outside a loop", node)
        self.jump(self.loops[-1][1])
        self.reachable = False

    def s_Continue(self, node: ast.Continue) -> None:
        if not self.loops:
            raise self.error("'continue' outside a loop", node)
        self.jump(self.loops[-1][0])
        self.reachable = False

    def s_Return(self, node: ast.Return) -> None:
        if self.role == "inline":
            self.inline_return(node)
            return
        if node.value is None:
            self.set_const(0, 0)
        else:
            item = self.expr(node.value)
            v = self.value(item, node.value)
            if self.ret_type is not None and not isinstance(self.ret_type, VoidType):
                v = self.convert(v, self.ret_type, node)
            if isinstance(v.type, PtrType):
                self.need_nonnull(v, node.value) if self.role == "main" else None
            elif not isinstance(v.type, IntType):
                raise self.error(f"cannot return a {v.type.name}", node)
            v = self.to64(v) if isinstance(v.type, IntType) else v
            if v.kind == CONST:
                self.set_const(0, v.imm)
            else:
                self.mov_reg(0, v.reg)
        self.emit(o.JMP | o.EXIT)
        self.reachable = False

    def inline_return(self, node: ast.Return) -> None:
        assert self.ret_label is not None
        if node.value is not None:
            v = self.rvalue(node.value)
            if self.ret_type is None:
                self.ret_type = self.ret_hint or v.type
                if isinstance(v.type, IntType) and v.kind == CONST and self.ret_hint is None:
                    self.ret_type = promote(v.type)
            v = self.convert(v, self.ret_type, node)
            v = self.to64(v) if isinstance(v.type, IntType) else v
            if v.kind == CONST:
                self.set_const(self.ret_reg, v.imm)
            else:
                self.mov_reg(self.ret_reg, v.reg)
        self.jump(self.ret_label)
        self.reachable = False

    def s_Assert(self, node: ast.Assert) -> None:
        raise self.error("assert is not supported: use `if not cond: return 0`", node)

    # ================================================================== function bodies

    def compile_main(self) -> None:
        """The program's function: its one parameter (if any) is the typed context."""
        tree = self.src.tree
        params = tree.args.args
        if len(params) > 1 or tree.args.vararg or tree.args.kwarg or tree.args.kwonlyargs:
            raise self.error("a program takes one parameter: its context", tree)
        ctx_reg = self.vreg()
        self.cur = tree
        self.emit(o.ALU64 | o.MOV | o.X, ctx_reg, 1)
        self.ctx = Val.in_reg(self.unit.ctx_type, ctx_reg)
        if params:
            self.bind(params[0].arg, Var(params[0].arg, self.unit.ctx_type, self.ctx))
        self.ret_type = None
        self.body(tree.body)
        self.finish()

    def compile_sub(self, param_types: List[Type], ret: Type) -> None:
        tree = self.src.tree
        self.cur = tree
        self.ret_type = ret
        for i, (p, t) in enumerate(zip(tree.args.args, param_types)):
            r = self.vreg()
            self.mov_reg(r, i + 1)
            if isinstance(t, (StructType, ArrayType)):
                self.bind(p.arg, Var(p.arg, t, Loc(t, r, 0, "any")))
            else:
                self.bind(p.arg, Var(p.arg, t, Val.in_reg(t, r, False)))
                if isinstance(t, PtrType) and not t.nullable:
                    self.nonnull.add(p.arg)
        self.body(tree.body)
        self.finish()

    def finish(self) -> None:
        if self.reachable:
            self.cur = self.src.tree.body[-1] if self.src.tree.body else self.src.tree
            self.set_const(0, 0)
            self.emit(o.JMP | o.EXIT)
        oob = getattr(self.fn, "oob", None)
        if oob is not None:
            self.label(oob)
            self.set_const(0, 0)
            self.emit(o.JMP | o.EXIT)
        if self.fn.frame.depth > 512:
            raise self.error(f"{self.fn.name} needs {self.fn.frame.depth} bytes of stack; eBPF allows 512",
                             self.src.tree)


__all__ = ["Compiler", "Unit", "Var", "c_arith", "MAX_INLINE_DEPTH"]
