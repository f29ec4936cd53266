"""uprobes, uretprobes, uprobe.multi, USDT and user stacks on a small C program built here.

The program (tests/kernel/data/probe_target.c) waits for a line on stdin, so each test starts it,
attaches with its pid, then lets it run: every event counted is one the program really made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterator, List, Tuple

import pytest

from ebpf import asm as A
from ebpf.attach import probe_events
from ebpf.attach.link import MultiLink
from ebpf.attach.uprobe import attach_uprobe, attach_uprobe_multi, attach_uretprobe
from ebpf.attach.usdt import attach_usdt, find_usdt
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec
from ebpf.symbols import stack_symbols

DATA = os.path.join(os.path.dirname(__file__), "data")
N = 25
PT_REGS_AX = 80  # offsetof(struct pt_regs, ax) on x86_64

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 register offsets")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the probe target")
    out = str(tmp_path_factory.mktemp("uprobe") / "probe_target")
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", out,
                    os.path.join(DATA, "probe_target.c")], check=True)
    return out


class Target:
    """The target process, paused until :meth:`run`."""

    def __init__(self, path: str, n: int = N):
        self.proc = subprocess.Popen([path, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def run(self) -> Tuple[int, int]:
        """Let it make its calls; returns (semaphore seen, sum of returns). It stays alive."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        fields = dict(kv.split("=") for kv in line.split())
        return int(fields["sema"]), int(fields["sum"])

    def finish(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def proc(target: str) -> Iterator[Target]:
    t = Target(target)
    yield t
    if t.proc.poll() is None:
        t.proc.kill()
        t.proc.wait()
    for f in (t.proc.stdin, t.proc.stdout):
        if f is not None:
            f.close()


def count_prog(name: str, **kw: object) -> ProgramSpec:
    return ProgramSpec(name, "kprobe", [
        A.ld_map_value(A.R1, "count", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.mov64(A.R0, 0),
        A.exit_(),
    ], **kw)


def counter() -> object:
    return MapSpec("count", "array", key="u32", value="u64", max_entries=1).create()


def test_uprobe_counts_calls_of_one_process(target: str, proc: Target) -> None:
    with counter() as count, load_program(count_prog("up_count"), {"count": count}) as prog:
        with attach_uprobe(prog, target, "target_add", pid=proc.pid) as link:
            assert link.kind == "uprobe" and link.via == "bpf_link"
            _, total = proc.run()
        proc.finish()
        assert total == sum(i + 1000 for i in range(N))
        assert count[0] == N


def test_uretprobe_captures_return_values(target: str, proc: Target) -> None:
    insns = [
        A.ldx(8, A.R2, A.R1, PT_REGS_AX),
        A.lsh64(A.R2, 32), A.arsh64(A.R2, 32),  # int return value
        A.ld_map_value(A.R1, "sums", 0),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 8),
        A.mov64(A.R0, 0),
        A.exit_(),
    ]
    with MapSpec("sums", "array", key="u32", value="u64[2]", max_entries=1).create() as sums:
        with load_program(ProgramSpec("uret_sum", "kprobe", insns), {"sums": sums}) as prog:
            with attach_uretprobe(prog, target, "target_add", pid=proc.pid) as link:
                assert link.kind == "uretprobe"
                _, total = proc.run()
            proc.finish()
            assert sums[0] == [total, N]


def test_uprobe_through_program_attach_and_tracefs_fallback(target: str, proc: Target) -> None:
    """The tracefs path (forced): an uprobe_events entry of our group, gone after close."""
    with counter() as count, load_program(count_prog("up_legacy", attach_to=f"uprobe/{target}:inner_fn"),
                                          {"count": count}) as prog:
        with prog.attach(pid=proc.pid, legacy=True) as link:
            assert link.via.endswith("+tracefs")
            mine = [e for e in probe_events.ours("uprobe") if e[0] == probe_events.group_name()]
            assert len(mine) == 1 and f"{target}:0x" in mine[0][2]
            proc.run()
        proc.finish()
        assert count[0] == N
        assert not [e for e in probe_events.ours("uprobe") if e[0] == probe_events.group_name()]


def test_uprobe_multi_one_link_for_two_functions(target: str, proc: Target) -> None:
    spec = count_prog("upm_count", attach_type="trace_uprobe_multi")
    with counter() as count, load_program(spec, {"count": count}) as prog:
        with attach_uprobe_multi(prog, target, ["target_add", "inner_fn"], pid=proc.pid) as link:
            assert link.kind == "uprobe.multi"
            proc.run()
        proc.finish()
        assert count[0] == 2 * N


def usdt_prog(target: str) -> ProgramSpec:
    site = find_usdt(target, "ebpf_test", "tick")[0]
    args = site.args
    assert [a.kind for a in args] == ["reg", "deref", "const"]
    insns: List[object] = [A.mov64(A.R6, A.R1)]
    insns += args[0].load(7, 6)
    insns += args[1].load(8, 6)
    insns += args[2].load(9, 6)
    insns += [
        A.ld_map_value(A.R1, "sums", 0),
        A.atomic_add(8, A.R1, A.R7, 0),
        A.atomic_add(8, A.R1, A.R8, 8),
        A.atomic_add(8, A.R1, A.R9, 16),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 24),
        A.mov64(A.R0, 0),
        A.exit_(),
    ]
    return ProgramSpec("usdt_tick", "kprobe", insns)


