"""Program.attach() picks the hook from the program type, the expected attach type and the target."""

from __future__ import annotations

from typing import Any, List, Tuple

import pytest

from ebpf import asm as A
from ebpf.attach import dispatch, kprobe, perf_event, tc, uprobe, usdt
from ebpf.errors import AttachError
from ebpf.program import Program, ProgramSpec
from ebpf.sys.fd import FD


class Recorder:
    def __init__(self) -> None:
        self.calls: List[Tuple[str, tuple, dict]] = []

    def make(self, name: str) -> Any:
        def fn(*args: Any, **kw: Any) -> str:
            self.calls.append((name, args[1:], kw))
            return name
        return fn


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    r = Recorder()
    for mod, fn in ((kprobe, "attach_kprobe"), (kprobe, "attach_ksyscall"), (kprobe, "attach_kprobe_multi"),
                    (uprobe, "attach_uprobe"), (uprobe, "attach_uprobe_multi"), (usdt, "attach_usdt"),
                    (perf_event, "attach_perf_event"), (tc, "attach_tc")):
        monkeypatch.setattr(mod, fn, r.make(fn))
    return r


def program(ptype: str, attach_to: str = "", attach_type: Any = None) -> Program:
    import os

    spec = ProgramSpec("p", ptype, [A.mov64(A.R0, 0), A.exit_()], attach_to=attach_to, attach_type=attach_type)
    return Program(FD(os.open(os.devnull, os.O_RDONLY)), spec)


@pytest.mark.parametrize("target,expected", [
    ("kprobe/vfs_read", ("attach_kprobe", ("vfs_read",), {"retprobe": False})),
    ("vfs_read", ("attach_kprobe", ("vfs_read",), {"retprobe": False})),
    ("kretprobe/vfs_read+0x10", ("attach_kprobe", ("vfs_read",), {"retprobe": True, "offset": 16})),
    ("ksyscall/openat", ("attach_ksyscall", ("openat",), {"retprobe": False})),
    ("uprobe/usr/bin/x:main", ("attach_uprobe", ("usr/bin/x", "main"), {"retprobe": False})),
    ("uretprobe//bin/sh:0x1234", ("attach_uprobe", ("/bin/sh", None), {"offset": 0x1234, "retprobe": True})),
    ("usdt//bin/x:prov:name", ("attach_usdt", ("/bin/x", "prov", "name"), {})),
])
def test_kprobe_type_targets(rec: Recorder, target: str, expected: tuple) -> None:
    with program("kprobe") as p:
        assert p.attach(target) == expected[0]
    assert rec.calls == [expected]


def test_multi_links_and_others(rec: Recorder) -> None:
    with program("kprobe", "vfs_read,vfs_write", "trace_kprobe_multi") as p:
        p.attach()
    with program("kprobe", "/bin/x:a,b", "trace_uprobe_multi") as p:
        p.attach(pid=3)
    with program("perf_event", "cpu-clock") as p:
        p.attach(sample_freq=99)
    with program("sched_cls", "eth0:egress") as p:
        p.attach()
    with program("sched_cls", "eth0", "tcx_ingress") as p:
        p.attach()
    assert rec.calls == [
        ("attach_kprobe_multi", (), {"symbols": ["vfs_read", "vfs_write"]}),
        ("attach_uprobe_multi", ("/bin/x",), {"pid": 3, "symbols": ["a", "b"]}),
        ("attach_perf_event", ("cpu-clock",), {"sample_freq": 99}),
        ("attach_tc", ("eth0",), {"direction": "egress"}),
        ("attach_tc", ("eth0",), {"direction": "ingress"}),
    ]


def test_errors() -> None:
    with program("xdp") as p, pytest.raises(AttachError, match="no network device"):
        p.attach()
    with program("kprobe") as p, pytest.raises(AttachError, match="bad probe target"):
        p.attach("nosuch/x")
    with program("socket_filter", "x") as p, pytest.raises(AttachError, match="not supported"):
        p.attach()
    with pytest.raises(AttachError, match="has no spec"):
        dispatch.attach_program(object())
