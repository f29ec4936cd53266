"""The bpf() system call, one function a command.

Every wrapper fills its variant of ``union bpf_attr`` (see :mod:`ebpf.sys.cdefs`), calls the
kernel, and turns a failure into an :mod:`ebpf.errors` exception that names the command, the
errno and what it usually means. Wrappers return plain ints (file descriptors); ownership is
taken by the caller (:class:`ebpf.sys.fd.FD` and the live objects built on it).
"""

from __future__ import annotations

import errno
import os
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

from ebpf.errors import PermissionDenied, SyscallError
from ebpf.sys.ffi import NULL, ffi, libc
from ebpf.uapi import BpfCmd

_SYSCALL_NUMBERS = {
    # machine: (bpf, perf_event_open)
    "x86_64": (321, 298),
    "aarch64": (280, 241),
    "arm64": (280, 241),
}


def _syscall_numbers() -> Tuple[int, int]:
    machine = os.uname().machine
    try:
        return _SYSCALL_NUMBERS[machine]
    except KeyError:
        raise SyscallError("bpf", errno.ENOSYS, f"unsupported architecture {machine!r} (x86_64, aarch64)") from None


SYS_BPF, SYS_PERF_EVENT_OPEN = _syscall_numbers()

ENOTSUPP = 524  # kernel-internal "operation not supported", leaks out of bpf()

_GENERIC_HINTS = {
    errno.EPERM: "needs root or CAP_BPF+CAP_PERFMON",
    errno.EACCES: "access denied (needs root or CAP_BPF+CAP_PERFMON, or the verifier refused)",
    errno.EBADF: "bad file descriptor (the object was already closed?)",
    errno.ENOMEM: "the kernel is out of memory for BPF objects (too many entries or too large?)",
    errno.E2BIG: "an argument is too large for this kernel (struct or map too big, or unknown trailing fields)",
    errno.EINVAL: "the kernel rejected the arguments (unsupported type, flag or size on this kernel?)",
    errno.ENOSPC: "no space left (the map is full or the log buffer is too small)",
    errno.EEXIST: "the key already exists",
    errno.ENOENT: "no such object",
    errno.EOPNOTSUPP: "not supported by this kernel",
    ENOTSUPP: "not supported by this kernel",
    errno.ENOSYS: "the bpf() system call is not available (kernel built without CONFIG_BPF_SYSCALL?)",
    errno.EFAULT: "bad address passed to the kernel",
    errno.EBUSY: "the object is busy (already attached?)",
}

_COMMAND_HINTS: Dict[Tuple[int, int], str] = {
    (BpfCmd.MAP_UPDATE_ELEM, errno.E2BIG): "the map is full",
    (BpfCmd.MAP_UPDATE_ELEM, errno.ENOENT): "the key does not exist (update with BPF_EXIST)",
    (BpfCmd.MAP_UPDATE_ELEM, errno.EINVAL): "bad key/value size or flags for this map",
    (BpfCmd.MAP_CREATE, errno.EINVAL): "the kernel refused this map (type, key/value size, max_entries or flags)",
    (BpfCmd.OBJ_GET, errno.ENOENT): "no pinned object at that path",
    (BpfCmd.OBJ_PIN, errno.EEXIST): "something is already pinned at that path",
    (BpfCmd.OBJ_PIN, errno.ENOENT): "the directory does not exist or is not on a bpf filesystem",
    (BpfCmd.OBJ_PIN, errno.EPERM): "the path is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)",
    (BpfCmd.MAP_FREEZE, errno.EBUSY): "the map is writably mmapped or already frozen",
    (BpfCmd.RAW_TRACEPOINT_OPEN, errno.ENOENT): "no such raw tracepoint",
    (BpfCmd.LINK_CREATE, errno.EINVAL): "the kernel refused this link (attach type or target wrong for the program?)",
}


#: commands whose objects a kernel before 5.11 charges to RLIMIT_MEMLOCK (see ebpf.sys.memlock)
_CHARGED = frozenset({BpfCmd.MAP_CREATE, BpfCmd.PROG_LOAD, BpfCmd.BTF_LOAD})


