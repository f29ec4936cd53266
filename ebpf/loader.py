"""Turning specs into kernel objects: maps first, then programs with their map references patched.

Program loading follows the strategy that costs nothing when all is well: BPF_PROG_LOAD without
a log first; only when the kernel refuses do we load again with a verifier log, growing the
buffer as the kernel asks (``log_true_size``) so that the reason is never cut off. A caller who
asks for a log (``log_level``) gets one at that level from the first load, accepted or not.
"""

from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional

from ebpf.errors import PermissionDenied, VerifierError
from ebpf.program import Program, ProgramSpec
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:
    from ebpf.asm import Instruction
    from ebpf.btf.spec import BTF

LOG_SIZE_FIRST = 256 * 1024
LOG_SIZE_MAX = 256 * 1024 * 1024

_TRAMPOLINE_TYPES = (AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN,
                     AttachType.LSM_MAC)
_NAME_OK = re.compile(r"[^A-Za-z0-9_.]")


def kernel_name(name: str) -> str:
    """What the kernel accepts as an object name: 15 chars of [A-Za-z0-9_.]."""
    return _NAME_OK.sub("_", name)[:15]


def _text_of(insns: List[Instruction]) -> Callable[[int], str]:
    """Map a slot index (what the verifier prints) to the instruction's text and source line."""
    from ebpf.asm import format_instruction

    by_slot: dict = {}
    slot = 0
    for ins in insns:
        by_slot[slot] = ins
        slot += ins.size

    def text(slot_index: int) -> str:
        ins = by_slot[slot_index]
        out = format_instruction(ins)
        src = getattr(ins, "source", None)
        if src is not None:
            out += f"  ({src.file}:{src.line}: {src.text.strip()})"
        return out

    return text


def load_program(
    spec: ProgramSpec,
    maps: Optional[Mapping[str, Any]] = None,
    *,
    log_level: Optional[int] = None,
    target_btf: Optional[BTF] = None,
) -> Program:
    """Assemble ``spec``, patch its map fds and load it. Raises :class:`VerifierError` with the
    verifier's reason and the offending instruction when the kernel refuses it.

    ``log_level`` (default: ``spec.log_level``, or a ``log_level`` in the spec's ``load_attrs``
    extras) asks for the verifier's log at that level even on success
    (``Program.verifier_log``); the error's ``.log`` is then at that level too. 0 loads without
    a log and fetches a level-1 log only to explain a refusal.

    Instructions carrying CO-RE relocations (``meta["core"]``) are relocated first against
    ``target_btf`` (default: the running kernel's BTF and its modules'); a program that reaches
    an instruction poisoned by an unresolvable relocation fails with a message naming it."""
    from ebpf.asm import bind_maps, encode, link
    from ebpf.btf.relo import LOCAL_BTF_EXTRA, has_core_relocations

    if spec.type in (ProgType.TRACING, ProgType.LSM) and spec.attach_to and not spec.attach_btf_id:
        from ebpf.attach.tracing import prepare_spec

        spec = prepare_spec(spec.copy())  # the attach target's BTF id, found by name
        if log_level is not None:
            spec.log_level = log_level
        try:
            return load_program(spec, maps, target_btf=target_btf)
        finally:
            module_btf = spec.extras.pop("btf_obj_fd", None)
            if module_btf is not None:
                module_btf.close()
    maps = maps or {}
    insns = link(spec.instructions)
    relocated = has_core_relocations(insns)
    if relocated:
        from ebpf.btf.core import relocate

        insns = relocate(insns, target_btf, local_btf=spec.extras.get(LOCAL_BTF_EXTRA))
    insns = bind_maps(insns, {name: int(m.fd) for name, m in maps.items()})
    code = encode(insns)
    kwargs = dict(
        name=kernel_name(spec.name),
        expected_attach_type=int(spec.attach_type) if spec.attach_type is not None else 0,
        prog_flags=spec.flags,
        kern_version=spec.kern_version,
        attach_btf_id=spec.attach_btf_id,
    )
    attrs = dict(spec.extras.get("load_attrs", {}))
    level = attrs.pop("log_level", 0)  # the loader owns the log buffer and its size
    attrs.pop("log_size", None)
    level = (spec.log_level or level) if log_level is None else log_level
    kwargs.update(attrs)
    poisoned = None
    if relocated:
        from ebpf.btf.core import poisoned_slots

        poisoned = poisoned_slots(insns)
    btf_fd = _attach_line_info(insns, spec.name, kwargs)
    try:
        return _load(spec, insns, code, kwargs, level, poisoned)
    finally:
        if btf_fd is not None:
            btf_fd.close()  # the loaded program keeps its own reference to the BTF object


