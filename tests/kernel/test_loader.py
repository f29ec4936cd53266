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


def good_program(**kw: object) -> ProgramSpec:
    return ProgramSpec("good", "socket_filter", [A.mov64(A.R0, 0), A.add64(A.R0, 1), A.exit_()], **kw)  # type: ignore[arg-type]


def test_log_level_asked_for_is_kept_on_success() -> None:
    with loader.load_program(good_program(), log_level=2) as prog:
        assert "processed 3 insns" in prog.verifier_log
        assert "1: (07) r0 += 1" in prog.verifier_log  # level 2: every instruction's state
    with loader.load_program(good_program(log_level=1)) as prog:  # from the spec, as collections load it
        assert "processed 3 insns" in prog.verifier_log
    with loader.load_program(good_program()) as prog:
        assert prog.verifier_log == ""  # no log asked for: none made


def test_log_level_in_load_attrs_is_the_callers_request() -> None:
    spec = bad_program()
    spec.extras["load_attrs"] = {"log_level": 2, "log_size": 64}
    with pytest.raises(VerifierError) as e:
        loader.load_program(spec)
    assert "invalid mem access 'scalar'" in e.value.summary and "200: (07) r0 += 199" in e.value.log
    ok = good_program()
    ok.extras["load_attrs"] = {"log_level": 1}
    with loader.load_program(ok) as prog:
        assert "processed 3 insns" in prog.verifier_log


def test_collection_load_keeps_the_specs_log_level() -> None:
    from ebpf.collection import CollectionSpec, load

    with load(CollectionSpec([good_program(log_level=2)], [])) as coll:
        assert "0: (b7) r0 = 0" in coll.programs["good"].verifier_log
