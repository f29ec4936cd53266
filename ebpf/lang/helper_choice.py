"""Helpers newer kernels added or replaced, chosen for the kernel a program is compiled for.

libbpf rewrites ``bpf_probe_read_{kernel,user}{,_str}`` (Linux 5.5) into ``bpf_probe_read{,_str}``
on kernels without them, and programs test for ``bpf_get_current_task_btf`` (5.11) before using
it. The compiler does both here, by the feature probes of :mod:`ebpf.features` (one program load
each, once per process, and only when a program is compiled: a cache hit probes nothing). The
choice belongs to the running kernel, which the compile cache's key names by its boot id, so a
cached program is never used on a kernel that would choose differently.

A probe that cannot answer (no privileges, as for ``--ebpf`` run by a user; a program type that
cannot be probed) keeps the newer helper: that is what every kernel of the last five years has.
"""

from __future__ import annotations

from typing import Any, Dict

__all__ = ["FALLBACKS", "has", "pick", "probe_read_id"]

#: helper -> the older helper with the same arguments and result, for kernels without it.
#: bpf_probe_read reads kernel and user memory alike on the architectures that had it alone.
FALLBACKS: Dict[str, str] = {
    "probe_read_kernel": "probe_read",
    "probe_read_user": "probe_read",
    "probe_read_kernel_str": "probe_read_str",
    "probe_read_user_str": "probe_read_str",
}

_ABSENT = ("unknown to the kernel", "not allowed for this program type")


def has(helper: str, prog_type: Any) -> bool:
    """Whether programs of ``prog_type`` can call ``helper`` on the running kernel (True when
    the probe cannot tell)."""
    from ebpf import features
    from ebpf.errors import EbpfError

    if prog_type is None:
        return True
    try:
        found = features.probe_helper(prog_type, helper)
    except EbpfError:
        return True
    return found.supported or found.detail not in _ABSENT


def pick(helper: str, prog_type: Any) -> str:
    """``helper``, or its older equivalent where the running kernel lacks it."""
    older = FALLBACKS.get(helper)
    if older is None or has(helper, prog_type):
        return helper
    return older


def probe_read_id(space: str, prog_type: Any) -> int:
    """The helper id that reads ``space`` ("kernel" or "user") memory on the running kernel."""
    from ebpf.lang.helpers import HELPERS

    return HELPERS[pick("probe_read_kernel" if space == "kernel" else "probe_read_user", prog_type)].id
