"""The running kernel's BTF and its modules', parsed once per process and shared.

Every program a process loads relocates against the same kernel types, so the parsed
vmlinux BTF (index, memoised types, name lookups) is kept for the life of the process;
copying or re-parsing it per load is what made other loaders slow. Module BTF in
``/sys/kernel/btf/<module>`` is split BTF on top of vmlinux's and is cached the same way.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from ebpf.btf.errors import BTFError
from ebpf.btf.files import load
from ebpf.btf.spec import BTF

SYSFS_BTF = "/sys/kernel/btf"
VMLINUX = SYSFS_BTF + "/vmlinux"

# Where libbpf looks for a vmlinux with .BTF when sysfs has none (old or odd kernels).
_VMLINUX_FALLBACKS = (
    "/boot/vmlinux-{r}",
    "/lib/modules/{r}/vmlinux-{r}",
    "/lib/modules/{r}/build/vmlinux",
    "/usr/lib/modules/{r}/kernel/vmlinux",
    "/usr/lib/debug/boot/vmlinux-{r}",
    "/usr/lib/debug/boot/vmlinux-{r}.debug",
    "/usr/lib/debug/lib/modules/{r}/vmlinux",
)

_kernel: Optional[BTF] = None
_modules: Dict[str, BTF] = {}


def kernel_btf() -> BTF:
    """The running kernel's BTF, parsed on first use and shared by the whole process."""
    global _kernel
    if _kernel is None:
        _kernel = _open_kernel()
    return _kernel


def module_btf(name: str) -> BTF:
    """The BTF of loaded kernel module *name* (split BTF on :func:`kernel_btf`), shared."""
    found = _modules.get(name)
    if found is not None:
        return found
    if not name or "/" in name or name in (".", "..", "vmlinux"):
        raise BTFError(f"{name!r} is not a kernel module name")
    path = os.path.join(SYSFS_BTF, name)
    if not os.path.exists(path):
        raise BTFError(f"no BTF for module {name!r}: {path} does not exist (module not loaded, or built without BTF)")
    found = load(path, base=kernel_btf())
    _modules[name] = found
    return found


def module_names() -> List[str]:
    """Names of the loaded modules that have BTF."""
    try:
        return sorted(n for n in os.listdir(SYSFS_BTF) if n != "vmlinux")
    except OSError:
        return []


def clear_cache() -> None:
    """Forget the parsed kernel and module BTF (tests; a process that outlives a module reload)."""
    global _kernel
    _kernel = None
    _modules.clear()


def _open_kernel() -> BTF:
    if os.path.exists(VMLINUX):
        from ebpf.btf.cache import load_cached

        return load_cached(VMLINUX)
    release = os.uname().release
    tried = [VMLINUX]
    for pattern in _VMLINUX_FALLBACKS:
        path = pattern.format(r=release)
        tried.append(path)
        if os.path.exists(path):
            return load(path)
    raise BTFError(
        "no kernel BTF: the kernel needs CONFIG_DEBUG_INFO_BTF=y; looked for " + ", ".join(tried)
    )