def memlock_hint(cmd: Optional[int], err: int) -> str:
    """The RLIMIT_MEMLOCK sentence for an EPERM of a charged command, when that is its cause."""
    if err != errno.EPERM or cmd not in _CHARGED:
        return ""
    from ebpf.sys import memlock

    return memlock.refusal_hint()


def error_for(command: str, cmd: Optional[int], err: int, detail: str = "") -> SyscallError:
    """Build the exception for a failed command, with the most specific hint we know."""
    hint = memlock_hint(cmd, err)
    if not hint and cmd is not None:
        hint = _COMMAND_HINTS.get((int(cmd), err), "")
    if not hint:
        hint = _GENERIC_HINTS.get(err, "")
    cls = PermissionDenied if err == errno.EPERM and not hint.startswith("the path") else SyscallError
    return cls(command, err, hint, detail)


def _raw(cmd: BpfCmd, attr: Any, size: int) -> int:
    """One bpf() call: the result, or ``-errno``."""
    ret = libc.syscall(ffi.cast("long", SYS_BPF), ffi.cast("long", int(cmd)), attr, ffi.cast("long", size))
    if ret < 0:
        return -int(ffi.errno)
    return int(ret)


def _try(cmd: BpfCmd, attr: Any, size: int) -> int:
    """Like :func:`_call` but returns ``-errno`` instead of raising (for expected misses).

    An EPERM from creating a map, program or BTF object is retried once after raising
    RLIMIT_MEMLOCK, when the kernel charges BPF memory to it (Linux < 5.11; see
    :mod:`ebpf.sys.memlock`): free on kernels where the first call succeeds."""
    ret = _raw(cmd, attr, size)
    if ret == -errno.EPERM and cmd in _CHARGED:
        from ebpf.sys import memlock

        if memlock.raise_limit():
            ret = _raw(cmd, attr, size)
    return ret


def _call(cmd: BpfCmd, attr: Any, size: int) -> int:
    ret = _try(cmd, attr, size)
    if ret < 0:
        raise error_for(f"BPF_{cmd.name}", cmd, -ret)
    return ret


def _attr(variant: str) -> Tuple[Any, Any, int]:
    """A zeroed ``union bpf_attr`` and a pointer to one of its variants, with the variant's size."""
    attr = ffi.new("union bpf_attr *")
    sub = getattr(attr, variant)
    return attr, sub, ffi.sizeof(sub)


def addr(buf: Any) -> int:
    """The address of a cffi buffer as the u64 the kernel wants (0 for NULL/None)."""
    if buf is None or buf == NULL:
        return 0
    return int(ffi.cast("uintptr_t", buf))


def _set_name(field: Any, name: str) -> None:
    raw = name.encode()[:15]
    ffi.memmove(field, raw, len(raw))


# --- maps -----------------------------------------------------------------------------------


def map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    flags: int = 0,
    name: str = "",
    *,
    inner_map_fd: int = 0,
    numa_node: int = 0,
    map_ifindex: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
) -> int:
    """BPF_MAP_CREATE; returns the new map's fd."""
    attr, a, size = _attr("map_create")
    a.map_type = map_type
    a.key_size = key_size
    a.value_size = value_size
    a.max_entries = max_entries
    a.map_flags = flags
    a.inner_map_fd = inner_map_fd
    a.numa_node = numa_node
    a.map_ifindex = map_ifindex
    a.btf_fd = btf_fd
    a.btf_key_type_id = btf_key_type_id
    a.btf_value_type_id = btf_value_type_id
    a.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
    a.map_extra = map_extra
    if name:
        _set_name(a.map_name, name)
    return _call(BpfCmd.MAP_CREATE, attr, size)


def _elem(fd: int, key: Any, value: Any, flags: int) -> Tuple[Any, int]:
    attr, a, size = _attr("map_elem")
    a.map_fd = fd
    a.key = addr(key)
    a.value = addr(value)
    a.flags = flags
    return attr, size


