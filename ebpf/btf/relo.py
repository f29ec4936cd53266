"""The CO-RE relocation record the compiler attaches to instructions and the loader resolves.

A record names the kernel type and the access path symbolically (field names and array
indices, the way libbpf's "high-level spec" does), so it can be resolved against any target
BTF: the running kernel's or another kernel's. ``local_value`` is what the compiler emitted
after resolving against the BTF it compiled with; the loader checks the instruction still
holds it before patching, like libbpf's validation.

Contract: an instruction carrying ``insn.meta["core"] = CoreRelo(...)`` is patched in place:
LDX/ST/STX get a new ``off`` (and, for byte-size changes libbpf allows, a new access size),
ALU/ALU64 with an immediate and LD_IMM64 get a new ``imm``; an unresolvable relocation turns
the instruction into the poison call ``call 0xbad2310`` (both slots for LD_IMM64).

The resolution itself lives in :mod:`ebpf.btf.core` (``relocate``); the loader runs it when
some instruction carries a record. A compiler that knows the BTF it resolved against may put
it in ``ProgramSpec.extras[LOCAL_BTF_EXTRA]``: the loader then also checks libbpf's
local/target compatibility rules (see :mod:`ebpf.btf.core`).
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Tuple, Union

from ebpf.uapi import CoreReloKind

Access = Tuple[Union[str, int], ...]

#: ``ProgramSpec.extras`` key of the BTF the compiler resolved relocations against (optional).
LOCAL_BTF_EXTRA = "core_local_btf"


class CoreRelo(NamedTuple):
    """One relocation: ``kind`` of ``type_name`` (``"struct task_struct"``, ``"enum pid_type"``,
    ``"typedef pid_t"`` or a bare name) along ``access``.

    ``access`` is empty for type kinds, the enumerator name for enum kinds
    (``("PIDTYPE_TGID",)``), and for field kinds the path from the root: member names and array
    indices, e.g. ``("real_parent",)``, ``("comm", 3)``, ``("se", "vruntime")``. A leading int
    indexes the root pointer as an array (libbpf's first accessor), default 0.
    """

    kind: CoreReloKind
    type_name: str
    access: Access = ()
    local_value: int = 0

    def describe(self) -> str:
        """``struct task_struct.real_parent`` style text for error messages."""
        path = ""
        for step in self.access:
            path += f"[{step}]" if isinstance(step, int) else f".{step}"
        return f"{self.kind.name.lower()} of {self.type_name}{path}"


def has_core_relocations(insns: Iterable[Any]) -> bool:
    """True when some instruction carries ``meta["core"]`` (cheap: no metadata is created)."""
    for insn in insns:
        meta = getattr(insn, "_meta", None)
        if meta and "core" in meta:
            return True
    return False
