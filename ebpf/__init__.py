"""ebpf: a pure-Python eBPF toolkit.

Importing the package is cheap on purpose: nothing heavy is loaded until it is used. The
public names below are resolved on first access.
"""

from __future__ import annotations

from ebpf.lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "ProgramSpec": "ebpf.program",
    "Program": "ebpf.program",
    "MapSpec": "ebpf.maps.spec",
    "Map": "ebpf.maps.live",
    "load": "ebpf.collection",
    "load_program": "ebpf.loader",
    "CollectionSpec": "ebpf.collection",
    "Collection": "ebpf.collection",
    "GlobalSection": "ebpf.globals",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