def map_lookup_elem(fd: int, key: Any, value: Any, flags: int = 0) -> bool:
    """BPF_MAP_LOOKUP_ELEM into the ``value`` buffer; False when the key is absent."""
    attr, size = _elem(fd, key, value, flags)
    ret = _try(BpfCmd.MAP_LOOKUP_ELEM, attr, size)
    if ret == -errno.ENOENT:
        return False
    if ret < 0:
        raise error_for("BPF_MAP_LOOKUP_ELEM", BpfCmd.MAP_LOOKUP_ELEM, -ret)
    return True


def map_update_elem(fd: int, key: Any, value: Any, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK)."""
    attr, size = _elem(fd, key, value, flags)
    _call(BpfCmd.MAP_UPDATE_ELEM, attr, size)


def map_delete_elem(fd: int, key: Any) -> bool:
    """BPF_MAP_DELETE_ELEM; False when the key was absent."""
    attr, size = _elem(fd, key, None, 0)
    ret = _try(BpfCmd.MAP_DELETE_ELEM, attr, size)
    if ret == -errno.ENOENT:
        return False
    if ret < 0:
        raise error_for("BPF_MAP_DELETE_ELEM", BpfCmd.MAP_DELETE_ELEM, -ret)
    return True


def map_lookup_and_delete_elem(fd: int, key: Any, value: Any, flags: int = 0) -> bool:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM (pop for queue/stack maps); False when empty/absent."""
    attr, size = _elem(fd, key, value, flags)
    ret = _try(BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, attr, size)
    if ret == -errno.ENOENT:
        return False
    if ret < 0:
        raise error_for("BPF_MAP_LOOKUP_AND_DELETE_ELEM", BpfCmd.MAP_LOOKUP_AND_DELETE_ELEM, -ret)
    return True


def map_get_next_key(fd: int, key: Any, next_key: Any) -> bool:
    """BPF_MAP_GET_NEXT_KEY (``key`` None for the first); False after the last key."""
    attr, size = _elem(fd, key, next_key, 0)
    ret = _try(BpfCmd.MAP_GET_NEXT_KEY, attr, size)
    if ret == -errno.ENOENT:
        return False
    if ret < 0:
        raise error_for("BPF_MAP_GET_NEXT_KEY", BpfCmd.MAP_GET_NEXT_KEY, -ret)
    return True


def map_freeze(fd: int) -> None:
    """BPF_MAP_FREEZE: no more writes from user space (programs see constants in .rodata)."""
    attr, a, size = _attr("map_elem")
    a.map_fd = fd
    _call(BpfCmd.MAP_FREEZE, attr, size)


class BatchResult(NamedTuple):
    count: int  # type: ignore[assignment]  # shadows tuple.count on purpose: the kernel's name
    done: bool


def map_batch(
    cmd: BpfCmd,
    fd: int,
    in_batch: Any,
    out_batch: Any,
    keys: Any,
    values: Any,
    count: int,
    elem_flags: int = 0,
    flags: int = 0,
) -> BatchResult:
    """BPF_MAP_LOOKUP_BATCH / LOOKUP_AND_DELETE_BATCH / UPDATE_BATCH / DELETE_BATCH.

    Returns how many elements were processed and whether the map is exhausted (ENOENT).
    """
    attr, a, size = _attr("batch")
    a.in_batch = addr(in_batch)
    a.out_batch = addr(out_batch)
    a.keys = addr(keys)
    a.values = addr(values)
    a.count = count
    a.map_fd = fd
    a.elem_flags = elem_flags
    a.flags = flags
    ret = _try(cmd, attr, size)
    if ret == -errno.ENOENT:
        return BatchResult(int(a.count), True)
    if ret < 0:
        raise error_for(f"BPF_{cmd.name}", cmd, -ret)
    return BatchResult(int(a.count), False)


# --- programs -------------------------------------------------------------------------------


