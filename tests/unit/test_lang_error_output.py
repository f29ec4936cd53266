"""What a user sees of a compile error, in a real interpreter.

A script calling ``coll.load()`` (or ``coll.spec()``) gets a traceback that ends at its own call:
its frame, the one public method it called, and the message with file:line:col and the source
line, without the frames of the compiler. A tool (``ebpf.tools.runtime.tool_main``, what the
``ebpf`` command runs) prints one line and exits 1. ``EBPF_DEBUG=1`` keeps the whole traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = '''\
from ebpf import lang as L

coll = L.Collection("broken")

@coll.socket_filter
def prog(ctx):
    x = 1
    return x + no_such_name

{call}
'''
BAD_LINE = 8
BAD_COL = 16
BAD_TEXT = "return x + no_such_name"

TOOL = '''\
from ebpf.tools.runtime import tool_main

def run(argv):
    coll.load()
    return 0

tool_main("mytool", run)
'''


def run_script(tmp_path: object, call: str, debug: bool = False) -> subprocess.CompletedProcess:
    path = os.path.join(str(tmp_path), "user_prog.py")
    with open(path, "w") as f:
        f.write(SCRIPT.format(call=call))
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("EBPF_DEBUG", None)
    if debug:
        env["EBPF_DEBUG"] = "1"
    return subprocess.run([sys.executable, path], capture_output=True, text=True, env=env, cwd="/", timeout=60)


def frames(stderr: str) -> List[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith("File ")]


@pytest.mark.parametrize("call", ["coll.load()", "coll.spec()", "with coll.load() as live:\n    pass"])
def test_a_script_s_traceback_ends_at_its_call(tmp_path: object, call: str) -> None:
    res = run_script(tmp_path, call)
    assert res.returncode == 1
    shown = frames(res.stderr)
    assert len(shown) == 2, res.stderr  # the script's line, then the public method it called
    assert "user_prog.py" in shown[0] and "ebpf/lang/collection.py" in shown[1], res.stderr
    tail = res.stderr.rstrip().splitlines()
    message = f"{res.args[1]}:{BAD_LINE}:{BAD_COL}: name 'no_such_name' is not defined"
    assert tail[-2] == f"ebpf.errors.CompileError: {message}", res.stderr
    assert tail[-1].strip() == BAD_TEXT
    assert "During handling" not in res.stderr and "direct cause" not in res.stderr


def test_ebpf_debug_keeps_the_compiler_s_frames(tmp_path: object) -> None:
    res = run_script(tmp_path, "coll.load()", debug=True)
    assert res.returncode == 1
    assert len(frames(res.stderr)) > 4 and "ebpf/lang/compiler.py" in res.stderr, res.stderr
    assert f":{BAD_LINE}:{BAD_COL}: name 'no_such_name' is not defined" in res.stderr


def test_a_tool_prints_one_line(tmp_path: object) -> None:
    res = run_script(tmp_path, TOOL)
    assert res.returncode == 1 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0] == (f"ebpf mytool: error: {res.args[1]}:{BAD_LINE}:{BAD_COL}: name 'no_such_name' is not defined "
                        f"(in {BAD_TEXT!r})"), lines[0]


def test_a_tool_with_ebpf_debug_prints_the_traceback_too(tmp_path: object) -> None:
    res = run_script(tmp_path, TOOL, debug=True)
    assert res.returncode == 1
    assert "Traceback (most recent call last)" in res.stderr and "ebpf/lang/compiler.py" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("ebpf mytool: error: ")
