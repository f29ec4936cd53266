"""Maps: specs (pure data) and live maps (kernel objects behind an fd), with dict-like access
and the ring buffer reader.

Names are resolved lazily so that ``import ebpf.maps`` costs nothing until a name is used::

    from ebpf.maps import MapSpec
    with MapSpec("counts", "hash", key="u32", value="u64", max_entries=1024).create() as counts:
        counts[1] = 10
        print(counts.items())
"""

from __future__ import annotations

from typing import Dict

from ebpf.lazy import lazy_exports

_LAZY: Dict[str, str] = {
    "MapSpec": "ebpf.maps.spec",
    "ResolvedSpec": "ebpf.maps.spec",
    "map_type_of": "ebpf.maps.spec",
    "Map": "ebpf.maps.live",
    "MapInfo": "ebpf.maps.live",
    "map_info": "ebpf.maps.live",
    "KeyValueMap": "ebpf.maps.keyvalue",
    "HashMap": "ebpf.maps.hashmap",
    "LruHashMap": "ebpf.maps.hashmap",
    "ArrayMap": "ebpf.maps.array",
    "PerCpuHashMap": "ebpf.maps.percpu",
    "PerCpuArrayMap": "ebpf.maps.percpu",
    "LruPerCpuHashMap": "ebpf.maps.percpu",
    "PerCpuCodec": "ebpf.maps.percpu",
    "LpmTrieMap": "ebpf.maps.lpm",
    "LpmKey": "ebpf.maps.lpmkey",
    "lpm_key": "ebpf.maps.lpmkey",
    "LpmKeyCodec": "ebpf.maps.lpmkey",
    "StackTraceMap": "ebpf.maps.stacktrace",
    "QueueMap": "ebpf.maps.queue",
    "StackMap": "ebpf.maps.queue",
    "BloomFilterMap": "ebpf.maps.queue",
    "ProgArray": "ebpf.maps.fdarray",
    "PerfEventArray": "ebpf.maps.fdarray",
    "CgroupArray": "ebpf.maps.fdarray",
    "ArrayOfMaps": "ebpf.maps.fdarray",
    "HashOfMaps": "ebpf.maps.fdarray",
    "RingBufMap": "ebpf.maps.ringbuf",
    "RingBufReader": "ebpf.maps.ringbuf",
    "PerfBuffer": "ebpf.maps.perfbuf",
    "EventPoller": "ebpf.maps.perfbuf",
    "Codec": "ebpf.maps.codec",
    "IntCodec": "ebpf.maps.codec",
    "BytesCodec": "ebpf.maps.codec",
    "CharArrayCodec": "ebpf.maps.codec",
    "ArrayCodec": "ebpf.maps.codec",
    "StructCodec": "ebpf.maps.codec",
    "codec_for": "ebpf.maps.codec",
    "possible_cpus": "ebpf.maps.cpus",
    "num_possible_cpus": "ebpf.maps.cpus",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
