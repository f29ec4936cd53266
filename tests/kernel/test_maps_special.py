"""Map kinds without the plain dict API, and what every map can do: queue/stack, fd arrays,
stack trace maps, map-in-map, pinning, opening by id, freezing, closing."""

from __future__ import annotations

import ctypes
import os
import struct
import tempfile
from typing import Iterator

import pytest

from ebpf.errors import CodecError, EbpfError, MapError, MapKeyError, SyscallError
from ebpf.maps import Map, MapSpec
from ebpf.maps.array import ArrayMap
from ebpf.maps.fdarray import ArrayOfMaps, HashOfMaps, PerfEventArray, ProgArray
from ebpf.maps.hashmap import HashMap
from ebpf.maps.queue import QueueMap, StackMap
from ebpf.maps.ringbuf import RingBufMap
from ebpf.maps.stacktrace import StackTraceMap
from ebpf.sys import bpf
from ebpf.sys.fd import FD
from ebpf.sys.perf import PerfSwConfig, PerfType, perf_event_open
from ebpf.uapi import ProgType

BPFFS = "/sys/fs/bpf"


def _is_bpffs(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split(" ")[4] == path and right.split(" ", 1)[0] == "bpf":
                return True
    return False


@pytest.fixture
def pin_dir() -> Iterator[str]:
    """A fresh directory inside /sys/fs/bpf (mounting bpffs there if nothing is), removed after."""
    if not _is_bpffs(BPFFS):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"bpf", BPFFS.encode(), b"bpf", 0, None) != 0:
            raise OSError(ctypes.get_errno(), f"cannot mount bpffs at {BPFFS}")
    path = tempfile.mkdtemp(prefix="ebpf-test-maps-", dir=BPFFS)
    try:
        yield path
    finally:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def _trivial_prog() -> FD:
    """A socket filter that returns 0: something to put in a prog array."""
    fd, _ = bpf.prog_load(ProgType.SOCKET_FILTER, _insn(0xB7, 0) + _insn(0x95), "GPL", name="t_ret0")
    return FD(fd)


def test_queue_and_stack_order() -> None:
    with MapSpec("t_queue", "queue", value="u32", max_entries=3).create() as q:
        assert isinstance(q, QueueMap) and q.key_size == 0
        for i in (1, 2, 3):
            q.push(i)
        with pytest.raises(MapError, match="full"):
            q.push(4)
        q.push(4, overwrite=True)  # drops the oldest
        assert q.peek() == 2
        assert q.pop() == 2 and q.drain() == [3, 4]
        with pytest.raises(MapKeyError, match="empty"):
            q.pop()
        assert q.pop(None) is None and q.peek("none") == "none"
    with MapSpec("t_stack", "stack", value=[("a", "u32"), ("b", "u16")], max_entries=4).create() as s:
        assert isinstance(s, StackMap)
        for i in range(3):
            s.push((i, i * 2))
        assert s.peek() == (2, 4)
        assert [tuple(v) for v in s.drain()] == [(2, 4), (1, 2), (0, 0)]


def test_stack_trace_map_created() -> None:
    with MapSpec("t_stacks", "stack_trace", max_entries=128).create() as st:
        assert isinstance(st, StackTraceMap)
        assert (st.key_size, st.value_size) == (4, 127 * 8)
        assert st.keys() == [] and len(st) == 0
        with pytest.raises(MapKeyError):
            st.stack(1)


def test_perf_event_array_map_side() -> None:
    with MapSpec("t_perfarr", "perf_event_array").create() as pa:
        assert isinstance(pa, PerfEventArray) and pa.max_entries == len(pa) >= 1
        with FD(perf_event_open(PerfType.SOFTWARE, PerfSwConfig.BPF_OUTPUT, pid=-1, cpu=0)) as ev:
            pa[0] = ev
            with pytest.raises(MapError, match="cannot be read"):
                pa[0]
            del pa[0]
            with pytest.raises(MapKeyError):
                del pa[0]


def test_prog_array_accepts_a_program() -> None:
    class Program:  # stands in for the later Program class: anything with .fd
        def __init__(self, fd: FD):
            self.fd = int(fd)

    with MapSpec("t_progs", "prog_array", max_entries=4).create() as pa, _trivial_prog() as prog:
        assert isinstance(pa, ProgArray)
        pa[0] = Program(prog)
        pa[2] = prog  # an FD works too
        prog_id = pa[0]
        assert prog_id > 0 and pa[2] == prog_id
        assert len(pa) == 2 and pa.get(1) is None
        del pa[0]
        assert pa.get(0) is None
        pa.clear()
        assert len(pa) == 0
        with pytest.raises(MapError, match="not a file descriptor"):
            pa[1] = "nope"


