"""kprobes and kretprobes: the perf ``kprobe`` PMU, tracefs ``kprobe_events``, kprobe.multi links.

Order of attempts (as libbpf and cilium/ebpf do): the PMU (``/sys/bus/event_source/devices/
kprobe/type``; ``config1`` points to the symbol, ``config2`` is the offset), else a tracefs
event ``p:ebpf_<pid>_<hex>/NAME SYMBOL+OFF`` removed on close. A symbol ``sys_*`` that the
kernel does not know is retried with the architecture's syscall prefix (``__x64_sys_*``).
Kernels built without CONFIG_KPROBES have neither; attaching then raises
:class:`~ebpf.attach.link.HookUnavailable` saying so.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any, List, Optional, Sequence

from ebpf.attach import probe_events
from ebpf.attach.link import HookUnavailable, Link, prog_fd_of
from ebpf.attach.probes import attach_probe
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.bpf import ENOTSUPP
from ebpf.sys.fd import FD
from ebpf.sys.ffi import ffi
from ebpf.uapi import AttachType

SYMBOL_RE = re.compile(r"^[a-zA-Z_][0-9a-zA-Z_.]*$")
KPROBE_MULTI_RETURN = 1  # BPF_F_KPROBE_MULTI_RETURN

_SYSCALL_PREFIXES = {"x86_64": "__x64_", "aarch64": "__arm64_", "arm64": "__arm64_", "s390x": "__s390x_",
                     "riscv64": "__riscv_", "ppc64le": "", "i686": "__ia32_"}


def syscall_prefix() -> str:
    """The prefix of syscall entry functions on this architecture (``__x64_`` on x86_64)."""
    return _SYSCALL_PREFIXES.get(os.uname().machine, "")


def no_kprobes_message(what: str) -> str:
    return (f"cannot attach {what}: this kernel has no kprobes (CONFIG_KPROBES is off: neither the kprobe "
            f"PMU ({probe_events.EVENT_SOURCE}/kprobe) nor tracefs kprobe_events exists); use a tracepoint, "
            "raw tracepoint or tp_btf instead")


def have_kprobes() -> bool:
    return probe_events.pmu_type("kprobe") is not None or probe_events.events_file("kprobe") is not None


def _check_symbol(symbol: str) -> None:
    if not SYMBOL_RE.match(symbol):
        raise AttachError(f"bad kernel symbol {symbol!r} (expected [a-zA-Z_][0-9a-zA-Z_.]*)")


def attach_kprobe(program: Any, symbol: str, *, offset: int = 0, retprobe: bool = False, pid: int = -1,
                  cookie: int = 0, maxactive: int = 0, legacy: Optional[bool] = None) -> Link:
    """Attach a BPF_PROG_TYPE_KPROBE program to kernel function ``symbol`` (+``offset``).

    ``maxactive`` (kretprobes only) forces the tracefs path, which is the only one that takes it.
    """
    _check_symbol(symbol)
    kind = "kretprobe" if retprobe else "kprobe"
    if not have_kprobes():
        raise HookUnavailable(no_kprobes_message(f"{kind} {symbol}"))
    try:
        return _attach(program, symbol, offset, retprobe, pid, cookie, maxactive, legacy)
    except AttachError as e:
        prefix = syscall_prefix()
        cause = e.__cause__
        missing = isinstance(cause, SyscallError) and cause.errno in (errno.ENOENT, errno.EINVAL)
        if prefix and symbol.startswith("sys_") and (missing or "cannot add" in str(e)):
            return _attach(program, prefix + symbol, offset, retprobe, pid, cookie, maxactive, legacy)
        raise


def _attach(program: Any, symbol: str, offset: int, retprobe: bool, pid: int, cookie: int, maxactive: int,
            legacy: Optional[bool]) -> Link:
    spec = f"{symbol}+{offset}" if offset else symbol
    return attach_probe(program, kind="kprobe", label=spec, pmu_target=symbol, offset=offset, retprobe=retprobe,
                        pid=pid, tracefs_spec=spec, cookie=cookie, maxactive=maxactive, legacy=legacy,
                        missing=no_kprobes_message(f"{'kretprobe' if retprobe else 'kprobe'} {spec}"))


def attach_kretprobe(program: Any, symbol: str, **options: Any) -> Link:
    """:func:`attach_kprobe` with ``retprobe=True``."""
    return attach_kprobe(program, symbol, retprobe=True, **options)


def attach_ksyscall(program: Any, syscall: str, *, retprobe: bool = False, **options: Any) -> Link:
    """A kprobe on the entry function of system call ``syscall`` ("openat" -> __x64_sys_openat)."""
    name = syscall[4:] if syscall.startswith("sys_") else syscall
    return attach_kprobe(program, syscall_prefix() + "sys_" + name, retprobe=retprobe, **options)


def attach_kprobe_multi(program: Any, symbols: Optional[Sequence[str]] = None, *,
                        addresses: Optional[Sequence[int]] = None, cookies: Optional[Sequence[int]] = None,
                        retprobe: bool = False) -> Link:
    """One BPF link for many kernel functions (BPF_TRACE_KPROBE_MULTI, kernel 5.18+).

    The program must have been loaded with ``expected_attach_type=BPF_TRACE_KPROBE_MULTI``.
    ``symbols`` may be shell patterns (``"do_sys_open*"``), expanded by :func:`expand_patterns`.
    """
    if bool(symbols) == bool(addresses):
        raise AttachError("kprobe.multi needs either symbols or addresses")
    if symbols and any(is_pattern(s) for s in symbols):
        if not have_kprobes():
            raise HookUnavailable(no_kprobes_message(f"kprobe.multi {','.join(symbols)}"))
        if cookies is not None:
            raise AttachError("kprobe.multi: cookies go with a list of functions, not with a pattern")
        symbols = expand_patterns(symbols)
    count = len(symbols or addresses or ())
    if cookies is not None and len(cookies) != count:
        raise AttachError(f"kprobe.multi: {len(cookies)} cookies for {count} functions")
    keep: List[Any] = []
    opts: dict = {"flags": KPROBE_MULTI_RETURN if retprobe else 0, "cnt": count}
    if symbols:
        for s in symbols:
            _check_symbol(s)
        strings = [ffi.new("char[]", s.encode()) for s in symbols]
        keep.extend(strings)
        opts["syms"] = ffi.new("uint64_t[]", [int(ffi.cast("uintptr_t", s)) for s in strings])
    else:
        opts["addrs"] = ffi.new("uint64_t[]", list(addresses or ()))
    if cookies is not None:
        opts["cookies"] = ffi.new("uint64_t[]", list(cookies))
    label = ",".join(symbols) if symbols else ",".join(f"{a:#x}" for a in addresses or ())
    if len(label) > 80:
        label = f"{count} functions"
    kind = "kretprobe.multi" if retprobe else "kprobe.multi"
    try:
        fd = FD(bpf.link_create(prog_fd_of(program), 0, AttachType.TRACE_KPROBE_MULTI, 0, kprobe_multi=opts))
    except SyscallError as e:
        # EINVAL: a kernel before 5.18 does not know the attach type (so also not the link's fields)
        if e.errno in (errno.EOPNOTSUPP, ENOTSUPP) or (e.errno == errno.EINVAL and not _have_kprobe_multi()):
            why = ("this kernel has no kprobes (CONFIG_KPROBES is off)" if not have_kprobes()
                   else "this kernel has no kprobe.multi links (needs 5.18+ with CONFIG_FPROBE)")
            raise HookUnavailable(f"cannot attach {kind} to {label}: {why}: {e}") from None
        raise AttachError(f"cannot attach {kind} to {label}: {e}") from None
    finally:
        del keep
    return Link([fd], label, via="bpf_link", link_fd=fd, kind=kind)


def _have_kprobe_multi() -> bool:
    from ebpf.features import have_kprobe_multi

    return have_kprobe_multi()


_GLOB = re.compile(r"[*?\[]")


def is_pattern(symbol: str) -> bool:
    """Whether ``symbol`` is a shell pattern (``do_sys_open*``) rather than one function."""
    return bool(_GLOB.search(symbol))


def expand_patterns(symbols: Sequence[str], available: Optional[Sequence[str]] = None) -> List[str]:
    """The functions ``symbols`` name, patterns expanded as libbpf expands them: against the
    functions kprobes can attach to (``available``, default :func:`attachable_functions`), each
    name once, in the order found."""
    import fnmatch

    names = attachable_functions() if available is None else available
    out: List[str] = []
    seen = set()
    for pattern in symbols:
        if not is_pattern(pattern):
            _check_symbol(pattern)
            found = [pattern]
        else:
            _check_symbol(_GLOB.sub("_", pattern).replace("]", "_"))
            found = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not found:
                raise AttachError(f"kprobe.multi: no attachable kernel function matches {pattern!r}")
        for name in found:
            if name not in seen:
                seen.add(name)
                out.append(name)
    return out


def attachable_functions() -> List[str]:
    """The functions of tracefs ``available_filter_functions`` (what kprobe.multi can attach to)."""
    from ebpf.errors import TracefsError
    from ebpf.sys import tracefs

    try:
        with open(os.path.join(tracefs.tracefs_path(), "available_filter_functions")) as f:
            return parse_filter_functions(f.read())
    except (OSError, TracefsError) as e:
        raise HookUnavailable(f"kprobe.multi patterns need tracefs available_filter_functions: {e}") from None


_ADDRESS = re.compile(r"[0-9a-f]{8,16}")


def parse_filter_functions(text: str) -> List[str]:
    """Names in ``available_filter_functions`` text: ``name`` or ``name [module]`` a line (6.5+:
    ``available_filter_functions_addrs`` prefixes an address, accepted too), without the compiler's
    local clones (``foo.isra.0``), which kallsyms may not resolve to one address."""
    names = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        name = words[1] if len(words) > 1 and _ADDRESS.fullmatch(words[0]) else words[0]
        if "." not in name and not name.startswith("__ftrace_invalid_address__"):
            names.append(name)
    return names
