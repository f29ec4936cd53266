"""What the running kernel can do, probed the way libbpf and cilium/ebpf probe it; cached per process.

Tools choose their fallbacks with these, as libbpf-tools do: ``can_attach_fentry(func)`` else a
kprobe (and neither on a kernel without kprobes or trampolines: then tracepoints), ``have_tp_btf()``
else a raw tracepoint, ``have_ringbuf()`` else a perf buffer.

Probes load tiny programs (``r0 = 0; exit``) or create tiny maps. A helper is *supported* for a
program type when the verifier gets past the call (it may then reject the arguments: that still
means the helper exists); "invalid func"/"unknown func" and "program of this type cannot use
helper" mean it does not. Every probe gives a :class:`Feature` (``supported`` plus a sentence);
the ``have_*`` functions give its bool. Results that depend on privileges we lack raise
:class:`~ebpf.errors.PermissionDenied` instead of answering "no".
"""

from __future__ import annotations

import errno
import os
import struct
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from ebpf.errors import EbpfError, PermissionDenied, SyscallError
from ebpf.uapi import AttachType, MapType, ProgType

if TYPE_CHECKING:  # pragma: no cover
    from ebpf.uapi import HelperId  # imported where used: the enum is not free to build

__all__ = [
    "HOOKS", "probe_hook", "can_attach_trampoline",
    "Feature", "probe_program_type", "probe_map_type", "probe_helper", "have_program_type", "have_map_type",
    "have_helper", "have_bpf_link", "have_perf_link", "can_attach_fentry", "have_fentry", "have_tp_btf",
    "have_ringbuf", "have_bpf_loop", "have_kprobe_pmu", "have_kprobe_events", "have_kprobes", "have_uprobe_pmu",
    "have_uprobe_events", "have_kprobe_multi", "have_uprobe_multi", "have_lsm", "have_iter", "have_btf",
    "have_tcx", "have_bpf_cookie", "summary", "clear_cache", "probe_isa", "isa_level", "probe_may_goto",
    "have_may_goto",
]


class Feature(NamedTuple):
    name: str
    supported: bool
    detail: str = ""

    def __bool__(self) -> bool:
        return self.supported


_cache: Dict[Tuple[Any, ...], Feature] = {}
_lock = threading.RLock()


def _cached(key: Tuple[Any, ...], fn: Callable[[], Feature]) -> Feature:
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = fn()
            _cache[key] = found
        return found


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _privileged() -> None:
    from ebpf.sys.caps import has_bpf_privileges

    if not has_bpf_privileges():
        raise PermissionDenied("bpf", errno.EPERM, "feature probes need root or CAP_BPF+CAP_PERFMON")


# --- tiny programs ----------------------------------------------------------------------------


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def _ret(value: int = 0) -> bytes:
    return _insn(0xB7, 0, imm=value) + _insn(0x95)  # r0 = value; exit


def _call(helper: int) -> bytes:
    return _insn(0x85, imm=helper)


def _btf_func_id(name: str) -> int:
    """The BTF id of FUNC ``name`` (for ``btf_trace_*`` the TYPEDEF the kernel attaches tp_btf by)."""
    try:
        from ebpf.btf import Kind, kernel_btf

        ids = kernel_btf().ids_by_name(name, Kind.TYPEDEF if name.startswith("btf_trace_") else Kind.FUNC)
    except EbpfError:
        return 0
    return ids[0] if ids else 0


def _load_args(ptype: ProgType) -> Optional[Dict[str, Any]]:
    """The extra BPF_PROG_LOAD attributes a minimal program of ``ptype`` needs (None: cannot say)."""
    if ptype == ProgType.TRACING:
        btf_id = _btf_func_id("btf_trace_sched_switch")
        return {"expected_attach_type": AttachType.TRACE_RAW_TP, "attach_btf_id": btf_id} if btf_id else None
    if ptype == ProgType.LSM:
        btf_id = _btf_func_id("bpf_lsm_file_open")
        return {"expected_attach_type": AttachType.LSM_MAC, "attach_btf_id": btf_id} if btf_id else None
    if ptype in (ProgType.EXT, ProgType.STRUCT_OPS, ProgType.UNSPEC):
        return None
    extra: Dict[str, Any] = {}
    if ptype == ProgType.CGROUP_SOCK_ADDR:
        extra["expected_attach_type"] = AttachType.CGROUP_INET4_CONNECT
    elif ptype == ProgType.CGROUP_SOCKOPT:
        extra["expected_attach_type"] = AttachType.CGROUP_GETSOCKOPT
    elif ptype == ProgType.SK_LOOKUP:
        extra["expected_attach_type"] = AttachType.SK_LOOKUP
    elif ptype == ProgType.NETFILTER:
        extra["expected_attach_type"] = AttachType.NETFILTER
    elif ptype == ProgType.SYSCALL:
        extra["prog_flags"] = 1 << 4  # BPF_F_SLEEPABLE
    return extra


