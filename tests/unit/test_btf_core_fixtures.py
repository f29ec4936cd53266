"""Fixtures of the CO-RE tests: the shared kernel BTF corpus (decompressed once per session,
each blob parsed once) and helpers that build relocations and check bitfield formulas.

The corpus (/work/shared/btf, or $EBPF_BTF_CORPUS) holds xz-compressed raw BTF blobs with a
facts file each; see its README.
"""

from __future__ import annotations

from typing import Any

from test_btf_fixtures import Corpus, corpus_names  # noqa: F401  (re-exported)

from ebpf.btf.core import CoreFix, resolve
from ebpf.btf.relo import CoreRelo
from ebpf.uapi import CoreReloKind


def fix(kind: CoreReloKind, type_name: str, access: tuple = (), target: Any = None, **kw: Any) -> CoreFix:
    """Resolve one relocation against *target*."""
    return resolve(CoreRelo(kind, type_name, access), target, **kw)


def extract_bitfield(bit_offset: int, bit_size: int, byte_off: int, byte_size: int, lshift: int, rshift: int,
                     byte_order: str, value: int) -> int:
    """Simulate what a program does with the four bitfield relocations: place *value* in the
    field (bits numbered the way the byte order lays them out), load byte_size bytes at
    byte_off, shift left then right. Returns what the program would read."""
    total = (byte_off + byte_size) * 8 + 64
    bits = [0] * max(total, bit_offset + bit_size + 8)
    for j in range(bit_size):  # j: value bit, 0 = least significant
        bit = (value >> j) & 1
        pos = bit_offset + j if byte_order == "little" else bit_offset + bit_size - 1 - j
        bits[pos] = bit
    data = bytearray(len(bits) // 8 + 1)
    for pos, bit in enumerate(bits):
        if bit:
            shift = pos % 8 if byte_order == "little" else 7 - pos % 8
            data[pos // 8] |= 1 << shift
    loaded = int.from_bytes(bytes(data[byte_off: byte_off + byte_size]), byte_order)  # type: ignore[arg-type]
    return ((loaded << lshift) & (2**64 - 1)) >> rshift
