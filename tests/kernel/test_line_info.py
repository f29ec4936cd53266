"""Program BTF line info: the verifier's log and bpftool show our source lines."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ebpf.asm import assemble
from ebpf.errors import VerifierError
from ebpf.loader import load_program
from ebpf.program import ProgramSpec

SOURCE = """\
        r1 = 5
        call helper_fn          # a bpf-to-bpf call: func_info for two functions
        r0 = 0
        exit
helper_fn:
        r0 = {body}
        exit
"""


def test_verifier_error_points_at_the_source_line() -> None:
    asm = assemble(SOURCE.format(body="*(u64 *)(r1 + 0)"), filename="deref.s")
    with pytest.raises(VerifierError) as e:
        load_program(ProgramSpec("lines_bad", "socket_filter", asm.instructions))
    assert "; r0 = *(u64 *)(r1 + 0) @ deref.s:6" in e.value.log
    assert "(deref.s:6: r0 = *(u64 *)(r1 + 0))" in e.value.summary


def test_bpftool_shows_source_lines() -> None:
    asm = assemble(SOURCE.format(body="1"), filename="ok.s")
    with load_program(ProgramSpec("lines_ok", "socket_filter", asm.instructions)) as prog:
        assert prog.info()["btf_id"] > 0
        bpftool = shutil.which("bpftool")
        assert bpftool, "bpftool is needed (apt-get install bpftool); .ci/run installs it"
        out = subprocess.run([bpftool, "prog", "dump", "xlated", "id", str(prog.id)], capture_output=True,
                             text=True, check=True).stdout
    assert "int lines_ok(void * ctx):" in out and "int helper_fn(void * ctx):" in out
    assert "; call helper_fn" in out and "; r0 = 1" in out


def test_python_source_line_in_the_verifier_error() -> None:
    """Instructions built in Python and tagged with the Python line that made them."""
    import inspect

    from ebpf import asm as A

    def here(insn: A.Instruction) -> A.Instruction:
        frame = inspect.stack()[1]
        insn.source = A.SourcePos(frame.filename, frame.lineno, 1, (frame.code_context or [""])[0])
        return insn

    insns = [
        here(A.mov64(A.R0, 0)),
        here(A.ldx(8, A.R0, A.R0, 16)),  # dereference a scalar: the verifier refuses this line
        here(A.exit_()),
    ]
    with pytest.raises(VerifierError) as e:
        load_program(ProgramSpec("py_lines", "socket_filter", insns))
    assert "; here(A.ldx(8, A.R0, A.R0, 16))" in e.value.log
    assert f"{__file__}:" in e.value.summary and "here(A.ldx(8, A.R0, A.R0, 16))" in e.value.summary
