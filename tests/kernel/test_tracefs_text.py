"""tracefs files that are not what the kernel writes: a ``format`` file with bytes that are not
UTF-8 and an ``id`` file that is not a number are TracefsErrors with a one-line message naming
the file (not a UnicodeDecodeError or ValueError traceback), for the library and for a DSL
program reading the tracepoint's fields (a CompileError at that line, carrying the message).

The odd files are served the way tracefs is found: in a private mount namespace where the real
tracefs is unmounted and a tmpfs laid out like it sits at /sys/kernel/tracing.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import ebpf

CHILD = r'''
import os, subprocess, sys
for p in ('/sys/kernel/debug/tracing', '/sys/kernel/tracing'):
    subprocess.run(['umount', '-l', p], stderr=subprocess.DEVNULL)
subprocess.run(['mount', '-t', 'tmpfs', 'fake', '/sys/kernel/tracing'], check=True)
tp = '/sys/kernel/tracing/events/syscalls/sys_enter_openat'
os.makedirs(tp)
with open(tp + '/format', 'wb') as f:
    f.write(b'name: sys_enter_openat\nID: 1\nformat:\n\tfield:int dfd\xff\xfe;\toffset:16;\tsize:8;\tsigned:0;\n')
with open(tp + '/id', 'wb') as f:
    f.write(b'not a number\n')

from ebpf import lang as L
from ebpf.errors import EbpfError
from ebpf.sys import tracefs

for call in (lambda: tracefs.tracepoint_format('syscalls', 'sys_enter_openat'),
             lambda: tracefs.tracepoint_id('syscalls', 'sys_enter_openat'),
             lambda: prog.spec()):
    prog = L.Collection('fake_tp')

    @prog.tracepoint('syscalls/sys_enter_openat')
    def enter(ctx):
        return ctx.dfd

    try:
        call()
    except EbpfError as e:
        print(type(e).__name__, str(e).splitlines()[0])
    else:
        print('no error')
'''


def test_non_utf8_format_and_bad_id_are_tracefs_errors(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "fake_tracefs.py"  # a file, so that the DSL can read its source
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(ebpf.__file__).parents[1]),
           "EBPF_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, str(script)],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    tp = "/sys/kernel/tracing/events/syscalls/sys_enter_openat"
    bad_format = f"{tp}/format is not UTF-8 text (byte 0xff at offset 51)"
    lines = res.stdout.splitlines()
    assert lines[:2] == [f"TracefsError {bad_format}",
                         f"TracefsError {tp}/id holds 'not a number', not a tracepoint id"]
    assert lines[2].startswith(f"CompileError {script}:") and lines[2].endswith(f"TracefsError: {bad_format}")
    assert len(lines) == 3
