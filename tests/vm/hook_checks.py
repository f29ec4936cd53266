"""Every hook kind, live, in the guest: a program written as a user writes it (the DSL; assembly
where the DSL lacks the hook) attached to it, the event made to happen, and the count seen; then
the verdict of ``ebpf features`` (:func:`ebpf.features.probe_hook`) compared with what happened.

A check is ``ok`` when the event was seen and the probe says the hook works, ``unavailable`` when
neither (the attach failed cleanly with :class:`~ebpf.errors.NotSupported` or
:class:`~ebpf.errors.PermissionDenied`, or the program attached but never ran, as LSM programs do
where ``bpf`` is not an active LSM), and ``fail`` when they disagree or the attach failed with
anything else. Each check returns in seconds; :func:`run_hook` never raises.

DSL gaps met here (reported, written in assembly or with ``Collection.program`` instead): no
decorator for kprobe.multi, fmod_ret, LSM, USDT or iterators; USDT arguments and the iterator's
context (``ctx.meta.seq``, ``ctx.task``) cannot be read from the DSL.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Tuple

from ebpf.features import HOOKS

N = 25  # events each check makes
GETPPID_NR = {"x86_64": 110, "aarch64": 173}.get(os.uname().machine, -1)
O_CLOEXEC = 0o2000000
PROBE_TARGET_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel", "data", "probe_target.c")
NAMES = [f"hook-{h}" for h in HOOKS]


class Missed(Exception):
    """Attached, but the events did not show (the detail says what was counted)."""


# --- kernel functions: opens relative to a directory fd the programs filter on ----------------

@contextlib.contextmanager
def scratch_dir() -> Iterator[int]:
    path = tempfile.mkdtemp(prefix="vmhook-")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)
        shutil.rmtree(path, ignore_errors=True)


def open_missing(dirfd: int, n: int = N) -> None:
    """``n`` opens of a missing file under ``dirfd``: do_sys_openat2(dirfd, ...) returns -ENOENT."""
    for i in range(n):
        try:
            os.close(os.open(f"missing-{i}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dirfd))
        except FileNotFoundError:
            pass


def _expect(condition: bool, detail: str) -> str:
    if not condition:
        raise Missed(detail)
    return detail


def check_kprobe() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import i32, u32, u64

    coll = L.Collection("vm_kprobe")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)
    dirfd = coll.rodata("dirfd", i32, 0)

    @coll.kprobe("do_sys_openat2")
    def opens(ctx):
        if L.get_current_pid_tgid() >> 32 == me and ctx.dfd == dirfd:  # the first argument, by its BTF name
            hits[0] += 1
        return 0

    with scratch_dir() as d, coll.load(me=os.getpid(), dirfd=d) as live:
        live.attach()
        open_missing(d)
        count = live.maps["hits"][0]
    return _expect(count == N, f"{count} of {N} opens under our dfd counted")


def check_kretprobe() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    coll = L.Collection("vm_kretprobe")
    seen = coll.array_map("seen", value=u64, max_entries=2)  # [count, last return value]
    me = coll.rodata("me", u32, 0)

    @coll.kretprobe("do_sys_openat2")
    def returns(ctx):
        if L.get_current_pid_tgid() >> 32 == me:
            seen[0] += 1
            seen[1] = ctx.ret
        return 0

    with scratch_dir() as d, coll.load(me=os.getpid()) as live:
        live.attach()
        open_missing(d)
        count, last = live.maps["seen"][0], live.maps["seen"][1]
    ret = last - (1 << 64) if last >= 1 << 63 else last
    return _expect(count >= N and ret == -errno.ENOENT, f"{count} returns, the last {ret} (-ENOENT expected)")


def check_kprobe_multi() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    coll = L.Collection("vm_kprobe_multi")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)

    # DSL gap: no @coll.kprobe_multi; Collection.program takes the pattern as its target
    @coll.program("kprobe", attach_to="kprobe.multi/do_sys_open*", attach_type="trace_kprobe_multi")
    def opens(ctx):
        if L.get_current_pid_tgid() >> 32 == me:
            hits[0] += 1
        return 0

    with scratch_dir() as d, coll.load(me=os.getpid()) as live:
        (link,) = live.attach()
        open_missing(d)
        count = live.maps["hits"][0]
    return _expect(count >= N, f"{count} calls of do_sys_open* for {N} opens ({link.kind}, {link.target})")


def check_fentry() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import i32, u32, u64

    coll = L.Collection("vm_fentry")
    seen = coll.array_map("seen", value=u64, max_entries=2)  # [count, how->flags]
    me = coll.rodata("me", u32, 0)
    dirfd = coll.rodata("dirfd", i32, 0)

    @coll.fentry("do_sys_openat2")
    def opens(ctx):
        if L.get_current_pid_tgid() >> 32 == me and ctx.dfd == dirfd:
            seen[0] += 1
            seen[1] = ctx.how.flags  # struct open_how *, read directly (BTF-typed)
        return 0

    with scratch_dir() as d, coll.load(me=os.getpid(), dirfd=d) as live:
        live.attach()
        open_missing(d)
        count, flags = live.maps["seen"][0], live.maps["seen"][1]
    return _expect(count == N and flags & O_CLOEXEC != 0, f"{count} of {N} opens, how->flags {flags:#o}")


def check_fexit() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import i32, i64, u32, u64

    coll = L.Collection("vm_fexit")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    total = coll.array_map("total", value=i64, max_entries=1)
    me = coll.rodata("me", u32, 0)
    dirfd = coll.rodata("dirfd", i32, 0)

    @coll.fexit("do_sys_openat2")
    def opened(ctx):
        if L.get_current_pid_tgid() >> 32 == me and ctx.dfd == dirfd:
            hits[0] += 1
            total[0] += ctx.ret
        return 0

    with scratch_dir() as d, coll.load(me=os.getpid(), dirfd=d) as live:
        live.attach()
        open_missing(d)
        count, rets = live.maps["hits"][0], live.maps["total"][0]
    return _expect(count == N and rets == -errno.ENOENT * N, f"{count} of {N} opens returned {rets} in all")


def check_fmod_ret() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    coll = L.Collection("vm_fmod_ret")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    tid = coll.rodata("tid", u32, 0)

    # DSL gap: no @coll.fmod_ret. security_* functions may have their return value replaced.
    @coll.program("tracing", attach_to="security_file_open", attach_type="modify_return")
    def deny(ctx):
        if L.get_current_pid_tgid() & 0xFFFFFFFF == tid:  # this thread only
            hits[0] += 1
            return -1  # -EPERM: the open fails before the file is opened
        return 0

    denied = 0
    with coll.load(tid=threading.get_native_id()) as live:
        with live.programs["deny"].attach():
            for _ in range(N):
                try:
                    os.close(os.open("/dev/null", os.O_RDONLY))
                except PermissionError:
                    denied += 1
        count = live.maps["hits"][0]
    os.close(os.open("/dev/null", os.O_RDONLY))  # detached: opens work again
    return _expect(count == N and denied == N, f"{denied} of {N} opens denied with EPERM, {count} counted")


def check_lsm() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    coll = L.Collection("vm_lsm")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.program("lsm", attach_to="file_open", attach_type="lsm_mac")  # DSL gap: no @coll.lsm
    def file_open(ctx):
        if L.get_current_pid_tgid() >> 32 == me:
            hits[0] += 1
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        for _ in range(N):
            os.close(os.open("/dev/null", os.O_RDONLY))
        count = live.maps["hits"][0]
    return _expect(count >= N, f"lsm/file_open ran {count} times for {N} opens")


# --- user space: the gcc-built probe target of tests/kernel -----------------------------------

_built: List[str] = []
# built once per source on the host (the tier builds it before booting): a guest sees the host's
# /var/tmp read-only and is spared gcc under TCG (cc1 over 9p: 10-40 s a boot)
SHARED_BUILDS = "/var/tmp"


def probe_target() -> str:
    """The probe target binary: the host's shared build when there is one, else built now."""
    if not _built:
        import hashlib

        with open(PROBE_TARGET_C, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        shared = os.path.join(SHARED_BUILDS, f"ebpf-vm-probe-target-{os.getuid()}-{digest}")
        if os.access(shared, os.X_OK):
            _built.append(shared)
            return shared
        if shutil.which("gcc") is None:
            raise Missed("gcc is needed to build the probe target")
        where = SHARED_BUILDS if os.access(SHARED_BUILDS, os.W_OK) else tempfile.gettempdir()
        out = shared if where == SHARED_BUILDS else os.path.join(where, os.path.basename(shared))
        part = f"{out}.{os.getpid()}.part"
        subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", part, PROBE_TARGET_C], check=True)
        os.replace(part, out)  # whole or absent, for a guest booting meanwhile
        _built.append(out)
    return _built[0]


@contextlib.contextmanager
def target_process() -> Iterator[Tuple[subprocess.Popen, Callable[[], Dict[str, int]]]]:
    """The target, waiting for a line; ``go()`` lets it make N calls and returns what it printed."""
    proc = subprocess.Popen([probe_target(), str(N)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def go() -> Dict[str, int]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        return {k: int(v) for k, v in (kv.split("=") for kv in line.split())}

    try:
        yield proc, go
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def check_uprobe() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u64

    with target_process() as (proc, go):
        coll = L.Collection("vm_uprobe")
        hits = coll.array_map("hits", value=u64, max_entries=1)

        @coll.uprobe(f"{probe_target()}:target_add", pid=proc.pid)
        def calls(ctx):
            if ctx.arg(1) == 1000:  # target_add(i, 1000)
                hits[0] += 1
            return 0

        with coll.load() as live:
            live.attach()
            go()
            count = live.maps["hits"][0]
    return _expect(count == N, f"{count} of {N} calls of target_add(i, 1000)")


def check_uretprobe() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u64

    with target_process() as (proc, go):
        coll = L.Collection("vm_uretprobe")
        total = coll.array_map("total", value=u64, max_entries=1)

        @coll.uretprobe(f"{probe_target()}:target_add", pid=proc.pid)
        def returns(ctx):
            total[0] += ctx.ret & 0xFFFFFFFF
            return 0

        with coll.load() as live:
            live.attach()
            printed = go()
            got = live.maps["total"][0]
    return _expect(got == printed["sum"], f"sum of returns {got}, the target's own sum {printed['sum']}")


def check_usdt() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u64

    with target_process() as (proc, go):
        coll = L.Collection("vm_usdt")
        hits = coll.array_map("hits", value=u64, max_entries=1)

        # DSL gap: no @coll.usdt and no USDT arguments; a kprobe-type program on the usdt/ target
        @coll.program("kprobe", attach_to=f"usdt/{probe_target()}:ebpf_test:tick")
        def tick(ctx):
            hits[0] += 1
            return 0

        with coll.load() as live, live.programs["tick"].attach(pid=proc.pid):
            printed = go()
            count = live.maps["hits"][0]
    return _expect(count == N and printed["sema"] == 1,
                   f"{count} of {N} ticks; the semaphore was {printed['sema']} while attached")


# --- tracepoints, perf events, iterators ------------------------------------------------------

def _getppid_counter(kind: str) -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    coll = L.Collection(f"vm_{kind}")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)
    if kind == "tracepoint":
        @coll.tracepoint("syscalls/sys_enter_getppid")
        def enter(ctx):
            if L.get_current_pid_tgid() >> 32 == me:
                hits[0] += 1
            return 0
    else:
        hook = coll.tp_btf if kind == "tp_btf" else coll.raw_tracepoint

        @hook("sys_enter")
        def enter(ctx):  # sys_enter(regs, id): the id by position (5.10's BTF names no argument)
            if L.get_current_pid_tgid() >> 32 == me and ctx.args[1] == GETPPID_NR:
                hits[0] += 1
            return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        for _ in range(N):
            os.getppid()
        count = live.maps["hits"][0]
    return _expect(count == N, f"{count} of {N} getppid calls")


def check_perf_event() -> str:
    from ebpf import lang as L
    from ebpf.lang.types import u32, u64

    coll = L.Collection("vm_perf_event")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    me = coll.rodata("me", u32, 0)

    @coll.perf_event("cpu-clock", sample_freq=1000)
    def sample(ctx):
        if L.get_current_pid_tgid() >> 32 == me:
            hits[0] += 1
        return 0

    with coll.load(me=os.getpid()) as live:
        live.attach()
        end = time.thread_time() + 0.3  # CPU time: ~300 samples at 1000 Hz
        while time.thread_time() < end:
            pass
        count = live.maps["hits"][0]
    return _expect(count >= 30, f"{count} cpu-clock samples in 0.3 s of our CPU time")


def task_iter_spec() -> Any:
    """A task iterator writing (tgid, pid) of every task with bpf_seq_write. DSL gap: no iterator
    hook and no ``ctx.meta.seq``/``ctx.task``: assembly, with offsets from the kernel's BTF."""
    from ebpf import asm as A
    from ebpf.attach.tracing import prepare_spec
    from ebpf.btf import Kind, kernel_btf
    from ebpf.program import ProgramSpec

    task: Any = kernel_btf().type_by_name("task_struct", Kind.STRUCT)
    insns: List[Any] = [
        A.mov64(A.R6, A.R1),
        A.ldx(8, A.R7, A.R6, 8),  # ctx->task
        A.jeq(A.R7, 0, "out"),
        A.ldx(4, A.R2, A.R7, task.field("tgid").byte_offset),
        A.stx(4, A.R10, A.R2, -8),
        A.ldx(4, A.R2, A.R7, task.field("pid").byte_offset),
        A.stx(4, A.R10, A.R2, -4),
        A.ldx(8, A.R1, A.R6, 0),  # ctx->meta
        A.ldx(8, A.R1, A.R1, 0),  # meta->seq
        A.mov64(A.R2, A.R10),
        A.add64(A.R2, -8),
        A.mov64(A.R3, 8),
        A.call("seq_write"),
        A.label("out"),
        A.mov64(A.R0, 0),
        A.exit_(),
    ]
    return prepare_spec(ProgramSpec("iter_tasks", "tracing", insns, attach_type="trace_iter", attach_to="task"))


def check_iter() -> str:
    import struct

    from ebpf.attach.iter import attach_iter
    from ebpf.loader import load_program

    with load_program(task_iter_spec()) as prog, attach_iter(prog) as link:
        data = link.read()
    pairs = set(struct.iter_unpack("=II", data))
    return _expect((os.getpid(), os.getpid()) in pairs, f"{len(pairs)} tasks listed, ours among them")


# --- networking: XDP and tc on the loopback of a network namespace of our own -----------------

CLONE_NEWNET = 0x40000000
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def in_own_netns(fn: Callable[[], str]) -> str:
    """Run ``fn`` in a thread that has a network namespace of its own with ``lo`` up: the checks
    never touch the host's devices, and nothing else sends on that loopback."""
    result: List[Any] = []

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
            import fcntl
            import struct

            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", IFF_UP))
            result.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            result.append(e)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return str(result[0])


def send_udp(n: int = N) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET,
                                                                                socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2)
        for i in range(n):
            tx.sendto(b"vmhook %d" % i, rx.getsockname())
            rx.recv(64)  # delivered: the program passed it on


def check_packets(kind: str) -> str:
    """XDP (generic mode) or tc ingress on ``lo``: every datagram we send passes the program."""
    from ebpf import lang as L
    from ebpf.lang.types import u64

    coll = L.Collection(f"vm_{kind}")
    hits = coll.array_map("hits", value=u64, max_entries=1)
    if kind == "xdp":
        @coll.xdp("lo", mode="skb")
        def packets(ctx):
            hits[0] += 1
            return 2  # XDP_PASS
    else:
        @coll.tc("lo")
        def packets(ctx):
            hits[0] += 1
            return 0  # TC_ACT_OK

    def run() -> str:
        with coll.load() as live:
            (link,) = live.attach()
            send_udp()
            count = live.maps["hits"][0]
        return _expect(count >= N, f"{count} packets for {N} datagrams on lo ({link.kind} via {link.via})")

    return in_own_netns(run)


LIVE: Dict[str, Callable[[], str]] = {
    "kprobe": check_kprobe, "kretprobe": check_kretprobe, "kprobe_multi": check_kprobe_multi,
    "fentry": check_fentry, "fexit": check_fexit, "fmod_ret": check_fmod_ret, "lsm": check_lsm,
    "uprobe": check_uprobe, "uretprobe": check_uretprobe, "usdt": check_usdt,
    "tp_btf": lambda: _getppid_counter("tp_btf"), "raw_tp": lambda: _getppid_counter("raw_tp"),
    "tracepoint": lambda: _getppid_counter("tracepoint"), "perf_event": check_perf_event, "iter": check_iter,
    "xdp": lambda: check_packets("xdp"), "tc": lambda: check_packets("tc"),
}


def run_hook(hook: str) -> Dict[str, Any]:
    """The live result of ``hook`` and whether ``ebpf features`` agrees with it."""
    from ebpf import features
    from ebpf.errors import NotSupported, PermissionDenied

    start = time.monotonic()
    stderr = ""
    try:
        verdict = features.probe_hook(hook)
    except Exception as e:  # noqa: BLE001 - reported as the check's failure
        return {"status": "fail", "detail": f"features probe raised {type(e).__name__}: {e}",
                "stderr": traceback.format_exc()[-3000:]}
    try:
        live, clean, detail = True, True, LIVE[hook]()
    except Missed as e:
        live, clean, detail = False, True, f"attached, but {e}"
    except (NotSupported, PermissionDenied) as e:
        live, clean, detail = False, True, f"{type(e).__name__}: {e}".splitlines()[0]
    except Exception as e:  # noqa: BLE001 - an error that is not a clean "unsupported"
        live, clean, detail = False, False, f"{type(e).__name__}: {e}".splitlines()[0]
        stderr = traceback.format_exc()[-3000:]
    seconds = time.monotonic() - start
    probe = f"features: {'yes' if verdict.supported else 'no'} ({verdict.detail})"
    if live and verdict.supported:
        return {"status": "ok", "seconds": seconds, "detail": f"{detail}; {probe}"}
    if not live and not verdict.supported and clean:
        return {"status": "unavailable", "seconds": seconds,
                "detail": f"feature probe: {verdict.detail}; live: {detail}"}
    if not live and not verdict.supported:
        why = "the kernel lacks it, but attaching failed with an error that is not NotSupported"
    elif live:
        why = "it works, but the features probe says no"
    else:
        why = "the features probe says yes, but it does not work"
    return {"status": "fail", "seconds": seconds, "detail": f"{why}: {detail}; {probe}", "stderr": stderr}
