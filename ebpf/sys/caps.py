"""Does this process hold the capabilities BPF needs? Used to word permission errors truthfully."""

from __future__ import annotations

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def effective_capabilities() -> int:
    """The CapEff mask of this process (0 when it cannot be read)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def has_bpf_privileges() -> bool:
    """True with CAP_SYS_ADMIN, or with both CAP_BPF and CAP_PERFMON."""
    eff = effective_capabilities()
    return bool(eff & (1 << CAP_SYS_ADMIN)) or (bool(eff & (1 << CAP_BPF)) and bool(eff & (1 << CAP_PERFMON)))
