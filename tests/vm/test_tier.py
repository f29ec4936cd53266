"""The VM tier: every tool, the DSL's kprobe and fentry, and every hook kind (``hook-*``: live, and
``ebpf features`` agreeing) on Debian 5.10, 6.1, 6.12 and this host.

One boot per kernel runs all checks (tests/vm/guest_checks.py); each check is one test here. A
check that fails today because of a known bug is an ``xfail(strict=True)`` that only accepts that
bug's error: when the bug is fixed the test XPASSes and fails the run (remove the entry from
:data:`KNOWN_BUGS`), and a different error fails it too.
"""

from __future__ import annotations

import re
from typing import Dict, Iterator, NamedTuple, Tuple

import pytest

from . import kernels
from .conftest import TIER_KERNELS, Tier
from .guest_checks import NAMES

pytestmark = [pytest.mark.vm, pytest.mark.kernel]


class KnownBug(AssertionError):
    """A check failed with the error its known bug predicts."""


class Bug(NamedTuple):
    reason: str
    error: str  # a regexp the check's error line matches


KNOWN_BUGS: Dict[Tuple[str, str], Bug] = {
}


def cases() -> Iterator[object]:
    for kernel in TIER_KERNELS:
        for check in NAMES:
            bug = KNOWN_BUGS.get((kernel, check))
            marks = [pytest.mark.xfail(strict=True, raises=KnownBug, reason=bug.reason)] if bug else []
            yield pytest.param(kernel, check, marks=marks, id=f"{kernel}-{check}")


@pytest.fixture(scope="session")
def probe_target() -> str:
    """The uprobe/USDT checks' target, built on the host where the guests find it (gcc under TCG is slow)."""
    from .hook_checks import Missed
    from .hook_checks import probe_target as build

    try:
        return build()
    except Missed:  # no gcc here: the uprobe checks say so
        return ""


@pytest.mark.parametrize("kernel,check", cases())
def test_check(kernel: str, check: str, tier: Tier, probe_target: str) -> None:
    try:
        results = tier.run(kernel)
    except (kernels.FetchError, FileNotFoundError) as e:
        pytest.skip(f"vm: {e}")
    boot = tier.results[kernel]
    assert check in results, f"the guest did not report {check}\n{boot.describe()}"
    rec = results[check]
    if rec["status"] == "unavailable":
        pytest.skip(rec["detail"])  # "feature probe: ...": the kernel lacks the hook
    bug = KNOWN_BUGS.get((kernel, check))
    if rec["status"] != "ok" and bug is not None and re.search(bug.error, rec["detail"]):
        raise KnownBug(rec["detail"])
    assert rec["status"] == "ok", f"{kernel} ({boot.release}) {check}: {rec['detail']}\n{rec.get('stderr', '')}"
