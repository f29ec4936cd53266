"""Global data: .rodata is constant to the verifier, .bss is shared with user space."""

from __future__ import annotations

import pytest

from ebpf import asm as A
from ebpf.collection import CollectionSpec, load
from ebpf.errors import LoadError, VerifierError
from ebpf.program import ProgramSpec


def spec_with_guarded_bad_read() -> CollectionSpec:
    """Returns rodata 'answer'; if rodata 'danger' is non-zero it dereferences a scalar."""
    spec = CollectionSpec()
    ro = spec.section(".rodata")
    ro.add("danger", "u32", 0)
    ro.add("answer", "u64", 0)
    spec.section(".bss").add("runs", "u64", 0)
    spec.add_program(ProgramSpec("ro_test", "socket_filter", [
        A.ld_map_value(A.R1, ".rodata", ro.offset_of("danger")),
        A.ldx(4, A.R2, A.R1, 0),
        A.jeq(A.R2, 0, "safe"),
        A.mov64(A.R3, 42),
        A.ldx(8, A.R0, A.R3, 0),             # invalid: r3 is a scalar, not a pointer
        A.exit_(),
        A.label("safe"),
        A.ld_map_value(A.R1, ".bss", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.ld_map_value(A.R1, ".rodata", ro.offset_of("answer")),
        A.ldx(8, A.R0, A.R1, 0),
        A.exit_(),
    ]))
    return spec


def test_rodata_is_constant_to_the_verifier_and_bss_is_shared() -> None:
    with load(spec_with_guarded_bad_read(), answer=1234) as coll:
        prog = coll.programs["ro_test"]
        for _ in range(3):
            assert prog.test_run(bytes(64)).retval == 1234
        assert coll.bss["runs"] == 3
        coll.bss["runs"] = 100
        prog.test_run(bytes(64))
        assert coll.bss["runs"] == 101
        assert coll.rodata["answer"] == 1234
        with pytest.raises(LoadError, match="read-only"):
            coll.rodata["answer"] = 1


def test_rodata_value_that_enables_bad_code_is_rejected() -> None:
    with pytest.raises(VerifierError, match="invalid mem access 'scalar'|R3 invalid mem access"):
        load(spec_with_guarded_bad_read(), danger=1)


def test_unknown_global_is_an_error() -> None:
    with pytest.raises(LoadError, match="no global"):
        load(spec_with_guarded_bad_read(), nosuch=1)
