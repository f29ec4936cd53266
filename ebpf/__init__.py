"""ebpf: a pure-Python eBPF toolkit.

Importing the package is cheap on purpose: nothing heavy is loaded until it is used. The
public names below are resolved on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ebpf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(list(globals()) + list(_LAZY))
