"""Pinning maps, programs and links in bpffs and reopening them; a pinned link keeps the program
attached after every fd of ours is closed, until the pin goes."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from typing import Iterator

import pytest

from ebpf import asm as A
from ebpf import pin as P
from ebpf.attach.link import Link
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.maps.array import ArrayMap
from ebpf.program import Program, ProgramSpec


@pytest.fixture
def pin_dir() -> Iterator[str]:
    P.ensure_bpffs()
    path = os.path.join(P.BPFFS, f"ebpf_test_{uuid.uuid4().hex[:8]}")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def counter_spec() -> ProgramSpec:
    return ProgramSpec("pin_count", "tracepoint", [
        A.call("get_current_pid_tgid"), A.rsh64(A.R0, 32), A.jne(A.R0, os.getpid(), "out"),
        A.ld_map_value(A.R1, "count", 0), A.mov64(A.R2, 1), A.atomic_add(8, A.R1, A.R2, 0),
        A.label("out"), A.mov64(A.R0, 0), A.exit_(),
    ], attach_to="syscalls/sys_enter_getppid")


def test_pin_and_reopen_map_program_and_link(pin_dir: str) -> None:
    assert P.is_bpffs(P.BPFFS) and not P.is_bpffs("/tmp")
    with MapSpec("count", "array", key="u32", value="u64", max_entries=1).create() as count:
        with load_program(counter_spec(), {"count": count}) as prog:
            link = prog.attach()
            P.pin(count, f"{pin_dir}/count")
            P.pin(prog, f"{pin_dir}/prog")
            P.pin(link, f"{pin_dir}/link")  # creates nothing else: the directory existed
            link.close()
    # every fd of ours is closed: the pinned link keeps counting
    for _ in range(7):
        os.getppid()
    with P.open_pinned(f"{pin_dir}/count", key="u32", value="u64") as m:
        assert isinstance(m, ArrayMap) and m[0] == 7
        with P.open_pinned(f"{pin_dir}/prog") as p:
            assert isinstance(p, Program) and p.name == "pin_count"
        with P.open_pinned(f"{pin_dir}/link") as again:
            assert isinstance(again, Link) and again.kind == "perf_event"
        with Link.from_pin(f"{pin_dir}/link") as again2:
            assert again2.info()["prog_id"] > 0
        P.unpin(f"{pin_dir}/link")  # the last reference: the kernel frees the link from a work queue
        deadline = time.monotonic() + 5
        while True:
            before = m[0]
            os.getppid()
            if m[0] == before or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for _ in range(5):
            os.getppid()
        assert m[0] == before  # detached
    P.unpin(f"{pin_dir}/prog")
    P.unpin(f"{pin_dir}/count")
    P.unpin(f"{pin_dir}/count")  # missing_ok
    assert os.listdir(pin_dir) == []


def test_pin_paths_relative_to_bpffs(pin_dir: str) -> None:
    rel = os.path.relpath(pin_dir, P.BPFFS) + "/sub/m"
    with MapSpec("m", "hash", key="u32", value="u32", max_entries=4).create() as m:
        full = P.pin(m, rel)
    assert full == os.path.join(pin_dir, "sub", "m") and os.path.exists(full)
    P.unpin(rel)
