"""Finding types by name without decoding every name.

Decoding the ~100k names of a kernel BTF into a dict costs tens of milliseconds in CPython,
more than a tool's whole start-up budget for BTF. Two ways avoid it:

* **Searching** (always available): look for ``\\0name\\0`` in the string section (``find``
  runs at memchr speed, ~1 ms over a vmlinux string table, every occurrence is visited so
  duplicate strings are found too), then for the types whose name offset is a hit (a
  ``find`` over the packed name-offset array the index pass collected). Names are taken to
  start a string, as every BTF encoder (pahole, libbpf, LLVM, GCC) writes them.
* **Hashing** (when a cache supplies or can keep it): a sorted ``array('Q')`` of
  ``crc32(essential name) << 32 | type id`` for every named type; a lookup is a bisection
  plus a check of each hit's real name. Building it costs ~80 ms for vmlinux, so it is
  built only where it can be saved on disk (:mod:`ebpf.btf.cache`).

Essential names follow libbpf's CO-RE convention: ``task_struct___old`` is a flavour of
``task_struct``; the cut is at the last ``___`` with a non-underscore on both sides.
"""

from __future__ import annotations

import operator
import struct
import zlib
from array import array
from bisect import bisect_left
from itertools import accumulate, compress, count, repeat
from typing import Callable, Dict, List, Optional, Sequence

from ebpf.btf.header import Blob


def essential_name(name: str) -> str:
    """*name* without its ``___flavour`` suffix, if it has one."""
    if "___" not in name:
        return name
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


def _essential_bytes(name: bytes) -> bytes:
    if b"___" not in name:
        return name
    return essential_name(name.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


class NameSearch:
    """Name lookups over one blob's own types (a split blob's base has its own NameSearch).

    *data* holds the string section at ``[str_start, str_end)``; offsets in *name_offs* count
    from the start of the base's string section, so this blob's strings begin at offset
    *str_base*. *string_bytes* returns the string at any offset (the base's too). *base*
    searches the base's strings: a split blob's types may be named by strings of its base.
    """

    def __init__(
        self, data: Blob, str_start: int, str_end: int, str_base: int, name_offs: Sequence[int],
        first_id: int, string_bytes: Callable[[int], bytes], base: Optional[NameSearch] = None,
    ) -> None:
        self._data = data
        self._str_start = str_start
        self._str_end = str_end
        self._str_base = str_base
        self._name_offs = name_offs
        self._first_id = first_id
        self._string_bytes = string_bytes
        self._base = base
        self._packed: Optional[bytes] = None
        self.hashes: Optional[Sequence[int]] = None

    def ids(self, name: bytes) -> List[int]:
        """Ids of this blob's types named exactly *name*, ascending."""
        if not name or b"\0" in name:
            return []
        if self.hashes is not None:
            return self._hashed(name, exact=True)
        return self._ids_for(self._string_offsets(name, flavours=False))

    def essential_ids(self, name: bytes) -> List[int]:
        """Ids of this blob's types whose essential name is *name* (itself or its flavours)."""
        if not name or b"\0" in name:
            return []
        if self.hashes is not None:
            return self._hashed(name, exact=False)
        return self._ids_for(self._string_offsets(name, flavours=True))

    # ------------------------------------------------------------ searching

    def _string_offsets(self, name: bytes, flavours: bool) -> List[int]:
        """Offsets (as types use them) of the strings that are *name*, or also, with
        *flavours*, of the strings whose essential name is *name*."""
        found = self._base._string_offsets(name, flavours) if self._base is not None else []
        data, start, end = self._data, self._str_start, self._str_end
        rebase = self._str_base - start
        needles = [b"\0" + name + b"\0"]
        if flavours:
            needles.append(b"\0" + name + b"___")
        for needle in needles:
            # the first string has no NUL before it (split BTF) or is "" (base BTF)
            if data[start : start + len(needle) - 1] == needle[1:]:
                self._keep(found, start, needle, rebase)
            hit = data.find(needle, start, end)
            while hit >= 0:
                self._keep(found, hit + 1, needle, rebase)
                hit = data.find(needle, hit + 1, end)
        return found

    def _keep(self, found: List[int], at: int, needle: bytes, rebase: int) -> None:
        if needle.endswith(b"\0"):
            found.append(at + rebase)
            return
        stop = self._data.find(b"\0", at, self._str_end)
        string = bytes(self._data[at:stop])
        if _essential_bytes(string) == needle[1:-3]:
            found.append(at + rebase)

    def _ids_for(self, string_offsets: List[int]) -> List[int]:
        if not string_offsets:
            return []
        if self._packed is None:
            self._packed = bytes(self._name_offs)
        packed = self._packed
        ids: List[int] = []
        for off in string_offsets:
            needle = struct.pack("=I", off)
            hit = packed.find(needle)
            while hit >= 0:
                if hit % 4 == 0:
                    ids.append(self._first_id + hit // 4)
                hit = packed.find(needle, hit + 1)
        ids.sort()
        return ids

    # ------------------------------------------------------------ hashing

    def _hashed(self, name: bytes, exact: bool) -> List[int]:
        hashes = self.hashes
        assert hashes is not None
        key = zlib.crc32(_essential_bytes(name))
        i = bisect_left(hashes, key << 32)
        ids = []
        while i < len(hashes) and hashes[i] >> 32 == key:
            type_id = hashes[i] & 0xFFFFFFFF
            actual = self._string_bytes(self._name_offs[type_id - self._first_id])
            if (actual == name) if exact else (_essential_bytes(actual) == name):
                ids.append(type_id)
            i += 1
        return ids

    def build_hashes(self) -> array:
        """The sorted hash index of every named type (see the module docstring)."""
        data, start, end = self._data, self._str_start, self._str_end
        strings = bytes(data[start:end]).split(b"\0")
        offsets = accumulate(map((1).__add__, map(len, strings)), initial=self._str_base)
        string_bytes = self._string_bytes

        class Hashes(Dict[int, int]):
            def __missing__(self, off: int) -> int:  # a base string, or a string's tail
                value = self[off] = zlib.crc32(_essential_bytes(string_bytes(off)))
                return value

        by_offset = Hashes(zip(offsets, map(zlib.crc32, strings)))
        hit = data.find(b"___", start, end)
        while hit >= 0:  # strings with a flavour hash by their essential name: recompute them
            nul = data.rfind(b"\0", start, hit)
            first = nul + 1 if nul >= 0 else start
            by_offset.pop(first - start + self._str_base, None)
            nul = data.find(b"\0", hit, end)
            hit = data.find(b"___", nul, end) if nul >= 0 else -1
        keys = map(by_offset.__getitem__, self._name_offs)
        entries = map(operator.or_, map(operator.lshift, keys, repeat(32)), count(self._first_id))
        return array("Q", sorted(compress(entries, self._name_offs)))  # anonymous types left out