def _attach_line_info(insns: List[Instruction], name: str, kwargs: dict) -> Optional[FD]:
    """Load program BTF with func_info/line_info when instructions know their source."""
    from ebpf.btf.ext import has_source, program_btf

    if not has_source(insns):
        return None
    pbtf = program_btf(insns, name)
    try:
        fd, _ = bpf.btf_load(pbtf.blob)
    except bpf.SyscallError:
        return None  # a kernel without program BTF: load without line info
    kwargs.update(prog_btf_fd=fd, func_info=pbtf.func_info, func_info_rec_size=pbtf.func_info_rec_size,
                  line_info=pbtf.line_info, line_info_rec_size=pbtf.line_info_rec_size)
    return FD(fd)


def _load(spec: ProgramSpec, insns: List[Instruction], code: bytes, kwargs: dict, log_level: int,
          poisoned: Optional[Mapping[int, str]] = None) -> Program:
    if not log_level:
        try:
            fd, _ = bpf.prog_load(spec.type, code, spec.license, **kwargs)
            return Program(FD(fd), spec, insns)
        except bpf.ProgLoadError as first:
            if first.errno == errno.EPERM:
                raise _permission_error(spec) from None
    size = LOG_SIZE_FIRST
    while True:
        try:
            fd, log = bpf.prog_load(spec.type, code, spec.license, log_level=log_level or 1, log_size=size,
                                    **kwargs)
        except bpf.ProgLoadError as e:
            if e.errno == errno.ENOSPC and size < LOG_SIZE_MAX:  # also a good program's log that did not fit
                size = max(size * 4, e.log_true_size + 1) if e.log_true_size > size else size * 4
                continue
            if e.errno == errno.EPERM and not e.log:
                raise _permission_error(spec) from None
            from ebpf.verifier import describe

            summary = describe(spec.name, e.log, _text_of(insns), poisoned)
            # the summary starts "program 'name': ...", so the sentence reads "the verifier rejected program 'name'"
            hint = "the verifier rejected" if e.log else e.hint
            raise VerifierError(e.errno or 0, e.log, summary, hint) from None
        # accepted with the log asked for, or after failing without one (a transient failure such
        # as memory): keep the log
        return Program(FD(fd), spec, insns, log)


def _permission_error(spec: ProgramSpec) -> PermissionDenied:
    from ebpf.sys.caps import has_bpf_privileges

    memlock = bpf.memlock_hint(bpf.BpfCmd.PROG_LOAD, errno.EPERM)
    if memlock:
        return PermissionDenied("BPF_PROG_LOAD", errno.EPERM, memlock)

    if spec.type == ProgType.LSM or (spec.type == ProgType.TRACING and spec.attach_type in _TRAMPOLINE_TYPES):
        if has_bpf_privileges():
            return PermissionDenied(
                "BPF_PROG_LOAD", errno.EPERM,
                "this kernel refuses BPF trampoline programs (fentry/fexit/fmod_ret/LSM) even to root: "
                "use tracepoints, raw tracepoints or tp_btf instead",
            )
    if has_bpf_privileges():
        return PermissionDenied("BPF_PROG_LOAD", errno.EPERM,
                                "the kernel refused the program although we have CAP_BPF (lockdown or LSM policy?)")
    return PermissionDenied("BPF_PROG_LOAD", errno.EPERM, "needs root or CAP_BPF+CAP_PERFMON")
