"""Files of the on-disk caches (kernel BTF indexes, compiled programs), safe when root runs the tools.

A cache that somebody else can write is an attack on whoever reads it: a planted BTF index
makes types decode differently and a planted program loads other instructions. So, like
ssh's ``StrictModes``, a cache is used only where nobody else could have put or changed it:

* the cache root (``$EBPF_CACHE_DIR``, else ``$XDG_CACHE_HOME/ebpf``, else ``~/.cache/ebpf``;
  an empty ``EBPF_CACHE_DIR`` switches caching off), every directory below it and every cache
  file are owned by the effective user and not writable by group or others;
* every directory above the root, up to ``/``, is owned by the effective user or root and not
  writable by group or others, unless it has the sticky bit (``/tmp``): there nobody but the
  owner of an entry (checked one level down) can remove or rename it, so a sticky directory
  cannot swap our directory for theirs. ssh refuses ``/tmp`` outright; we accept it because
  the next level down must still be ours, and ``XDG_CACHE_HOME=/tmp/me`` is common in CI;
* the path is walked from ``/`` one directory at a time with ``O_NOFOLLOW`` directory file
  descriptors (``openat``), each ``fstat``-ed, so what is checked is what is used (symbolic
  links in the configured path are resolved once, up front, and the directories they lead
  to are checked like any other);
* files are opened ``O_NOFOLLOW | O_NONBLOCK`` relative to that directory and ``fstat``-ed
  before anything is read: only regular files (a FIFO planted there would block ``open``);
* files are written to a temporary file (``O_EXCL``, mode 0600) in the same directory and
  renamed over the entry; directories are created 0700.

Anything that fails these checks means no cache: never an error of the tool (a read-only file
system, as in the VM test tier, simply leaves the cache unused). :func:`refusals` keeps the
reasons for whoever wonders why a start was slow.

Ownership guards against other users; integrity against disk and memory corruption is the job
of :func:`seal`/:func:`unseal`: every entry carries a CRC-32 of its contents (every error of up
to 32 bits in a row is caught, and any other with probability 1 - 2**-32).
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from typing import List, Optional, Sequence, Tuple, Union

__all__ = ["cache_root", "cache_dir", "read", "open_file", "write", "remove", "entries", "seal", "unseal",
           "refusals"]

Buffer = Union[bytes, bytearray, memoryview]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_notes: List[str] = []


def cache_root() -> Optional[str]:
    """The directory all caches live under, or None when caching is switched off."""
    configured = os.environ.get("EBPF_CACHE_DIR")
    if configured is not None:
        return configured or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ebpf")


def cache_dir(sub: str) -> Optional[str]:
    """The directory of one cache (``btf``, ``programs``), or None when caching is off."""
    root = cache_root()
    return None if root is None else os.path.join(root, sub)


def refusals() -> List[str]:
    """Why a cache was not used in this process (each reason once)."""
    return list(_notes)


def _refuse(why: str) -> None:
    if why not in _notes:
        _notes.append(why)


# ---- directories ---------------------------------------------------------------------------------


def _dir_ok(st: os.stat_result, path: str, strict: bool) -> bool:
    """*strict*: at or below the cache root (ours only); else above it (ours or root's, sticky allowed)."""
    euid = os.geteuid()
    if strict:
        if st.st_uid != euid:
            _refuse(f"{path} is owned by uid {st.st_uid}, not {euid}")
            return False
    elif st.st_uid not in (euid, 0):
        _refuse(f"{path} is owned by uid {st.st_uid}, neither {euid} nor root")
        return False
    if st.st_mode & 0o022 and (strict or not st.st_mode & stat.S_ISVTX):
        _refuse(f"{path} is writable by {'group' if st.st_mode & 0o020 else 'others'} (mode {st.st_mode & 0o7777:o})")
        return False
    return True


def _open_dir(sub: str, create: bool) -> Optional[int]:
    """A checked directory fd of cache *sub* (created when *create*), or None."""
    root = cache_root()
    if root is None:
        return None
    root = os.path.realpath(root)  # resolves what exists; the walk below checks what it leads to
    parts = [p for p in root.split(os.sep) if p]
    strict_from = len(parts)  # components at or past this index are the cache root and below
    parts += [p for p in sub.split("/") if p]
    try:
        fd = os.open("/", _DIR_FLAGS)
    except OSError:
        return None
    try:
        if not _dir_ok(os.fstat(fd), "/", strict_from == 0):
            os.close(fd)
            return None
        path = ""
        for i, name in enumerate(parts):
            path += "/" + name
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
            if not _dir_ok(os.fstat(fd), path, i >= strict_from):
                os.close(fd)
                return None
        return fd
    except OSError as e:  # a symbolic link, a file in the way, a read-only file system...
        _refuse(f"{root}/{sub}: {e.strerror}")
        os.close(fd)
        return None


# ---- files ---------------------------------------------------------------------------------------


def open_file(sub: str, name: str) -> Optional[int]:
    """An fd of the regular file *name* of cache *sub*, when it may be trusted; else None.

    The caller owns (and closes) the fd; ``os.fstat`` of it gives the size.
    """
    dfd = _open_dir(sub, create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022:
            return fd
        _refuse(f"{sub}/{name}: not a regular file of uid {os.geteuid()} that only it can write")
    except OSError:
        pass
    os.close(fd)
    return None


def read(sub: str, name: str) -> Optional[bytes]:
    """The contents of cache file *name* of *sub*, or None (missing or not to be trusted)."""
    fd = open_file(sub, name)
    if fd is None:
        return None
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while size > 0:
            chunk = os.read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def write(sub: str, name: str, parts: Sequence[Buffer]) -> bool:
    """Write *parts* as cache file *name* of *sub*, atomically; False when it cannot be done."""
    dfd = _open_dir(sub, create=True)
    if dfd is None:
        return False
    tmp = f".{name}.{os.getpid()}.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dfd)
        except FileExistsError:  # left by a process of ours that died with this pid
            os.unlink(tmp, dir_fd=dfd)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                for part in parts:
                    f.write(part)
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        return True
    except OSError:
        return False
    finally:
        os.close(dfd)


def remove(sub: str, names: Sequence[str]) -> None:
    """Remove entries of cache *sub* (those that are gone already are no error)."""
    dfd = _open_dir(sub, create=False)
    if dfd is None:
        return
    try:
        for name in names:
            try:
                os.unlink(name, dir_fd=dfd)
            except OSError:
                pass
    finally:
        os.close(dfd)


def entries(sub: str) -> List[Tuple[str, int]]:
    """(name, mtime in ns) of the regular files of cache *sub* (not temporary files), for pruning."""
    dfd = _open_dir(sub, create=False)
    if dfd is None:
        return []
    found = []
    try:
        with os.scandir(dfd) as it:
            for e in it:
                if not e.name.startswith(".") and e.is_file(follow_symlinks=False):
                    found.append((e.name, e.stat(follow_symlinks=False).st_mtime_ns))  # while dfd is open
    except OSError:
        pass
    finally:
        os.close(dfd)
    return found


# ---- integrity -----------------------------------------------------------------------------------

# magic (8 bytes: the format's name and version), CRC-32 of the payload, zero, payload length
_SEAL = struct.Struct("<8sIIQ")


def seal(magic: bytes, payload: Sequence[Buffer]) -> List[Buffer]:
    """*payload* (a sequence of buffers) behind a header naming the format and checksumming it.

    The header is 24 bytes, so a payload aligned to 8 stays aligned in the file."""
    crc = 0
    size = 0
    for part in payload:
        crc = zlib.crc32(part, crc)
        size += memoryview(part).nbytes
    return [_SEAL.pack(magic, crc, 0, size), *payload]


def unseal(raw: Buffer, magic: bytes) -> Optional[memoryview]:
    """The payload of a sealed entry, or None when the magic, length or checksum is wrong."""
    view = memoryview(raw)
    if view.nbytes < _SEAL.size:
        return None
    found, crc, pad, size = _SEAL.unpack_from(view, 0)
    payload = view[_SEAL.size:]
    if found != magic or pad or size != payload.nbytes or zlib.crc32(payload) != crc:
        return None
    return payload
