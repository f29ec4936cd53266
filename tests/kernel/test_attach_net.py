"""XDP, tc (tcx links and the classic clsact + cls_bpf path) and cgroup programs, counting real
packets: UDP between two network namespaces joined by a veth pair the test creates, and from a
process moved into a cgroup v2 the test creates.

Addresses are link-local (169.254.77.0/24) inside our own namespaces: nothing leaves the veth pair.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import uuid
from typing import Iterator, Tuple

import pytest

from ebpf import asm as A
from ebpf.attach import cleanup
from ebpf.attach.cgroup import attach_cgroup, cgroup2_mount
from ebpf.attach.tc import attach_tc
from ebpf.attach.xdp import attach_xdp
from ebpf.loader import load_program
from ebpf.maps import MapSpec
from ebpf.program import ProgramSpec
from ebpf.uapi import AttachType

CLONE_NEWNET = 0x40000000
ADDR_A, ADDR_B = "169.254.77.1", "169.254.77.2"
PORT = 40999
DEV_A, DEV_B = "veth_a", "veth_b"
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block in network namespace ``name`` (this thread only), then come back."""
    with open("/proc/self/ns/net") as home, open(f"/var/run/netns/{name}") as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")


@pytest.fixture(scope="module")
def veth() -> Iterator[Tuple[str, str]]:
    """Namespaces A and B joined by a veth pair (veth_a in A, veth_b in B), with addresses."""
    if shutil.which("ip") is None:
        pytest.fail("iproute2 (ip) is needed for the network tests")
    tag = uuid.uuid4().hex[:6]
    ns_a, ns_b = f"ebpfA{tag}", f"ebpfB{tag}"
    ip("netns", "add", ns_a)
    ip("netns", "add", ns_b)
    try:
        ip("-n", ns_a, "link", "add", "name", DEV_A, "type", "veth", "peer", "name", DEV_B, "netns", ns_b)
        ip("-n", ns_a, "addr", "add", f"{ADDR_A}/24", "dev", DEV_A)
        ip("-n", ns_b, "addr", "add", f"{ADDR_B}/24", "dev", DEV_B)
        ip("-n", ns_a, "link", "set", DEV_A, "up")
        ip("-n", ns_b, "link", "set", DEV_B, "up")
        yield ns_a, ns_b
    finally:
        subprocess.run(["ip", "netns", "del", ns_a], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns_b], capture_output=True)


def send_udp(ns_a: str, ns_b: str, n: int) -> int:
    """Send ``n`` UDP datagrams from A to B and receive them; returns how many arrived."""
    with in_netns(ns_b):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with in_netns(ns_a):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind((ADDR_B, PORT))
        rx.settimeout(2)
        for i in range(n):
            tx.sendto(b"x%d" % i, (ADDR_B, PORT))
        got = 0
        for _ in range(n):
            try:
                rx.recv(64)
                got += 1
            except socket.timeout:
                break
    return got


def udp_counter(name: str, ptype: str, ret: int, **kw: object) -> ProgramSpec:
    """Counts every packet (slot 0) and UDP/IPv4 packets to PORT (slot 1) seen by a packet program.

    ``ret`` is the verdict (XDP_PASS, TC_ACT_OK / TCX_NEXT, 1 = allow for cgroup_skb). The packet
    is read with bpf_skb_load_bytes-free direct access: data/data_end from the context.
    """
    xdp = ptype == "xdp"
    data_off, end_off = (0, 4) if xdp else (76, 80)  # xdp_md / __sk_buff data, data_end
    l3 = 14 if ptype != "cgroup_skb" else 0  # cgroup_skb data starts at the IP header
    insns = [
        A.mov64(A.R6, A.R1),
        A.ld_map_value(A.R1, "count", 0),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.ldx(4, A.R2, A.R6, data_off),
        A.ldx(4, A.R3, A.R6, end_off),
        A.mov64(A.R4, A.R2),
        A.add64(A.R4, l3 + 24),
        A.jgt(A.R4, A.R3, "out"),
        A.ldx(1, A.R5, A.R2, l3 + 9),  # IP protocol
        A.jne(A.R5, 17, "out"),
        A.ldx(2, A.R5, A.R2, l3 + 22),  # UDP destination port (network order)
        A.jne(A.R5, socket.htons(PORT), "out"),
        A.ld_map_value(A.R1, "count", 8),
        A.mov64(A.R2, 1),
        A.atomic_add(8, A.R1, A.R2, 0),
        A.label("out"),
        A.mov64(A.R0, ret),
        A.exit_(),
    ]
    return ProgramSpec(name, ptype, insns, **kw)


def counts() -> object:
    return MapSpec("count", "array", key="u32", value="u64[2]", max_entries=1).create()