def _try_load(ptype: ProgType, code: bytes, extra: Dict[str, Any], log: bool = False) -> Tuple[int, str]:
    """(errno or 0, verifier log) of loading ``code``; the program is closed at once."""
    from ebpf.sys import bpf

    kwargs = dict(extra)
    if log:
        kwargs.update(log_level=1, log_size=65536)
    try:
        fd, text = bpf.prog_load(int(ptype), code, "GPL", **kwargs)
    except bpf.ProgLoadError as e:
        return e.errno or errno.EINVAL, e.log
    os.close(fd)
    return 0, text


def _kernel_enum_has(enum: str, value: str) -> bool:
    """Does the kernel's BTF enum ``enum`` (bpf_prog_type, bpf_map_type) have ``value``?"""
    try:
        from ebpf.btf import Kind, kernel_btf

        btf = kernel_btf()
        for tid in btf.ids_by_name(enum, Kind.ENUM):
            t = btf.type_by_id(tid)
            return value in {v.name for v in getattr(t, "values", ())}
    except EbpfError:
        pass
    return False


def _kernel_knows_prog_type(ptype: ProgType) -> bool:
    return _kernel_enum_has("bpf_prog_type", f"BPF_PROG_TYPE_{ptype.name}")


def probe_program_type(ptype: Union[ProgType, str, int]) -> Feature:
    """Can programs of ``ptype`` be loaded?"""
    from ebpf.program import prog_type_of

    pt = prog_type_of(ptype)

    def run() -> Feature:
        _privileged()
        name = f"program type {pt.name.lower()}"
        extra = _load_args(pt)
        if extra is None:
            known = _kernel_knows_prog_type(pt)
            return Feature(name, known, "known to the kernel (BTF enum bpf_prog_type); not loadable standalone"
                           if known else "unknown to the kernel")
        err, _ = _try_load(pt, _ret(0), extra)
        if err == 0:
            return Feature(name, True, "loads")
        if err == errno.EPERM:
            return Feature(name, False, "refused with EPERM although privileged (kernel policy)")
        return Feature(name, False, f"{errno.errorcode.get(err, err)} at load")

    return _cached(("prog", pt), run)


def probe_map_type(mtype: Union[MapType, str, int]) -> Feature:
    """Can maps of ``mtype`` be created (with the smallest sensible shape)?"""
    from ebpf.maps.spec import map_type_of
    from ebpf.sys import bpf

    mt = map_type_of(mtype)

    def run() -> Feature:
        _privileged()
        name = f"map type {mt.name.lower()}"
        key, value, entries, flags, extra = 4, 4, 1, 0, 0
        if mt in (MapType.RINGBUF, MapType.USER_RINGBUF):
            key, value, entries = 0, 0, os.sysconf("SC_PAGE_SIZE")
        elif mt in (MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER):
            key = 0
        elif mt == MapType.LPM_TRIE:
            key, value, flags = 8, 4, 1  # BPF_F_NO_PREALLOC
        elif mt in (MapType.STACK_TRACE,):
            value = 8
        elif mt in (MapType.CGROUP_STORAGE, MapType.PERCPU_CGROUP_STORAGE):
            key, entries = 16, 0
        elif mt in (MapType.SK_STORAGE, MapType.INODE_STORAGE, MapType.TASK_STORAGE, MapType.CGRP_STORAGE):
            entries, flags = 0, 1
        elif mt == MapType.ARENA:
            key, value, entries, flags = 0, 0, 1, 1 << 10  # BPF_F_MMAPABLE
        elif mt in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
            inner = bpf.map_create(MapType.ARRAY, 4, 4, 1)
            try:
                fd = bpf.map_create(mt, 4, 4, 1, inner_map_fd=inner)
                os.close(fd)
                return Feature(name, True, "created")
            except SyscallError as e:
                return Feature(name, False, f"{e.errno_name} at create")
            finally:
                os.close(inner)
        elif mt == MapType.STRUCT_OPS:
            return Feature(name, True, "not creatable without a struct_ops type; assumed")
        try:
            fd = bpf.map_create(mt, key, value, entries, flags, map_extra=extra)
        except SyscallError as e:
            if e.errno == errno.EINVAL and _kernel_enum_has("bpf_map_type", f"BPF_MAP_TYPE_{mt.name}"):
                return Feature(name, True, "known to the kernel (BTF enum bpf_map_type); needs a particular "
                               "shape or BTF to create")
            return Feature(name, False, f"{e.errno_name} at create")
        os.close(fd)
        return Feature(name, True, "created")

    return _cached(("map", mt), run)


