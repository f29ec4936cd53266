"""The dict API shared by every key/value map kind (hash, array, per-CPU, LRU, LPM, stack trace).

``m[k]``, ``m.get(k)``, ``m[k] = v``, ``del m[k]``, ``k in m``, ``len(m)``, ``keys()``,
``values()``, ``items()``, ``clear()``, ``update()``, ``pop()`` and ``items_and_clear()``.
Whole-map reads use the batch commands where the kernel has them for the kind and fall back to
get_next_key iteration otherwise; both tolerate elements being deleted concurrently (by a BPF
program or another process) without looping forever or returning a key twice.
"""

from __future__ import annotations

import errno
from typing import Any, Iterator, List, Mapping, Optional, Set, Tuple

from ebpf.errors import MapError, MapKeyError, SyscallError
from ebpf.maps.batch import UNSUPPORTED, NoBatch, lookup_batches, update_batch
from ebpf.maps.live import Map
from ebpf.uapi import UpdateFlag

__all__ = ["KeyValueMap"]

_MISSING: Any = object()


class KeyValueMap(Map):
    """A map with keys and values: the ``dict``-like access.

    Set :attr:`use_batch` to False to force per-key iteration (for tests or odd kernels).
    """

    #: try BPF_MAP_LOOKUP_BATCH & co. first
    use_batch = True
    #: None until tried, then whether this map's kind answered the batch commands
    _batch_ok: Optional[bool] = None
    _delete_batch_ok: Optional[bool] = None
    _lookup_delete_ok: Optional[bool] = None
    _update_batch_ok: Optional[bool] = None

    # --- single elements --------------------------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            if ops.lookup():
                return self._vunpack(ops.vbuf, 0)
        raise MapKeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            if ops.lookup():
                return self._vunpack(ops.vbuf, 0)
        return default

    def __contains__(self, key: Any) -> bool:
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            return ops.lookup()

    def __setitem__(self, key: Any, value: Any) -> None:
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            self._vpack(ops.vbuf, 0, value)
            ops.update(0)

    def set(self, key: Any, value: Any, flags: int = UpdateFlag.ANY) -> None:
        """``m[key] = value`` with update flags (``UpdateFlag.NOEXIST`` to only insert...)."""
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            self._vpack(ops.vbuf, 0, value)
            ops.update(int(flags))

    def __delitem__(self, key: Any) -> None:
        if not self.delete(key):
            raise MapKeyError(key)

    def delete(self, key: Any) -> bool:
        """Remove ``key``; False when it was not there."""
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            return ops.delete()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value, atomically where the kernel can."""
        ops = self._ops
        with ops.lock:
            self._kpack(ops.kbuf, 0, key)
            if self._lookup_delete_ok is not False:
                try:
                    found = ops.lookup_and_delete()
                    self._lookup_delete_ok = True
                except SyscallError as e:
                    if e.errno not in UNSUPPORTED or self._lookup_delete_ok:
                        raise
                    self._lookup_delete_ok = False
            if self._lookup_delete_ok is False:
                found = ops.lookup()
                if found:
                    ops.delete()
            if found:
                return self._vunpack(ops.vbuf, 0)
        if default is _MISSING:
            raise MapKeyError(key)
        return default

    # --- whole map ------------------------------------------------------------------------

    def _raw_keys(self) -> Iterator[bytes]:
        """Every key once, as bytes, by get_next_key.

        When the key we stand on is deleted under us, the kernel restarts from the first key;
        keys already seen are then walked over without being returned. The walk is bounded so
        that a map being emptied and refilled forever cannot trap us.
        """
        ops = self._ops
        seen: Set[bytes] = set()
        prev: Optional[bytes] = None
        budget = 4 * self.max_entries + 64
        while budget > 0:
            budget -= 1
            with ops.lock:
                if prev is None:
                    found = ops.next(first=True)
                else:
                    ops.kbuf[:] = prev
                    found = ops.next()
                if not found:
                    return
                prev = ops.nbuf[:]
            if prev not in seen:
                seen.add(prev)
                yield prev

    def _lookup_raw(self, raw_key: bytes) -> Any:
        ops = self._ops
        with ops.lock:
            ops.kbuf[:] = raw_key
            if ops.lookup():
                return self._vunpack(ops.vbuf, 0)
        return _MISSING

    def _batched(self, delete: bool = False) -> Optional[List[Tuple[Any, Any]]]:
        """All (key, value) pairs through the batch commands, or None if the kind has none."""
        flag = "_delete_batch_ok" if delete else "_batch_ok"
        if not self.use_batch or getattr(self, flag) is False:
            return None
        ks, vs = self._kc.size, self._vc.size
        kun, vun = self._kunpack, self._vunpack
        out: List[Tuple[Any, Any]] = []
        try:
            for keys, values, n in lookup_batches(self.fd, ks, vs, self.max_entries, delete=delete):
                out.extend((kun(keys, i * ks), vun(values, i * vs)) for i in range(n))
        except NoBatch:
            setattr(self, flag, False)
            return None
        setattr(self, flag, True)
        return out

    def __iter__(self) -> Iterator[Any]:
        kun = self._kunpack
        for raw in self._raw_keys():
            yield kun(raw, 0)

    def keys(self) -> List[Any]:
        """A snapshot of the keys."""
        pairs = self._batched()
        if pairs is not None:
            return [k for k, _ in pairs]
        kun = self._kunpack
        return [kun(raw, 0) for raw in self._raw_keys()]

    def items(self) -> List[Tuple[Any, Any]]:
        """A snapshot of (key, value) pairs; keys deleted while we read are left out."""
        pairs = self._batched()
        if pairs is not None:
            return pairs
        kun = self._kunpack
        out = []
        for raw in self._raw_keys():
            value = self._lookup_raw(raw)
            if value is not _MISSING:
                out.append((kun(raw, 0), value))
        return out

    def values(self) -> List[Any]:
        return [v for _, v in self.items()]

    def __len__(self) -> int:
        """How many keys are in the map now (a count, not a kernel counter)."""
        pairs = self._batched()
        if pairs is not None:
            return len(pairs)
        return sum(1 for _ in self._raw_keys())

    def items_and_clear(self) -> List[Tuple[Any, Any]]:
        """Read and remove every element; each increment lands either in this read or stays
        in the map for the next one (LOOKUP_AND_DELETE_BATCH, else per-key lookup-and-delete)."""
        pairs = self._batched(delete=True)
        if pairs is not None:
            return pairs
        kun = self._kunpack
        out = []
        for raw in list(self._raw_keys()):
            key = kun(raw, 0)
            value = self.pop(key, _MISSING)
            if value is not _MISSING:
                out.append((key, value))
        return out

    pop_all = items_and_clear

    def clear(self) -> None:
        """Delete every element."""
        if self._batched(delete=True) is not None:
            return
        ops = self._ops
        for raw in list(self._raw_keys()):
            with ops.lock:
                ops.kbuf[:] = raw
                ops.delete()

    def update(self, other: Any = ()) -> None:
        """Write every pair of a mapping or an iterable of pairs (one batch syscall if possible)."""
        pairs = list(other.items() if isinstance(other, Mapping) else other)
        if not pairs:
            return
        if self.use_batch and len(pairs) > 1 and self._batch_update(pairs):
            return
        for key, value in pairs:
            self[key] = value

    def _batch_update(self, pairs: List[Tuple[Any, Any]]) -> bool:
        if self._update_batch_ok is False:
            return False
        ks, vs = self._kc.size, self._vc.size
        keys = bytearray(ks * len(pairs))
        values = bytearray(vs * len(pairs))
        kpack, vpack = self._kpack, self._vpack
        for i, (key, value) in enumerate(pairs):
            kpack(keys, i * ks, key)
            vpack(values, i * vs, value)
        try:
            update_batch(self.fd, bytes(keys), bytes(values), len(pairs))
        except NoBatch:
            self._update_batch_ok = False
            return False
        self._update_batch_ok = True
        return True

    def setdefault(self, key: Any, default: Any) -> Any:
        """Insert ``default`` unless ``key`` exists (BPF_NOEXIST), then return the stored value."""
        try:
            self.set(key, default, UpdateFlag.NOEXIST)
        except MapError as e:  # EEXIST comes back as MapError
            if not _is_exists(e):
                raise
        return self[key]


def _is_exists(e: BaseException) -> bool:
    cause = e.__cause__
    return isinstance(cause, SyscallError) and cause.errno == errno.EEXIST