class ProgLoadError(SyscallError):
    """BPF_PROG_LOAD failed; carries the verifier log (possibly truncated) and its true size."""

    def __init__(self, err: int, log: str, log_true_size: int):
        self.log = log
        self.log_true_size = log_true_size
        hint = memlock_hint(BpfCmd.PROG_LOAD, err) or _GENERIC_HINTS.get(err, "")
        if err == errno.EACCES or (err == errno.EINVAL and log):
            hint = "the verifier rejected the program"
        super().__init__("BPF_PROG_LOAD", err, hint)


def prog_load(
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    *,
    name: str = "",
    expected_attach_type: int = 0,
    prog_flags: int = 0,
    kern_version: int = 0,
    prog_ifindex: int = 0,
    attach_btf_id: int = 0,
    attach_btf_obj_fd: int = 0,
    attach_prog_fd: int = 0,
    prog_btf_fd: int = 0,
    func_info: bytes = b"",
    func_info_rec_size: int = 0,
    line_info: bytes = b"",
    line_info_rec_size: int = 0,
    fd_array: Optional[Sequence[int]] = None,
    log_level: int = 0,
    log_size: int = 0,
) -> Tuple[int, str]:
    """BPF_PROG_LOAD; returns (fd, log). Raises :class:`ProgLoadError` with the log on failure."""
    attr, a, size = _attr("prog_load")
    insn_buf = ffi.from_buffer(insns)
    lic = ffi.new("char[]", license.encode())
    a.prog_type = prog_type
    a.insn_cnt = len(insns) // 8
    a.insns = addr(insn_buf)
    a.license = addr(lic)
    a.kern_version = kern_version
    a.prog_flags = prog_flags
    if name:
        _set_name(a.prog_name, name)
    a.prog_ifindex = prog_ifindex
    a.expected_attach_type = expected_attach_type
    a.attach_btf_id = attach_btf_id
    a.attach_prog_fd = attach_prog_fd or attach_btf_obj_fd
    a.prog_btf_fd = prog_btf_fd
    keep = [insn_buf, lic]
    if func_info:
        buf = ffi.from_buffer(func_info)
        keep.append(buf)
        a.func_info = addr(buf)
        a.func_info_rec_size = func_info_rec_size
        a.func_info_cnt = len(func_info) // func_info_rec_size
    if line_info:
        buf = ffi.from_buffer(line_info)
        keep.append(buf)
        a.line_info = addr(buf)
        a.line_info_rec_size = line_info_rec_size
        a.line_info_cnt = len(line_info) // line_info_rec_size
    if fd_array:
        fds = ffi.new("int32_t[]", list(fd_array))
        keep.append(fds)
        a.fd_array = addr(fds)
    log_buf = None
    if log_level:
        log_buf = ffi.new("char[]", log_size)
        a.log_level = log_level
        a.log_size = log_size
        a.log_buf = addr(log_buf)
    ret = _try(BpfCmd.PROG_LOAD, attr, size)
    log = ffi.string(log_buf).decode(errors="replace") if log_buf is not None else ""
    if ret < 0:
        raise ProgLoadError(-ret, log, int(a.log_true_size))
    return ret, log


class TestRunResult(NamedTuple):
    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes


def prog_test_run(
    prog_fd: int,
    data_in: bytes = b"",
    *,
    data_out_size: int = 0,
    ctx_in: bytes = b"",
    ctx_out_size: int = 0,
    repeat: int = 0,
    flags: int = 0,
    cpu: int = 0,
) -> TestRunResult:
    """BPF_PROG_TEST_RUN: run a loaded program on synthetic input; the kernel returns r0."""
    attr, a, size = _attr("test")
    keep = []
    a.prog_fd = prog_fd
    a.repeat = repeat
    a.flags = flags
    a.cpu = cpu
    if data_in:
        din = ffi.from_buffer(data_in)
        keep.append(din)
        a.data_in = addr(din)
        a.data_size_in = len(data_in)
    dout = ffi.new("char[]", data_out_size) if data_out_size else None
    if dout is not None:
        a.data_out = addr(dout)
        a.data_size_out = data_out_size
    if ctx_in:
        cin = ffi.from_buffer(ctx_in)
        keep.append(cin)
        a.ctx_in = addr(cin)
        a.ctx_size_in = len(ctx_in)
    cout = ffi.new("char[]", ctx_out_size) if ctx_out_size else None
    if cout is not None:
        a.ctx_out = addr(cout)
        a.ctx_size_out = ctx_out_size
    _call(BpfCmd.PROG_TEST_RUN, attr, size)
    data = bytes(ffi.buffer(dout, min(int(a.data_size_out), data_out_size))) if dout is not None else b""
    ctx = bytes(ffi.buffer(cout, min(int(a.ctx_size_out), ctx_out_size))) if cout is not None else b""
    return TestRunResult(int(a.retval), int(a.duration), data, ctx)


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, replace_fd: int = 0) -> None:
    """BPF_PROG_ATTACH (the pre-link attach path: cgroups, sockmaps, flow dissector)."""
    attr, a, size = _attr("prog_attach")
    a.target_fd = target_fd
    a.attach_bpf_fd = prog_fd
    a.attach_type = attach_type
    a.attach_flags = flags
    a.replace_bpf_fd = replace_fd
    _call(BpfCmd.PROG_ATTACH, attr, size)


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    """BPF_PROG_DETACH."""
    attr, a, size = _attr("prog_attach")
    a.target_fd = target_fd
    a.attach_bpf_fd = prog_fd
    a.attach_type = attach_type
    _call(BpfCmd.PROG_DETACH, attr, size)


# --- objects, ids, info ---------------------------------------------------------------------


def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: keep the object alive in bpffs under ``path``."""
    attr, a, size = _attr("obj")
    p = ffi.new("char[]", path.encode())
    a.pathname = addr(p)
    a.bpf_fd = fd
    _call(BpfCmd.OBJ_PIN, attr, size)


def obj_get(path: str, file_flags: int = 0) -> int:
    """BPF_OBJ_GET: open a pinned object; returns a new fd."""
    attr, a, size = _attr("obj")
    p = ffi.new("char[]", path.encode())
    a.pathname = addr(p)
    a.file_flags = file_flags
    return _call(BpfCmd.OBJ_GET, attr, size)


def obj_get_info_by_fd(fd: int, info: Any) -> Any:
    """BPF_OBJ_GET_INFO_BY_FD into a ``struct bpf_*_info *``; returns it."""
    attr, a, size = _attr("info")
    a.bpf_fd = fd
    a.info_len = ffi.sizeof(info[0])
    a.info = addr(info)
    _call(BpfCmd.OBJ_GET_INFO_BY_FD, attr, size)
    return info


def _get_id(cmd: BpfCmd, start_id: int, open_flags: int = 0) -> int:
    attr, a, size = _attr("get_id")
    a.start_id = start_id
    a.open_flags = open_flags
    ret = _try(cmd, attr, size)
    if ret < 0:
        if cmd.name.endswith("NEXT_ID") and ret == -errno.ENOENT:
            return 0
        raise error_for(f"BPF_{cmd.name}", cmd, -ret)
    return ret if cmd.name.endswith("FD_BY_ID") else int(a.next_id)


def prog_get_next_id(start_id: int) -> int:
    """BPF_PROG_GET_NEXT_ID; 0 after the last program."""
    return _get_id(BpfCmd.PROG_GET_NEXT_ID, start_id)


def map_get_next_id(start_id: int) -> int:
    """BPF_MAP_GET_NEXT_ID; 0 after the last map."""
    return _get_id(BpfCmd.MAP_GET_NEXT_ID, start_id)


def link_get_next_id(start_id: int) -> int:
    """BPF_LINK_GET_NEXT_ID; 0 after the last link."""
    return _get_id(BpfCmd.LINK_GET_NEXT_ID, start_id)


def prog_get_fd_by_id(prog_id: int) -> int:
    """BPF_PROG_GET_FD_BY_ID."""
    return _get_id(BpfCmd.PROG_GET_FD_BY_ID, prog_id)


def map_get_fd_by_id(map_id: int) -> int:
    """BPF_MAP_GET_FD_BY_ID."""
    return _get_id(BpfCmd.MAP_GET_FD_BY_ID, map_id)


def link_get_fd_by_id(link_id: int) -> int:
    """BPF_LINK_GET_FD_BY_ID."""
    return _get_id(BpfCmd.LINK_GET_FD_BY_ID, link_id)


def btf_get_fd_by_id(btf_id: int) -> int:
    """BPF_BTF_GET_FD_BY_ID."""
    return _get_id(BpfCmd.BTF_GET_FD_BY_ID, btf_id)


# --- BTF, links, attach ---------------------------------------------------------------------


def btf_load(data: bytes, log_level: int = 0, log_size: int = 0) -> Tuple[int, str]:
    """BPF_BTF_LOAD; returns (fd, log). On failure the exception's detail holds the log."""
    attr, a, size = _attr("btf_load")
    buf = ffi.from_buffer(data)
    a.btf = addr(buf)
    a.btf_size = len(data)
    log_buf = None
    if log_level:
        log_buf = ffi.new("char[]", log_size)
        a.btf_log_buf = addr(log_buf)
        a.btf_log_size = log_size
        a.btf_log_level = log_level
    ret = _try(BpfCmd.BTF_LOAD, attr, size)
    log = ffi.string(log_buf).decode(errors="replace") if log_buf is not None else ""
    if ret < 0:
        raise error_for("BPF_BTF_LOAD", BpfCmd.BTF_LOAD, -ret, detail=log.strip())
    return ret, log


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0, **variant: Any) -> int:
    """BPF_LINK_CREATE. ``variant`` fills the attach-type specific part, e.g.
    ``target_btf_id=``, ``perf_event_bpf_cookie=``, or ``uprobe_multi={...}`` as a dict."""
    attr, a, size = _attr("link_create")
    a.prog_fd = prog_fd
    a.target_fd = target_fd
    a.attach_type = attach_type
    a.flags = flags
    keep = []
    for key, value in variant.items():
        if isinstance(value, dict):
            sub = getattr(a.u, key)
            for field, fval in value.items():
                if not isinstance(fval, int):  # a buffer: pass its address
                    keep.append(fval)
                    fval = addr(fval)
                setattr(sub, field, fval)
        else:
            setattr(a.u, key, value)
    return _call(BpfCmd.LINK_CREATE, attr, size)