_HELPER_ABSENT = ("invalid func", "unknown func")
_HELPER_NOT_FOR_TYPE = "program of this type cannot use helper"


def probe_helper(ptype: Union[ProgType, str, int], helper: Union[HelperId, str, int]) -> Feature:
    """Can programs of ``ptype`` call ``helper``?"""
    from ebpf.program import prog_type_of
    from ebpf.uapi import HelperId

    pt = prog_type_of(ptype)
    if isinstance(helper, str):
        hid = int(HelperId[helper[4:] if helper.startswith("bpf_") else helper])
    else:
        hid = int(helper)
    hname = HelperId(hid).name if hid in HelperId._value2member_map_ else str(hid)

    def run() -> Feature:
        _privileged()
        name = f"helper bpf_{hname} in {pt.name.lower()}"
        extra = _load_args(pt)
        if extra is None:
            return Feature(name, False, "program type cannot be probed")
        err, log = _try_load(pt, _call(hid) + _ret(0), extra, log=True)
        if err == 0:
            return Feature(name, True, "loads")
        if any(s in log for s in _HELPER_ABSENT):
            return Feature(name, False, "unknown to the kernel")
        if _HELPER_NOT_FOR_TYPE in log:
            return Feature(name, False, "not allowed for this program type")
        if err == errno.EPERM and not log:
            return Feature(name, False, "program type refused with EPERM")
        if not log and err == errno.EINVAL:
            return Feature(name, False, "program type not supported")
        return Feature(name, True, "known (the verifier checked its arguments)")

    return _cached(("helper", pt, hid), run)


def have_program_type(ptype: Union[ProgType, str, int]) -> bool:
    return probe_program_type(ptype).supported


def have_map_type(mtype: Union[MapType, str, int]) -> bool:
    return probe_map_type(mtype).supported


def have_helper(ptype: Union[ProgType, str, int], helper: Union[HelperId, str, int]) -> bool:
    return probe_helper(ptype, helper).supported


# --- links and hooks --------------------------------------------------------------------------


def _load_fd(ptype: ProgType, extra: Dict[str, Any], value: int = 0, code: Optional[bytes] = None) -> Optional[int]:
    """The fd of ``code`` (default ``r0 = value; exit``) loaded as ``ptype``, or None if refused."""
    from ebpf.sys import bpf

    try:
        return bpf.prog_load(int(ptype), _ret(value) if code is None else code, "GPL", **extra)[0]
    except bpf.ProgLoadError:
        return None


def probe_bpf_link() -> Feature:
    """BPF_LINK_CREATE (5.7+): a cgroup link to fd -1 fails with EBADF where the command exists."""
    from ebpf.sys import bpf

    def run() -> Feature:
        _privileged()
        fd = _load_fd(ProgType.CGROUP_SKB, {"expected_attach_type": AttachType.CGROUP_INET_INGRESS}, 1)
        if fd is None:
            return Feature("BPF links", False, "cannot load a cgroup_skb program")
        try:
            bpf.link_create(fd, 0xFFFFFFFF, AttachType.CGROUP_INET_INGRESS)
        except SyscallError as e:
            return Feature("BPF links", e.errno == errno.EBADF, f"BPF_LINK_CREATE: {e.errno_name}")
        finally:
            os.close(fd)
        return Feature("BPF links", True, "BPF_LINK_CREATE")

    return _cached(("bpf_link",), run)


def probe_perf_link() -> Feature:
    """BPF links on perf events (5.15+), the way tracepoints and probes are attached."""
    from ebpf.sys import bpf, perf, tracefs

    def run() -> Feature:
        _privileged()
        name = "perf event links"
        fd = _load_fd(ProgType.TRACEPOINT, {})
        if fd is None:
            return Feature(name, False, "cannot load a tracepoint program")
        try:
            try:
                tp_id = tracefs.tracepoint_id("syscalls", "sys_enter_getppid")
            except EbpfError:
                return Feature(name, have_bpf_link(), "no tracepoint to try; assumed from BPF links")
            pfd = perf.perf_event_open(perf.PerfType.TRACEPOINT, tp_id, pid=-1, cpu=0, sample_period=1)
            try:
                link = bpf.link_create(fd, pfd, AttachType.PERF_EVENT)
                os.close(link)
                return Feature(name, True, "BPF_LINK_CREATE(BPF_PERF_EVENT)")
            except SyscallError as e:
                return Feature(name, False, f"BPF_LINK_CREATE(BPF_PERF_EVENT): {e.errno_name}")
            finally:
                os.close(pfd)
        except SyscallError as e:
            return Feature(name, False, str(e))
        finally:
            os.close(fd)

    return _cached(("perf_link",), run)