def test_xdp_counts_packets_arriving_on_b(veth: Tuple[str, str]) -> None:
    ns_a, ns_b = veth
    with counts() as count, load_program(udp_counter("xdp_udp", "xdp", 2), {"count": count}) as prog:
        with in_netns(ns_b):
            link = attach_xdp(prog, DEV_B)
        with link:
            assert link.kind == "xdp" and link.via == "bpf_link"
            assert send_udp(ns_a, ns_b, 20) == 20
        assert send_udp(ns_a, ns_b, 5) == 5  # detached: not counted
        total, udp = count[0]
    assert udp == 20 and total >= 20


@pytest.mark.parametrize("mode,direction", [("tcx", "ingress"), ("tcx", "egress"), ("cls_bpf", "ingress"),
                                            ("cls_bpf", "egress")])
def test_tc_counts_packets(veth: Tuple[str, str], mode: str, direction: str) -> None:
    ns_a, ns_b = veth
    ns, dev = (ns_b, DEV_B) if direction == "ingress" else (ns_a, DEV_A)
    with counts() as count, load_program(udp_counter("tc_udp", "sched_cls", 0), {"count": count}) as prog:
        with in_netns(ns):
            link = attach_tc(prog, dev, direction, mode=mode)
        with link:
            assert link.kind == ("tcx" if mode == "tcx" else "tc")
            assert send_udp(ns_a, ns_b, 15) == 15
            if mode == "cls_bpf":
                out = subprocess.run(["ip", "netns", "exec", ns, "tc", "filter", "show", "dev", dev, direction],
                                     capture_output=True, text=True).stdout if shutil.which("tc") else "bpf"
                assert "bpf" in out
        assert send_udp(ns_a, ns_b, 5) == 5
        total, udp = count[0]
    assert udp == 15 and total >= 15
    if mode == "cls_bpf" and shutil.which("tc"):  # the qdisc we created is gone again
        out = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", dev], capture_output=True,
                             text=True).stdout
        assert "clsact" not in out


def test_tc_through_program_attach_falls_back_to_cls_bpf(veth: Tuple[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tcx links (as on kernels before 6.6) Program.attach takes the netlink path."""
    from ebpf.attach import tc
    from ebpf.errors import SyscallError

    def no_tcx(*a: object, **k: object) -> int:
        raise SyscallError("BPF_LINK_CREATE", 22, "forced by the test")

    ns_a, ns_b = veth
    spec = udp_counter("tc_fb", "sched_cls", 0, attach_to=f"{DEV_B}:ingress")
    with counts() as count, load_program(spec, {"count": count}) as prog:
        monkeypatch.setattr(tc.bpf, "link_create", no_tcx)
        with in_netns(ns_b):
            link = prog.attach()
        assert link.via == "cls_bpf" and cleanup.pending() >= 1
        with link:
            assert send_udp(ns_a, ns_b, 7) == 7
        assert count[0][1] == 7


CHILD = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"x", ("127.0.0.1", int(sys.argv[2])))
"""


@contextlib.contextmanager
def new_cgroup() -> Iterator[str]:
    root = cgroup2_mount()
    mounted = None
    if root is None:
        mounted = root = f"/tmp/ebpf-cg2-{os.getpid()}"
        os.makedirs(root, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup2", "none", root], check=True)
    path = os.path.join(root, f"ebpf_test_{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        os.rmdir(path)
        if mounted:
            subprocess.run(["umount", mounted])
            os.rmdir(mounted)


def run_in_cgroup(cg: str, n: int) -> None:
    """A child process, moved into ``cg`` before it sends ``n`` UDP datagrams to loopback."""
    r, w = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", f"import os; os.read({r}, 1)\n" + CHILD, str(n), str(PORT)],
                             pass_fds=(r,))
    os.close(r)
    with open(os.path.join(cg, "cgroup.procs"), "w") as f:
        f.write(str(child.pid))
    os.write(w, b"g")
    os.close(w)
    assert child.wait(10) == 0


@pytest.mark.parametrize("legacy", [False, True], ids=["link", "prog_attach"])
def test_cgroup_skb_egress_counts_packets_of_a_process_in_the_cgroup(legacy: bool) -> None:
    spec = udp_counter("cg_egress", "cgroup_skb", 1, attach_type="cgroup_inet_egress")
    with new_cgroup() as cg, counts() as count, load_program(spec, {"count": count}) as prog:
        with attach_cgroup(prog, cg, legacy=legacy) as link:
            assert link.via == ("prog_attach" if legacy else "bpf_link")
            run_in_cgroup(cg, 12)
            for _ in range(3):  # from outside the cgroup: not counted
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"y", ("127.0.0.1", PORT))
        run_in_cgroup(cg, 4)  # detached
        assert count[0][1] == 12


def test_cgroup_attach_type_from_program_attach() -> None:
    spec = udp_counter("cg_egress2", "cgroup_skb", 1, attach_type=AttachType.CGROUP_INET_EGRESS)
    with new_cgroup() as cg, counts() as count, load_program(spec, {"count": count}) as prog:
        with prog.attach(cg) as link:
            assert link.info()["type"].name == "CGROUP"
            run_in_cgroup(cg, 3)
        assert count[0][1] == 3
