"""Every hook kind on this kernel as in the VM tier (tests/vm/hook_checks.py): a program attached
to it sees its event, or the kernel lacks the hook; either way ``ebpf features`` says the same."""

from __future__ import annotations

import pytest

from ebpf import features
from tests.conftest import FEATURE_PROBE_PREFIX
from tests.vm.hook_checks import run_hook


@pytest.mark.parametrize("hook", features.HOOKS)
def test_hook_works_or_is_absent_as_the_features_probe_says(hook: str) -> None:
    rec = run_hook(hook)
    if rec["status"] == "unavailable":
        assert rec["detail"].startswith(FEATURE_PROBE_PREFIX)
        pytest.skip(rec["detail"])
    assert rec["status"] == "ok", f"{hook}: {rec['detail']}\n{rec.get('stderr', '')}"


def test_every_hook_has_a_probe_and_a_live_check() -> None:
    from tests.vm.hook_checks import LIVE

    assert set(LIVE) == set(features.HOOKS)
    with pytest.raises(ValueError, match="unknown hook 'kprobes'"):
        features.probe_hook("kprobes")
