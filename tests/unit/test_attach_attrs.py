"""The exact bpf_attr / perf_event_attr we would send for hooks this kernel may lack (kprobes,
kprobe.multi, fentry/fexit/LSM links...) and for the others, captured by replacing the syscall
underneath ebpf.sys.bpf and ebpf.sys.perf: no privileges, no kernel objects."""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from ebpf.attach import cleanup, kprobe, probe_events, tracing, uprobe
from ebpf.attach.perf_event import attach_perf_event
from ebpf.sys import bpf, perf
from ebpf.sys.ffi import ffi
from ebpf.uapi import AttachType, BpfCmd

PROG_FD = 12345  # never dereferenced: the syscall is fake


class FakeKernel:
    """Stands in for libc.syscall: records each bpf()/perf_event_open() call and returns an fd
    of /dev/null (so that closing our FD objects is harmless)."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, Dict[str, Any]]] = []
        self.fail: Dict[str, int] = {}
        self.opened: List[int] = []

    def syscall(self, nr: Any, *args: Any) -> int:
        nr = int(nr)
        if nr == bpf.SYS_BPF:
            cmd = BpfCmd(int(args[0]))
            record = self._bpf(cmd, args[1])
            name = f"BPF_{cmd.name}"
        elif nr == bpf.SYS_PERF_EVENT_OPEN:
            name = "perf_event_open"
            record = self._perf(*args)
        else:
            raise AssertionError(f"unexpected syscall {nr}")
        self.calls.append((name, record))
        if name in self.fail:
            ffi.errno = self.fail[name]
            return -1
        fd = os.open(os.devnull, os.O_RDONLY)
        self.opened.append(fd)
        return fd

    @staticmethod
    def _fields(cdata: Any, names: Tuple[str, ...]) -> Dict[str, Any]:
        return {n: getattr(cdata, n) for n in names}

    def _bpf(self, cmd: BpfCmd, attr: Any) -> Dict[str, Any]:
        attr = ffi.cast("union bpf_attr *", attr)
        if cmd == BpfCmd.LINK_CREATE:
            a = attr.link_create
            out = self._fields(a, ("prog_fd", "target_fd", "attach_type", "flags"))
            u = a.u
            at = a.attach_type  # the union's variant to read follows the attach type
            out["perf_event_bpf_cookie"] = u.perf_event_bpf_cookie
            out["tracing"] = self._fields(u.tracing, ("target_btf_id", "cookie"))
            out["tcx"] = self._fields(u.tcx, ("relative_fd", "expected_revision"))
            if at == AttachType.TRACE_KPROBE_MULTI:
                km = u.kprobe_multi
                out["kprobe_multi"] = self._fields(km, ("flags", "cnt", "syms", "addrs", "cookies"))
                if km.syms:
                    ptrs = ffi.cast("uint64_t *", km.syms)
                    out["kprobe_multi"]["sym_names"] = [ffi.string(ffi.cast("char *", ptrs[i])).decode()
                                                        for i in range(km.cnt)]
                if km.cookies:
                    out["kprobe_multi"]["cookie_values"] = list(ffi.cast("uint64_t *", km.cookies)[0:km.cnt])
            if at == AttachType.TRACE_UPROBE_MULTI:
                um = u.uprobe_multi
                out["uprobe_multi"] = self._fields(um, ("cnt", "flags", "pid", "path_fd"))
                out["uprobe_multi"]["path_str"] = ffi.string(ffi.cast("char *", um.path)).decode()
                out["uprobe_multi"]["offset_values"] = list(ffi.cast("uint64_t *", um.offsets)[0:um.cnt])
            return out
        if cmd == BpfCmd.RAW_TRACEPOINT_OPEN:
            a = attr.raw_tracepoint
            return {"name": ffi.string(ffi.cast("char *", a.name)).decode() if a.name else None,
                    "prog_fd": a.prog_fd, "cookie": a.cookie}
        if cmd in (BpfCmd.PROG_ATTACH, BpfCmd.PROG_DETACH):
            return self._fields(attr.prog_attach, ("target_fd", "attach_bpf_fd", "attach_type", "attach_flags"))
        return {}

    def _perf(self, attr: Any, pid: Any, cpu: Any, group: Any, flags: Any) -> Dict[str, Any]:
        a = ffi.cast("struct perf_event_attr *", attr)
        out = self._fields(a, ("type", "size", "config", "sample_period", "sample_type", "wakeup_events", "flags",
                               "config1", "config2"))
        out.update(pid=int(pid), cpu=int(cpu), group_fd=int(group), open_flags=int(flags))
        if a.config1 and a.type >= 6:  # dynamic PMU: config1 points to the symbol or the path
            out["config1_str"] = ffi.string(ffi.cast("char *", a.config1)).decode()
        return out

    def named(self, name: str) -> List[Dict[str, Any]]:
        return [rec for n, rec in self.calls if n == name]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[FakeKernel]:
    k = FakeKernel()
    monkeypatch.setattr(bpf, "libc", k)
    monkeypatch.setattr(perf, "libc", k)
    # a kernel with both dynamic PMUs (types 6 and 7) and the retprobe bit in config:0
    src = tmp_path / "event_source"
    for name, ptype in (("kprobe", 6), ("uprobe", 7)):
        (src / name / "format").mkdir(parents=True)
        (src / name / "type").write_text(f"{ptype}\n")
        (src / name / "format" / "retprobe").write_text("config:0\n")
    (src / "uprobe" / "format" / "ref_ctr_offset").write_text("config:32-63\n")
    monkeypatch.setattr(probe_events, "EVENT_SOURCE", str(src))
    probe_events.clear_cache()
    yield k
    probe_events.clear_cache()
    for fd in k.opened:
        try:
            os.close(fd)
        except OSError:
            pass


CLOEXEC = perf.PERF_FLAG_FD_CLOEXEC


def test_kprobe_through_the_pmu(fake: FakeKernel) -> None:
    with kprobe.attach_kprobe(PROG_FD, "vfs_read", offset=0x10, cookie=7) as link:
        assert (link.kind, link.via, link.target) == ("kprobe", "bpf_link", "vfs_read+16")
    (pe,) = fake.named("perf_event_open")
    assert pe == {"type": 6, "size": 136, "config": 0, "sample_period": 0, "sample_type": 0, "wakeup_events": 0,
                  "flags": 0, "config1": pe["config1"], "config2": 0x10, "config1_str": "vfs_read",
                  "pid": -1, "cpu": 0, "group_fd": -1, "open_flags": CLOEXEC}
    (lc,) = fake.named("BPF_LINK_CREATE")
    assert (lc["prog_fd"], lc["attach_type"], lc["flags"], lc["perf_event_bpf_cookie"]) == (
        PROG_FD, AttachType.PERF_EVENT, 0, 7)
    assert lc["target_fd"] == fake.opened[0]


def test_kretprobe_sets_the_retprobe_bit_and_pid(fake: FakeKernel) -> None:
    kprobe.attach_kretprobe(PROG_FD, "do_sys_openat2", pid=4321).close()
    (pe,) = fake.named("perf_event_open")
    assert (pe["type"], pe["config"], pe["config1_str"], pe["config2"], pe["pid"], pe["cpu"]) == (
        6, 1, "do_sys_openat2", 0, 4321, -1)


def test_syscall_prefix_retry(fake: FakeKernel) -> None:
    fake.fail["perf_event_open"] = 2  # ENOENT for the bare name...
    calls = fake.calls

    def syscall(nr: Any, *args: Any) -> int:
        if int(nr) == bpf.SYS_PERF_EVENT_OPEN and len(fake.named("perf_event_open")) == 1:
            fake.fail.pop("perf_event_open", None)  # ...then the prefixed one works
        return FakeKernel.syscall(fake, nr, *args)

    fake.syscall = syscall
    with kprobe.attach_kprobe(PROG_FD, "sys_openat") as link:
        assert link.target == f"{kprobe.syscall_prefix()}sys_openat"
    names = [rec["config1_str"] for n, rec in calls if n == "perf_event_open"]
    assert names == ["sys_openat", f"{kprobe.syscall_prefix()}sys_openat"]
    kprobe.attach_ksyscall(PROG_FD, "openat").close()
    assert fake.named("perf_event_open")[-1]["config1_str"] == f"{kprobe.syscall_prefix()}sys_openat"


def test_kprobe_through_tracefs(fake: FakeKernel, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No kprobe PMU: a p:ebpf_<pid>_<hex>/NAME line, the event opened as a tracepoint, removed on close."""
    monkeypatch.setattr(probe_events, "EVENT_SOURCE", str(tmp_path / "none"))
    probe_events.clear_cache()
    trace = tmp_path / "tracing"
    trace.mkdir()
    (trace / "kprobe_events").write_text("")
    monkeypatch.setattr(probe_events.tracefs, "tracefs_path", lambda: str(trace))
    written: List[str] = []

    def write(path: str, line: str) -> None:
        written.append(line)
        if not line.startswith("-:"):
            group_name = line.split()[0].split(":", 1)[1]
            (trace / "events" / group_name).mkdir(parents=True)
            (trace / "events" / group_name / "id").write_text("777\n")

    monkeypatch.setattr(probe_events, "_write", write)
    before = cleanup.pending()
    link = kprobe.attach_kretprobe(PROG_FD, "vfs_read", maxactive=0)
    assert link.via == "bpf_link+tracefs" and cleanup.pending() > before
    group = probe_events.group_name()
    assert group.startswith(f"ebpf_{os.getpid()}_") and len(group) == len(f"ebpf_{os.getpid()}_") + 8
    assert written[0].startswith(f"r:{group}/rk_vfs_read_") and written[0].endswith(" vfs_read")
    (pe,) = fake.named("perf_event_open")
    assert (pe["type"], pe["config"], pe["sample_period"], pe["sample_type"], pe["pid"], pe["cpu"]) == (
        perf.PerfType.TRACEPOINT, 777, 1, perf.PERF_SAMPLE_RAW, -1, 0)
    link.close()
    assert written[-1] == "-:" + written[0].split()[0].split(":", 1)[1]
    assert cleanup.pending() == before


