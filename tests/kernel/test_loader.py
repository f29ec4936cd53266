"""The loader's retry strategy and the verifier error it builds."""

from __future__ import annotations

import pytest

from ebpf import asm as A
from ebpf import loader
from ebpf.errors import LoadError, PermissionDenied, VerifierError
from ebpf.program import ProgramSpec


def bad_program() -> ProgramSpec:
    body = [A.mov64(A.R0, 0)] + [A.add64(A.R0, i) for i in range(200)]
    return ProgramSpec("bad_deref", "socket_filter", body + [A.ldx(8, A.R0, A.R0, 0), A.exit_()])


def test_log_grows_until_the_reason_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "LOG_SIZE_FIRST", 128)
    with pytest.raises(VerifierError) as e:
        loader.load_program(bad_program(), log_level=2)  # level 2 logs every instruction: long
    err = e.value
    assert len(err.log) > 128 * 16
    assert "invalid mem access 'scalar'" in err.summary
    assert "at instruction 201: r0 = *(u64 *)(r0 + 0)" in err.summary
    assert err.log.rstrip().splitlines()[-1].startswith("processed")


def test_source_position_is_shown() -> None:
    spec = bad_program()
    spec.instructions[-2].source = A.SourcePos("tool.py", 42, 4, "x = ptr.field")
    with pytest.raises(VerifierError, match=r"\[tool.py:42|x = ptr.field"):
        loader.load_program(spec)


def test_unknown_map_reference() -> None:
    spec = ProgramSpec("needs_map", "socket_filter", [A.ld_map_fd(A.R1, "nosuch"), A.mov64(A.R0, 0), A.exit_()])
    with pytest.raises(LoadError, match="nosuch"):
        loader.load_program(spec)


def test_trampoline_refusal_is_explained() -> None:
    """fentry is refused with EPERM on this kernel; the error must say so (not 'needs root')."""
    spec = ProgramSpec("fentry_t", "tracing", [A.mov64(A.R0, 0), A.exit_()], attach_type="trace_fentry",
                       attach_btf_id=1)
    with pytest.raises(Exception) as e:
        loader.load_program(spec).close()
    if isinstance(e.value, VerifierError):
        pytest.skip("feature probe: this kernel checks fentry attach targets instead of refusing trampolines")
    assert isinstance(e.value, PermissionDenied) and "refuses BPF trampoline programs" in str(e.value), e.value
