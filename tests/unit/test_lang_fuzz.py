"""Fuzzing the DSL compiler: mutated DSL functions raise ebpf.errors exceptions and nothing else.

Seed functions (arithmetic, casts, arrays, structs, maps, ring buffers, loops, inline functions,
sub-programs, the raw_tracepoint context) are mutated token by token: numbers become extreme
(negative, 10**9, 2**64, 10**30, a 160-bit hex literal), names are swapped, tokens dropped or
repeated, call arguments removed, subscripts and calls inserted, expressions nested 60 to 180
deep. Every variant Python accepts is compiled (without the kernel); any exception that is not
an :class:`ebpf.errors.EbpfError`, a CompileError without file:line:col, or a compile slower
than a second is a failure. Seeded, bounded in time (a few seconds), and the known findings
are pinned as plain tests below.
"""

from __future__ import annotations

import importlib.util
import io
import random
import signal
import sys
import time
import tokenize
import traceback
import warnings
from typing import Any, Iterator, List, Optional, Tuple

import pytest

from ebpf.errors import CompileError, EbpfError
from ebpf.lang.compiler import compile_program

BUDGET_SECONDS = 3.0
CASE_SECONDS = 2.0
BATCH = 24
MESSAGE_CHARS = 1000  # a message may list a context's fields; it must not echo a whole input

HEADER = """\
from ebpf import lang as L
from ebpf.lang import Struct, char, u8, u16, u32, u64, i8, i16, i32, i64


class Ev(Struct):
    pid: u32
    ts: u64
    comm: char[16]


coll = L.Collection("fuzz")
hm = coll.hash_map("hm", key=u32, value=u64, max_entries=64)
am = coll.array_map("am", value=u64[4], max_entries=1)
rb = coll.ringbuf("rb")
lim = coll.rodata("lim", u32, 5)


@L.subprogram
def sub(a: u32, b: u64) -> u64:
    return a + b
"""

# Bodies of programs: socket filters (S) and raw tracepoints (R); HELPER is the case's inline function.
PROGRAMS: List[Tuple[str, str]] = [
    ("S", "x = u32(0xFFFFFFFF)\nx += 1\ny = i16(-2) // u32(3)\nreturn x + y"),
    ("S", "a = char[16]()\nL.get_current_comm(a)\nreturn a[0]"),
    ("S", "e = Ev(pid=1)\ne.ts = L.ktime_get_ns()\nhm[e.pid] = e.ts\nreturn 0"),
    ("S", "v = hm.get(1)\nif v is None:\n    return 0\nreturn v[0]"),
    ("S", "p = am.get(0)\nif p is None:\n    return 0\nfor i in range(4):\n    p[i] += i\nreturn 1"),
    ("S", "n = 0\nwhile L.bounded(n < 10, 16):\n    n += 1\nreturn n"),
    ("S", "r = rb.reserve(Ev)\nif r is None:\n    return 0\nr.pid = L.get_current_pid_tgid() >> 32\n"
          "rb.submit(r)\nreturn 0"),
    ("S", "return HELPER(3) + HELPER(u8(200))"),
    ("S", "x = i8(-1)\ny = u16(x) >> 3\nreturn min(x, y) + max(1, 2) + abs(x)"),
    ("S", "s = 0\nfor k in (1, 2, 3):\n    s += k ** 2\nreturn s"),
    ("S", "return L.log2l(lim) + len(char[8]())"),
    ("R", "return ctx.arg(0) + ctx.args[1]"),
    ("S", "x = sub(u32(1), u64(2))\nreturn x"),
    ("S", "b = u8[4]()\nb[1] = 7\ni = 2\nreturn b[i & 3]"),
    ("S", "if lim > 3 and not (lim == 4):\n    return 1\nelif lim in (1, 2):\n    return 2\nreturn 3"),
    ("S", "x = 5\nx = x if x > 2 else -x\nreturn x"),
    ("S", "del hm[1]\nhm[2] += 1\nreturn 1 if 3 in hm else 0"),
    ("S", "t = L.ktime_get_ns()\nreturn (t // 1000) % 7 + ctx.len"),
    ("S", "c: u16 = 65535\nc += 1\nd = HELPER(c)\nreturn d"),
    ("S", "x = HELPER(lim)\nreturn HELPER(x + 1)"),
    ("S", "buf = u32[8]()\nbuf[7] = HELPER(2)\nreturn L.type_size(u64[2])"),
    ("R", "e = Ev()\ne.pid = ctx.arg(1)\nreturn HELPER(e.pid)"),
    ("S", "x: 'u32' = 7\nx += 1\ny: 'char[4]'\nreturn x + y[0]"),
]
# Bodies of the inline function each case gets (parameter x).
HELPERS: List[str] = [
    "return HELPER(x - 1) + 1 if x else 0",
    "if x > 3:\n    return HELPER(x - 1) * 2\nreturn x",
    "z = x * 2\nif z > 10:\n    return z\nreturn -z",
    "y = x\nfor i in range(3):\n    y += i\nreturn y",
    "return x + 1",
]

