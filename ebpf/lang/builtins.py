"""The functions a DSL program calls as ``L.name(...)``: helpers, kernel-data queries, loops.

They are markers: the compiler recognises them (``_ebpf_intrinsic``) and emits the helper
call or the inline code; called from ordinary Python they raise, since they only mean
something inside the kernel. Signatures here are the ones the compiler checks.
Decorators :func:`inline` and :func:`subprogram` mark Python functions the DSL may call.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = [
    "inline", "subprogram", "InlineFunction", "Subprogram",
    "get_current_pid_tgid", "get_current_uid_gid", "get_current_comm", "ktime_get_ns",
    "ktime_get_boot_ns", "get_smp_processor_id", "get_prandom_u32", "get_current_cgroup_id",
    "jiffies64", "pid", "tid", "uid", "gid", "current_task", "get_current_task",
    "probe_read", "probe_read_user", "probe_read_kernel", "probe_read_str", "probe_read_user_str",
    "probe_read_kernel_str", "startswith", "printk", "send_signal", "get_func_ip", "loop", "log2", "log2l",
    "field_exists", "member", "type_size", "type_exists", "enum_value", "cast", "kfunc", "helper", "bounded",
    "sizeof", "ntohs", "ntohl", "htons", "htonl",
]


def _stub(fn: Callable[..., Any], name: Optional[str] = None) -> Callable[..., Any]:
    name = name or fn.__name__

    def marker(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"ebpf.lang.{name}() only works inside a function compiled to eBPF")

    marker.__name__ = name
    marker.__qualname__ = name
    marker.__doc__ = fn.__doc__
    marker._ebpf_intrinsic = name  # type: ignore[attr-defined]
    return marker


class InlineFunction:
    """A Python function whose body is compiled into each caller (``@L.inline``)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.__name__} is an eBPF inline function: call it from compiled code")

    def __repr__(self) -> str:
        return f"<inline {self.__name__}>"


class Subprogram:
    """A function compiled once per program and reached with a bpf-to-bpf call (``@L.subprogram``).

    Parameters (at most five) and the result need annotations: integers or pointers.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.__name__} is an eBPF sub-program: call it from compiled code")

    def __repr__(self) -> str:
        return f"<subprogram {self.__name__}>"


def inline(fn: Callable[..., Any]) -> InlineFunction:
    """Decorator: the function's body is inlined where it is called (no call overhead)."""
    return InlineFunction(fn)


def subprogram(fn: Callable[..., Any]) -> Subprogram:
    """Decorator: the function becomes a bpf-to-bpf sub-program (shared code, own stack frame)."""
    return Subprogram(fn)


# ---- helpers returning scalars -----------------------------------------------------------


@_stub
def get_current_pid_tgid() -> Any:
    """u64: tgid << 32 | pid (thread id) of the current task."""


@_stub
def get_current_uid_gid() -> Any:
    """u64: gid << 32 | uid."""


@_stub
def get_current_comm(buf: Any) -> Any:
    """Copy the current task's name into ``buf`` (a char array); returns 0 or -errno."""


@_stub
def ktime_get_ns() -> Any:
    """u64: monotonic clock, nanoseconds."""


@_stub
def ktime_get_boot_ns() -> Any:
    """u64: boot clock (includes suspend), nanoseconds."""


@_stub
def get_smp_processor_id() -> Any:
    """u32: the CPU running the program."""


@_stub
def get_prandom_u32() -> Any:
    """u32: a pseudo-random number."""


@_stub
def get_current_cgroup_id() -> Any:
    """u64: the cgroup v2 id of the current task."""


@_stub
def jiffies64() -> Any:
    """u64: jiffies."""


@_stub
def pid() -> Any:
    """u32: the current process id (the tgid, what user space calls the pid)."""


@_stub
def tid() -> Any:
    """u32: the current thread id."""


@_stub
def uid() -> Any:
    """u32: the current real user id."""


@_stub
def gid() -> Any:
    """u32: the current real group id."""


@_stub
def current_task() -> Any:
    """Pointer to the current ``struct task_struct`` (BTF-typed in tp_btf/fentry/fexit)."""


@_stub
def get_current_task() -> Any:
    """Same as :func:`current_task`."""


# ---- memory ----------------------------------------------------------------------------------


@_stub
def probe_read(dst: Any, src: Any, size: Optional[int] = None) -> Any:
    """Copy ``size`` (default: the size of ``dst``) bytes of kernel memory at ``src`` into ``dst``."""


@_stub
def probe_read_kernel(dst: Any, src: Any, size: Optional[int] = None) -> Any:
    """Copy kernel memory at ``src`` into ``dst``; on failure ``dst`` is zeroed. Returns 0 or -errno."""


@_stub
def probe_read_user(dst: Any, src: Any, size: Optional[int] = None) -> Any:
    """Copy user memory at ``src`` into ``dst``."""


@_stub
def probe_read_str(dst: Any, src: Any, size: Optional[int] = None) -> Any:
    """Copy a NUL-terminated kernel string into ``dst``; returns its length with the NUL."""