def test_kprobe_missing_everywhere_names_config_kprobes(fake: FakeKernel, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Any) -> None:
    monkeypatch.setattr(probe_events, "EVENT_SOURCE", str(tmp_path / "none"))
    probe_events.clear_cache()
    monkeypatch.setattr(probe_events, "events_file", lambda kind: None)
    from ebpf.attach.link import HookUnavailable

    with pytest.raises(HookUnavailable, match=r"cannot attach kprobe vfs_read: this kernel has no kprobes "
                                              r"\(CONFIG_KPROBES is off"):
        kprobe.attach_kprobe(PROG_FD, "vfs_read")
    assert fake.calls == []


def test_kprobe_multi_attr(fake: FakeKernel) -> None:
    with kprobe.attach_kprobe_multi(PROG_FD, ["vfs_read", "vfs_write"], cookies=[1, 2], retprobe=True) as link:
        assert link.kind == "kretprobe.multi"
    (lc,) = fake.named("BPF_LINK_CREATE")
    assert (lc["prog_fd"], lc["target_fd"], lc["attach_type"], lc["flags"]) == (
        PROG_FD, 0, AttachType.TRACE_KPROBE_MULTI, 0)
    km = lc["kprobe_multi"]
    assert (km["flags"], km["cnt"], km["addrs"], km["sym_names"], km["cookie_values"]) == (
        1, 2, 0, ["vfs_read", "vfs_write"], [1, 2])


