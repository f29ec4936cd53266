"""uprobes and uretprobes on functions of executables and shared libraries; uprobe.multi links.

A target is a binary (path, or a library name such as ``"c"`` resolved through /proc/PID/maps
and the ld.so cache) and a function (an ELF symbol, turned into a file offset through the
PT_LOAD program headers) or a raw file offset. ``pid`` restricts the probe to one process.
The ``uprobe`` PMU is used first (no cleanup needed: the probe dies with its fd); tracefs
``uprobe_events`` with a per-process group is the fallback (removed on close, at exit, on
SIGTERM; groups of SIGKILLed processes are swept by the next process that adds one).
"""

from __future__ import annotations

import errno
from typing import Any, List, Optional, Sequence, Tuple

from ebpf.attach import probe_events
from ebpf.attach.link import HookUnavailable, Link, prog_fd_of
from ebpf.attach.probes import attach_probe
from ebpf.errors import AttachError, SyscallError
from ebpf.sys import bpf
from ebpf.sys.bpf import ENOTSUPP
from ebpf.sys.fd import FD
from ebpf.sys.ffi import ffi
from ebpf.uapi import AttachType

UPROBE_MULTI_RETURN = 1  # BPF_F_UPROBE_MULTI_RETURN


def resolve_target(binary: str, symbol: Optional[str] = None, offset: int = 0,
                   pid: Optional[int] = None) -> Tuple[str, int]:
    """(absolute path, file offset) of ``symbol``+``offset`` in ``binary`` (or of ``offset`` alone).

    ``symbol`` may carry an offset itself: ``"main+0x10"``.
    """
    from ebpf.symbols.elf import SymbolError, elf_file
    from ebpf.symbols.libraries import resolve_binary

    try:
        path = resolve_binary(binary, pid if pid is not None and pid > 0 else None)
        if symbol is None:
            return path, offset
        name, plus, extra = symbol.partition("+")
        if plus:
            offset += int(extra, 0)
        return path, elf_file(path).offset_of(name) + offset
    except SymbolError as e:
        raise AttachError(f"cannot attach uprobe to {binary}:{symbol or hex(offset)}: {e}") from None
    except ValueError:
        raise AttachError(f"bad uprobe offset in {symbol!r}") from None


def attach_uprobe(program: Any, binary: str, symbol: Optional[str] = None, *, offset: int = 0,
                  retprobe: bool = False, pid: int = -1, cookie: int = 0, ref_ctr_offset: int = 0,
                  legacy: Optional[bool] = None) -> Link:
    """Attach a BPF_PROG_TYPE_KPROBE program to a user function.

    ``symbol`` None means ``offset`` is a file offset. ``ref_ctr_offset`` is the file offset of a
    USDT semaphore the kernel increments while the probe exists.
    """
    path, off = resolve_target(binary, symbol, offset, pid)
    label = f"{path}:{symbol}" if symbol else f"{path}:{off:#x}"
    spec = f"{path}:{off:#x}" + (f"({ref_ctr_offset:#x})" if ref_ctr_offset else "")
    return attach_probe(program, kind="uprobe", label=label, pmu_target=path, offset=off, retprobe=retprobe,
                        pid=pid, tracefs_spec=spec, cookie=cookie, ref_ctr_offset=ref_ctr_offset, legacy=legacy)


def attach_uretprobe(program: Any, binary: str, symbol: Optional[str] = None, **options: Any) -> Link:
    """:func:`attach_uprobe` with ``retprobe=True``."""
    return attach_uprobe(program, binary, symbol, retprobe=True, **options)


def attach_uprobe_multi(program: Any, binary: str, symbols: Optional[Sequence[str]] = None, *,
                        offsets: Optional[Sequence[int]] = None, ref_ctr_offsets: Optional[Sequence[int]] = None,
                        cookies: Optional[Sequence[int]] = None, retprobe: bool = False, pid: int = -1) -> Link:
    """One BPF link probing many offsets of one binary (BPF_TRACE_UPROBE_MULTI, 6.6+).

    The program must have been loaded with ``expected_attach_type=BPF_TRACE_UPROBE_MULTI``.
    """
    if bool(symbols) == bool(offsets):
        raise AttachError("uprobe.multi needs either symbols or offsets")
    if symbols:
        resolved = [resolve_target(binary, s, 0, pid) for s in symbols]
        path = resolved[0][0]
        offs = [o for _, o in resolved]
    else:
        path = resolve_target(binary, None, 0, pid)[0]
        offs = list(offsets or ())
    n = len(offs)
    for name, seq in (("ref_ctr_offsets", ref_ctr_offsets), ("cookies", cookies)):
        if seq is not None and len(seq) != n:
            raise AttachError(f"uprobe.multi: {len(seq)} {name} for {n} offsets")
    c_path = ffi.new("char[]", path.encode())
    opts: dict = {"path": c_path, "offsets": ffi.new("uint64_t[]", offs), "cnt": n,
                  "flags": UPROBE_MULTI_RETURN if retprobe else 0, "pid": pid if pid > 0 else 0}
    if ref_ctr_offsets is not None:
        opts["ref_ctr_offsets"] = ffi.new("uint64_t[]", list(ref_ctr_offsets))
    if cookies is not None:
        opts["cookies"] = ffi.new("uint64_t[]", list(cookies))
    kind = "uretprobe.multi" if retprobe else "uprobe.multi"
    label = f"{path}:{','.join(symbols)}" if symbols else f"{path}:{n} offsets"
    try:
        fd = FD(bpf.link_create(prog_fd_of(program), 0, AttachType.TRACE_UPROBE_MULTI, 0, uprobe_multi=opts))
    except SyscallError as e:
        if e.errno in (errno.EOPNOTSUPP, ENOTSUPP) or (e.errno == errno.EINVAL and not probe_events.pmu_type("uprobe")):
            raise HookUnavailable(f"cannot attach {kind} to {label}: this kernel has no uprobe.multi links "
                                  f"(needs 6.6+): {e}") from None
        raise AttachError(f"cannot attach {kind} to {label}: {e}") from None
    return Link([fd], label, via="bpf_link", link_fd=fd, kind=kind)


def attach_uprobes(program: Any, binary: str, symbols: Sequence[str], *, retprobe: bool = False,
                   pid: int = -1) -> List[Link]:
    """One uprobe link per symbol (the portable alternative to uprobe.multi)."""
    links: List[Link] = []
    try:
        for s in symbols:
            links.append(attach_uprobe(program, binary, s, retprobe=retprobe, pid=pid))
    except BaseException:
        for link in links:
            link.close()
        raise
    return links
