"""BTF-typed hooks: fentry/fexit/fmod_ret, LSM, tp_btf, and where their BTF ids come from.

These programs name their target at *load* time: ``attach_btf_id`` is the id of the function
(``vfs_read``), of ``btf_trace_<tracepoint>`` for tp_btf, of ``bpf_lsm_<hook>`` for LSM, and for
functions of modules ``attach_btf_obj_fd`` is the module's BTF object. :func:`prepare_spec` fills
those in from ``spec.attach_to``; attaching is then ``BPF_LINK_CREATE`` (attach type = the
program's expected attach type, optional BPF cookie) with ``BPF_RAW_TRACEPOINT_OPEN(NULL, prog)``
as the fallback for kernels without tracing links (before 5.10).

Some kernels refuse trampolines (fentry/fexit/fmod_ret/LSM) even to root: the load fails with
EPERM and the loader words it; :func:`ebpf.features.can_attach_fentry` probes it.
"""

from __future__ import annotations

import errno
from typing import Any, Dict, NamedTuple, Optional, Tuple

from ebpf.attach.link import HookUnavailable, Link, prog_fd_of, spec_of
from ebpf.errors import AttachError, BTFError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.bpf import ENOTSUPP
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType, BpfCmd, ProgType

TRAMPOLINE_TYPES = (AttachType.TRACE_FENTRY, AttachType.TRACE_FEXIT, AttachType.MODIFY_RETURN,
                    AttachType.LSM_MAC)

_KIND_NAMES = {
    AttachType.TRACE_FENTRY: "fentry", AttachType.TRACE_FEXIT: "fexit", AttachType.MODIFY_RETURN: "fmod_ret",
    AttachType.LSM_MAC: "lsm", AttachType.TRACE_RAW_TP: "tp_btf", AttachType.TRACE_ITER: "iter",
}
# what the BTF FUNC of each kind is called
_PREFIX = {AttachType.TRACE_RAW_TP: "btf_trace_", AttachType.LSM_MAC: "bpf_lsm_", AttachType.TRACE_ITER: "bpf_iter_"}


class AttachTarget(NamedTuple):
    name: str  # the BTF name (btf_trace_sched_switch, vfs_read, bpf_lsm_file_open)
    btf_id: int
    module: str  # "" for vmlinux
    btf_obj_id: int  # kernel id of the module's BTF object (0 for vmlinux)


def btf_name(attach_type: AttachType, target: str) -> str:
    """The BTF FUNC name a target is found under (``sched_switch`` -> ``btf_trace_sched_switch``)."""
    prefix = _PREFIX.get(attach_type, "")
    if "/" in target or ":" in target:  # "sched/sched_switch" for tp_btf
        target = target.replace(":", "/").rsplit("/", 1)[1]
    return target if not prefix or target.startswith(prefix) else prefix + target


def _split_module(target: str) -> Tuple[str, str]:
    if ":" in target and not target.startswith(":"):
        module, _, func = target.partition(":")
        if module and func and "/" not in module:
            return module, func
    return "", target


def find_target(attach_type: AttachType, target: str) -> AttachTarget:
    """Find the BTF id of ``target`` for ``attach_type``: in vmlinux, else in a module.

    ``"module:function"`` looks only in that module's BTF.
    """
    from ebpf.btf import Kind, kernel_btf, module_btf, module_names

    module, func = _split_module(target) if attach_type not in (AttachType.TRACE_RAW_TP,) else ("", target)
    name = btf_name(attach_type, func)
    kind_name = _KIND_NAMES.get(attach_type, "tracing")
    try:
        kind = Kind.TYPEDEF if attach_type == AttachType.TRACE_RAW_TP else Kind.FUNC
        if not module:
            ids = kernel_btf().ids_by_name(name, kind)
            if ids:
                return AttachTarget(name, ids[0], "", 0)
            modules = module_names()
        else:
            modules = [module]
        for mod in modules:
            try:
                ids = module_btf(mod).ids_by_name(name, kind)
            except BTFError:
                if module:
                    raise
                continue
            if ids:
                return AttachTarget(name, ids[0], mod, module_btf_obj_id(mod))
    except BTFError as e:
        raise AttachError(f"cannot find {kind_name} target {target!r}: {e}") from None
    where = f"module {module}" if module else "the kernel's or any module's BTF"
    raise AttachError(f"cannot find {kind_name} target {target!r}: no function {name} in {where}")


_btf_obj_ids: Dict[str, int] = {}


