"""Links: hanging loaded programs on kernel hooks. See the submodules; each link closes on
``close()``, on ``with`` exit and when its last fd goes away, so nothing outlives the process.

=================  ==========================================================================
tracepoint         ``attach_tracepoint``, ``attach_raw_tracepoint``
tracing            ``attach_tp_btf``, ``attach_fentry``/``fexit``/``fmod_ret``, ``attach_lsm``,
                   ``prepare_spec`` (fills attach_btf_id from ``attach_to``)
kprobe             ``attach_kprobe``, ``attach_kretprobe``, ``attach_ksyscall``, ``attach_kprobe_multi``
uprobe             ``attach_uprobe``, ``attach_uretprobe``, ``attach_uprobe_multi``
usdt               ``attach_usdt``, ``usdt_probes``, ``parse_arg`` (arguments -> instructions)
perf_event         ``attach_perf_event`` (sampling on every CPU)
iter               ``attach_iter`` (``IterLink.read()``)
xdp / tc / cgroup  ``attach_xdp``, ``attach_tc`` (tcx, else clsact + cls_bpf), ``attach_cgroup``
=================  ==========================================================================

Names are re-exported lazily: ``from ebpf.attach import attach_uprobe`` imports one module.
"""

from __future__ import annotations

from typing import Dict

from ebpf.lazy import lazy_exports

_LAZY: Dict[str, str] = {
    "Link": "ebpf.attach.link",
    "MultiLink": "ebpf.attach.link",
    "HookUnavailable": "ebpf.attach.link",
    "attach_program": "ebpf.attach.dispatch",
    "attach_tracepoint": "ebpf.attach.tracepoint",
    "attach_raw_tracepoint": "ebpf.attach.tracepoint",
    "attach_tracing": "ebpf.attach.tracing",
    "attach_tp_btf": "ebpf.attach.tracing",
    "attach_fentry": "ebpf.attach.tracing",
    "attach_fexit": "ebpf.attach.tracing",
    "attach_fmod_ret": "ebpf.attach.tracing",
    "attach_lsm": "ebpf.attach.tracing",
    "prepare_spec": "ebpf.attach.tracing",
    "find_target": "ebpf.attach.tracing",
    "attach_kprobe": "ebpf.attach.kprobe",
    "attach_kretprobe": "ebpf.attach.kprobe",
    "attach_ksyscall": "ebpf.attach.kprobe",
    "attach_kprobe_multi": "ebpf.attach.kprobe",
    "attach_uprobe": "ebpf.attach.uprobe",
    "attach_uretprobe": "ebpf.attach.uprobe",
    "attach_uprobe_multi": "ebpf.attach.uprobe",
    "attach_usdt": "ebpf.attach.usdt",
    "usdt_probes": "ebpf.attach.usdt",
    "attach_perf_event": "ebpf.attach.perf_event",
    "attach_iter": "ebpf.attach.iter",
    "IterLink": "ebpf.attach.iter",
    "attach_xdp": "ebpf.attach.xdp",
    "attach_tc": "ebpf.attach.tc",
    "attach_cgroup": "ebpf.attach.cgroup",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