@_stub
def probe_read_kernel_str(dst: Any, src: Any, size: Optional[int] = None) -> Any:
    """Copy a NUL-terminated kernel string into ``dst``; returns its length with the NUL."""


@_stub
def probe_read_user_str(dst: Any, src: Any, size: Optional[int] = None) -> Any:
    """Copy a NUL-terminated user string into ``dst``; returns its length with the NUL."""


def _read_str(src: Any, size: int = 64) -> Any:
    """``L.str(p)``: the NUL-terminated string at ``p`` read into a new ``char[size]`` buffer
    (default 64 bytes, as bpftrace's ``str()``), which the expression then is: compare it
    (``L.str(ctx.filename) == "/etc/passwd"``), assign it to a ``char[N]`` field, or name it.
    A user pointer (a syscall tracepoint's ``char *``, ``ctx.argv[i]``) is read with
    bpf_probe_read_user_str, a kernel pointer or an integer address with
    bpf_probe_read_kernel_str; a char array in eBPF memory is returned as it is. The string
    is truncated to ``size - 1`` bytes; bytes after its NUL are unspecified (they never count
    in string comparisons); a failed read gives the empty string."""


def __getattr__(name: str) -> Any:
    # ``L.str`` is defined here, not as a function named ``str``, so as not to shadow the
    # built-in in this module.
    if name == "str":
        return _STR
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@_stub
def startswith(text: Any, prefix: Any) -> Any:
    """bool: the C string in char array ``text`` starts with ``prefix`` (a literal or another
    char array): ``L.startswith(comm, "kworker")``. See :mod:`ebpf.lang.strings`."""


# ---- misc helpers ---------------------------------------------------------------------------


@_stub
def printk(fmt: str, *args: Any) -> Any:
    """bpf_trace_printk: ``fmt`` (a literal) with at most three integer arguments."""


@_stub
def send_signal(sig: int) -> Any:
    """Send signal ``sig`` to the current process."""


@_stub
def get_func_ip() -> Any:
    """u64: address of the traced function (kprobe, fentry/fexit)."""


@_stub
def loop(count: int, callback: Any, ctx: Any = 0) -> Any:
    """bpf_loop: call sub-program ``callback(index: u32, ctx: u64) -> i64`` up to ``count`` times
    (it returns 1 to stop early); returns the number of calls made."""


@_stub
def log2(v: int) -> Any:
    """u32: floor(log2(v)) of a 32-bit value (0 for 0): a histogram slot."""


@_stub
def log2l(v: int) -> Any:
    """u32: floor(log2(v)) of a 64-bit value (0 for 0)."""


@_stub
def sizeof(t: Any) -> Any:
    """The size in bytes of a type or of an expression's type (a constant)."""


@_stub
def ntohs(v: int) -> Any:
    """u16 from network byte order."""


@_stub
def ntohl(v: int) -> Any:
    """u32 from network byte order."""


@_stub
def htons(v: int) -> Any:
    """u16 to network byte order."""


@_stub
def htonl(v: int) -> Any:
    """u32 to network byte order."""


# ---- kernel types (CO-RE) -------------------------------------------------------------------


@_stub
def field_exists(field: Any, name: Optional[str] = None) -> Any:
    """1 if the kernel has the field, else 0: ``L.field_exists(task.loginuid)`` or
    ``L.field_exists("struct task_struct", "loginuid")``. Relocated at load time."""


@_stub
def member(obj: Any, name: str, type: Any) -> Any:
    """Member ``name`` of kernel struct pointer ``obj``, read as ``type``, found by name on the
    kernel the program runs on (CO-RE) even when the kernel it was compiled on lacks it:
    ``if L.field_exists("struct task_struct", "__state"): s = L.member(t, "__state", u32)``
    ``else: s = L.member(t, "state", i64)``."""


@_stub
def type_size(t: Any) -> Any:
    """Size of a kernel type (``"struct task_struct"``), relocated at load time."""


@_stub
def type_exists(t: Any) -> Any:
    """1 if the kernel has type ``t`` (``"struct bpf_ringbuf"``), else 0."""


@_stub
def enum_value(enum: str, name: str) -> Any:
    """Value of enumerator ``name`` of kernel enum ``enum``, relocated at load time."""


@_stub
def cast(value: Any, type: Any) -> Any:
    """Reinterpret: an integer or pointer as a pointer to ``type`` (a Struct, a kernel type name
    such as ``"struct sock"``, an int type), or a value as an integer type."""


@_stub
def kfunc(name: str, *args: Any) -> Any:
    """Call kernel function ``name`` (a kfunc), typed by its BTF prototype."""


@_stub
def helper(name: Any, *args: Any) -> Any:
    """Call any helper by name or id with integer/pointer arguments; returns i64."""


@_stub
def bounded(cond: Any, limit: int) -> Any:
    """``while L.bounded(cond, N):`` runs while ``cond`` holds, at most ``N`` times."""


_STR = _stub(_read_str, "str")
