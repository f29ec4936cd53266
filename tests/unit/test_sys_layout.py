"""Our cffi declarations match the kernel ABI: offsets and sizes from include/uapi/linux/bpf.h."""

from __future__ import annotations

import pytest

from ebpf.sys.ffi import ffi

OFFSETS = [
    ("struct bpf_attr_map_create", "map_name", 28),
    ("struct bpf_attr_map_create", "btf_fd", 48),
    ("struct bpf_attr_map_create", "map_extra", 64),
    ("struct bpf_attr_map_elem", "key", 8),
    ("struct bpf_attr_map_elem", "flags", 24),
    ("struct bpf_attr_map_batch", "count", 32),
    ("struct bpf_attr_map_batch", "elem_flags", 40),
    ("struct bpf_attr_prog_load", "log_buf", 32),
    ("struct bpf_attr_prog_load", "prog_name", 48),
    ("struct bpf_attr_prog_load", "expected_attach_type", 68),
    ("struct bpf_attr_prog_load", "func_info", 80),
    ("struct bpf_attr_prog_load", "line_info", 96),
    ("struct bpf_attr_prog_load", "attach_btf_id", 108),
    ("struct bpf_attr_prog_load", "fd_array", 120),
    ("struct bpf_attr_prog_load", "log_true_size", 140),
    ("struct bpf_attr_test_run", "data_in", 16),
    ("struct bpf_attr_test_run", "ctx_in", 48),
    ("struct bpf_attr_test_run", "cpu", 68),
    ("struct bpf_attr_raw_tracepoint", "cookie", 16),
    ("struct bpf_attr_btf_load", "btf_log_true_size", 28),
    ("struct bpf_attr_link_create", "u", 16),
    ("struct bpf_prog_info", "xlated_prog_insns", 32),
    ("struct bpf_prog_info", "name", 64),
    ("struct bpf_prog_info", "btf_id", 128),
    ("struct bpf_prog_info", "run_cnt", 200),
    ("struct bpf_map_info", "name", 24),
    ("struct perf_event_attr", "flags", 40),
    ("struct perf_event_attr", "wakeup_events", 48),
    ("struct perf_event_attr", "config1", 56),
    ("struct perf_event_attr", "config3", 128),
]


@pytest.mark.parametrize("struct, field, offset", OFFSETS)
def test_field_offsets(struct: str, field: str, offset: int) -> None:
    assert ffi.offsetof(struct, field) == offset


def test_sizes() -> None:
    assert ffi.sizeof("struct perf_event_attr") == 136  # PERF_ATTR_SIZE_VER8
    assert ffi.sizeof("struct bpf_attr_map_elem") == 32
    assert ffi.sizeof("struct bpf_prog_info") == 232
