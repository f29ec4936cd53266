"""Possible CPUs: how many value slots a per-CPU map has, and which CPU each slot belongs to.

The kernel copies per-CPU values for every *possible* CPU (not just the online ones), in CPU
order, so the number of slots comes from /sys/devices/system/cpu/possible (``0-3,8-11``).
"""

from __future__ import annotations

from typing import List, Optional

POSSIBLE_PATH = "/sys/devices/system/cpu/possible"

_possible: Optional[List[int]] = None


def parse_cpu_list(text: str) -> List[int]:
    """``"0-3,5"`` -> ``[0, 1, 2, 3, 5]`` (the kernel's cpulist format)."""
    cpus: List[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        try:
            lo = int(first)
            hi = int(last) if sep else lo
        except ValueError:
            raise ValueError(f"bad CPU list {text!r}") from None
        if lo < 0 or hi < lo:
            raise ValueError(f"bad CPU range {part!r} in {text!r}")
        cpus.extend(range(lo, hi + 1))
    if not cpus:
        raise ValueError(f"empty CPU list {text!r}")
    return cpus


def possible_cpus() -> List[int]:
    """The possible CPU ids, read once per process."""
    global _possible
    if _possible is None:
        with open(POSSIBLE_PATH) as f:
            _possible = parse_cpu_list(f.read())
    return list(_possible)


def num_possible_cpus() -> int:
    """How many values a per-CPU map returns for one key."""
    if _possible is None:
        possible_cpus()
    assert _possible is not None
    return len(_possible)