def test_map_in_map() -> None:
    inner = MapSpec("t_inner", "array", value="u32", max_entries=2)
    with MapSpec("t_outer", "array_of_maps", max_entries=2, inner=inner).create() as outer, \
            inner.create() as a:
        assert isinstance(outer, ArrayOfMaps)
        a[1] = 42
        outer[0] = a
        assert outer[0] == a.id
        with outer.get_map(0, value_type="u32") as again:
            assert isinstance(again, ArrayMap) and again[1] == 42
    with MapSpec("t_hom", "hash_of_maps", key="u64", max_entries=4, inner=inner).create() as h, \
            inner.create() as a:
        assert isinstance(h, HashOfMaps)
        h[7] = a
        assert h.items() == [(7, a.id)]


def test_from_id_picks_the_kind() -> None:
    with MapSpec("t_byid", "hash", key="u32", value="u32", max_entries=4).create() as m:
        m[1] = 2
        with Map.from_id(m.id) as raw:
            assert isinstance(raw, HashMap) and raw.id == m.id
            assert raw.items() == [(struct.pack("=I", 1), struct.pack("=I", 2))]
        with HashMap.from_id(m.id, key="u32", value="u32") as typed:
            assert typed[1] == 2
        with pytest.raises(MapError, match="not a RingBufMap"):
            RingBufMap.from_id(m.id)
        with pytest.raises(CodecError, match="no_such"):
            Map.from_id(m.id, key="no_such")  # and the fd it opened is closed again
        with pytest.raises(SyscallError):
            Map.from_id(0x7FFFFFF0)


def test_pin_unpin_from_pin(pin_dir: str) -> None:
    path = os.path.join(pin_dir, "counts")
    with MapSpec("t_pinned", "hash", key="u32", value="u64", max_entries=4).create() as m:
        m[1] = 11
        m.pin(path)
        assert m.pin_path == path and os.path.exists(path)
        with Map.from_pin(path, key="u32", value="u64") as again:
            assert isinstance(again, HashMap) and again.id == m.id and again[1] == 11
            again[2] = 22
        assert m[2] == 22
        m.unpin()
        assert not os.path.exists(path) and m.pin_path is None
        with pytest.raises(MapError, match="not pinned"):
            m.unpin()
    with pytest.raises(SyscallError, match="no pinned object"):
        Map.from_pin(path)


def test_spec_pin_path_reuses_the_pinned_map(pin_dir: str) -> None:
    path = os.path.join(pin_dir, "shared")
    spec = MapSpec("t_shared", "array", value="u32", max_entries=4, pin_path=path)
    with spec.create() as first:
        first[0] = 5
        with spec.create() as second:
            assert second.id == first.id and second[0] == 5 and second.pin_path == path
        with pytest.raises(MapError, match="does not match the spec"):
            spec.replace(max_entries=8).create()
    assert os.path.exists(path)  # a pin outlives the fds; the fixture removes it


def test_freeze_then_write_fails_clearly() -> None:
    with MapSpec("t_frozen", "array", value="u32", max_entries=2).create() as a:
        a[0] = 7
        a.freeze()
        with pytest.raises(MapError, match="frozen"):
            a[1] = 1
        assert a[0] == 7  # still readable


def test_closed_map_refuses_use() -> None:
    m = MapSpec("t_closed", "hash", key="u32", value="u32", max_entries=2).create()
    m.close()
    assert m.closed
    m.close()  # idempotent
    with pytest.raises(EbpfError):
        m.fileno()
    with pytest.raises(SyscallError, match="EBADF"):
        m[1] = 1  # the cached commands now point at no fd, never at a reused number
    assert "closed" in repr(m)


def test_create_errors_carry_the_spec() -> None:
    with pytest.raises(SyscallError, match="t_toobig"):
        MapSpec("t_toobig", "array", value=1 << 20, max_entries=1 << 30).create()


def test_info() -> None:
    with MapSpec("t_info", "lru_hash", key="u64", value="u16", max_entries=9).create() as m:
        i = m.info()
        assert (i.key_size, i.value_size, i.max_entries, i.name, i.id) == (8, 2, 9, "t_info", m.id)
        assert m.fileno() == m.fd