NUMBERS = ["-1", "0", "1", "10**9", "2**64", "-2**63", "10**30", "0x" + "f" * 40, "4096", "513", "-(1 << 63)",
           "65", "2**-1"]
NAMES = ["u8", "u16", "u32", "u64", "i8", "i64", "char", "Ev", "L", "hm", "am", "rb", "lim", "sub", "ctx", "x",
         "y", "a", "None", "True", "range", "len", "min", "max", "abs", "int", "bool", "object", "print", "HELPER"]
STRINGS = ["'char['", "'u32[-1]'", "'char[0]'", "'x'", "''", "'u8[99999999999999999999]'", "'struct nope'",
           "'u8[4][2]'", "'1 +'"]
INSERTS = ["[-1]", "[0]", "[10**9]", "()", "(1)", "[1:2]", ".ts", ".arg", " is None", "[::]"]


def _tokens(src: str) -> List[Tuple[int, str]]:
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(src).readline)]


def mutate(src: str, rng: random.Random) -> str:
    """One to three token-level edits of ``src`` (the result may not parse: callers check)."""
    toks = _tokens(src)
    for _ in range(rng.randint(1, 3)):
        # layout tokens (indents, newlines) stay: untokenize needs them; numbers and the starts of
        # right-hand sides are picked more often
        weight = {tokenize.NUMBER: 4, tokenize.STRING: 4, "return": 3, "=": 3}
        editable = [j for j, t in enumerate(toks) for _ in range(weight.get(t[1], weight.get(t[0], 1)))
                    if t[0] in (tokenize.NAME, tokenize.NUMBER, tokenize.OP, tokenize.STRING)]
        i = rng.choice(editable)
        kind, text = toks[i]
        op = rng.random()
        if text in ("return", "=") and op < 0.5:  # nest the whole right-hand side
            k = rng.choice([60, 120, 180])
            end = next(j for j in range(i, len(toks)) if toks[j][0] in (tokenize.NEWLINE, tokenize.ENDMARKER))
            toks[i + 1:end] = [(tokenize.OP, "(1 + " * k)] + toks[i + 1:end] + [(tokenize.OP, ")" * k)]
        elif kind == tokenize.NUMBER and op < 0.7:
            toks[i] = (kind, rng.choice(NUMBERS))
        elif kind == tokenize.STRING:
            toks[i] = (kind, rng.choice(STRINGS))
        elif kind == tokenize.NAME and op < 0.4:
            toks[i] = (kind, rng.choice(NAMES))
        elif op < 0.15:
            del toks[i]
        elif op < 0.25:
            toks.insert(i, toks[i])
        elif op < 0.45 and text == "(":
            depth, j = 0, i
            while j < len(toks):  # drop the arguments: f(a, b) -> f()
                depth += toks[j][1] == "("
                depth -= toks[j][1] == ")"
                if depth == 0:
                    break
                j += 1
            del toks[i + 1:j]
        elif op < 0.65 and kind in (tokenize.NAME, tokenize.NUMBER):
            toks.insert(i + 1, (tokenize.OP, rng.choice(INSERTS)))
        elif kind in (tokenize.NAME, tokenize.NUMBER):
            k = rng.choice([60, 120, 180])
            toks[i] = (kind, "(1 + " * k + text + ")" * k)
    return tokenize.untokenize(toks)


