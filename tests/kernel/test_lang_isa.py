"""The compiler targets an instruction-set level: the tools' programs at v2 and v3, on a kernel.

Every tool's programs (each hook path) are compiled with ``$EBPF_ISA`` forcing a level, then
encoded, decoded back and checked instruction by instruction: nothing above the level (no
``movsx``/``sdiv``/``bswap``... at v3, no ``jmp32`` or bitwise atomics at v2). This 6.18
kernel takes every level, so each is also loaded here: the verifier judges the fallbacks
(shifts for sign extension, magnitudes for signed division, 64-bit compares). Older kernels
run the same programs in the VM tier. The probe itself is checked against the kernel release.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import pytest

from ebpf.asm.encoding import decode, encode
from ebpf.lang.isa import level_of
from ebpf.tools import TOOLS

HOOKED = ("tp_btf", "raw_tp", "tracepoint")
VARIANTS: List[Tuple[str, List[str]]] = [
    ("opensnoop", []), ("opensnoop", ["-x", "-F"]), ("execsnoop", []), ("exitsnoop", []),
    ("syscount", []), ("syscount", ["-L", "-P"]),
    *[(tool, ["--hook", hook]) for tool in ("runqlat", "biolatency", "softirqs", "hardirqs") for hook in HOOKED],
    ("runqlat", ["-P"]), ("biolatency", ["-D"]), ("softirqs", ["-C"]), ("hardirqs", ["-C"]),
]


def tool_collection(monkeypatch: pytest.MonkeyPatch, name: str, args: List[str]) -> Any:
    """The DSL collection ``ebpf NAME ARGS --ebpf`` compiles (captured, nothing attached)."""
    import importlib

    from ebpf.tools import runtime

    seen: List[Any] = []

    def capture(parsed: Any, coll: Any) -> bool:
        seen.append(coll)
        return True

    monkeypatch.setattr(runtime, "show_programs", capture)
    module = importlib.import_module(f"ebpf.tools.{name}")
    assert module.run([*args, "--ebpf"]) == 0
    assert len(seen) == 1
    return seen[0]


def levels(coll: Any) -> Dict[str, int]:
    """The highest level any instruction of each program needs, read from its encoding."""
    out = {}
    for pname, spec in coll.spec().programs.items():
        insns = decode(encode(spec.instructions))
        out[pname] = max(level_of(i.opcode, i.src, i.off, i.imm) for i in insns)
    return out


def test_every_tool_has_variants_here() -> None:
    assert {tool for tool, _ in VARIANTS} == set(TOOLS)


@pytest.mark.parametrize("isa", [2, 3])
@pytest.mark.parametrize("tool,args", VARIANTS, ids=[" ".join([t, *a]) for t, a in VARIANTS])
def test_tool_programs_hold_no_instruction_above_the_level_and_load(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any, tool: str, args: List[str], isa: int) -> None:
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EBPF_ISA", str(isa))
    coll = tool_collection(monkeypatch, tool, args)
    found = levels(coll)
    assert found and all(level <= isa for level in found.values()), found
    assert {spec.extras["isa"] for spec in coll.spec().programs.values()} == {isa}
    with coll.load():
        pass  # the verifier takes every program


def test_signed_widening_tools_use_v4_where_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The level is what changes the code: opensnoop's signed widening is movsx at v4 (so the
    test above could fail), shifts at v3; each level is its own compile-cache entry."""
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path))
    got: Dict[int, Dict[str, int]] = {}
    entries = []
    for isa in (4, 3, 4, 3):
        monkeypatch.setenv("EBPF_ISA", str(isa))
        got[isa] = levels(tool_collection(monkeypatch, "opensnoop", []))
        entries.append(set(os.listdir(tmp_path / "programs")))
    assert max(got[4].values()) == 4 and max(got[3].values()) <= 3
    assert entries[0] and len(entries[1]) == 2 * len(entries[0]) and entries[1] == entries[2] == entries[3]

def test_probe_agrees_with_the_kernel_release() -> None:
    """Never below what the release guarantees (a distribution may backport more, never less)."""
    from ebpf import features

    features.clear_cache()
    level = features.isa_level()
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    floor = 4 if release >= (6, 6) else 3 if release >= (5, 12) else 2
    assert level >= floor, (level, os.uname().release)
    assert [features.probe_isa(v).supported for v in (1, 2, 3, 4)] == [v <= level for v in (1, 2, 3, 4)]
    assert features.have_may_goto() == (release >= (6, 9))