def module_btf_obj_id(module: str) -> int:
    """The kernel id of the BTF object of ``module`` (walks BPF_BTF_GET_NEXT_ID)."""
    if module in _btf_obj_ids:
        return _btf_obj_ids[module]
    from ebpf.sys.ffi import ffi

    next_id = 0
    while True:
        attr, a, size = bpf._attr("get_id")
        a.start_id = next_id
        if bpf._try(BpfCmd.BTF_GET_NEXT_ID, attr, size) < 0:
            break
        next_id = int(a.next_id)
        try:
            fd = FD(bpf.btf_get_fd_by_id(next_id))
        except SyscallError:
            continue
        try:
            name_buf = ffi.new("char[]", 64)
            info = ffi.new("struct bpf_btf_info *")
            info.name = int(ffi.cast("uintptr_t", name_buf))
            info.name_len = 64
            bpf.obj_get_info_by_fd(int(fd), info)
            found = ffi.string(name_buf).decode(errors="replace")
        finally:
            fd.close()
        if info.kernel_btf:
            _btf_obj_ids[found] = next_id
            if found == module:
                return next_id
    raise AttachError(f"no kernel BTF object for module {module!r}")


def prepare_spec(spec: Any) -> Any:
    """Fill ``attach_btf_id`` (and the module's BTF fd in ``extras['load_attrs']``) of a TRACING,
    LSM or EXT spec from its ``attach_to``; returns the spec. A module BTF fd is opened for the
    load and kept in ``extras['btf_obj_fd']`` (an :class:`FD`; close it after loading)."""
    if spec.attach_btf_id or not spec.attach_to:
        return spec
    if spec.type not in (ProgType.TRACING, ProgType.LSM):
        return spec
    attach_type = spec.attach_type if spec.attach_type is not None else (
        AttachType.LSM_MAC if spec.type == ProgType.LSM else AttachType.TRACE_FENTRY)
    spec.attach_type = attach_type
    target = find_target(attach_type, spec.attach_to)
    spec.attach_btf_id = target.btf_id
    if target.btf_obj_id:
        fd = FD(bpf.btf_get_fd_by_id(target.btf_obj_id))
        spec.extras["btf_obj_fd"] = fd
        spec.extras.setdefault("load_attrs", {})["attach_btf_obj_fd"] = int(fd)
    return spec


def _attach_type_of(program: Any, default: Optional[AttachType]) -> AttachType:
    spec = spec_of(program)
    at = getattr(spec, "attach_type", None) if spec is not None else None
    if at is None:
        at = default
    if at is None:
        raise AttachError(f"{program!r}: unknown attach type (load it from a ProgramSpec, or pass attach_type=)")
    return AttachType(at)


def attach_tracing(program: Any, name: Optional[str] = None, *, cookie: int = 0,
                   attach_type: Optional[AttachType] = None) -> Link:
    """Attach a loaded fentry/fexit/fmod_ret/LSM/tp_btf program (its target is in the program)."""
    at = _attach_type_of(program, attach_type)
    kind = _KIND_NAMES.get(at, "tracing")
    spec = spec_of(program)
    label = name or (getattr(spec, "attach_to", "") if spec is not None else "") or "?"
    prog_fd = prog_fd_of(program)
    try:
        fd = FD(bpf.link_create(prog_fd, 0, at, 0, tracing={"target_btf_id": 0, "cookie": cookie}))
        return Link([fd], label, via="bpf_link", link_fd=fd, kind=kind)
    except SyscallError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP) or cookie:
            raise _attach_error(kind, label, e) from None
    try:  # kernels before 5.10: no tracing links
        fd = FD(bpf.raw_tracepoint_open(None, prog_fd))
    except SyscallError as e:
        raise _attach_error(kind, label, e) from None
    return Link([fd], label, via="raw_tracepoint_open", link_fd=fd, kind=kind)


def _attach_error(kind: str, label: str, e: SyscallError) -> AttachError:
    if e.errno == errno.EPERM and kind in ("fentry", "fexit", "fmod_ret", "lsm"):
        return HookUnavailable(f"cannot attach {kind} to {label}: this kernel refuses BPF trampolines "
                               f"(fentry/fexit/fmod_ret/LSM) even to root: {e}")
    return AttachError(f"cannot attach {kind} to {label}: {e}")


def attach_fentry(program: Any, name: Optional[str] = None, *, cookie: int = 0) -> Link:
    return attach_tracing(program, name, cookie=cookie, attach_type=AttachType.TRACE_FENTRY)


def attach_fexit(program: Any, name: Optional[str] = None, *, cookie: int = 0) -> Link:
    return attach_tracing(program, name, cookie=cookie, attach_type=AttachType.TRACE_FEXIT)


def attach_fmod_ret(program: Any, name: Optional[str] = None, *, cookie: int = 0) -> Link:
    return attach_tracing(program, name, cookie=cookie, attach_type=AttachType.MODIFY_RETURN)


def attach_lsm(program: Any, name: Optional[str] = None, *, cookie: int = 0) -> Link:
    return attach_tracing(program, name, cookie=cookie, attach_type=AttachType.LSM_MAC)


def attach_tp_btf(program: Any, name: Optional[str] = None, *, cookie: int = 0) -> Link:
    """tp_btf through a BPF link (BPF_TRACE_RAW_TP), raw_tracepoint_open on older kernels."""
    return attach_tracing(program, name, cookie=cookie, attach_type=AttachType.TRACE_RAW_TP)
