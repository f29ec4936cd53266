"""Differential test of the DSL compiler: the kernel runs generated functions, CPython checks them.

Hundreds of random functions (integer arithmetic of every width and signedness, shifts,
division, comparisons and chains, and/or/not, conditional expressions, casts, locals, if/else,
for and bounded while loops with break/continue, arrays with computed indexes, struct fields)
are written as DSL source, compiled, and run in the kernel through BPF_PROG_TEST_RUN on many
inputs. The expected result of each comes from an independent reference interpreter of the
same generated tree under the semantics documented in :mod:`ebpf.lang.types` (C's, with
eBPF's answers where C has none). Half of the functions are inlined, half are bpf-to-bpf
sub-programs. Every mismatch is reported with its source.

A second generator aims at the types of locals: unannotated locals initialised from typed
constants (``c = u32(0xFFFFFFFF)``), from literals (an ``i64``) and from folded constant
arithmetic, then updated, shifted (by constants and by variables), divided by constants and
compared across signedness. The reference model itself is checked twice: against gcc (the C
it stands for, ``__typeof__`` giving C's own usual arithmetic conversions) and against
hand-computed answers.

Every kernel test runs per instruction-set level (``Collection(isa=)``): v4 (``movsx``,
``sdiv``/``smod``) on every seed, v3 and v2 (sign extension by shifts, signed division by
magnitudes, no ``jmp32`` at v2) on half the seeds each, other halves for each: this kernel
takes all of them.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

M64 = (1 << 64) - 1
Expr = Tuple[Any, ...]
TYPES = {  # name: (size, signed)
    "u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
    "i8": (1, True), "i16": (2, True), "i32": (4, True), "i64": (8, True),
}
BOOL = "bool"
STRUCT_FIELDS = [("fa", "u8"), ("fb", "i16"), ("fc", "u32"), ("fd", "i64"), ("fe", "i8"), ("ff", "u16")]
FUNCS_PER_PROGRAM = 10
PROGRAMS = 40
INPUTS_PER_PROGRAM = 16
TYPED_PROGRAMS = 20
TYPED_FUNCS_PER_PROGRAM = 16
GCC_GROUPS = 40
GCC_EXPRS_PER_GROUP = 40
INTERESTING = [0, 1, 2, 3, 5, 7, 8, 15, 16, 31, 32, 33, 63, 64, 127, 128, 255, 256, 0x7FFF, 0x8000, 0xFFFF,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1, 1 << 63, M64, M64 - 1, 0xFFFFFFFF80000000,
               0x123456789ABCDEF0]


# ---------------------------------------------------------------- the reference semantics


def wrap(v: int, t: str) -> int:
    if t == BOOL:
        return 1 if v else 0
    size, signed = TYPES[t]
    bits = size * 8
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def promote(t: str) -> str:
    if t == BOOL or TYPES[t][0] < 4:
        return "i32"
    return t


def common(a: str, b: str) -> str:
    a, b = promote(a), promote(b)
    if a == b:
        return a
    (sa, ga), (sb, gb) = TYPES[a], TYPES[b]
    if ga == gb:
        return a if sa >= sb else b
    u, s = (a, b) if not ga else (b, a)
    return s if TYPES[s][0] > TYPES[u][0] else u


def literal_type(v: int) -> str:
    for t in ("i32", "u32", "i64", "u64"):
        if wrap(v, t) == v:
            return t
    raise ValueError(v)


def c_div(x: int, y: int) -> int:
    if y == 0:
        return 0
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def c_mod(x: int, y: int) -> int:
    if y == 0:
        return x
    r = abs(x) % abs(y)
    return r if x >= 0 else -r


def binop(op: str, a: Tuple[int, str], b: Tuple[int, str]) -> Tuple[int, str]:
    (x, ta), (y, tb) = a, b
    if op in ("<<", ">>"):
        t = promote(ta)
        bits = TYPES[t][0] * 8
        n = y & (bits - 1)
        xv = wrap(x, t)
        if op == "<<":
            return wrap(xv << n, t), t
        if TYPES[t][1]:
            return wrap(xv >> n, t), t
        return wrap((xv & ((1 << bits) - 1)) >> n, t), t
    t = common(ta, tb)
    xv, yv = wrap(x, t), wrap(y, t)
    r = {"+": lambda: xv + yv, "-": lambda: xv - yv, "*": lambda: xv * yv, "&": lambda: xv & yv,
         "|": lambda: xv | yv, "^": lambda: xv ^ yv, "//": lambda: c_div(xv, yv), "%": lambda: c_mod(xv, yv)}[op]()
    return wrap(r, t), t


def compare(op: str, a: Tuple[int, str], b: Tuple[int, str]) -> int:
    t = common(a[1], b[1])
    x, y = wrap(a[0], t), wrap(b[0], t)
    return int({"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


def folded(cond: Expr) -> Optional[bool]:
    """The truth of a test the compiler decides at compile time (a constant, ``not`` of one):
    ``a if 1 else b`` is then ``a`` itself, with a's type, as in Python."""
    if cond[0] == "const":
        return bool(cond[1])
    if cond[0] == "not":
        inner = folded(cond[1])
        return None if inner is None else not inner
    return None


def is_literal(e: Expr) -> bool:
    """An expression typed by the literal rule only: literals and arithmetic on them alone."""
    if e[0] == "const":
        return True
    if e[0] == "un":
        return is_literal(e[2])
    if e[0] == "bin":
        return is_literal(e[2]) and is_literal(e[3])
    if e[0] == "ifexp":
        f = folded(e[1])
        return f is not None and is_literal(e[2] if f else e[3])
    return False


