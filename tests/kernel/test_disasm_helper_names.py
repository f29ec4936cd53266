"""``ebpf disasm`` names helper calls as the kernel and bpftool do.

A bytecode file with ``--annotate``: as the verifier's own disassembler prints the submitted
program (``call bpf_get_current_pid_tgid#14``, compared with a level-2 verifier log). A loaded
program with ``--id``: as ``bpftool prog dump xlated`` prints the translated one (the kernel
replaced helper ids by address offsets; names come from kallsyms).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
from typing import List

import pytest

from ebpf import asm as A
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec

SOURCE = """
    call bpf_get_current_pid_tgid
    r0 >>= 32
    *(u32 *)(r10 - 4) = w0
    call bpf_ktime_get_ns
    r1 = map[m] ll
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem
    call bpf_get_current_task
    r1 = r10
    r1 += -16
    r2 = 16
    call bpf_get_current_comm
    r0 = 0
    exit
"""
KERNEL_CALL = re.compile(r"^\s*\d+: \(85\) (call \S+)")


def ebpf_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ebpf", *args], capture_output=True, text=True, timeout=60)


def our_calls(listing: str) -> List[str]:
    return [ln.strip() for ln in listing.splitlines() if ln.strip().startswith("call ")]


def test_annotated_file_names_calls_as_the_kernel_does(tmp_path: pathlib.Path) -> None:
    insns = A.assemble(SOURCE).instructions
    with MapSpec("m", "hash", key="u32", value="u64", max_entries=4).create() as m:
        with load_program(ProgramSpec("names", "tracepoint", insns, log_level=2), {"m": m}) as prog:
            kernel = [KERNEL_CALL.match(ln).group(1) for ln in prog.verifier_log.splitlines()  # type: ignore[union-attr]
                      if KERNEL_CALL.match(ln)]
    # the verifier walks each instruction once here (straight-line code)
    assert kernel[:4] == ["call bpf_get_current_pid_tgid#14", "call bpf_ktime_get_ns#5",
                          "call bpf_map_lookup_elem#1", "call bpf_get_current_task#35"]
    (tmp_path / "p.bin").write_bytes(A.encode(A.link(insns)))
    res = ebpf_cli("disasm", str(tmp_path / "p.bin"), "--annotate")
    assert res.returncode == 0, res.stderr
    assert our_calls(res.stdout) == kernel
    again = ebpf_cli("disasm", str(tmp_path / "p.bin"))
    assert our_calls(again.stdout)[0] == "call 14"  # without --annotate: llvm-mc's text


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool not installed")
def test_loaded_program_names_calls_as_bpftool_does() -> None:
    insns = A.assemble(SOURCE).instructions
    with MapSpec("m", "hash", key="u32", value="u64", max_entries=4).create() as m:
        with load_program(ProgramSpec("names", "tracepoint", insns), {"m": m}) as prog:
            dump = subprocess.run(["bpftool", "prog", "dump", "xlated", "id", str(prog.id)],
                                  capture_output=True, text=True, timeout=60, check=True).stdout
            res = ebpf_cli("disasm", "--id", str(prog.id))
    assert res.returncode == 0, res.stderr
    bpftool = [KERNEL_CALL.match(ln).group(1) for ln in dump.splitlines() if KERNEL_CALL.match(ln)]  # type: ignore[union-attr]
    assert len(bpftool) >= 4 and "call bpf_get_current_pid_tgid#" in bpftool[0]
    assert our_calls(res.stdout) == bpftool
