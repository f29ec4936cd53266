"""kprobe.multi patterns: ``do_sys_open*`` expanded as libbpf expands them, against the functions of
tracefs ``available_filter_functions``; patterns with cookies and patterns matching nothing are errors."""

from __future__ import annotations

import pytest

from ebpf.attach.kprobe import expand_patterns, is_pattern, parse_filter_functions
from ebpf.errors import AttachError

FILTER_FUNCTIONS = """\
do_sys_open
do_sys_openat2
do_sys_openat2.cold
vfs_read
tcp_v4_connect [nf_conntrack]
__ftrace_invalid_address___64
"""
WITH_ADDRESSES = """\
ffffffff81454730 do_sys_openat2
ffffffff81454da0 do_sys_open
"""


def test_parse_names_modules_and_addresses() -> None:
    assert parse_filter_functions(FILTER_FUNCTIONS) == ["do_sys_open", "do_sys_openat2", "vfs_read", "tcp_v4_connect"]
    assert parse_filter_functions(WITH_ADDRESSES) == ["do_sys_openat2", "do_sys_open"]


def test_patterns_expand_once_each_in_order() -> None:
    names = parse_filter_functions(FILTER_FUNCTIONS)
    assert is_pattern("do_sys_open*") and is_pattern("vfs_rea?") and not is_pattern("vfs_read")
    assert expand_patterns(["do_sys_open*"], names) == ["do_sys_open", "do_sys_openat2"]
    assert expand_patterns(["vfs_read", "do_sys_open*", "do_sys_open"], names) == [
        "vfs_read", "do_sys_open", "do_sys_openat2"]
    assert expand_patterns(["tcp_v4_*"], names) == ["tcp_v4_connect"]


def test_pattern_errors() -> None:
    names = parse_filter_functions(FILTER_FUNCTIONS)
    with pytest.raises(AttachError, match=r"no attachable kernel function matches 'nothing_like_this\*'"):
        expand_patterns(["nothing_like_this*"], names)
    with pytest.raises(AttachError, match="bad kernel symbol"):
        expand_patterns(["do sys*"], names)
