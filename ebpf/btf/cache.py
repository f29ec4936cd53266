"""An on-disk cache of the kernel BTF's index, keyed by the blob's identity.

Measured on kernel 6.18 (126,610 types): the indexing pass costs ~18 ms and a name lookup by
searching ~2 ms, while reading back a cached index plus a hashed name index costs well under
a millisecond and makes lookups ~10 us. The running kernel's BTF does not change until the
next boot, so the first process after a boot saves the index and the hashed names when it
exits (building the hashes costs ~70 ms, paid once and not on the way to being ready) and
every later one loads them.

The cache file holds the record offsets, the name offsets and the sorted name hashes as raw
native arrays behind a small header, sealed with a CRC-32 of the whole (~0.5 ms for vmlinux's
1.6 MB: a flipped bit in an offset would decode a type from the wrong record). It is keyed by
the blob's size, CRCs of its first and last 4 KiB and its mtime (the boot id for sysfs files),
and checked against the blob when loaded (counts, the last record ending the type section,
sampled records); anything that does not fit is ignored and rebuilt. Files live under
``btf/`` of the cache root and are read, written and trusted (owner, modes, no FIFOs or
symbolic links) by :mod:`ebpf.cache_files`: a planted index would make types decode differently.
"""

from __future__ import annotations

import atexit
import mmap
import os
import struct
import sys
import zlib
from typing import List, Optional, Sequence, Tuple

from ebpf import cache_files
from ebpf.btf.errors import BTFError
from ebpf.btf.files import read_blob
from ebpf.btf.header import Blob, parse_header
from ebpf.btf.index import record_words
from ebpf.btf.spec import BTF

_MAGIC = b"EBPFBTF2"
SUBDIR = "btf"
# inside the seal: byte order of the arrays, blob size, type count, hash count, padding (to 8)
_HEADER = struct.Struct("=IQIII")
_SAMPLES = 64


def cache_dir() -> Optional[str]:
    """The directory for BTF cache files, or None when caching is switched off."""
    return cache_files.cache_dir(SUBDIR)


def blob_key(path: str, data: Blob, stat: os.stat_result) -> str:
    """What identifies a blob cheaply: its size, CRCs of both ends, and when it was made.

    For a file that is the mtime; sysfs files get a new mtime whenever the kernel recreates
    their inode, but the kernel's BTF cannot change while it runs, so there the boot id
    stands in for it.
    """
    head = zlib.crc32(data[:4096])
    tail = zlib.crc32(data[-4096:])
    when = f"{stat.st_mtime_ns:x}"
    if os.path.realpath(path).startswith("/sys/"):
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                when = f.read().strip().replace("-", "")
        except OSError:
            pass
    return f"{len(data):x}-{when}-{head:08x}{tail:08x}"


def load_cached(path: str, defer: bool = True) -> BTF:
    """Parse the (base) BTF at *path* using, or else creating, its cached index.

    On a miss the index is saved when the process exits (*defer*, so that the ~70 ms of
    building the hashed names never delays a tool's start) or right away.
    """
    data = read_blob(path)
    if cache_files.cache_root() is None:
        return BTF(data, name=path)
    try:
        stat = os.stat(path)
    except OSError as e:
        raise BTFError(f"cannot stat {path}: {e.strerror}") from None
    prefix = os.path.basename(path) + "-"
    cache_file = prefix + blob_key(path, data, stat) + ".idx"
    cached = _read(cache_file, data)
    if cached is not None:
        offsets, names, hashes = cached
        try:
            return BTF(data, name=path, index=(offsets, names), name_hashes=hashes)
        except BTFError:
            pass  # the cache lied; parse from scratch below
    btf = BTF(data, name=path)
    if defer:
        if not _pending:
            atexit.register(_save_pending, os.getpid())
        _pending.append((cache_file, btf, prefix, len(data)))
    else:
        _save(cache_file, btf, prefix, len(data))
    return btf


_pending: List[Tuple[str, BTF, str, int]] = []


def _save_pending(pid: int) -> None:
    if os.getpid() != pid:  # a forked child leaves it to its parent
        return
    for job in _pending:
        try:
            _save(*job)
        except Exception:  # noqa: BLE001 - a cache is never worth a traceback at exit
            pass
    _pending.clear()


def _save(cache_file: str, btf: BTF, prefix: str, blob_size: int) -> None:
    if btf.name_hashes is None:
        btf.build_name_hashes()
    _write(cache_file, btf, prefix, blob_size)


def _read(cache_file: str, data: Blob) -> Optional[Tuple[Sequence[int], Sequence[int], Sequence[int]]]:
    fd = cache_files.open_file(SUBDIR, cache_file)
    if fd is None:
        return None
    try:
        raw = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    view = cache_files.unseal(memoryview(raw), _MAGIC)
    if view is None or view.nbytes < _HEADER.size:
        return None
    order, size, count, nhashes, _ = _HEADER.unpack_from(view, 0)
    if order != _order_mark() or size != len(data):
        return None
    if view.nbytes != _HEADER.size + 8 * count + 8 * nhashes:
        return None
    start = _HEADER.size
    offsets = view[start : start + 4 * count].cast("I")
    names = view[start + 4 * count : start + 8 * count].cast("I")
    hashes = view[start + 8 * count :].cast("Q")
    if not _plausible(offsets, names, data):
        return None
    return offsets, names, hashes


def _plausible(offsets: Sequence[int], names: Sequence[int], data: Blob) -> bool:
    """Whether a cached index fits the blob: checked on sampled records, not all of them."""
    try:
        words = BTF._type_words(data, parse_header(data))
        count = len(offsets)
        if count == 0 or offsets[0] != 0:
            return False
        step = max(1, count // _SAMPLES)
        for i in list(range(0, count, step)) + [count - 1]:
            pos = offsets[i]
            end = offsets[i + 1] if i + 1 < count else len(words)
            if words[pos] != names[i] or pos + record_words(words[pos + 1]) != end:
                return False
        return True
    except (BTFError, IndexError, ValueError):
        return False


def _order_mark() -> int:
    return 1 if sys.byteorder == "little" else 2


def _write(cache_file: str, btf: BTF, prefix: str, blob_size: int) -> None:
    offsets, names = btf.index
    hashes = btf.name_hashes
    nhashes = len(hashes) if hashes is not None else 0
    parts: List[cache_files.Buffer] = [_HEADER.pack(_order_mark(), blob_size, len(offsets), nhashes, 0)]
    parts += [memoryview(part).cast("B") for part in (offsets, names, hashes) if part is not None]  # type: ignore[arg-type]
    if cache_files.write(SUBDIR, cache_file, cache_files.seal(_MAGIC, parts)):
        # indexes of kernels booted before
        cache_files.remove(SUBDIR, [name for name, _ in cache_files.entries(SUBDIR)
                                    if name.startswith(prefix) and name.endswith(".idx") and name != cache_file])
