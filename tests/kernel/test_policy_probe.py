"""The kernel-test policy itself: this test runs only with privileges and must not be skipped."""

import os


def test_running_with_bpf_privileges() -> None:
    assert os.geteuid() == 0 or os.environ.get("EBPF_REQUIRE_KERNEL") != "1"
