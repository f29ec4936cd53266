"""Shared fixtures of the BTF tests: the shared kernel BTF corpus, decompressed once per session.

The corpus (/work/shared/btf, or $EBPF_BTF_CORPUS) holds xz-compressed raw BTF blobs of 26
kernels with a facts file each; see its README. Blobs are decompressed on first use into a
session temporary directory and parsed once (split blobs on their bases), so every test
module shares both the files and the parsed BTF.
"""

from __future__ import annotations

import json
import lzma
import os
import pathlib
import shutil
from typing import Any, Dict, List, Optional

from ebpf.btf import BTF, load

CORPUS = pathlib.Path(os.environ.get("EBPF_BTF_CORPUS", "/work/shared/btf"))
BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)


def corpus_names() -> List[str]:
    """Names of the corpus blobs (file names without ``.btf.xz``), or [] without a corpus."""
    if not CORPUS.is_dir():
        return []
    return sorted(p.name[: -len(".btf.xz")] for p in CORPUS.glob("*.btf.xz"))


class Corpus:
    """Decompressed blobs, their facts and their parsed BTF, each made once."""

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
        if not split:
            return None
        return str(split["base_file"])[: -len(".btf")]

    def btf(self, name: str) -> BTF:
        if name not in self._btf:
            base_name = self.base_name(name)
            base = self.btf(base_name) if base_name else None
            self._btf[name] = load(self.path(name), base=base)
        return self._btf[name]