def can_attach_fentry(func: str, module: Optional[str] = None) -> Feature:
    """libbpf-tools' ``fentry_can_attach``: load an fentry program for ``func`` and attach it."""
    return can_attach_trampoline(AttachType.TRACE_FENTRY, func, module)


def can_attach_trampoline(attach_type: AttachType, func: str, module: Optional[str] = None) -> Feature:
    """Load a ``r0 = 0`` fentry/fexit/fmod_ret program for ``func`` and attach it for an instant
    (an fmod_ret program that returns 0 lets the function run: nothing changes meanwhile)."""
    from ebpf.sys import bpf

    kind = {AttachType.TRACE_FENTRY: "fentry", AttachType.TRACE_FEXIT: "fexit",
            AttachType.MODIFY_RETURN: "fmod_ret"}[attach_type]

    def run() -> Feature:
        _privileged()
        name = f"{kind} on {func}"
        from ebpf.attach.tracing import find_target

        try:
            target = find_target(attach_type, f"{module}:{func}" if module else func)
        except EbpfError as e:
            return Feature(name, False, str(e))
        extra: Dict[str, Any] = {"expected_attach_type": attach_type, "attach_btf_id": target.btf_id}
        obj_fd = None
        if target.btf_obj_id:
            obj_fd = bpf.btf_get_fd_by_id(target.btf_obj_id)
            extra["attach_btf_obj_fd"] = obj_fd
        try:
            try:
                fd, _ = bpf.prog_load(int(ProgType.TRACING), _ret(0), "GPL", **extra)
            except bpf.ProgLoadError as e:
                why = "the kernel refuses trampolines (EPERM)" if e.errno == errno.EPERM else e.errno_name
                return Feature(name, False, f"load: {why}")
            try:
                link = bpf.raw_tracepoint_open(None, fd)
                os.close(link)
            except SyscallError as e:
                return Feature(name, False, f"attach: {e.errno_name}")
            finally:
                os.close(fd)
            return Feature(name, True, "loads and attaches")
        finally:
            if obj_fd is not None:
                os.close(obj_fd)

    return _cached((kind, func, module), run)


def have_fentry() -> bool:
    """Trampolines at all (fentry on vfs_read)."""
    return can_attach_fentry("vfs_read").supported


def probe_tp_btf(name: str = "sched_switch") -> Feature:
    """libbpf-tools' ``probe_tp_btf``: load a tp_btf program for tracepoint ``name``."""

    def run() -> Feature:
        _privileged()
        label = f"tp_btf {name}"
        btf_id = _btf_func_id("btf_trace_" + name)
        if not btf_id:
            return Feature(label, False, f"no btf_trace_{name} in the kernel's BTF")
        err, _ = _try_load(ProgType.TRACING, _ret(0), {"expected_attach_type": AttachType.TRACE_RAW_TP,
                                                        "attach_btf_id": btf_id})
        return Feature(label, err == 0, "loads" if err == 0 else f"load: {errno.errorcode.get(err, err)}")

    return _cached(("tp_btf", name), run)


def have_tp_btf(name: str = "sched_switch") -> bool:
    return probe_tp_btf(name).supported


def probe_lsm(hook: str = "file_open") -> Feature:
    """LSM programs for ``hook`` load, and LSM programs run: the kernel loads and attaches them
    even where ``bpf`` is not among the active LSMs (``lsm=``), and then they never run."""

    def run() -> Feature:
        _privileged()
        label = f"lsm {hook}"
        btf_id = _btf_func_id("bpf_lsm_" + hook)
        if not btf_id:
            return Feature(label, False, f"no bpf_lsm_{hook} in the kernel's BTF")
        err, _ = _try_load(ProgType.LSM, _ret(0), {"expected_attach_type": AttachType.LSM_MAC,
                                                    "attach_btf_id": btf_id})
        if err == errno.EPERM:
            return Feature(label, False, "load refused with EPERM (the kernel refuses trampolines)")
        if err:
            return Feature(label, False, f"load: {errno.errorcode.get(err, err)}")
        runs = _lsm_runs()
        return Feature(label, runs.supported, "loads and runs" if runs.supported else runs.detail)

    return _cached(("lsm", hook), run)