def link_detach(link_fd: int) -> None:
    """BPF_LINK_DETACH: detach without closing the fd."""
    attr, a, size = _attr("link_detach")
    a.link_fd = link_fd
    _call(BpfCmd.LINK_DETACH, attr, size)


def raw_tracepoint_open(name: Optional[str], prog_fd: int, cookie: int = 0) -> int:
    """BPF_RAW_TRACEPOINT_OPEN (name None for tp_btf/fentry programs, whose target is in BTF)."""
    attr, a, size = _attr("raw_tracepoint")
    n = ffi.new("char[]", name.encode()) if name is not None else None
    a.name = addr(n)
    a.prog_fd = prog_fd
    a.cookie = cookie
    return _call(BpfCmd.RAW_TRACEPOINT_OPEN, attr, size)


def iter_create(link_fd: int) -> int:
    """BPF_ITER_CREATE: an fd whose read() runs a BPF iterator."""
    attr, a, size = _attr("iter_create")
    a.link_fd = link_fd
    return _call(BpfCmd.ITER_CREATE, attr, size)


def enable_stats(stats_type: int = 0) -> int:
    """BPF_ENABLE_STATS: run-time statistics stay on while the returned fd is open."""
    attr, a, size = _attr("enable_stats")
    a.type = stats_type
    return _call(BpfCmd.ENABLE_STATS, attr, size)


def prog_bind_map(prog_fd: int, map_fd: int) -> None:
    """BPF_PROG_BIND_MAP: keep a map alive as long as the program."""
    attr, a, size = _attr("prog_bind_map")
    a.prog_fd = prog_fd
    a.map_fd = map_fd
    _call(BpfCmd.PROG_BIND_MAP, attr, size)
