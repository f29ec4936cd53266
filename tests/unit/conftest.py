"""Session fixtures of the unit tests: the shared kernel BTF corpus, decompressed and parsed once."""

from __future__ import annotations

import pytest
from test_btf_fixtures import CORPUS, Corpus, corpus_names


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The corpus of /work/shared/btf (or $EBPF_BTF_CORPUS): every blob decompressed and parsed once."""
    if not corpus_names():
        pytest.skip(f"no BTF corpus at {CORPUS}")
    return Corpus(tmp_path_factory.mktemp("btf-corpus"))


@pytest.fixture(scope="session")
def core_corpus(corpus: Corpus) -> Corpus:
    """The same corpus, under the name the CO-RE tests use."""
    return corpus