LSM_PROBE_ATTR_SIZE = 3  # a bpf() attribute size no caller passes: the probe's own calls are told apart by it


def _lsm_runs() -> Feature:
    """Whether the BPF LSM is active: an ``lsm/bpf`` program that denies (EPERM) only bpf()
    calls made with :data:`LSM_PROBE_ATTR_SIZE` bytes of attributes, attached for one such call."""
    from ebpf.sys import bpf
    from ebpf.uapi import BpfCmd

    def run() -> Feature:
        name = "BPF LSM active"
        btf_id = _btf_func_id("bpf_lsm_bpf")
        if not btf_id:
            return Feature(name, False, "no bpf_lsm_bpf in the kernel's BTF")
        code = (_insn(0x79, 2, 1, 16)  # r2 = ctx[2]: security_bpf(cmd, attr, size)'s size
                + _insn(0xB7, 0) + _insn(0x55, 2, off=1, imm=LSM_PROBE_ATTR_SIZE)  # r0 = 0; if r2 != 3 goto exit
                + _insn(0xB7, 0, imm=-errno.EPERM) + _insn(0x95))
        fd = _load_fd(ProgType.LSM, {"expected_attach_type": AttachType.LSM_MAC, "attach_btf_id": btf_id}, code=code)
        if fd is None:
            return Feature(name, False, "cannot load an lsm/bpf program")
        try:
            link = bpf.raw_tracepoint_open(None, fd)
        except SyscallError as e:
            os.close(fd)
            return Feature(name, False, f"attach: {e.errno_name}")
        try:
            attr, _, _ = bpf._attr("get_id")
            denied = bpf._try(BpfCmd.PROG_GET_NEXT_ID, attr, LSM_PROBE_ATTR_SIZE) == -errno.EPERM
        finally:
            os.close(link)
            os.close(fd)
        if denied:
            return Feature(name, True, "an lsm/bpf program ran")
        return Feature(name, False, "LSM programs load and attach but never run: bpf is not among the active "
                                    f"LSMs{_active_lsms()} (boot with lsm=...,bpf)")

    return _cached(("lsm_runs",), run)


def _active_lsms() -> str:
    try:
        with open("/sys/kernel/security/lsm") as f:
            return f" ({f.read().strip()})"
    except OSError:
        return ""


def have_lsm() -> bool:
    return probe_lsm().supported


def probe_iter(target: str = "task") -> Feature:
    def run() -> Feature:
        _privileged()
        label = f"iterator {target}"
        btf_id = _btf_func_id("bpf_iter_" + target)
        if not btf_id:
            return Feature(label, False, f"no bpf_iter_{target} in the kernel's BTF")
        err, _ = _try_load(ProgType.TRACING, _ret(0), {"expected_attach_type": AttachType.TRACE_ITER,
                                                        "attach_btf_id": btf_id})
        return Feature(label, err == 0, "loads" if err == 0 else f"load: {errno.errorcode.get(err, err)}")

    return _cached(("iter", target), run)


def have_iter(target: str = "task") -> bool:
    return probe_iter(target).supported


# --- one verdict per hook kind (what ``ebpf features`` says; the VM tier checks it against live attachments) ---

HOOKS = ("kprobe", "kretprobe", "kprobe_multi", "fentry", "fexit", "fmod_ret", "lsm", "uprobe", "uretprobe", "usdt",
         "tp_btf", "raw_tp", "tracepoint", "perf_event", "iter", "xdp", "tc")


def probe_hook(hook: str) -> Feature:
    """Whether programs attached to ``hook`` (one of :data:`HOOKS`) can run on this kernel."""
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook!r} (one of {', '.join(HOOKS)})")
    found = _HOOK_PROBES[hook]()
    return Feature(f"hook {hook}", found.supported, found.detail or found.name)


def _dynamic_probes(kind: str) -> Feature:
    pmu = have_kprobe_pmu() if kind == "kprobe" else have_uprobe_pmu()
    events = have_kprobe_events() if kind == "kprobe" else have_uprobe_events()
    via = [w for w, ok in ((f"the {kind} PMU", pmu), (f"tracefs {kind}_events", events)) if ok]
    return Feature(kind, bool(via), " and ".join(via) if via else f"neither the {kind} PMU nor tracefs {kind}_events")