def test_kprobe_multi_eopnotsupp_message(fake: FakeKernel) -> None:
    from ebpf.attach.link import HookUnavailable

    fake.fail["BPF_LINK_CREATE"] = 95
    with pytest.raises(HookUnavailable, match="no kprobe.multi links"):
        kprobe.attach_kprobe_multi(PROG_FD, ["vfs_read"])


@pytest.mark.parametrize("fn,attach_type", [
    (tracing.attach_fentry, AttachType.TRACE_FENTRY), (tracing.attach_fexit, AttachType.TRACE_FEXIT),
    (tracing.attach_fmod_ret, AttachType.MODIFY_RETURN), (tracing.attach_lsm, AttachType.LSM_MAC),
    (tracing.attach_tp_btf, AttachType.TRACE_RAW_TP),
])
def test_tracing_links(fake: FakeKernel, fn: Any, attach_type: AttachType) -> None:
    with fn(PROG_FD, "target", cookie=0) as link:
        assert link.via == "bpf_link"
    (lc,) = fake.named("BPF_LINK_CREATE")
    assert (lc["prog_fd"], lc["target_fd"], lc["attach_type"], lc["flags"], lc["tracing"]) == (
        PROG_FD, 0, attach_type, 0, {"target_btf_id": 0, "cookie": 0})


def test_tracing_cookie_and_raw_tracepoint_fallback(fake: FakeKernel) -> None:
    tracing.attach_fentry(PROG_FD, "vfs_read", cookie=99).close()
    assert fake.named("BPF_LINK_CREATE")[0]["tracing"] == {"target_btf_id": 0, "cookie": 99}
    fake.fail["BPF_LINK_CREATE"] = 22  # a kernel without tracing links
    with tracing.attach_fexit(PROG_FD, "vfs_read") as link:
        assert link.via == "raw_tracepoint_open"
    assert fake.named("BPF_RAW_TRACEPOINT_OPEN") == [{"name": None, "prog_fd": PROG_FD, "cookie": 0}]


def test_trampoline_eperm_is_worded(fake: FakeKernel) -> None:
    from ebpf.attach.link import HookUnavailable

    fake.fail["BPF_LINK_CREATE"] = 1
    with pytest.raises(HookUnavailable, match="refuses BPF trampolines"):
        tracing.attach_fentry(PROG_FD, "vfs_read")


