"""Kernel tests leave nothing behind: every BPF object fd a test opens must be closed by its end."""

from __future__ import annotations

import os
from typing import Iterator, Set

import pytest


def anon_fds() -> Set[str]:
    """This process's anonymous-inode fds (bpf-map, bpf-prog, bpf_link, perf_event...)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("anon_inode:"):
            out.add(f"{fd}:{target}")
    return out


@pytest.fixture(autouse=True)
def no_fd_left() -> Iterator[None]:
    before = anon_fds()
    yield
    left = anon_fds() - before
    assert not left, f"test left kernel objects open: {sorted(left)}"
