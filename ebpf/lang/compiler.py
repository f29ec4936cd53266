"""Compiling one program: front end, register allocation, sub-programs, linking, ProgramSpec.

The program's function is compiled first; every sub-program it (transitively) calls is then
compiled once and appended after it, each with its own stack frame, as bpf-to-bpf calls
require. Each function is lowered to the instruction-set level the collection asks for, else
the running kernel's (:mod:`ebpf.lang.isa`, :mod:`ebpf.lang.legalize`). Hook-specific fields
of the spec (attach BTF ids of tp_btf/fentry/fexit) are filled in from the kernel BTF here.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

from ebpf.asm.instruction import Instruction, Label, ProgramItem
from ebpf.errors import CompileError, EbpfError
from ebpf.lang.ir import Function
from ebpf.program import ProgramSpec

__all__ = ["compile_program"]


def compile_program(decl: Any) -> ProgramSpec:
    """The ProgramSpec of a :class:`ebpf.lang.collection.ProgramDecl`."""
    from ebpf.asm.linker import link
    from ebpf.btf.relo import LOCAL_BTF_EXTRA, has_core_relocations
    from ebpf.lang.context import CtxError, context_for
    from ebpf.lang.frontend import Compiler, Unit
    from ebpf.lang.isa import resolve
    from ebpf.lang.legalize import legalize
    from ebpf.lang.regalloc import allocate
    from ebpf.lang.source import source_of

    started = time.perf_counter()
    isa = resolve(getattr(decl.collection, "isa", None))
    src = source_of(decl.fn)
    ctx = context_for(decl.kind, decl.target, decl.ctx)
    unit = Unit(decl, ctx)
    unit.isa = isa
    fn = Function(decl.name)
    main = Compiler(unit, src, fn, "main")
    try:
        main.compile_main()
        legalize(fn, isa)
        items: List[ProgramItem] = list(allocate(fn))
        while unit.pending:
            info = unit.pending.pop(0)
            info.compiler.compile_sub(info.params, info.ret)
            legalize(info.compiler.fn, isa)
            items.append(Label(info.label))
            items.extend(allocate(info.compiler.fn))
    except CtxError as e:
        raise main.error(str(e), main.cur) from None
    except CompileError:
        raise
    except EbpfError as e:  # tracefs or BTF trouble while typing the context
        raise main.error(f"{type(e).__name__}: {e}", main.cur) from None
    insns = link(_merge_labels(items))
    spec = ProgramSpec(decl.name, decl.prog_type, insns, attach_to=decl.attach_to,
                       attach_type=decl.attach_type, extras=dict(decl.extras))
    if decl.kind in ("tp_btf", "fentry", "fexit"):
        spec.attach_btf_id = _attach_btf_id(main, decl)
    if has_core_relocations(insns):
        from ebpf.btf import kernel_btf

        spec.extras[LOCAL_BTF_EXTRA] = kernel_btf()  # what local_value was resolved against
    spec.extras["isa"] = isa  # the instruction-set level it was compiled for (ebpf.lang.isa)
    spec.extras["compile_seconds"] = time.perf_counter() - started
    return spec


def _merge_labels(items: List[ProgramItem]) -> List[ProgramItem]:
    """One label per position: an instruction keeps a single label when linked, so jumps to
    the others would not survive re-linking (the loader links again)."""
    alias: Dict[str, str] = {}
    out: List[ProgramItem] = []
    last: Any = None
    for item in items:
        if isinstance(item, Label):
            if last is not None:
                alias[item.name] = last
                continue
            last = item.name
        else:
            last = None
        out.append(item)
    if not alias:
        return out
    fixed: List[ProgramItem] = []
    for item in out:
        if isinstance(item, Instruction) and item.reference is not None and item.reference in alias:
            item = item.copy()
            item.reference = alias[item.reference or ""]
        fixed.append(item)
    return fixed


def _attach_btf_id(comp: Any, decl: Any) -> int:
    from ebpf.btf import BTFError
    from ebpf.lang import kernel as K

    try:
        if decl.kind == "tp_btf":
            return K.btf_id_of(f"btf_trace_{decl.target}", "TYPEDEF")
        return K.btf_id_of(decl.target, "FUNC")
    except BTFError as e:
        raise comp.error(f"{decl.kind} target {decl.target!r}: {e}", comp.src.tree) from None
