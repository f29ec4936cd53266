"""biolatency in the kernel: O_DIRECT I/O on the root device while the tool runs, found in its
histograms; every hook path (tp_btf, raw tracepoints, classic tracepoints) and every option."""

from __future__ import annotations

import itertools
import json
import mmap
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import pytest

import ebpf
from ebpf.tools import biolatency as B
from ebpf.tools.runtime import choose_hooks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(ebpf.__file__)))
ROW = re.compile(r"^\s+(\d+) -> (\d+)\s+: (\d+)\s+\|[*+ ]*\|$")
BLOCK = 64 * 1024
WRITES = 24  # and as many reads: 48 requests at least (the block layer may split, never merge, sync O_DIRECT I/O)


# ---- the workload -----------------------------------------------------------------------------------


def _disk_of(path: str) -> Optional[str]:
    """The whole disk under ``path``'s file system (``vda`` for ``/dev/vda`` or ``/dev/vda1``), from sysfs."""
    st = os.stat(path)
    if os.major(st.st_dev) == 0:
        return None  # tmpfs, overlay...
    sys_dir = os.path.realpath(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not os.path.isdir(sys_dir):
        return None
    if os.path.exists(os.path.join(sys_dir, "partition")):
        sys_dir = os.path.dirname(sys_dir)
    return os.path.basename(sys_dir)


def _work_dir() -> Tuple[str, str]:
    for candidate in ("/var/tmp", REPO, tempfile.gettempdir(), "/"):
        if os.access(candidate, os.W_OK):
            disk = _disk_of(candidate)
            if disk:
                return candidate, disk
    raise AssertionError("no writable directory on a block device")


WORK_DIR, DISK = _work_dir()


def direct_io(blocks: int = WRITES) -> int:
    """Write then read ``blocks`` blocks of a fresh file with O_DIRECT; returns the I/Os made."""
    buf = mmap.mmap(-1, BLOCK)  # page aligned, as O_DIRECT wants
    buf.write(b"b" * BLOCK)
    fd, path = tempfile.mkstemp(prefix="ebpf-biolatency-", dir=WORK_DIR)
    os.close(fd)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
        try:
            for _ in range(blocks):
                assert os.write(fd, buf) == BLOCK
            os.fsync(fd)
        finally:
            os.close(fd)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            for _ in range(blocks):
                assert os.readv(fd, [buf]) == BLOCK
        finally:
            os.close(fd)
    finally:
        os.unlink(path)
        buf.close()
    return 2 * blocks


# ---- running the tool ---------------------------------------------------------------------------------


class Tool:
    """``python -m ebpf.tools.biolatency ARGS`` with its output collected."""

    def __init__(self, *args: str, preexec_fn: object = None) -> None:
        env = dict(os.environ, PYTHONPATH=REPO)
        self.proc = subprocess.Popen([sys.executable, "-m", "ebpf.tools.biolatency", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=REPO,
                                     preexec_fn=preexec_fn)  # type: ignore[arg-type]
        self.out = b""
        self.err = b""

    def ready(self, on_stderr: bool = False, timeout: float = 15.0) -> None:
        """Wait for the banner (stdout, or stderr in JSON mode)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        stream = self.proc.stderr if on_stderr else self.proc.stdout
        deadline = time.monotonic() + timeout
        got = b""
        while B.BANNER.encode() not in got:
            left = deadline - time.monotonic()
            r, _, _ = select.select([stream], [], [], max(0.0, left))
            chunk = os.read(stream.fileno(), 65536) if r else b""
            if not chunk:
                self.proc.kill()
                rest_out, rest_err = self.proc.communicate()
                raise AssertionError(f"no banner: {got!r} {rest_out!r} {rest_err!r}")
            got += chunk
        if on_stderr:
            self.err += got
        else:
            self.out += got

    def finish(self, sig: Optional[int] = signal.SIGINT, timeout: float = 15.0) -> Tuple[int, str, str]:
        if sig is not None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, (self.out + out).decode(), (self.err + err).decode()


def rows(lines: List[str]) -> Dict[int, int]:
    """Histogram rows as {low: count}."""
    out: Dict[int, int] = {}
    for line in lines:
        m = ROW.match(line)
        if m:
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + int(m.group(3))
    return out


def sections(text: str, header: str) -> Dict[str, Dict[int, int]]:
    """``header = label`` sections and their rows."""
    out: Dict[str, Dict[int, int]] = {}
    current: Optional[str] = None
    for line in text.splitlines():
        if line.startswith(f"{header} = "):
            current = line.split(" = ", 1)[1]
            out.setdefault(current, {})
        elif current is not None:
            for low, count in rows([line]).items():
                out[current][low] = out[current].get(low, 0) + count
    return out


def clean_exit(rc: int, err: str) -> None:
    assert rc == 0, err
    assert "Traceback" not in err


# ---- tests ------------------------------------------------------------------------------------------------


def test_auto_chooses_tp_btf_where_the_kernel_has_it() -> None:
    from ebpf import features

    expected = "tp_btf" if features.have_tp_btf("block_rq_issue") else "raw_tp" if features.have_btf() else "tracepoint"
    assert choose_hooks("block_rq_issue") == expected


def test_one_interval_counts_the_direct_io() -> None:
    tool = Tool("1", "1")
    tool.ready()
    made = direct_io()
    rc, out, err = tool.finish(sig=None)
    clean_exit(rc, err)
    lines = out.splitlines()
    assert lines[:3] == [B.BANNER, "", "     usecs               : count     distribution"]
    assert sum(rows(lines).values()) >= made, out


def test_per_disk_queued_milliseconds_through_raw_tracepoints() -> None:
    tool = Tool("-D", "-Q", "-m", "--hook", "raw_tp")
    tool.ready()
    made = direct_io()
    rc, out, err = tool.finish(signal.SIGINT)
    clean_exit(rc, err)
    disks = sections(out, "disk")
    assert DISK in disks, out
    assert sum(disks[DISK].values()) >= made
    assert "     msecs               : count     distribution" in out.splitlines()


def test_flags_json_and_sigterm_through_tp_btf() -> None:
    tool = Tool("-F", "-Q", "--json", "--hook", "tp_btf")
    tool.ready(on_stderr=True)
    made = direct_io()
    rc, out, err = tool.finish(signal.SIGTERM)
    clean_exit(rc, err)
    assert err.strip() == B.BANNER  # JSON mode keeps stdout for JSON
    records = [json.loads(line) for line in out.splitlines()]
    assert records and all(set(r) == {"ts", "val_type", "data", "flags"} for r in records)
    labels = {r["flags"] for r in records}
    assert any(label.endswith("Write") for label in labels) and any(label.endswith("Read") for label in labels)
    assert sum(d["count"] for r in records for d in r["data"]) >= made
    assert all(r["val_type"] == "usecs" for r in records)


def test_classic_tracepoints_disk_filter_timestamp_and_extension() -> None:
    tool = Tool("-d", DISK, "-D", "-T", "-e", "--hook", "tracepoint")
    tool.ready()
    made = direct_io()
    rc, out, err = tool.finish(signal.SIGINT)
    clean_exit(rc, err)
    lines = out.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d", lines[2]), out
    disks = sections(out, "disk")
    assert list(disks) == [DISK]  # -d: nothing from other disks
    assert sum(disks[DISK].values()) >= made
    avg = [x for x in lines if x.startswith("avg = ")]
    assert len(avg) == 1
    m = re.fullmatch(r"avg = (\d+) usecs, total: (\d+) usecs, count: (\d+)", avg[0])
    assert m and int(m.group(3)) >= made and int(m.group(1)) == int(m.group(2)) // int(m.group(3))


@pytest.mark.parametrize("args, message", [
    (("-D", "-F"), "can only use -D or -F"),
    (("-d", "no-such-disk"), "no such disk 'no-such-disk'"),
    (("-F", "--hook", "tracepoint"), "-F needs tp_btf or raw tracepoints"),
])
def test_cannot_run_exits_1_with_one_line(args: Tuple[str, ...], message: str) -> None:
    tool = Tool(*args)
    rc, out, err = tool.finish(sig=None)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("ebpf biolatency: error: ") and message in err, err


OPTIONS = [[], ["-Q"], ["-D"], ["-F"], ["-e", "-m"], ["-d", DISK, "-Q", "-D", "-e"]]


@pytest.mark.parametrize("hooks", ["tp_btf", "raw_tp", "tracepoint"])
def test_every_option_set_passes_the_verifier(hooks: str) -> None:
    from ebpf.tools._disks import dev_of

    for opts in OPTIONS:
        if hooks == "tracepoint" and "-F" in opts:
            continue
        args = B.parse_args(opts + ["--hook", hooks])
        dev = dev_of(args.disk) if args.disk else None
        plan = B.Plan(args, hooks, dev)
        coll = B.build(plan)
        with coll.load() as live:
            expected = {"block_rq_issue", "block_rq_complete"} | ({"block_rq_insert"} if args.queued else set())
            assert set(live.programs) == expected
            assert {"start", "dist"} <= set(live.maps)


def test_option_sets_are_distinct_programs() -> None:
    """Options are compile-time constants: each set gives its own code, none of the unused paths."""
    sizes = {}
    for flags in itertools.product([False, True], repeat=2):
        opts = [f for f, on in zip(["-D", "-e"], flags) if on]
        coll = B.build(B.Plan(B.parse_args(opts), "tp_btf", None))
        sizes[tuple(opts)] = len(coll.spec().programs["block_rq_complete"].instructions)
    assert len(set(sizes.values())) == 4
    assert sizes[()] == min(sizes.values())