def _with_type(ptype: ProgType, *more: Tuple[bool, str]) -> Feature:
    """The program type loads, and each (condition, what is missing) holds."""
    loads = probe_program_type(ptype)
    if not loads.supported:
        return loads
    for ok, missing in more:
        if not ok:
            return Feature(loads.name, False, missing)
    return loads


def _tc() -> Feature:
    tcx = probe_tcx()
    if tcx.supported:
        return tcx
    missing = [m for m in ("sch_ingress", "cls_bpf") if not _kernel_module_available(m)]
    return _with_type(ProgType.SCHED_CLS, (not missing, f"no tcx links ({tcx.detail}), and the classic path's "
                                                        f"module{'s' * (len(missing) > 1)} {', '.join(missing)} "
                                                        "is neither loaded nor installed"))


def _kernel_module_available(name: str) -> bool:
    """Module ``name`` is loaded, built in, or installed where the kernel loads it on demand."""
    if os.path.isdir(f"/sys/module/{name}"):
        return True
    base = f"/lib/modules/{os.uname().release}"
    try:
        with open(f"{base}/modules.builtin") as f:
            if any(line.rstrip().endswith(f"/{name}.ko") for line in f):
                return True
        with open(f"{base}/modules.dep") as f:
            return any(line.split(":", 1)[0].rsplit("/", 1)[-1].split(".ko")[0] == name for line in f)
    except OSError:
        return False


_HOOK_PROBES: Dict[str, Callable[[], Feature]] = {
    "kprobe": lambda: _dynamic_probes("kprobe"),
    "kretprobe": lambda: _dynamic_probes("kprobe"),
    "kprobe_multi": lambda: probe_kprobe_multi(),
    "fentry": lambda: can_attach_fentry("vfs_read"),
    "fexit": lambda: can_attach_trampoline(AttachType.TRACE_FEXIT, "vfs_read"),
    "fmod_ret": lambda: can_attach_trampoline(AttachType.MODIFY_RETURN, "security_file_open"),
    "lsm": lambda: probe_lsm(),
    "uprobe": lambda: _dynamic_probes("uprobe"),
    "uretprobe": lambda: _dynamic_probes("uprobe"),
    "usdt": lambda: _dynamic_probes("uprobe"),
    "tp_btf": lambda: probe_tp_btf(),
    "raw_tp": lambda: _with_type(ProgType.RAW_TRACEPOINT),
    "tracepoint": lambda: _with_type(ProgType.TRACEPOINT, (_have_tracefs(), "no tracefs")),
    "perf_event": lambda: _with_type(ProgType.PERF_EVENT),
    "iter": lambda: probe_iter(),
    "xdp": lambda: _with_type(ProgType.XDP, (have_bpf_link(), "no BPF links (XDP links need 5.9+)")),
    "tc": _tc,
}


def _have_tracefs() -> bool:
    from ebpf.sys import tracefs

    try:
        tracefs.tracefs_path()
    except EbpfError:
        return False
    return True


def have_ringbuf() -> bool:
    return have_map_type(MapType.RINGBUF)


def have_bpf_loop() -> bool:
    return have_helper(ProgType.TRACEPOINT, "loop")


def have_bpf_cookie() -> bool:
    return have_helper(ProgType.KPROBE, "get_attach_cookie")


def have_bpf_link() -> bool:
    return probe_bpf_link().supported


def have_perf_link() -> bool:
    return probe_perf_link().supported


def have_btf() -> bool:
    return os.path.exists("/sys/kernel/btf/vmlinux")


def have_kprobe_pmu() -> bool:
    from ebpf.attach.probe_events import pmu_type

    return pmu_type("kprobe") is not None


def have_kprobe_events() -> bool:
    from ebpf.attach.probe_events import events_file

    return events_file("kprobe") is not None


def have_kprobes() -> bool:
    return have_kprobe_pmu() or have_kprobe_events()


def have_uprobe_pmu() -> bool:
    from ebpf.attach.probe_events import pmu_type

    return pmu_type("uprobe") is not None


def have_uprobe_events() -> bool:
    from ebpf.attach.probe_events import events_file

    return events_file("uprobe") is not None


