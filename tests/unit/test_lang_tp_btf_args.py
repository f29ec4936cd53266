"""tp_btf arguments: their names from wherever a kernel's BTF keeps them, else positions.

Kernels name a tracepoint's arguments in the ``__bpf_trace_<event>`` FUNC; builds whose pahole
left those out (Debian's 5.10, the 5.13 blob of the corpus) have them in ``__traceiter_<event>``;
the ``btf_trace_<event>`` typedef the kernel attaches by has types only.
"""

from __future__ import annotations

import pytest
from test_btf_fixtures import Corpus, corpus_names

from ebpf.lang.context import BtfArgsCtx, CtxError, tp_btf_params

NAMES = corpus_names()


def _names(corpus: Corpus, blob: str, event: str) -> tuple:
    params, source = tp_btf_params(corpus.btf(blob), event)
    return [p.name for p in params], source


@pytest.mark.skipif("5.13.2-cilium-amd64" not in NAMES, reason="the 5.13 corpus blob is not here")
def test_names_from_traceiter_where_bpf_trace_is_missing(corpus: Corpus) -> None:
    assert _names(corpus, "5.13.2-cilium-amd64", "irq_handler_exit") == (
        ["irq", "action", "ret"], "__traceiter_irq_handler_exit")
    assert _names(corpus, "5.13.2-cilium-amd64", "sched_switch")[0] == ["preempt", "prev", "next"]


@pytest.mark.skipif("6.1.0-56-amd64" not in NAMES, reason="the 6.1 corpus blob is not here")
def test_names_from_bpf_trace(corpus: Corpus) -> None:
    assert _names(corpus, "6.1.0-56-amd64", "irq_handler_exit") == (
        ["irq", "action", "ret"], "__bpf_trace_irq_handler_exit")


@pytest.mark.skipif("6.1.0-56-amd64" not in NAMES, reason="the 6.1 corpus blob is not here")
def test_unknown_event(corpus: Corpus) -> None:
    with pytest.raises(CtxError, match="no tp_btf tracepoint 'no_such_event'"):
        tp_btf_params(corpus.btf("6.1.0-56-amd64"), "no_such_event")


def test_nameless_arguments_say_use_positions() -> None:
    """Where no record names them, a name is an error that says how to reach the arguments."""
    from ebpf.lang.types import i32

    ctx = BtfArgsCtx("tp_btf", "irq_handler_exit")
    ctx._params = [("arg0", i32), ("arg1", i32), ("arg2", i32)]
    ctx.nameless, ctx.names_from = True, "btf_trace_irq_handler_exit"
    with pytest.raises(CtxError) as e:
        ctx.attr(None, None, "ret", None)  # type: ignore[arg-type]
    assert "does not name the arguments of btf_trace_irq_handler_exit" in str(e.value)
    assert "ctx.arg(0)..ctx.arg(2)" in str(e.value)
