"""Block device names for the disk tools: kernel ``dev_t`` <-> ``vda``.

The kernel encodes a ``dev_t`` as ``major << 20 | minor`` (``MKDEV``); that is what block
tracepoints report and what a program builds from ``gendisk->major``/``first_minor``. Names come
from ``/proc/diskstats`` (what BCC's biolatency reads), a disk filter from ``/sys/class/block``
(then ``/dev``) so that it works without device nodes too.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

MINORBITS = 20
MINORMASK = (1 << MINORBITS) - 1


def mkdev(major: int, minor: int) -> int:
    """The kernel's ``MKDEV(major, minor)``."""
    return (major << MINORBITS) | minor


def split_dev(dev: int) -> tuple:
    """(major, minor) of a kernel ``dev_t``."""
    return dev >> MINORBITS, dev & MINORMASK


def disk_names(path: str = "/proc/diskstats") -> Dict[int, str]:
    """Kernel ``dev_t`` -> device name, for every block device the kernel lists."""
    names: Dict[int, str] = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
                    names[mkdev(int(parts[0]), int(parts[1]))] = parts[2]
    except OSError:
        pass
    return names


def dev_of(name: str) -> Optional[int]:
    """The kernel ``dev_t`` of block device ``name`` (``vda``, ``/dev/vda``), or None."""
    bare = os.path.basename(name.rstrip("/")) if name.startswith("/dev/") else name
    if bare and "/" not in bare:
        try:
            with open(f"/sys/class/block/{bare}/dev") as f:
                major, _, minor = f.read().strip().partition(":")
            return mkdev(int(major), int(minor))
        except (OSError, ValueError):
            pass
    path = name if name.startswith("/") else os.path.join("/dev", name)
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat

    if not stat.S_ISBLK(st.st_mode):
        return None
    return mkdev(os.major(st.st_rdev), os.minor(st.st_rdev))


def disk_label(dev: int, names: Dict[int, str]) -> str:
    """BCC's ``disk_print``: the device's name, or ``?`` when unknown."""
    return names.get(dev, "?")