def probe_kprobe_multi() -> Feature:
    from ebpf.sys import bpf
    from ebpf.sys.ffi import ffi

    def run() -> Feature:
        _privileged()
        name = "kprobe.multi links"
        fd = _load_fd(ProgType.KPROBE, {"expected_attach_type": AttachType.TRACE_KPROBE_MULTI})
        if fd is None:
            return Feature(name, False, "cannot load a kprobe.multi program")
        sym = ffi.new("char[]", b"vfs_read")
        syms = ffi.new("uint64_t[]", [int(ffi.cast("uintptr_t", sym))])
        try:
            link = bpf.link_create(fd, 0, AttachType.TRACE_KPROBE_MULTI, kprobe_multi={"cnt": 1, "syms": syms})
            os.close(link)
            return Feature(name, True, "BPF_LINK_CREATE(BPF_TRACE_KPROBE_MULTI)")
        except SyscallError as e:
            return Feature(name, False, f"BPF_LINK_CREATE: {e.errno_name}")
        finally:
            os.close(fd)

    return _cached(("kprobe_multi",), run)


def have_kprobe_multi() -> bool:
    return probe_kprobe_multi().supported


def probe_uprobe_multi() -> Feature:
    """libbpf's probe: a uprobe.multi link on "/" (not a regular file) fails with EBADF if supported."""
    from ebpf.sys import bpf
    from ebpf.sys.ffi import ffi

    def run() -> Feature:
        _privileged()
        name = "uprobe.multi links"
        fd = _load_fd(ProgType.KPROBE, {"expected_attach_type": AttachType.TRACE_UPROBE_MULTI})
        if fd is None:
            return Feature(name, False, "cannot load a uprobe.multi program")
        path = ffi.new("char[]", b"/")
        offs = ffi.new("uint64_t[]", [0])
        try:
            link = bpf.link_create(fd, 0, AttachType.TRACE_UPROBE_MULTI,
                                   uprobe_multi={"path": path, "offsets": offs, "cnt": 1})
            os.close(link)
            return Feature(name, True, "BPF_LINK_CREATE(BPF_TRACE_UPROBE_MULTI)")
        except SyscallError as e:
            return Feature(name, e.errno == errno.EBADF, f"BPF_LINK_CREATE: {e.errno_name}")
        finally:
            os.close(fd)

    return _cached(("uprobe_multi",), run)


def have_uprobe_multi() -> bool:
    return probe_uprobe_multi().supported


def probe_tcx() -> Feature:
    """tcx links (6.6+): a pass-through (TCX_NEXT) program linked to lo's ingress for an instant."""
    from ebpf.sys import bpf

    def run() -> Feature:
        _privileged()
        name = "tcx links"
        fd = _load_fd(ProgType.SCHED_CLS, {}, -1)
        if fd is None:
            return Feature(name, False, "cannot load a sched_cls program")
        try:
            link = bpf.link_create(fd, 1, AttachType.TCX_INGRESS)
            os.close(link)
            return Feature(name, True, "BPF_LINK_CREATE(BPF_TCX_INGRESS)")
        except SyscallError as e:
            return Feature(name, False, f"BPF_LINK_CREATE: {e.errno_name}")
        finally:
            os.close(fd)

    return _cached(("tcx",), run)


def have_tcx() -> bool:
    return probe_tcx().supported


# --- the instruction set ----------------------------------------------------------------------
# One socket filter per level, holding the instructions that level added last (~50 us a load).
# The compiler asks only when it compiles (a compile-cache miss), never on a warm start.


def _isa_program(level: int) -> bytes:
    if level == 4:  # r0 = (s32)r0: movsx, with ldsx/sdiv/smod/bswap/gotol since 6.6
        return _insn(0xB7) + _insn(0xBF, 0, 0, 32) + _insn(0x95)
    if level == 3:  # atomic_fetch_or on the stack (5.12), then if w0 > 0 (jmp32, 5.1)
        return (_insn(0xB7) + _insn(0x7B, 10, 0, -8) + _insn(0xDB, 10, 0, -8, 0x41) + _insn(0xB7)
                + _insn(0x26) + _insn(0x95))
    return _insn(0xB7) + _insn(0xA5, 0, 0, 0, 1) + _insn(0x95)  # if r0 < 1 (jlt, 4.14)


_ISA_WHAT = {2: "jlt/jle/jslt/jsle", 3: "jmp32, atomic or/and/xor/fetch/xchg/cmpxchg",
             4: "movsx, ldsx, sdiv/smod, bswap, gotol"}
_ISA_BY_RELEASE = ((4, (6, 6)), (3, (5, 12)), (2, (4, 14)))


