"""Shared test policy.

Tests marked ``kernel`` (every test under tests/kernel is marked automatically) talk to the real
kernel. Without privileges they are skipped with the reason; with ``EBPF_REQUIRE_KERNEL=1`` (as
``.ci/run`` sets it) any skip of a kernel test is turned into a failure, so CI cannot go green
without running them. The one allowed skip is a hook this kernel provably lacks: its reason must
start with ``feature probe:`` and come from :func:`skip_unless_feature`.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
_KERNEL_DIR = pathlib.Path(__file__).parent / "kernel"

# The suite tests the checkout it lives in, not whatever copy of the package pip installed last:
# this process imports from the tree, and so do the Python subprocesses the tests start.
sys.path.insert(0, str(_REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH", "")) if p)
FEATURE_PROBE_PREFIX = "feature probe:"


def bpf_privilege_problem() -> str:
    """Empty when this process can load BPF programs, else the reason it cannot."""
    try:
        with open("/proc/self/status") as f:
            caps = next(line for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return "cannot read /proc/self/status"
    eff = int(caps.split()[1], 16)
    cap_sys_admin, cap_perfmon, cap_bpf = 21, 38, 39
    if eff & (1 << cap_sys_admin) or (eff & (1 << cap_bpf) and eff & (1 << cap_perfmon)):
        return ""
    return "needs root or CAP_BPF+CAP_PERFMON"


def require_kernel_mode() -> bool:
    return os.environ.get("EBPF_REQUIRE_KERNEL") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    problem = bpf_privilege_problem()
    for item in items:
        if _KERNEL_DIR in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kernel)
        if problem and item.get_closest_marker("kernel"):
            item.add_marker(pytest.mark.skip(reason=f"kernel test: {problem}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:  # type: ignore[type-arg]
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    xfailed = hasattr(report, "wasxfail")  # an expected failure is not a skip
    if require_kernel_mode() and report.skipped and not xfailed and item.get_closest_marker("kernel"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not str(reason).startswith(("Skipped: " + FEATURE_PROBE_PREFIX, FEATURE_PROBE_PREFIX)):
            report.outcome = "failed"
            report.longrepr = f"EBPF_REQUIRE_KERNEL=1 forbids skipping kernel tests: {reason}"
    return None
