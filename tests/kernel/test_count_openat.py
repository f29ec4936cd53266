"""End to end: the hand-written assembly counter of openat() calls sees exactly our opens."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

from ebpf.asm import assemble
from ebpf.cli.asm import map_spec_of
from ebpf.collection import CollectionSpec, load
from ebpf.maps.live import Map
from ebpf.program import ProgramSpec

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "count_openat.s"
OPENER = (
    "import os, sys\n"
    "n = int(sys.argv[1])\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "sys.stdin.readline()\n"
    "for _ in range(n):\n"
    "    os.close(os.open('/dev/null', os.O_RDONLY))\n"
    "sys.stdout.write('done\\n'); sys.stdout.flush()\n"
    "sys.stdin.readline()\n"
)


def start_opener(n: int) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-S", "-c", OPENER, str(n)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def run_opens(child: subprocess.Popen) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline() == "done\n"


def finish(child: subprocess.Popen) -> None:
    assert child.stdin is not None
    child.stdin.write("bye\n")
    child.stdin.close()
    child.wait(timeout=10)


def test_counts_exactly_the_opens_of_a_process() -> None:
    assembly = assemble(EXAMPLE.read_text())
    spec = CollectionSpec(
        [ProgramSpec("count_openat", "tracepoint", assembly.instructions,
                     attach_to="syscalls/sys_enter_openat")],
        [map_spec_of(d) for d in assembly.maps],
    )
    for n in (1, 37, 500):
        child = start_opener(n)
        try:
            with load(spec) as coll:
                coll.attach()
                run_opens(child)
                counts = Map.from_fd(os.dup(coll.maps["counts"].fd), key="u32", value="u64")
                with counts:
                    assert counts.get(child.pid) == n
        finally:
            finish(child)


def test_cli_attach_prints_the_count() -> None:
    n = 123
    child = start_opener(n)
    try:
        cli = subprocess.Popen(
            [sys.executable, "-m", "ebpf", "asm", str(EXAMPLE), "--attach",
             "tracepoint:syscalls:sys_enter_openat", "-d", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert cli.stdout is not None
        assert cli.stdout.readline().startswith("attached count_openat to tracepoint:syscalls:sys_enter_openat")
        run_opens(child)
        out, err = cli.communicate(timeout=30)
        assert cli.returncode == 0, err
    finally:
        finish(child)
    assert re.search(rf"^  {child.pid}: {n}$", out, re.M), out
