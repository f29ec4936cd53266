"""Key/value maps on the real kernel: hash, LRU, array, per-CPU, LPM trie, bloom filter.

Every whole-map operation is checked through both paths (batch commands and the get_next_key
fallback), and every test checks that it leaves no BPF fd open behind it.
"""

from __future__ import annotations

import pytest

from ebpf.errors import CodecError, MapError, MapKeyError
from ebpf.maps import MapSpec
from ebpf.maps.array import ArrayMap
from ebpf.maps.batch import lookup_batches
from ebpf.maps.cpus import num_possible_cpus
from ebpf.maps.hashmap import HashMap, LruHashMap
from ebpf.maps.lpm import LpmKey, LpmTrieMap
from ebpf.maps.percpu import LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
from ebpf.uapi import UpdateFlag

NCPU = num_possible_cpus()


@pytest.fixture(params=[True, False], ids=["batch", "per-key"])
def use_batch(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_hash_single_elements() -> None:
    with MapSpec("t_hash", "hash", key="u32", value="u64", max_entries=8).create() as m:
        assert isinstance(m, HashMap)
        m[1] = 10
        m[2] = 2**64 - 1
        assert m[1] == 10 and m[2] == 2**64 - 1
        assert m.get(3) is None and m.get(3, "x") == "x"
        assert 1 in m and 3 not in m
        with pytest.raises(MapKeyError):
            m[3]
        with pytest.raises(KeyError):  # MapKeyError is a KeyError
            del m[3]
        del m[2]
        assert 2 not in m
        assert m.delete(2) is False
        with pytest.raises(CodecError, match="u32"):
            m[-1] = 1
        with pytest.raises(CodecError, match="u64"):
            m[1] = -1
        assert m.pop(1) == 10 and 1 not in m
        assert m.pop(1, None) is None
        with pytest.raises(MapKeyError):
            m.pop(1)


def test_hash_update_flags_and_full() -> None:
    with MapSpec("t_flags", "hash", key="u32", value="u32", max_entries=2).create() as m:
        m.set(1, 1, UpdateFlag.NOEXIST)
        with pytest.raises(MapError, match="already exists"):
            m.set(1, 2, UpdateFlag.NOEXIST)
        with pytest.raises(MapKeyError):
            m.set(5, 2, UpdateFlag.EXIST)
        m.set(1, 3, UpdateFlag.EXIST)
        assert m[1] == 3
        assert m.setdefault(1, 9) == 3 and m.setdefault(2, 9) == 9
        with pytest.raises(MapError, match="full"):
            m[3] = 3


def test_hash_whole_map(use_batch: bool) -> None:
    with MapSpec("t_whole", "hash", key="u32", value="u64", max_entries=4096).create() as m:
        m.use_batch = use_batch
        data = {i: i * 3 for i in range(3000)}
        m.update(data)
        assert m._update_batch_ok is (True if use_batch else None)
        assert len(m) == 3000
        assert dict(m.items()) == data
        assert sorted(m.keys()) == sorted(data)
        assert sorted(m.values()) == sorted(data.values())
        assert sorted(m) == sorted(data)
        assert m._batch_ok is (True if use_batch else None)
        got = dict(m.items_and_clear())
        assert got == data and len(m) == 0
        m.update({1: 1, 2: 2})
        m.clear()
        assert m.items() == []


def test_hash_struct_key_and_value(use_batch: bool) -> None:
    key = [("pid", "u32"), ("comm", "char[16]")]
    value = [("count", "u64"), ("flags", "u8")]
    with MapSpec("t_struct", "hash", key=key, value=value, max_entries=16).create() as m:
        m.use_batch = use_batch
        assert (m.key_size, m.value_size) == (20, 16)
        m[(1, "bash")] = {"count": 5}
        m[{"pid": 2, "comm": b"sh"}] = (7, 1)
        assert m[(1, "bash")].count == 5
        items = sorted(m.items())
        assert [(k.pid, k.comm, v.count, v.flags) for k, v in items] == [(1, b"bash", 5, 0), (2, b"sh", 7, 1)]


def test_iteration_tolerates_deleting_the_current_key() -> None:
    with MapSpec("t_itdel", "hash", key="u32", value="u32", max_entries=512).create() as m:
        m.update({i: i for i in range(300)})
        seen = []
        for k in m:  # get_next_key restarts from the first key once the current one is gone
            seen.append(k)
            del m[k]
        assert sorted(seen) == list(range(300)) and len(m) == 0


def test_iteration_tolerates_concurrent_deletion_of_others() -> None:
    with MapSpec("t_itdel2", "hash", key="u32", value="u32", max_entries=512).create() as m:
        m.use_batch = False
        m.update({i: i for i in range(300)})
        seen = []
        for k in m:
            seen.append(k)
            m.delete((k + 7) % 300)
        assert len(seen) == len(set(seen))
        left = set(m.keys())
        assert left <= set(seen)


def test_batch_grows_when_a_bucket_does_not_fit() -> None:
    with MapSpec("t_enospc", "hash", key="u32", value="u32", max_entries=1024).create() as m:
        m.update({i: i for i in range(1024)})  # full map: many buckets hold 2+ elements
        got = {}
        for keys, values, n in lookup_batches(m.fd, 4, 4, m.max_entries, chunk=1):
            for i in range(n):
                got[m.key_codec.decode(keys[i * 4:i * 4 + 4])] = m.value_codec.decode(values[i * 4:i * 4 + 4])
        assert got == {i: i for i in range(1024)}


def test_lru_evicts_instead_of_failing(use_batch: bool) -> None:
    with MapSpec("t_lru", "lru_hash", key="u32", value="u32", max_entries=64).create() as m:
        assert isinstance(m, LruHashMap)
        m.use_batch = use_batch
        for i in range(1000):
            m[i] = i
        assert 0 < len(m) <= 64
        assert m[999] == 999
        assert 0 not in m
        assert all(k == v for k, v in m.items())


def test_array(use_batch: bool) -> None:
    with MapSpec("t_array", "array", value="u64", max_entries=10).create() as a:
        assert isinstance(a, ArrayMap)
        a.use_batch = use_batch
        assert len(a) == 10 and a.keys() == list(range(10))
        assert a[3] == 0 and 9 in a and 10 not in a
        with pytest.raises(MapKeyError):
            a[10]
        with pytest.raises(MapError, match="out of range"):
            a[10] = 1
        a[3] = 33
        a.update({4: 44, 5: 55})
        assert a.items()[3:6] == [(3, 33), (4, 44), (5, 55)]
        del a[3]  # arrays zero instead of deleting
        assert a[3] == 0
        assert a.pop(4) == 44 and a[4] == 0
        assert a.items_and_clear()[5] == (5, 55)
        assert a.values() == [0] * 10
        a[1] = 1
        a.clear()
        assert a.values() == [0] * 10


def test_percpu_hash(use_batch: bool) -> None:
    with MapSpec("t_pchash", "percpu_hash", key="u32", value="u64", max_entries=32).create() as m:
        assert isinstance(m, PerCpuHashMap)
        m.use_batch = use_batch
        per_cpu = list(range(1, NCPU + 1))
        m[1] = per_cpu
        m[2] = 5  # one value written to every CPU
        assert m[1] == per_cpu and m[2] == [5] * NCPU
        assert m.sum(1) == sum(per_cpu) and m.max(1) == NCPU
        assert m.average(2) == 5.0
        assert dict(m.items()) == {1: per_cpu, 2: [5] * NCPU}
        with pytest.raises(CodecError, match="per-CPU values"):
            m[3] = [1] * (NCPU + 1)
        with pytest.raises(MapKeyError):
            m.sum(9)
        assert dict(m.items_and_clear()) == {1: per_cpu, 2: [5] * NCPU}
        assert len(m) == 0


def test_percpu_array_and_lru_percpu(use_batch: bool) -> None:
    with MapSpec("t_pcarr", "percpu_array", value="u32", max_entries=4).create() as a:
        assert isinstance(a, PerCpuArrayMap)
        a.use_batch = use_batch
        a[0] = list(range(NCPU))
        assert a[0] == list(range(NCPU)) and a[1] == [0] * NCPU
        assert a.items()[0] == (0, list(range(NCPU)))
        a.clear()
        assert a.values() == [[0] * NCPU] * 4
    with MapSpec("t_lrupc", "lru_percpu_hash", key="u32", value=[("a", "u32"), ("b", "u8")],
                 max_entries=16).create() as m:
        assert isinstance(m, LruPerCpuHashMap)
        m.use_batch = use_batch
        m[7] = (1, 2)
        assert [tuple(v) for v in m[7]] == [(1, 2)] * NCPU
        with pytest.raises(MapError, match="numeric"):
            m.sum(7)
        for i in range(100):
            m[i] = (i, 0)
        assert len(m) <= 16


def test_lpm_trie_longest_prefix_match(use_batch: bool) -> None:
    with MapSpec("t_lpm", "lpm_trie", key="ipv4", value="u32", max_entries=16).create() as t:
        assert isinstance(t, LpmTrieMap)
        t.use_batch = use_batch
        t["10.0.0.0/8"] = 8
        t["10.1.0.0/16"] = 16
        t[(24, bytes([10, 1, 2, 0]))] = 24
        assert t["10.1.2.3"] == 24  # a full-length lookup finds the longest stored prefix
        assert t["10.1.3.3"] == 16
        assert t["10.200.0.1"] == 8
        assert t.get("11.0.0.1") is None
        assert sorted(str(k) for k in t.keys()) == ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"]
        del t["10.1.0.0/16"]
        assert t["10.1.3.3"] == 8
        assert LpmKey(8, bytes([10, 0, 0, 0])) in t
        assert t.pop("10.1.2.0/24") == 24  # the trie has no lookup-and-delete: the fallback path
        assert t.get("10.1.2.0/24") == 8 and len(t) == 1  # what is left is the /8
        t.clear()
        assert len(t) == 0
    with MapSpec("t_lpm6", "lpm_trie", key="ipv6", value="u8", max_entries=4).create() as t6:
        t6["2001:db8::/32"] = 1
        assert t6["2001:db8::1"] == 1 and "2001:db9::1" not in t6


def test_bloom_filter() -> None:
    with MapSpec("t_bloom", "bloom_filter", value="u32", max_entries=100).create() as b:
        for i in range(0, 100, 2):
            b.add(i)
        assert all(i in b for i in range(0, 100, 2))
        assert sum(1 for i in range(1000, 1100) if i in b) < 50  # false positives are rare
