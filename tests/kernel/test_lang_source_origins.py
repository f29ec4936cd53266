"""The DSL compiles functions wherever Python code comes from, not only from files.

Each test runs a real interpreter: ``python -c``, ``python -`` reading a file or a pipe, an
interactive session on a pseudo-terminal, ``python -i`` with its input redirected, ``exec`` of a
string (plain, with the text given to the collection, or registered in ``linecache`` as IPython,
Jupyter and Python 3.13's REPL do). Each compiles a program with an inlined helper, loads it and
runs it with BPF_PROG_TEST_RUN. Where the text cannot be found, the error says what to do.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from typing import List

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAM = '''\
from ebpf import lang as L
coll = L.Collection("origin"{extra})

@L.inline
def twice(x):
    return x * 2

@coll.socket_filter
def answer(ctx):
    return twice(21)

with coll.load() as live:
    print("retval", live.programs["answer"].test_run(bytes(64)).retval)
'''

EXPECTED = "retval 42"


def env() -> dict:
    out = dict(os.environ)
    out["PYTHONPATH"] = REPO + os.pathsep + out.get("PYTHONPATH", "")
    out.pop("EBPF_DEBUG", None)
    return out


def run(args: List[str], **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env(), cwd="/",
                          timeout=120, **kw)  # type: ignore[call-overload]


def program(extra: str = "") -> str:
    return PROGRAM.format(extra=extra)


def test_python_dash_c() -> None:
    res = run(["-c", program()])
    assert EXPECTED in res.stdout, res.stderr


def test_python_dash_c_after_other_options() -> None:
    res = run(["-B", "-Wignore", "-c", program()])
    assert EXPECTED in res.stdout, res.stderr


def test_python_reading_a_file_on_stdin(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "prog.py")
    with open(path, "w") as f:
        f.write(program())
    with open(path) as stdin:
        res = run(["-"], stdin=stdin)
    assert EXPECTED in res.stdout, res.stderr


def test_python_dash_i_with_stdin_redirected(tmp_path: object) -> None:
    """``python -i < file``: each statement is compiled on its own, numbered from its line 1."""
    path = os.path.join(str(tmp_path), "prog.py")
    with open(path, "w") as f:
        f.write("x = 1\n\n" + program() + "\n")
    with open(path) as stdin:
        res = run(["-i"], stdin=stdin)
    assert EXPECTED in res.stdout, res.stderr


def test_a_pipe_on_stdin_says_what_to_do() -> None:
    res = run(["-"], input=program())
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert "CompileError: <stdin>:" in last and "source of 'answer'" in last, res.stderr
    assert "source=" in last and "linecache" in last, last


def test_exec_of_a_string_with_the_text_given_to_the_collection() -> None:
    code = f"text = {program(', source=text')!r}\nexec(text)\n"
    res = run(["-c", code])
    assert EXPECTED in res.stdout, res.stderr


def test_exec_of_a_string_registered_in_linecache() -> None:
    """What IPython/Jupyter do for every cell (and Python 3.13's REPL for every input)."""
    code = (f"import linecache\ntext = {program()!r}\nname = '<ipython-input-1-0123abcd>'\n"
            "linecache.cache[name] = (len(text), None, text.splitlines(True), name)\n"
            "exec(compile(text, name, 'exec'), {'__name__': '__main__'})\n")
    res = run(["-c", code])
    assert EXPECTED in res.stdout, res.stderr


def test_plain_exec_of_a_string_says_what_to_do() -> None:
    code = f"exec({program()!r})\n"
    res = run(["-c", code])
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert "<string>:" in last and "cannot find the source of 'answer'" in last, res.stderr
    assert "source=" in last, last


def test_two_exec_d_texts_each_compiles_its_own_function() -> None:
    """Both texts are "<string>" with the function on the same line: the right one is used."""
    first = program(", source=text1")
    second = program(", source=text2").replace("return x * 2", "return x * 3")
    code = (f"text1 = {first!r}\ntext2 = {second!r}\n"
            "exec(text2)\nexec(text1)\n")
    res = run(["-c", code])
    assert res.stdout.splitlines() == ["retval 63", EXPECTED], res.stderr


def read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while marker not in out and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_interactive_session_on_a_terminal() -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive interpreter on the terminal
        os.chdir("/")
        e = env()
        e["TERM"] = "dumb"
        e["PYTHON_BASIC_REPL"] = "1"  # 3.13+: the classic prompt (its new REPL uses linecache)
        os.execve(sys.executable, [sys.executable, "-q"], e)
    out = b""
    try:
        out += read_until(fd, b">>> ", 30)
        for line in program().splitlines():
            os.write(fd, line.encode() + b"\n")
            out += read_until(fd, b"... " if line.startswith((" ", "@", "def", "with")) else b">>> ", 10)
            if line.startswith("    return"):  # a blank line ends the definition
                os.write(fd, b"\n")
                out += read_until(fd, b">>> ", 10)
        os.write(fd, b"\n")
        out += read_until(fd, EXPECTED.encode(), 60)
        os.write(fd, b"exit()\n")
        out += read_until(fd, b"\0", 5)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert EXPECTED in text, text


@pytest.mark.parametrize("where", ["-c", "stdin"])
def test_errors_name_the_line_of_the_text(where: str, tmp_path: object) -> None:
    bad = program().replace("return twice(21)", "return twice(undefined_name)")
    if where == "-c":
        res = run(["-c", bad])
        name = "<string>"
    else:
        path = os.path.join(str(tmp_path), "bad.py")
        with open(path, "w") as f:
            f.write(bad)
        with open(path) as stdin:
            res = run(["-"], stdin=stdin)
        name = "<stdin>"
    line = bad.splitlines().index("    return twice(undefined_name)") + 1
    assert f"{name}:{line}:" in res.stderr and "return twice(undefined_name)" in res.stderr, res.stderr