def test_uprobe_pmu_attr_with_ref_ctr(fake: FakeKernel) -> None:
    with uprobe.attach_uprobe(PROG_FD, "/bin/sh", None, offset=0x1234, pid=99, ref_ctr_offset=0x3030,
                              cookie=3) as link:
        assert link.kind == "uprobe"
    (pe,) = fake.named("perf_event_open")
    path = os.path.realpath("/bin/sh")
    assert (pe["type"], pe["config"], pe["config1_str"], pe["config2"], pe["pid"], pe["cpu"]) == (
        7, 0x3030 << 32, path, 0x1234, 99, -1)
    assert fake.named("BPF_LINK_CREATE")[0]["perf_event_bpf_cookie"] == 3
    uprobe.attach_uretprobe(PROG_FD, "/bin/sh", None, offset=0x10).close()
    assert fake.named("perf_event_open")[-1]["config"] == 1


def test_uprobe_multi_attr(fake: FakeKernel) -> None:
    uprobe.attach_uprobe_multi(PROG_FD, "/bin/sh", offsets=[0x10, 0x20], pid=5, retprobe=True).close()
    (lc,) = fake.named("BPF_LINK_CREATE")
    assert lc["attach_type"] == AttachType.TRACE_UPROBE_MULTI
    assert lc["uprobe_multi"] == {"cnt": 2, "flags": 1, "pid": 5, "path_fd": 0,
                                  "path_str": os.path.realpath("/bin/sh"), "offset_values": [0x10, 0x20]}


def test_perf_event_sampling_attr(fake: FakeKernel) -> None:
    with attach_perf_event(PROG_FD, "cpu-clock", sample_freq=49, cpus=[0, 1]) as link:
        assert len(link) == 2
    opens = fake.named("perf_event_open")
    assert [(p["type"], p["config"], p["sample_period"], p["flags"], p["pid"], p["cpu"]) for p in opens] == [
        (perf.PerfType.SOFTWARE, 0, 49, perf.PerfFlag.FREQ, -1, 0),
        (perf.PerfType.SOFTWARE, 0, 49, perf.PerfFlag.FREQ, -1, 1)]
    attach_perf_event(PROG_FD, "page-faults", sample_period=100, pid=7).close()
    p = fake.named("perf_event_open")[-1]
    assert (p["config"], p["sample_period"], p["flags"], p["pid"], p["cpu"]) == (2, 100, 0, 7, -1)


def test_xdp_tcx_cgroup_attrs(fake: FakeKernel) -> None:
    from ebpf.attach.cgroup import attach_cgroup
    from ebpf.attach.tc import attach_tc
    from ebpf.attach.xdp import attach_xdp

    attach_xdp(PROG_FD, 1, mode="skb").close()
    attach_tc(PROG_FD, 1, "egress").close()
    attach_cgroup(PROG_FD, "/", AttachType.CGROUP_INET_EGRESS).close()
    xdp, tcx, cg = fake.named("BPF_LINK_CREATE")
    assert (xdp["target_fd"], xdp["attach_type"], xdp["flags"]) == (1, AttachType.XDP, 2)
    assert (tcx["target_fd"], tcx["attach_type"], tcx["tcx"]) == (
        1, AttachType.TCX_EGRESS, {"relative_fd": 0, "expected_revision": 0})
    assert (cg["attach_type"], cg["flags"]) == (AttachType.CGROUP_INET_EGRESS, 0)


def test_cgroup_prog_attach_fallback(fake: FakeKernel) -> None:
    from ebpf.attach.cgroup import BPF_F_ALLOW_MULTI, attach_cgroup

    fake.fail["BPF_LINK_CREATE"] = 22
    before = cleanup.pending()
    prog_fd = os.open(os.devnull, os.O_RDONLY)  # the detach keeps a dup of the program's fd
    try:
        link = attach_cgroup(prog_fd, "/", "cgroup_inet_ingress")
        assert link.via == "prog_attach" and cleanup.pending() == before + 1
        (pa,) = fake.named("BPF_PROG_ATTACH")
        assert (pa["attach_bpf_fd"], pa["attach_type"], pa["attach_flags"]) == (
            prog_fd, AttachType.CGROUP_INET_INGRESS, BPF_F_ALLOW_MULTI)
        link.close()
        assert cleanup.pending() == before
        assert fake.named("BPF_PROG_DETACH")[0]["attach_type"] == AttachType.CGROUP_INET_INGRESS
    finally:
        os.close(prog_fd)