def _parses(src: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # "perhaps you missed a comma?"
            compile(src, "<fuzz>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _indent(body: str) -> str:
    return "".join("    " + line + "\n" for line in body.splitlines())


def cases(rng: random.Random) -> Iterator[Tuple[str, str]]:
    """(kind, source of an inline helper and a program) without end; the program is ``p``."""
    while True:
        kind, body = rng.choice(PROGRAMS)
        helper = rng.choice(HELPERS)
        r = rng.random()
        if r < 0.6:
            body = mutate(body, rng)
        elif r < 0.9:
            helper = mutate(helper, rng)
        else:
            body, helper = mutate(body, rng), mutate(helper, rng)
        decorator = "socket_filter" if kind == "S" else 'raw_tracepoint("sys_enter")'
        src = f"@L.inline\ndef HELPER(x):\n{_indent(helper)}\n\n@coll.{decorator}\ndef PROG(ctx):\n{_indent(body)}"
        if _parses(src.replace("HELPER", "h").replace("PROG", "p")):
            yield kind, src


class _Slow(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Slow()


def compile_outcome(decl: Any, expect_error: bool = False) -> Optional[str]:
    """None when ``decl`` compiles (unless ``expect_error``) or fails with a located
    ebpf.errors exception within CASE_SECONDS, else what went wrong."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        compile_program(decl)
        if expect_error:
            return "compiled without an error"
    except _Slow:
        return f"compiling took more than {CASE_SECONDS} s"
    except CompileError as e:
        if not e.file or e.line < 1 or e.col < 1:
            return f"CompileError without file:line:col: {e}"
        if len(e.message) > MESSAGE_CHARS:
            return f"a CompileError message of {len(e.message)} characters: {e.message[:100]}..."
    except EbpfError:
        pass
    except Exception as e:  # noqa: BLE001 - the point of the test
        frames = traceback.extract_tb(e.__traceback__)[-3:]
        where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames)
        return f"{type(e).__name__}: {str(e)[:200]} (at {where})"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return None


def load_module(tmp_path: Any, name: str, sources: List[str]) -> Any:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + "\n\n" + "\n\n".join(sources) + "\n")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: Any) -> None:
    """One compile before the timed ones: the first imports the compiler's modules."""
    tmp = tmp_path_factory.mktemp("warm")
    compile_program(load_module(tmp, "lang_fuzz_warm", ["@coll.socket_filter\ndef p(ctx):\n    return 0\n"])
                    .coll.programs["p"])


def test_mutated_programs_raise_only_ebpf_errors(tmp_path: Any) -> None:
    rng = random.Random(20261203)
    gen = cases(rng)
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: List[str] = []
    compiled = 0
    batch_no = 0
    while time.monotonic() < deadline and len(failures) < 8:
        batch = [next(gen) for _ in range(BATCH)]
        sources = [src.replace("HELPER", f"h{k}").replace("PROG", f"p{k}") for k, (_, src) in enumerate(batch)]
        module = load_module(tmp_path, f"lang_fuzz_{batch_no}", sources)
        batch_no += 1
        for k, src in enumerate(sources):
            if time.monotonic() >= deadline:
                break
            why = compile_outcome(module.coll.programs[f"p{k}"])
            compiled += 1
            if why is not None:
                failures.append(f"{why}\n{src}")
    assert compiled >= 100, f"only {compiled} programs compiled in {BUDGET_SECONDS} s"
    shown = "\n\n".join(f[:1500] for f in failures)
    assert not failures, f"{len(failures)} of {compiled} compiles failed badly:\n\n{shown}"


# ---------------------------------------------------------------- the findings, pinned

PINNED = {
    "negative_array_length": "a = char[-1]()\n    return 0",
    "huge_array_on_the_stack": "a = char[10**9]()\n    return 0",
    "huge_array_annotation": "a: u8[10**9]\n    return 0",
    "zero_length_array_by_name": "a = L.type_size('char[0]')\n    return a",
    "huge_power": "return 2 ** 10**9",
    "negative_power": "return 2 ** -1",
    "huge_hex_literal": "return 0x" + "f" * 2000,
    "ctx_arg_without_index": "return ctx.arg()",
    "ctx_arg_keyword": "return ctx.arg(index=1)",
    "inline_recursion_deep_in_an_expression": "return rec(1)",
    "deep_expression": "x = 1\n    return " + " + ".join(["x"] * 700),
    "string_annotation_that_does_not_parse": "x: 'char[' = 0\n    return 0",
    "string_annotation_with_a_bad_length": "x: 'char[-1]'\n    return 0",
}
PINNED_HEADER = """
@L.inline
def rec(x):
    return {nest}rec(x + 1){close}
""".format(nest="1 + (" * 60, close=")" * 60)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_finding_is_a_located_compile_error(tmp_path: Any, name: str) -> None:
    kind = 'raw_tracepoint("sys_enter")' if "ctx_arg" in name else "socket_filter"
    src = f"{PINNED_HEADER}\n\n@coll.{kind}\ndef prog(ctx):\n    {PINNED[name]}\n"
    module = load_module(tmp_path, f"lang_pinned_{name}", [src])
    assert compile_outcome(module.coll.programs["prog"], expect_error=True) is None
    with pytest.raises(CompileError) as info:  # and located in the case's code (not line 1)
        compile_program(module.coll.programs["prog"])
    assert info.value.line > len(HEADER.splitlines()), str(info.value)