def probe_isa(level: int) -> Feature:
    """Does the verifier take the instructions of ISA ``level`` (2-4; 1 is always there)?"""

    def run() -> Feature:
        name = f"instruction set v{level}"
        if level <= 1:
            return Feature(name, True, "the base set")
        _privileged()
        err, _ = _try_load(ProgType.SOCKET_FILTER, _isa_program(level), {})
        return Feature(name, err == 0, _ISA_WHAT[level] + ("" if err == 0 else
                                                            f": refused ({errno.errorcode.get(err, err)})"))

    return _cached(("isa", level), run)


def _release() -> Tuple[int, int]:
    parts = os.uname().release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 0, 0


def isa_level() -> int:
    """The highest ISA level the running kernel takes (probed once a process). Without the
    privileges to load programs (``--ebpf`` as a user) the kernel release decides: a
    distribution kernel may have more than its release says (backports), never less."""
    try:
        for level in (4, 3, 2):
            if probe_isa(level).supported:
                return level
        return 1
    except PermissionDenied:
        release = _release()
        return next((level for level, since in _ISA_BY_RELEASE if release >= since), 1)


def probe_may_goto() -> Feature:
    """``may_goto`` (6.9+): a bounded-loop jump the compiler does not emit; apart from the levels."""

    def run() -> Feature:
        _privileged()
        code = _insn(0xB7) + _insn(0xE5, 0, 0, 1) + _insn(0xB7, 0, 0, 0, 1) + _insn(0x95)
        err, _ = _try_load(ProgType.SOCKET_FILTER, code, {})
        return Feature("may_goto", err == 0, "loads" if err == 0 else f"refused ({errno.errorcode.get(err, err)})")

    return _cached(("may_goto",), run)


def have_may_goto() -> bool:
    return probe_may_goto().supported


# --- all of it --------------------------------------------------------------------------------

_SUMMARY_HELPERS = (  # HelperId names (the enum is imported by probe_helper when used)
    (ProgType.TRACEPOINT, "loop"), (ProgType.TRACEPOINT, "ringbuf_output"),
    (ProgType.TRACEPOINT, "perf_event_output"), (ProgType.TRACEPOINT, "get_stackid"),
    (ProgType.KPROBE, "get_attach_cookie"), (ProgType.KPROBE, "override_return"),
    (ProgType.KPROBE, "probe_write_user"), (ProgType.TRACING, "get_func_ip"),
)


def _static(name: str, value: bool, detail: str) -> Feature:
    return Feature(name, value, detail)


def summary(full: bool = False) -> List[Tuple[str, Feature]]:
    """(section, feature) for the ``ebpf features`` table; ``full`` adds every program/map type."""
    from ebpf.attach.probe_events import EVENT_SOURCE

    out: List[Tuple[str, Feature]] = []
    out.append(("kernel", _static("kernel BTF", have_btf(), "/sys/kernel/btf/vmlinux")))
    out.append(("hooks", _static("kprobe PMU", have_kprobe_pmu(), f"{EVENT_SOURCE}/kprobe")))
    out.append(("hooks", _static("tracefs kprobe_events", have_kprobe_events(), "")))
    out.append(("hooks", _static("uprobe PMU", have_uprobe_pmu(), f"{EVENT_SOURCE}/uprobe")))
    out.append(("hooks", _static("tracefs uprobe_events", have_uprobe_events(), "")))
    out.extend(("hooks", probe_hook(hook)) for hook in HOOKS)
    out.append(("links", probe_bpf_link()))
    out.append(("links", probe_perf_link()))
    out.append(("links", probe_kprobe_multi()))
    out.append(("links", probe_uprobe_multi()))
    out.append(("links", probe_tcx()))
    for level in (2, 3, 4):
        out.append(("instructions", probe_isa(level)))
    out.append(("instructions", probe_may_goto()))
    out.append(("maps", probe_map_type(MapType.RINGBUF)))
    out.append(("maps", probe_map_type(MapType.PERF_EVENT_ARRAY)))
    for pt, helper in _SUMMARY_HELPERS:
        out.append(("helpers", probe_helper(pt, helper)))
    if full:
        for pt in ProgType:
            if pt != ProgType.UNSPEC:
                out.append(("program types", probe_program_type(pt)))
        for mt in MapType:
            if mt != MapType.UNSPEC:
                out.append(("map types", probe_map_type(mt)))
    else:
        for pt in (ProgType.KPROBE, ProgType.TRACEPOINT, ProgType.RAW_TRACEPOINT, ProgType.TRACING,
                   ProgType.PERF_EVENT, ProgType.XDP, ProgType.SCHED_CLS, ProgType.CGROUP_SKB, ProgType.LSM):
            out.append(("program types", probe_program_type(pt)))
    return out
