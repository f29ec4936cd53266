"""Fixtures of the CO-RE tests: the shared kernel BTF corpus (decompressed once per session,
each blob parsed once) and helpers that build relocations and check bitfield formulas.

The corpus (/work/shared/btf, or $EBPF_BTF_CORPUS) holds xz-compressed raw BTF blobs with a
facts file each; see its README.
"""

from __future__ import annotations

import json
import lzma
import os
import pathlib
from typing import Any, Dict, List, Optional

import pytest

from ebpf.btf import BTF, load
from ebpf.btf.core import CoreFix, resolve
from ebpf.btf.relo import CoreRelo
from ebpf.uapi import CoreReloKind

CORPUS = pathlib.Path(os.environ.get("EBPF_BTF_CORPUS", "/work/shared/btf"))


def corpus_names() -> List[str]:
    """Blob names (file names without ``.btf.xz``); [] without a corpus."""
    if not CORPUS.is_dir():
        return []
    return sorted(p.name[: -len(".btf.xz")] for p in CORPUS.glob("*.btf.xz"))


class CoreCorpus:
    """Decompressed blobs, their facts and their parsed BTF, each made once per session."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self._btf: Dict[str, BTF] = {}
        self._facts: Dict[str, Dict[str, Any]] = {}

    def facts(self, name: str) -> Dict[str, Any]:
        if name not in self._facts:
            with open(CORPUS / f"{name}.json") as f:
                self._facts[name] = json.load(f)
        return self._facts[name]

    def path(self, name: str) -> pathlib.Path:
        target = self.directory / f"{name}.btf"
        if not target.exists():
            with lzma.open(CORPUS / f"{name}.btf.xz") as src:
                data = src.read()
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.rename(target)
        return target

    def base_name(self, name: str) -> Optional[str]:
        split = self.facts(name).get("split")
        return str(split["base_file"])[: -len(".btf")] if split else None

    def btf(self, name: str) -> BTF:
        if name not in self._btf:
            base_name = self.base_name(name)
            base = self.btf(base_name) if base_name else None
            self._btf[name] = load(self.path(name), base=base)
        return self._btf[name]


@pytest.fixture(scope="session")
def core_corpus(tmp_path_factory: pytest.TempPathFactory) -> CoreCorpus:
    if not corpus_names():
        pytest.skip(f"no BTF corpus at {CORPUS}")
    return CoreCorpus(tmp_path_factory.mktemp("core-corpus"))


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
