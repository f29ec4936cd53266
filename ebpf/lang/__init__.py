"""ebpf.lang: restricted, annotated Python functions compiled straight to eBPF (no LLVM).

::

    from ebpf import lang as L
    from ebpf.lang import u32, u64, char, Struct

    class Event(Struct):
        pid: u32
        comm: char[16]

    tool = L.Collection("hello")
    events = tool.ringbuf("events")

    @tool.tracepoint("sched/sched_process_exec")
    def on_exec(ctx):
        e = events.reserve(Event)
        if e is None:
            return 0
        e.pid = L.pid()
        L.get_current_comm(e.comm)
        events.submit(e)
        return 0

    with tool.load() as live:
        live.attach()
        for ev in live.events.stream(decode=Event):
            print(ev.pid, ev.comm)

The integer semantics (C's) are documented in :mod:`ebpf.lang.types`; the statements and
checks in :mod:`ebpf.lang.frontend`; helpers in :mod:`ebpf.lang.builtins`; strings
(``comm == "dd"``, ``L.startswith``, ``L.str``) in :mod:`ebpf.lang.strings`; map methods
(``m.get(k, default)``...) in :mod:`ebpf.lang.intrinsics`.

Importing this package is cheap: the compiler (``ast``, BTF, tracefs) loads only when a
collection is compiled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from ebpf.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from ebpf.errors import CompileError  # noqa: F401
    from ebpf.lang.builtins import *  # noqa: F401, F403
    from ebpf.lang.collection import Collection, GlobalDecl, MapDecl, ProgramDecl  # noqa: F401
    from ebpf.lang.types import *  # noqa: F401, F403

_TYPES = ("Struct u8 u16 u32 u64 i8 i16 i32 i64 s8 s16 s32 s64 char boolean void ptr ktype type_of "
          "IntType ArrayType StructType PtrType KernelType").split()
_BUILTINS = (
    "inline subprogram get_current_pid_tgid get_current_uid_gid get_current_comm ktime_get_ns "
    "ktime_get_boot_ns get_smp_processor_id get_prandom_u32 get_current_cgroup_id jiffies64 pid tid uid "
    "gid current_task get_current_task probe_read probe_read_user probe_read_kernel probe_read_str "
    "probe_read_user_str probe_read_kernel_str str startswith printk send_signal get_func_ip loop log2 log2l "
    "field_exists member type_size type_exists enum_value cast kfunc helper bounded sizeof ntohs ntohl htons htonl"
).split()
_LAZY: Dict[str, str] = {name: "ebpf.lang.types" for name in _TYPES}
_LAZY.update({name: "ebpf.lang.builtins" for name in _BUILTINS})
_LAZY.update({"Collection": "ebpf.lang.collection", "MapDecl": "ebpf.lang.collection",
              "GlobalDecl": "ebpf.lang.collection", "ProgramDecl": "ebpf.lang.collection",
              "CompileError": "ebpf.errors"})

# ``L.str`` is not star-exported: ``from ebpf.lang import *`` must not shadow the built-in str.
__all__ = sorted(name for name in _LAZY if name != "str")


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