@pytest.mark.parametrize("legacy", [False, True], ids=["pmu", "tracefs"])
def test_usdt_probe_with_semaphore_and_arguments(target: str, proc: Target, legacy: bool) -> None:
    with MapSpec("sums", "array", key="u32", value="u64[4]", max_entries=1).create() as sums:
        with load_program(usdt_prog(target), {"sums": sums}) as prog:
            with attach_usdt(prog, target, "ebpf_test", "tick", pid=proc.pid, legacy=legacy) as link:
                assert isinstance(link, MultiLink) and len(link.sites) == 1
                sema, _ = proc.run()
            proc.finish()
            assert sema == 1  # the kernel set the semaphore while the probe existed
            assert sums[0] == [sum(range(N)), sum(2 * i for i in range(N)), 5 * N, N]


def test_usdt_not_fired_without_probe(target: str, proc: Target) -> None:
    sema, _ = proc.run()
    assert sema == 0


def after_prologue(path: str, func: str) -> int:
    from ebpf.symbols.elf import elf_file

    off = elf_file(path).offset_of(func)
    with open(path, "rb") as f:
        f.seek(off)
        code = f.read(32)
    at = code[:8].find(bytes.fromhex("4889e5"))  # mov %rsp,%rbp
    assert at >= 0, code.hex()
    return at + 3


def test_user_stack_symbolizes_the_call_chain(target: str, proc: Target) -> None:
    insns = [
        A.mov64(A.R6, A.R1),
        A.ld_map_fd(A.R2, "stacks"),
        A.mov64(A.R3, 1 << 8),  # BPF_F_USER_STACK
        A.call("get_stackid"),
        A.ld_map_value(A.R1, "ids", 0),
        A.stx(8, A.R1, A.R0, 0),
        A.mov64(A.R0, 0),
        A.exit_(),
    ]
    with MapSpec("stacks", "stack_trace", key="u32", value="u64[127]", max_entries=64).create() as stacks, \
            MapSpec("ids", "array", key="u32", value="i64", max_entries=1).create() as ids:
        with load_program(ProgramSpec("ustack", "kprobe", insns), {"stacks": stacks, "ids": ids}) as prog:
            # after the prologue (push %rbp; mov %rsp,%rbp): at the entry the frame pointer still
            # is the caller's, and a frame-pointer walk would skip the direct caller
            with attach_uprobe(prog, target, f"target_add+{after_prologue(target, 'target_add')}", pid=proc.pid):
                proc.run()
            frames = stack_symbols(stacks, ids[0], proc.pid)
            proc.finish()
    names = [f.split("+")[0] for f in frames]
    assert names[:5] == ["target_add", "inner_fn", "middle_fn", "outer_fn", "main"], frames
    assert frames[0].endswith("[probe_target]")


def test_uprobe_errors(target: str) -> None:
    from ebpf.errors import AttachError

    with counter() as count, load_program(count_prog("up_err"), {"count": count}) as prog:
        with pytest.raises(AttachError, match="no function 'no_such_fn'"):
            attach_uprobe(prog, target, "no_such_fn")
        with pytest.raises(AttachError, match="cannot find 'no-such-lib-xyz'"):
            attach_uprobe(prog, "no-such-lib-xyz", "f")


def test_uprobe_on_libc_by_short_name() -> None:
    """"c" resolves to libc through the ld.so cache; our own getpid() calls are counted."""
    with counter() as count, load_program(count_prog("up_libc"), {"count": count}) as prog:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        with attach_uprobe(prog, "c", "getpid", pid=os.getpid()):
            for _ in range(10):
                libc.getpid()
        assert count[0] >= 10
