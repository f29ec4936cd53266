"""Maps filled by BPF programs: a stack trace map from bpf_get_stackid, per-CPU counters
incremented on every CPU, and a hash drained with items_and_clear while a program writes it."""

from __future__ import annotations

import os
import struct

from ebpf.maps import MapSpec
from ebpf.maps.cpus import num_possible_cpus
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.sys.perf import PerfType, perf_event_open
from ebpf.sys.tracefs import tracepoint_id
from ebpf.uapi import AttachType, HelperId, ProgType


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def _ld_map(dst: int, fd: int) -> bytes:
    return _insn(0x18, dst, 1, imm=fd) + _insn(0)


def _only_tgid(tgid: int, skip: int) -> bytes:
    """r0 = pid_tgid >> 32; if r0 != tgid skip ``skip`` instructions (to the exit)."""
    return (_insn(0x85, imm=HelperId.get_current_pid_tgid) + _insn(0x77, 0, imm=32)
            + _insn(0x55, 0, off=skip, imm=tgid))


def _exit0() -> bytes:
    return _insn(0xB7, 0) + _insn(0x95)


def _on_getppid(prog: FD) -> tuple:
    tp = tracepoint_id("syscalls", "sys_enter_getppid")
    perf = FD(perf_event_open(PerfType.TRACEPOINT, tp, pid=-1, cpu=0, sample_period=1, wakeup_events=1))
    try:
        link = FD(bpf.link_create(int(prog), int(perf), AttachType.PERF_EVENT))
    except BaseException:
        perf.close()
        raise
    return perf, link


def _load(insns: bytes, prog_type: ProgType) -> FD:
    fd, _ = bpf.prog_load(prog_type, insns, "GPL", name="t_maps")
    return FD(fd)


def test_stack_trace_map_filled_by_get_stackid() -> None:
    with MapSpec("t_stk", "stack_trace", max_entries=64).create() as stacks, \
            MapSpec("t_ids", "array", value="i64", max_entries=1).create() as ids:
        body = (_ld_map(2, stacks.fd) + _insn(0xBF, 1, 6) + _insn(0xB7, 3)
                + _insn(0x85, imm=HelperId.get_stackid)
                + _insn(0x7B, 10, 0, -16)  # *(u64 *)(r10 - 16) = stack id
                + _insn(0x62, 10, off=-4, imm=0) + _insn(0xBF, 2, 10) + _insn(0x07, 2, imm=-4)
                + _ld_map(1, ids.fd) + _insn(0x85, imm=HelperId.map_lookup_elem)
                + _insn(0x15, 0, off=2, imm=0) + _insn(0x79, 1, 10, -16) + _insn(0x7B, 0, 1, 0))
        insns = _insn(0xBF, 6, 1) + _only_tgid(os.getpid(), len(body) // 8) + body + _exit0()
        with _load(insns, ProgType.TRACEPOINT) as prog:
            perf, link = _on_getppid(prog)
            try:
                os.getppid()
            finally:
                link.close()
                perf.close()
        stack_id = ids[0]
        assert stack_id >= 0, f"bpf_get_stackid failed: {stack_id}"
        assert stacks.keys() == [stack_id]
        frames = stacks.stack(stack_id)
        assert 1 <= len(frames) <= 127
        assert all(ip >= 0xFFFF800000000000 for ip in frames)  # kernel text addresses (x86_64/arm64)
        assert list(stacks.walk(stack_id)) == frames
        del stacks[stack_id]
        assert len(stacks) == 0


def test_percpu_counter_from_every_cpu() -> None:
    """A program run on each CPU (BPF_F_TEST_RUN_ON_CPU) bumps its CPU's slot."""
    ncpu = num_possible_cpus()
    with MapSpec("t_pcnt", "percpu_array", value="u64", max_entries=1).create() as counts:
        insns = (_insn(0x62, 10, off=-4, imm=0) + _insn(0xBF, 2, 10) + _insn(0x07, 2, imm=-4)
                 + _ld_map(1, counts.fd) + _insn(0x85, imm=HelperId.map_lookup_elem)
                 + _insn(0x15, 0, off=3, imm=0) + _insn(0x79, 1, 0, 0) + _insn(0x07, 1, imm=1)
                 + _insn(0x7B, 0, 1, 0) + _exit0())
        with _load(insns, ProgType.RAW_TRACEPOINT) as prog:
            online = sorted(os.sched_getaffinity(0))
            for cpu in online:
                for _ in range(cpu + 1):
                    bpf.prog_test_run(int(prog), repeat=0, flags=1, cpu=cpu)  # BPF_F_TEST_RUN_ON_CPU
        values = counts[0]
        assert len(values) == ncpu
        assert [values[c] for c in online] == [c + 1 for c in online]
        assert counts.sum(0) == sum(c + 1 for c in online)
        assert counts.max(0) == max(online) + 1


def test_interval_drain_loses_no_increment() -> None:
    """items_and_clear between bursts of events: the totals add up exactly (the BCC interval
    pattern, done with LOOKUP_AND_DELETE_BATCH)."""
    with MapSpec("t_cnt", "hash", key="u32", value="u64", max_entries=16).create() as counts:
        # key = 1; v = lookup(key); if v: *v += 1 else update(key, 1)
        body = (_insn(0x62, 10, off=-4, imm=1) + _insn(0xBF, 2, 10) + _insn(0x07, 2, imm=-4)
                + _ld_map(1, counts.fd) + _insn(0x85, imm=HelperId.map_lookup_elem)
                + _insn(0x15, 0, off=4, imm=0) + _insn(0xB7, 1, imm=1) + _insn(0xDB, 0, 1, 0, 0)
                + _insn(0xB7, 0) + _insn(0x95)
                + _insn(0x7A, 10, off=-16, imm=1) + _insn(0xBF, 2, 10) + _insn(0x07, 2, imm=-4)
                + _insn(0xBF, 3, 10) + _insn(0x07, 3, imm=-16) + _insn(0xB7, 4, imm=0)
                + _ld_map(1, counts.fd) + _insn(0x85, imm=HelperId.map_update_elem))
        insns = _only_tgid(os.getpid(), len(body) // 8) + body + _exit0()
        with _load(insns, ProgType.TRACEPOINT) as prog:
            perf, link = _on_getppid(prog)
            try:
                total = 0
                for burst in (5, 50, 500):
                    for _ in range(burst):
                        os.getppid()
                    total += sum(v for _, v in counts.items_and_clear())
                assert counts._delete_batch_ok is True
            finally:
                link.close()
                perf.close()
        assert total == 555 and len(counts) == 0
