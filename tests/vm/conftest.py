"""The VM tier's policy: ``pytest -m vm`` runs it all; a run whose ``-m`` does not name ``vm`` keeps only the smoke
(the checks of :data:`~.guest_checks.SMOKE` on one kernel, :data:`SMOKE_KERNEL`, one boot) and deselects the rest.

Each kernel boots once per session (:class:`Tier` caches its result) and the checks of that boot
are separate tests. The terminal summary shows the table check x kernel with each boot's time.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Dict, Iterator, List

import pytest

from . import kernels, machine
from .guest_checks import MARK, NAMES, SMOKE

SMOKE_KERNEL = "6.12"  # kprobes, fentry, tp_btf and the cpu v4 ISA: what our code needs today
TIER_KERNELS = [*kernels.SERIES, machine.HOST]


class Tier:
    """One boot per kernel: the guest checks' results by name, and the boot's facts."""

    def __init__(self) -> None:
        self.results: Dict[str, machine.Result] = {}
        self.checks: Dict[str, Dict[str, dict]] = {}
        self.outcomes: Dict[str, Dict[str, str]] = {}
        self.wanted: Dict[str, List[str]] = {}  # kernel -> the checks of the selected tests (default: all)

    def run(self, kernel: str) -> Dict[str, dict]:
        if kernel not in self.checks:
            import json

            wanted = self.wanted.get(kernel, [])
            result = machine.run(kernel, [os.path.realpath(sys.executable), "tests/vm/guest_checks.py", *wanted],
                                 cwd=machine.ROOT, timeout=900)
            self.results[kernel] = result
            found = {}
            for line in result.output.splitlines():
                if line.startswith(MARK + " "):
                    rec = json.loads(line[len(MARK) + 1:])
                    found[rec["name"]] = rec
            self.checks[kernel] = found
        return self.checks[kernel]


_TIER = Tier()


@pytest.fixture(scope="session")
def tier() -> Iterator[Tier]:
    yield _TIER


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    every = bool(re.search(r"\bvm\b", config.getoption("markexpr") or ""))  # -m vm (or an expression naming it)
    smoke, rest = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        kernel = callspec.params.get("kernel") if callspec is not None else None
        check = callspec.params.get("check") if callspec is not None else None
        if not every and item.get_closest_marker("vm") and kernel is not None and (
                kernel != SMOKE_KERNEL or check not in SMOKE):
            rest.append(item)
        else:
            smoke.append(item)
    if rest:
        config.hook.pytest_deselected(items=rest)
        items[:] = smoke
    for item in items:  # each boot runs the checks of its selected tests only
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "kernel" in callspec.params and "check" in callspec.params:
            _TIER.wanted.setdefault(callspec.params["kernel"], []).append(callspec.params["check"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    callspec = getattr(item, "callspec", None)
    if callspec is None or "kernel" not in callspec.params or report.when not in ("setup", "call"):
        return
    if report.when == "setup" and report.passed:
        return
    word = report.outcome
    if hasattr(report, "wasxfail"):
        word = "xfail" if report.skipped else "XPASS"
    elif report.failed and "XPASS(strict)" in str(report.longrepr):
        word = "XPASS"
    _TIER.outcomes.setdefault(callspec.params["check"], {})[callspec.params["kernel"]] = word


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TIER.outcomes:
        return
    ran = [k for k in TIER_KERNELS if any(k in row for row in _TIER.outcomes.values())]
    write = terminalreporter.write_line
    terminalreporter.section("VM tier: check x kernel")
    write(f"{'':18}" + "".join(f"{k:>10}" for k in ran))
    for check in NAMES:
        row = _TIER.outcomes.get(check, {})
        if row:
            write(f"{check:18}" + "".join(f"{row.get(k, '-'):>10}" for k in ran))
    for kernel in ran:
        r = _TIER.results.get(kernel)
        if r is not None and kernel == machine.HOST:
            write(f"{kernel}: {r.release}, checks {r.seconds:.0f}s, run directly: not booted because "
                  f"{machine.host_boot_problem()}")
        elif r is not None:
            write(f"{kernel}: {r.release}, boot and checks {r.seconds:.0f}s")