def local_type(e: Expr, value: Tuple[int, str]) -> str:
    """The type of a local first assigned ``e`` without an annotation: a literal makes an i64
    (u64 when it does not fit), anything else (typed constants included) keeps its type."""
    if is_literal(e):
        return "i64" if wrap(value[0], "i64") == value[0] else "u64"
    return value[1]


# ---------------------------------------------------------------- generated trees

BINOPS = ["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"]
CMPS = ["==", "!=", "<", "<=", ">", ">="]
TYPED_OPS = BINOPS + ["<<", ">>", "//", "%"] * 2  # shifts and divisions twice as often


class Gen:
    """Random functions; ``typed`` mixes typed constants (``u16(65535)``) into every expression."""

    def __init__(self, rng: random.Random, typed: bool = False) -> None:
        self.rng = rng
        self.typed = typed

    def const(self) -> Expr:
        if self.typed and self.rng.random() < 0.6:
            return self.typed_const()
        r = self.rng.random()
        if r < 0.5:
            v = self.rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 13, 31, 32, 33, 63, 100, 255, 256, 1000, 65535, 65536])
        elif r < 0.7:
            v = self.rng.choice([0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 0x123456789, (1 << 63) - 1])
        else:
            v = self.rng.randrange(0, 1 << self.rng.choice([8, 16, 31, 40]))
        return ("const", v)

    def expr(self, names: List[str], depth: int) -> Expr:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.25:
            return ("var", rng.choice(names)) if rng.random() < 0.75 else self.const()
        r = rng.random()
        if r < 0.45:
            return ("bin", rng.choice(BINOPS), self.expr(names, depth - 1), self.expr(names, depth - 1))
        if r < 0.55:
            return ("un", rng.choice(["-", "~"]), self.expr(names, depth - 1))
        if r < 0.65:
            return ("cast", rng.choice(list(TYPES)), self.expr(names, depth - 1))
        if r < 0.75:
            return ("cmp", rng.choice(CMPS), self.expr(names, depth - 1), self.expr(names, depth - 1))
        if r < 0.8:
            return ("chain", rng.choice(CMPS[2:4]), self.expr(names, 0), self.expr(names, 0), self.expr(names, 0))
        if r < 0.85:
            return ("ifexp", self.cond(names, depth - 1), self.expr(names, depth - 1), self.expr(names, depth - 1))
        if r < 0.9:
            return (rng.choice(["min", "max"]), self.expr(names, depth - 1), self.expr(names, depth - 1))
        if r < 0.93:
            return (rng.choice(["abs", "log2l"]), self.expr(names, depth - 1))
        if r < 0.95:
            return ("in", self.expr(names, depth - 1), tuple(rng.sample([0, 1, 2, 7, 255, 0xFFFFFFFF, 1 << 40], 3)))
        return (rng.choice(["and", "or"]), self.expr(names, depth - 1), self.expr(names, depth - 1))

    def cond(self, names: List[str], depth: int) -> Expr:
        r = self.rng.random()
        if r < 0.6:
            return ("cmp", self.rng.choice(CMPS), self.expr(names, depth), self.expr(names, depth))
        if r < 0.75:
            return ("not", self.cond(names, max(0, depth - 1)))
        if r < 0.9:
            return (self.rng.choice(["and", "or"]), self.cond(names, max(0, depth - 1)),
                    self.cond(names, max(0, depth - 1)))
        return self.expr(names, depth)

    @staticmethod
    def number(v: int) -> Expr:
        """``v`` as source writes it: a literal, negated when negative."""
        return ("const", v) if v >= 0 else ("un", "-", ("const", -v))

    def typed_const(self) -> Expr:
        """A cast of a literal to a random type, often at (or just past) the type's limits."""
        rng = self.rng
        t = rng.choice(list(TYPES))
        bits = TYPES[t][0] * 8
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if TYPES[t][1] else (0, (1 << bits) - 1)
        v = rng.choice([0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 255, -1, -2, -7, -128, lo, hi, lo - 1, hi + 1,
                        hi // 2 + 1, rng.randrange(lo, hi + 1), rng.randrange(lo, hi + 1)])
        if abs(v) > M64:
            v = hi
        return ("cast", t, self.number(v))

    def operand(self, names: List[str]) -> Expr:
        """The right side of an update: typed constants, literals, locals, small expressions."""
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            return self.typed_const()
        if r < 0.55:
            return self.number(rng.choice([0, 1, 3, 7, 31, 32, 63, 64, -1, -3, 0xFFFFFFFF, 1 << 32]))
        if r < 0.85:
            return ("var", rng.choice(names))
        return self.expr(names, 1)

    def typed_function(self) -> Dict[str, Any]:
        """Unannotated locals from typed constants, literals and folded constant arithmetic,
        then updated, shifted, divided and compared across widths and signedness."""
        rng = self.rng
        params = [(n, rng.choice(list(TYPES))) for n in "abcd"]
        names = [n for n, _ in params]
        body: List[Tuple[Any, ...]] = []
        lets = ["u", "v", "w"]
        for name in lets:
            r = rng.random()
            if r < 0.5:
                init = self.typed_const()
            elif r < 0.65:
                init = self.number(rng.choice([0, 1, -1, 255, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32,
                                               (1 << 63) - 1, 1 << 63, M64]))
            elif r < 0.8:
                init = ("bin", rng.choice(TYPED_OPS), self.typed_const(),
                        self.typed_const() if rng.random() < 0.6 else self.number(rng.randrange(-40, 70)))
            else:
                init = self.expr(names, 2)
            body.append(("let", name, init))
            names = names + [name]
        for _ in range(rng.randint(1, 4)):
            target = rng.choice(lets)
            r = rng.random()
            if r < 0.45:
                body.append(("aug", target, rng.choice(TYPED_OPS), self.operand(names)))
            elif r < 0.75:
                body.append(("set", target, ("bin", rng.choice(TYPED_OPS), ("var", target), self.operand(names))))
            elif r < 0.9:
                body.append(("set", target, self.expr(names, 2)))
            else:
                body.append(("if", self.cond(names, 1), [("set", target, self.operand(names))], []))
        r = rng.random()
        if r < 0.3:
            ret: Expr = ("var", rng.choice(lets))
        elif r < 0.6:
            ret = ("cmp", rng.choice(CMPS), ("var", rng.choice(lets)), self.operand(names))
        elif r < 0.85:
            ret = ("bin", rng.choice(TYPED_OPS), ("var", rng.choice(lets)), self.operand(names))
        else:
            ret = self.expr(names, 2)
        return {"params": params, "body": body, "ret": ret, "locals": []}

    def function(self) -> Dict[str, Any]:
        rng = self.rng
        params = [(n, rng.choice(list(TYPES))) for n in "abcd"]
        names = [n for n, _ in params]
        body: List[Tuple[Any, ...]] = []
        locals_: List[Tuple[str, str]] = []
        for name in ("x", "y"):
            t = rng.choice(list(TYPES))
            body.append(("decl", name, t, self.expr(names, 2)))
            locals_.append((name, t))
            names = names + [name]
        kinds = rng.sample(["if", "for", "while", "array", "struct", "aug"], k=rng.randint(1, 4))
        for kind in kinds:
            if kind == "if":
                body.append(("if", self.cond(names, 1), [("set", "x", self.expr(names, 2))],
                             [("aug", "y", rng.choice(BINOPS), self.expr(names, 1))] if rng.random() < 0.7 else []))
            elif kind == "aug":
                body.append(("aug", rng.choice(["x", "y"]), rng.choice(BINOPS), self.expr(names, 2)))
            elif kind == "for":
                n = rng.randint(1, 6)
                inner_names = names + ["i"]
                op = rng.choice(["+", "^", "-", "|"])
                stmts: List[Tuple[Any, ...]] = [("aug", "x", op, self.expr(inner_names, 1))]
                if rng.random() < 0.5:
                    stmts.insert(0, ("ifbreak", rng.choice(["break", "continue"]), self.cond(inner_names, 0)))
                body.append(("for", n, stmts))
            elif kind == "while":
                body.append(("while", rng.randint(1, 5), self.expr(names, 1)))
            elif kind == "array":
                et = rng.choice(["u8", "i16", "u32", "i64"])
                body.append(("array", et, self.expr(names, 1), self.expr(names, 1), self.expr(names, 1)))
            elif kind == "struct":
                f1, f2 = rng.sample(STRUCT_FIELDS, 2)
                body.append(("struct", f1[0], self.expr(names, 1), f2[0], self.expr(names, 1)))
        ret = self.expr(names + (["t"] if any(s[0] in ("array", "struct") for s in body) else []), 2)
        return {"params": params, "body": body, "ret": ret, "locals": locals_}


# ---------------------------------------------------------------- rendering to DSL source


def render(e: Expr) -> str:
    kind = e[0]
    if kind == "var":
        return str(e[1])
    if kind == "const":
        return str(e[1])
    if kind == "bin":
        return f"({render(e[2])} {e[1]} {render(e[3])})"
    if kind == "un":
        return f"({e[1]}{render(e[2])})"
    if kind == "cast":
        return f"{e[1]}({render(e[2])})"
    if kind == "cmp":
        return f"({render(e[2])} {e[1]} {render(e[3])})"
    if kind == "chain":
        return f"({render(e[2])} {e[1]} {render(e[3])} {e[1]} {render(e[4])})"
    if kind == "ifexp":
        return f"({render(e[2])} if {render(e[1])} else {render(e[3])})"
    if kind in ("and", "or"):
        return f"({render(e[1])} {kind} {render(e[2])})"
    if kind == "not":
        return f"(not {render(e[1])})"
    if kind in ("min", "max"):
        return f"{kind}({render(e[1])}, {render(e[2])})"
    if kind == "abs":
        return f"abs({render(e[1])})"
    if kind == "log2l":
        return f"L.log2l({render(e[1])})"
    if kind == "in":
        return f"({render(e[1])} in {e[2]!r})"
    raise ValueError(kind)


def render_function(name: str, f: Dict[str, Any], decorator: str) -> str:
    params = ", ".join(f"{n}: {t}" for n, t in f["params"])
    lines = [decorator, f"def {name}({params}) -> i64:"]

    def emit(stmts: List[Tuple[Any, ...]], indent: str) -> None:
        for s in stmts:
            k = s[0]
            if k == "decl":
                lines.append(f"{indent}{s[1]}: {s[2]} = {render(s[3])}")
            elif k == "let":
                lines.append(f"{indent}{s[1]} = {render(s[2])}")
            elif k == "set":
                lines.append(f"{indent}{s[1]} = {render(s[2])}")
            elif k == "aug":
                lines.append(f"{indent}{s[1]} {s[2]}= {render(s[3])}")
            elif k == "if":
                lines.append(f"{indent}if {render(s[1])}:")
                emit(s[2], indent + "    ")
                if s[3]:
                    lines.append(f"{indent}else:")
                    emit(s[3], indent + "    ")
            elif k == "ifbreak":
                lines.append(f"{indent}if {render(s[2])}:")
                lines.append(f"{indent}    {s[1]}")
            elif k == "for":
                lines.append(f"{indent}for i in range({s[1]}):")
                emit(s[2], indent + "    ")
            elif k == "while":
                lines.append(f"{indent}j: i32 = 0")
                lines.append(f"{indent}while L.bounded(j < {s[1]}, 8):")
                lines.append(f"{indent}    y += {render(s[2])}")
                lines.append(f"{indent}    j += 1")
            elif k == "array":
                lines.append(f"{indent}arr = {s[1]}[4]()")
                lines.append(f"{indent}arr[({render(s[2])}) & 3] = {render(s[3])}")
                lines.append(f"{indent}arr[1] += x")
                lines.append(f"{indent}t = arr[({render(s[4])}) & 3] + arr[1]")
            elif k == "struct":
                lines.append(f"{indent}s = S({s[1]}={render(s[2])})")
                lines.append(f"{indent}s.{s[3]} = {render(s[4])}")
                lines.append(f"{indent}t = s.{s[1]} - s.{s[3]}")

    emit(f["body"], "    ")
    lines.append(f"    return {render(f['ret'])}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the reference interpreter


class Break(Exception):
    pass


class Continue(Exception):
    pass


def evaluate(e: Expr, env: Dict[str, Tuple[int, str]]) -> Tuple[int, str]:
    kind = e[0]
    if kind == "var":
        return env[e[1]]
    if kind == "const":
        return e[1], literal_type(e[1])
    if kind == "bin":
        return binop(e[1], evaluate(e[2], env), evaluate(e[3], env))
    if kind == "un":
        if e[1] == "-" and e[2][0] == "const" and e[2][1] <= 1 << 63:  # a negative literal: its number
            return -e[2][1], literal_type(-e[2][1])
        v, t = evaluate(e[2], env)
        t = promote(t)
        return wrap(-v if e[1] == "-" else ~v, t), t
    if kind == "cast":
        v, _ = evaluate(e[2], env)
        return wrap(v, e[1]), e[1]
    if kind == "cmp":
        return compare(e[1], evaluate(e[2], env), evaluate(e[3], env)), BOOL
    if kind == "chain":
        a, b, c = evaluate(e[2], env), evaluate(e[3], env), evaluate(e[4], env)
        return int(compare(e[1], a, b) and compare(e[1], b, c)), BOOL
    if kind == "ifexp":
        f = folded(e[1])
        if f is not None:
            return evaluate(e[2] if f else e[3], env)
        a, b = evaluate(e[2], env), evaluate(e[3], env)
        t = common(a[1], b[1])
        return wrap((a if evaluate(e[1], env)[0] else b)[0], t), t
    if kind == "and":
        return int(bool(evaluate(e[1], env)[0]) and bool(evaluate(e[2], env)[0])), BOOL
    if kind == "or":
        return int(bool(evaluate(e[1], env)[0]) or bool(evaluate(e[2], env)[0])), BOOL
    if kind == "not":
        return int(not evaluate(e[1], env)[0]), BOOL
    if kind in ("min", "max"):
        a, b = evaluate(e[1], env), evaluate(e[2], env)
        t = common(a[1], b[1])
        x, y = wrap(a[0], t), wrap(b[0], t)
        return (min(x, y) if kind == "min" else max(x, y)), t
    if kind == "abs":
        v, t = evaluate(e[1], env)
        t = promote(t)
        return wrap(abs(wrap(v, t)), t), t
    if kind == "log2l":
        v = wrap(evaluate(e[1], env)[0], "u64")
        return max(0, v.bit_length() - 1), "u32"
    if kind == "in":
        v = evaluate(e[1], env)
        return int(any(compare("==", v, (c, literal_type(c))) for c in e[2])), BOOL
    raise ValueError(kind)


def run_reference(f: Dict[str, Any], args: List[int]) -> int:
    env: Dict[str, Tuple[int, str]] = {}
    for (n, t), raw in zip(f["params"], args):
        env[n] = (wrap(raw, t), t)

    def assign(name: str, value: Tuple[int, str]) -> None:
        t = env[name][1]
        env[name] = (wrap(value[0], t), t)

    def set_t(value: Tuple[int, str]) -> None:
        if "t" in env:
            assign("t", value)
        else:
            env["t"] = value

    def run(stmts: List[Tuple[Any, ...]]) -> None:
        for s in stmts:
            k = s[0]
            if k == "decl":
                env[s[1]] = (wrap(evaluate(s[3], env)[0], s[2]), s[2])
            elif k == "let":
                value = evaluate(s[2], env)
                t = local_type(s[2], value)
                env[s[1]] = (wrap(value[0], t), t)
            elif k == "set":
                assign(s[1], evaluate(s[2], env))
            elif k == "aug":
                assign(s[1], binop(s[2], env[s[1]], evaluate(s[3], env)))
            elif k == "if":
                run(s[2] if evaluate(s[1], env)[0] else s[3])
            elif k == "ifbreak":
                if evaluate(s[2], env)[0]:
                    raise Break() if s[1] == "break" else Continue()
            elif k == "for":
                for i in range(s[1]):
                    env["i"] = (i, "i64")
                    try:
                        run(s[2])
                    except Continue:
                        continue
                    except Break:
                        break
            elif k == "while":
                j = 0
                while j < s[1]:
                    assign("y", binop("+", env["y"], evaluate(s[2], env)))
                    j += 1
            elif k == "array":
                et = s[1]
                arr = [0, 0, 0, 0]
                i1 = binop("&", evaluate(s[2], env), (3, "i32"))[0]
                arr[i1] = wrap(evaluate(s[3], env)[0], et)
                arr[1] = wrap(binop("+", (arr[1], et), env["x"])[0], et)
                i2 = binop("&", evaluate(s[4], env), (3, "i32"))[0]
                set_t(binop("+", (arr[i2], et), (arr[1], et)))
            elif k == "struct":
                fields = dict(STRUCT_FIELDS)
                vals = {n: 0 for n in fields}
                vals[s[1]] = wrap(evaluate(s[2], env)[0], fields[s[1]])
                vals[s[3]] = wrap(evaluate(s[4], env)[0], fields[s[3]])
                set_t(binop("-", (vals[s[1]], fields[s[1]]), (vals[s[3]], fields[s[3]])))

    run(f["body"])
    return wrap(evaluate(f["ret"], env)[0], "i64") & M64


# ---------------------------------------------------------------- building and running


HEADER = """\
from ebpf import lang as L
from ebpf.lang import Struct, u8, u16, u32, u64, i8, i16, i32, i64

class S(Struct):
{fields}

coll = L.Collection("diff{n}", isa={isa})
inp = coll.array_map("inp", value=u64[4], max_entries=1)
out = coll.array_map("out", value=u64[{nf}], max_entries=1)
"""


def need_isa(isa: int) -> None:
    """Skip a level the running kernel does not take (v4 on 6.1, v3 on 5.10: the VM tier)."""
    from ebpf.features import isa_level

    if isa > isa_level():
        pytest.skip(f"feature probe: this kernel takes eBPF instructions up to v{isa_level()}, not v{isa}")


def build_module(tmp_path: Any, n: int, funcs: List[Dict[str, Any]], isa: int = 4) -> Any:
    need_isa(isa)
    fields = "\n".join(f"    {a}: {b}" for a, b in STRUCT_FIELDS)
    parts = [HEADER.format(n=n, nf=len(funcs), fields=fields, isa=isa)]
    for k, f in enumerate(funcs):
        parts.append(render_function(f"f{k}", f, "@L.inline" if k % 2 == 0 else "@L.subprogram"))
    main = ["@coll.socket_filter", "def main(ctx):", "    p = inp.get(0)", "    if p is None:",
            "        return 0", "    q = out.get(0)", "    if q is None:", "        return 0",
            "    a = p[0]", "    b = p[1]", "    c = p[2]", "    d = p[3]"]
    for k, f in enumerate(funcs):
        args = ", ".join(f"{t}({v})" for (_, t), v in zip(f["params"], "abcd"))
        main.append(f"    q[{k}] = u64(f{k}({args}))")
    main.append("    return 1")
    parts.append("\n".join(main))
    source = "\n\n\n".join(parts) + "\n"
    path = tmp_path / f"lang_diff_{n}_v{isa}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"lang_diff_{n}_v{isa}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def inputs(rng: random.Random) -> List[int]:
    out = []
    for _ in range(4):
        r = rng.random()
        if r < 0.5:
            out.append(rng.choice(INTERESTING))
        elif r < 0.7:
            out.append((-rng.randrange(1, 300)) & M64)
        else:
            out.append(rng.getrandbits(rng.choice([8, 16, 32, 64])))
    return out


def _mismatch(module_src: str, k: int, f: Dict[str, Any], args: List[int], got: int, want: int) -> str:
    src = render_function(f"f{k}", f, "")
    return f"f{k}{tuple(args)}: kernel {got:#x}, reference {want:#x}\n{src}"


def run_and_compare(tmp_path: Any, n: int, funcs: List[Dict[str, Any]], rng: random.Random, isa: int) -> None:
    """Load the functions as one program, run it on random inputs, compare with the model."""
    module = build_module(tmp_path, n, funcs, isa)
    live = module.coll.load()
    mismatches: List[str] = []
    try:
        prog = live.programs["main"]
        vectors = [inputs(rng) for _ in range(INPUTS_PER_PROGRAM)]
        for args in vectors:
            live.maps["inp"][0] = args
            assert prog.test_run(bytes(64)).retval == 1
            got = live.maps["out"][0]
            for k, f in enumerate(funcs):
                want = run_reference(f, args)
                if got[k] != want:
                    mismatches.append(_mismatch("", k, f, args, got[k], want))
    finally:
        live.close()
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n\n".join(mismatches[:5])


ISA_LEVELS = (4, 3, 2)


def per_level(seeds: int) -> List[Any]:
    """(isa, seed): every seed at v4; v3 and v2 take alternate halves."""
    out = [pytest.param(4, seed, id=f"v4-{seed}") for seed in range(seeds)]
    out += [pytest.param(3 if seed % 2 == 0 else 2, seed, id=f"v{3 if seed % 2 == 0 else 2}-{seed}")
            for seed in range(seeds)]
    return out


@pytest.mark.parametrize("isa,seed", per_level(PROGRAMS))
def test_generated_functions_agree_with_reference(tmp_path: Any, isa: int, seed: int) -> None:
    rng = random.Random(1000 + seed)
    gen = Gen(rng)
    run_and_compare(tmp_path, seed, [gen.function() for _ in range(FUNCS_PER_PROGRAM)], rng, isa)


@pytest.mark.parametrize("isa,seed", per_level(TYPED_PROGRAMS))
def test_typed_locals_agree_with_reference(tmp_path: Any, isa: int, seed: int) -> None:
    """Locals typed by their first value (typed constants keep their type, literals make i64)."""
    rng = random.Random(5000 + seed)
    gen = Gen(rng, typed=True)
    run_and_compare(tmp_path, 500 + seed, [gen.typed_function() for _ in range(TYPED_FUNCS_PER_PROGRAM)], rng, isa)


@pytest.mark.parametrize("isa", ISA_LEVELS)
@pytest.mark.parametrize("typed", [False, True])
def test_constant_folding_agrees_with_reference(tmp_path: Any, typed: bool, isa: int) -> None:
    """The same trees with constant operands only (typed constants too): folded by the
    compiler, or computed from constants materialized in registers (abs, min, max...)."""
    rng = random.Random(77 + typed)
    gen = Gen(rng, typed=typed)
    funcs = []
    for _ in range(FUNCS_PER_PROGRAM * (5 if typed else 1)):
        e = gen.expr(["a"], 3)
        funcs.append({"params": [("a", "u8"), ("b", "u8"), ("c", "u8"), ("d", "u8")], "body": [],
                      "ret": _constify(e, rng), "locals": []})
    module = build_module(tmp_path, 98 + typed, funcs, isa)
    with module.coll.load() as live:
        live.maps["inp"][0] = [0, 0, 0, 0]
        assert live.programs["main"].test_run(bytes(64)).retval == 1
        got = live.maps["out"][0]
    bad = [(k, got[k], run_reference(f, [0, 0, 0, 0])) for k, f in enumerate(funcs)
           if got[k] != run_reference(f, [0, 0, 0, 0])]
    assert not bad, bad[:5]


def _constify(e: Expr, rng: random.Random) -> Expr:
    if e[0] == "var":
        return ("const", rng.choice(INTERESTING[:24]))
    return tuple(_constify(x, rng) if isinstance(x, tuple) else x for x in e)


def count_cases() -> Optional[int]:
    """Function-input pairs run in the kernel per run of the generated tests (every level)."""
    return 2 * (PROGRAMS * FUNCS_PER_PROGRAM + TYPED_PROGRAMS * TYPED_FUNCS_PER_PROGRAM) * INPUTS_PER_PROGRAM


# ---------------------------------------------------------------- checking the model itself


def _c(e: Expr, env: Dict[str, Tuple[int, str]], fresh: List[int]) -> str:
    """``e`` as C under the documented semantics: C's own conversions (gcc decides the types),
    eBPF's answers only where C has none (division by zero, shift counts, INT_MIN / -1)."""

    def tmp() -> str:
        fresh[0] += 1
        return f"_t{fresh[0]}"

    kind = e[0]
    if kind == "var":
        return str(e[1])
    if kind == "const":
        return hex(e[1])  # unsuffixed hex: C's int, unsigned, long, unsigned long (LP64)
    if kind == "cast":
        return f"(({C_TYPES[e[1]]})({_c(e[2], env, fresh)}))"
    if kind == "un":
        if e[1] == "-" and e[2][0] == "const":  # the DSL's one departure from C: a negative literal is its number
            if e[2][1] <= 1 << 63:
                return f"(({C_TYPES[literal_type(-e[2][1])]})(-{e[2][1] - 1}LL - 1))"
        return f"({e[1]}({_c(e[2], env, fresh)}))"
    if kind == "bin":
        a, b, x, y = _c(e[2], env, fresh), _c(e[3], env, fresh), tmp(), tmp()
        op = e[1]
        if op in ("<<", ">>"):
            n = tmp()
            shifted = f"(unsigned long long){x} << {n}" if op == "<<" else f"{x} >> {n}"
            return (f"({{ __typeof__(+({a})) {x} = ({a}); unsigned {n} = (unsigned)((unsigned long long)({b})"
                    f" & (sizeof({x}) * 8 - 1)); (__typeof__({x}))({shifted}); }})")
        if op in ("//", "%"):
            minus_one = f"(IS_SIGNED({x}) && {y} == (__typeof__({y}))-1)"
            if op == "//":
                res = (f"{y} == 0 ? 0 : {minus_one} ? (__typeof__({x}))(0ULL - (unsigned long long){x})"
                       f" : {x} / {y}")
            else:
                res = f"{y} == 0 ? {x} : {minus_one} ? 0 : {x} % {y}"
            return (f"({{ __typeof__(({a}) + ({b})) {x} = ({a}), {y} = ({b});"
                    f" (__typeof__({x}))({res}); }})")
        return f"(({a}) {op} ({b}))"
    if kind == "cmp":
        return f"(({_c(e[2], env, fresh)}) {e[1]} ({_c(e[3], env, fresh)}))"
    if kind == "chain":
        a, b, c = (_c(x, env, fresh) for x in e[2:5])
        return f"((({a}) {e[1]} ({b})) && (({b}) {e[1]} ({c})))"
    if kind == "ifexp":
        f = folded(e[1])
        if f is not None:  # decided at compile time, as the DSL does
            return _c(e[2] if f else e[3], env, fresh)
        return f"(({_c(e[1], env, fresh)}) ? ({_c(e[2], env, fresh)}) : ({_c(e[3], env, fresh)}))"
    if kind in ("and", "or"):
        return f"(({_c(e[1], env, fresh)}) {'&&' if kind == 'and' else '||'} ({_c(e[2], env, fresh)}))"
    if kind == "not":
        return f"(!({_c(e[1], env, fresh)}))"
    if kind in ("min", "max"):
        a, b, x, y = _c(e[1], env, fresh), _c(e[2], env, fresh), tmp(), tmp()
        return (f"({{ __typeof__(({a}) + ({b})) {x} = ({a}), {y} = ({b});"
                f" {x} {'<' if kind == 'min' else '>'} {y} ? {x} : {y}; }})")
    if kind == "abs":
        a, x = _c(e[1], env, fresh), tmp()
        return (f"({{ __typeof__(+({a})) {x} = ({a}); IS_SIGNED({x}) && {x} < 0 ?"
                f" (__typeof__({x}))(0ULL - (unsigned long long){x}) : {x}; }})")
    if kind == "log2l":
        a, x = _c(e[1], env, fresh), tmp()
        return f"({{ unsigned long long {x} = ({a}); (uint32_t)({x} ? 63 - __builtin_clzll({x}) : 0); }})"
    if kind == "in":
        a = _c(e[1], env, fresh)
        return "(" + " || ".join(f"({a}) == {hex(c)}" for c in e[2]) + ")"
    raise ValueError(kind)


C_TYPES = {"u8": "uint8_t", "u16": "uint16_t", "u32": "uint32_t", "u64": "uint64_t",
           "i8": "int8_t", "i16": "int16_t", "i32": "int32_t", "i64": "int64_t"}
C_PRELUDE = """\
#include <stdint.h>
#include <stdio.h>
#define IS_SIGNED(x) ((__typeof__(x))-1 < 0)
#define SHOW(e) printf("%lld %d %d\\n", (long long)(e), (int)sizeof(e), (int)IS_SIGNED(e))
int main(void) {
"""


def test_reference_model_agrees_with_gcc(tmp_path: Any) -> None:
    """The model's values *and types* (promotions, usual arithmetic conversions, literal types)
    against gcc compiling the same expressions as C: a wrong model agreeing with a wrong
    compiler would prove nothing."""
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to check the reference model")
    rng = random.Random(4242)
    lines = [C_PRELUDE]
    want: List[Tuple[int, int, int, str]] = []
    fresh = [0]
    for group in range(GCC_GROUPS):
        gen = Gen(rng, typed=group % 2 == 0)
        env = {n: (wrap(v, t), t) for n, t, v in zip("abcd", (rng.choice(list(TYPES)) for _ in "abcd"), inputs(rng))}
        lines.append("{" + " ".join(f"{C_TYPES[t]} {n} = {hex(v & M64)}ULL;" for n, (v, t) in env.items()))
        for _ in range(GCC_EXPRS_PER_GROUP):
            e = gen.expr(list(env), 3)
            value, t = evaluate(e, env)
            t = "i32" if t == BOOL else t  # C's comparisons give int
            want.append((wrap(value, "i64"), TYPES[t][0], int(TYPES[t][1]), render(e)))
            lines.append(f"SHOW({_c(e, env, fresh)});")
        lines.append("}")
    lines.append("return 0; }\n")
    src = tmp_path / "model.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "model"
    subprocess.run(["gcc", "-O0", "-fwrapv", "-w", "-o", str(exe), str(src)], check=True)
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split("\n")
    bad = [f"{w[3]}: model {w[:3]}, gcc {g}" for w, g in zip(want, got) if g != f"{w[0]} {w[1]} {w[2]}"]
    assert len(got) == len(want) + 1
    assert not bad, f"{len(bad)} of {len(want)} disagree:\n" + "\n".join(bad[:10])


# Hand-computed answers (C's rules worked out on paper, not by the model): each is a body of
# unannotated locals and the returned expression's value as an i64.
def _t(t: str, v: int) -> Expr:
    return ("cast", t, Gen.number(v))


def _v(n: str) -> Expr:
    return ("var", n)


KNOWN: List[Tuple[List[Tuple[Any, ...]], Expr, int]] = [
    ([("let", "u", _t("u32", 0xFFFFFFFF))], ("bin", "+", _v("u"), ("const", 1)), 0),
    ([("let", "u", _t("u32", 0xFFFFFFFF)), ("aug", "u", "+", ("const", 1))], _v("u"), 0),
    ([("let", "u", _t("i32", -1))], ("cmp", "<", _v("u"), _t("u32", 0)), 0),
    ([("let", "u", _t("i32", -1))], ("cmp", "<", _v("u"), ("const", 0)), 1),
    ([("let", "u", _t("u8", 200)), ("set", "u", ("bin", "+", _v("u"), ("const", 100)))], _v("u"), 44),
    ([("let", "u", _t("u8", 200))], ("bin", "+", _v("u"), ("const", 100)), 300),
    ([("let", "u", _t("i16", -2))], ("bin", "//", _v("u"), _t("u32", 1)), 0xFFFFFFFE),
    ([("let", "u", _t("u32", 0x80000000))], ("bin", ">>", _v("u"), ("const", 31)), 1),
    ([("let", "u", _t("i32", -0x80000000))], ("bin", ">>", _v("u"), ("const", 31)), -1),
    ([("let", "u", _t("u32", -1)), ("aug", "u", ">>", ("const", 28))], _v("u"), 15),
    ([("let", "u", _t("i32", -1)), ("aug", "u", ">>", ("const", 28))], _v("u"), -1),
    ([("let", "u", _t("i64", -1))], ("cmp", ">", _v("u"), _t("u32", 5)), 0),
    ([("let", "u", _t("u64", -1))], ("cmp", ">", _v("u"), _t("i64", 5)), 1),
    ([("let", "u", _t("i8", -128))], ("bin", "//", _v("u"), _t("i8", -1)), 128),
    ([("let", "u", _t("i32", -7))], ("bin", "%", _v("u"), ("const", 3)), -1),
    ([("let", "u", _t("i32", -7))], ("bin", "//", _v("u"), ("const", 2)), -3),
    ([("let", "u", _t("u32", 10))], ("bin", "//", _v("u"), Gen.number(-3)), 0),
    # a negative literal is the number Python reads, even past i32 (C: u32 0x80000000 negated)
    ([("let", "u", Gen.number(-2147483648))], _v("u"), -2147483648),
    ([("let", "u", Gen.number(-2147483648))], ("cmp", "<", _v("u"), ("const", 0)), 1),
    ([("let", "u", Gen.number(-4294967295))], ("bin", "//", _v("u"), ("const", 5)), -858993459),
    ([("let", "u", _t("i32", 10))], ("bin", "//", _v("u"), Gen.number(-3)), -3),
    ([("let", "u", _t("u16", 1))], ("bin", "<<", _v("u"), ("const", 31)), -0x80000000),
    ([("let", "u", _t("u32", 1))], ("bin", "<<", _v("u"), ("const", 35)), 8),
    ([("let", "u", ("const", 0)), ("aug", "u", "-", ("const", 1))], _v("u"), -1),
    ([("let", "u", ("const", 0xFFFFFFFF))], ("bin", "+", _v("u"), ("const", 1)), 0x100000000),
    ([("let", "u", ("bin", "+", _t("u32", 0xFFFFFFFF), ("const", 1))), ("aug", "u", "-", ("const", 1))],
     _v("u"), 0xFFFFFFFF),
    ([("let", "u", ("bin", "<<", _t("u64", 1), ("const", 63)))], ("bin", ">>", _v("u"), ("const", 62)), 2),
    ([("let", "u", ("bin", "<<", _t("i64", 1), ("const", 63)))], ("bin", ">>", _v("u"), ("const", 62)), -2),
    ([("let", "u", _t("u16", 65535)), ("aug", "u", "+", ("const", 1))], _v("u"), 0),
    ([("let", "u", _t("i8", 127)), ("aug", "u", "+", ("const", 1))], _v("u"), -128),
    ([("let", "u", _t("u32", 7)), ("let", "v", _t("i64", -1))], ("bin", "*", _v("u"), _v("v")), -7),
    ([("let", "u", _t("u32", 7)), ("let", "v", _t("i32", -1))], ("bin", "*", _v("u"), _v("v")), 0xFFFFFFF9),
    ([("let", "u", _t("u64", 7)), ("let", "v", _t("i64", -1))], ("bin", "//", _v("u"), _v("v")), 0),
    ([("let", "u", _t("u8", 0xFF))], ("un", "~", _v("u")), -256),
    ([("let", "u", _t("u32", 0xFF))], ("un", "~", _v("u")), 0xFFFFFF00),
    ([("let", "u", _t("u32", 5))], ("un", "-", _v("u")), 0xFFFFFFFB),
    ([("let", "u", _t("i16", -1))], ("cmp", "==", _v("u"), _t("u16", 65535)), 0),
    ([("let", "u", _t("i32", -1))], ("cmp", "==", _v("u"), _t("u32", 0xFFFFFFFF)), 1),
    ([("let", "u", _t("u8", 7)), ("aug", "u", "//", ("const", 0))], _v("u"), 0),
    ([("let", "u", _t("i16", -9)), ("aug", "u", "%", ("const", 0))], _v("u"), -9),
    ([("let", "u", ("cmp", "<", _t("i8", -1), _t("u8", 1)))], ("bin", "+", _v("u"), ("const", 1)), 2),
    ([("let", "u", ("cmp", "<", _t("i8", -1), _t("u8", 1))), ("aug", "u", "+", ("const", 5))], _v("u"), 1),
    ([], ("abs", _t("i8", -128)), 128),
    ([], ("abs", ("bin", "+", _t("i16", -27664), ("const", 8))), 27656),
    ([("let", "u", ("abs", Gen.number(-7)))], ("bin", "^", _v("u"), _t("i64", 1 << 40)), (1 << 40) + 7),
]


@pytest.mark.parametrize("isa", ISA_LEVELS)
def test_known_answers(tmp_path: Any, isa: int) -> None:
    """Hand-computed C answers: the model and the kernel must both give them."""
    funcs = [{"params": [(n, "i64") for n in "abcd"], "body": body, "ret": ret, "locals": []}
             for body, ret, _ in KNOWN]
    wants = [want & M64 for _, _, want in KNOWN]
    model = [run_reference(f, [0, 0, 0, 0]) for f in funcs]
    assert [(render_function("f", f, ""), m) for f, m, w in zip(funcs, model, wants) if m != w] == []
    module = build_module(tmp_path, 900, funcs, isa)
    with module.coll.load() as live:
        live.maps["inp"][0] = [0, 0, 0, 0]
        assert live.programs["main"].test_run(bytes(64)).retval == 1
        got = live.maps["out"][0]
    assert [(render_function("f", f, ""), hex(g), hex(w)) for f, g, w in zip(funcs, got, wants) if g != w] == []
