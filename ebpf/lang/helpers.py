"""Helper ids (from include/uapi/linux/bpf.h) and the typed signatures the compiler checks.

Kept as a plain table rather than imported from :class:`ebpf.uapi.HelperId` so that compiling
does not pay for building the big enum; a unit test checks the two agree. A signature lists
argument kinds: ``int`` (an integer, passed as 64 bits), ``ptr`` (memory: a struct/array or a
non-null pointer), ``size`` (a byte count), ``map``, ``ctx`` (the program's context), ``func``
(a sub-program) and the result type.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Tuple

from ebpf.lang.types import Type, i64, u32, u64, void


class Signature(NamedTuple):
    id: int
    params: Tuple[str, ...]
    ret: Type


HELPERS: Dict[str, Signature] = {
    "map_lookup_elem": Signature(1, ("map", "ptr"), u64),
    "map_update_elem": Signature(2, ("map", "ptr", "ptr", "int"), i64),
    "map_delete_elem": Signature(3, ("map", "ptr"), i64),
    "probe_read": Signature(4, ("ptr", "size", "int"), i64),
    "ktime_get_ns": Signature(5, (), u64),
    "trace_printk": Signature(6, ("ptr", "size", "int", "int", "int"), i64),
    "get_prandom_u32": Signature(7, (), u32),
    "get_smp_processor_id": Signature(8, (), u32),
    "tail_call": Signature(12, ("ctx", "map", "int"), i64),
    "get_current_pid_tgid": Signature(14, (), u64),
    "get_current_uid_gid": Signature(15, (), u64),
    "get_current_comm": Signature(16, ("ptr", "size"), i64),
    "perf_event_output": Signature(25, ("ctx", "map", "int", "ptr", "size"), i64),
    "get_stackid": Signature(27, ("ctx", "map", "int"), i64),
    "get_current_task": Signature(35, (), u64),
    "probe_read_str": Signature(45, ("ptr", "size", "int"), i64),
    "get_current_cgroup_id": Signature(80, (), u64),
    "map_push_elem": Signature(87, ("map", "ptr", "int"), i64),
    "map_pop_elem": Signature(88, ("map", "ptr"), i64),
    "map_peek_elem": Signature(89, ("map", "ptr"), i64),
    "send_signal": Signature(109, ("int",), i64),
    "probe_read_user": Signature(112, ("ptr", "size", "int"), i64),
    "probe_read_kernel": Signature(113, ("ptr", "size", "int"), i64),
    "probe_read_user_str": Signature(114, ("ptr", "size", "int"), i64),
    "probe_read_kernel_str": Signature(115, ("ptr", "size", "int"), i64),
    "jiffies64": Signature(118, (), u64),
    "ktime_get_boot_ns": Signature(125, (), u64),
    "ringbuf_output": Signature(130, ("map", "ptr", "size", "int"), i64),
    "ringbuf_reserve": Signature(131, ("map", "size", "int"), u64),
    "ringbuf_submit": Signature(132, ("ptr", "int"), void),
    "ringbuf_discard": Signature(133, ("ptr", "int"), void),
    "get_current_task_btf": Signature(158, (), u64),
    "get_func_ip": Signature(173, ("ctx",), u64),
    "loop": Signature(181, ("int", "func", "ptr", "int"), i64),
}

#: Helpers that read the program's context implicitly (the compiler passes it).
NEEDS_CTX = frozenset({"tail_call", "perf_event_output", "get_stackid", "get_func_ip"})

BPF_F_CURRENT_CPU = 0xFFFFFFFF
BPF_F_USER_STACK = 1 << 8
BPF_NOEXIST = 1
