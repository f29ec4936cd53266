"""RLIMIT_MEMLOCK: raised only where the kernel charges BPF memory to it (Linux < 5.11), as libbpf does.

Each test runs a fresh Python under a 64 KiB locked-memory limit (the old default) and creates a
4 MiB map. On a kernel that charges memlock (5.10 in the VM tier) the map must still be created,
with the limit raised; on a memcg kernel (5.11+, this host) nothing may be probed or changed.
When the limit cannot be raised, the error must name it instead of privileges.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.kernel

LOW = 64 * 1024

CREATE = r"""
import json, resource
from ebpf.sys import bpf, memlock
from ebpf.errors import EbpfError
out = {}
try:
    fd = bpf.map_create(2, 4, 4096, 1024, name="memlock_test")  # a 4 MiB array
    out["created"] = True
except EbpfError as e:
    out["created"] = False
    out["error"] = str(e)
out["soft"] = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
out["probed"] = memlock._charged is not None
out["charged"] = memlock.kernel_charges_memlock()
print(json.dumps(out))
"""


def run(prefix: list) -> dict:
    proc = subprocess.run(prefix + [sys.executable, "-c", CREATE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_map_creation_raises_memlock_only_where_charged() -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]  # lowering the soft limit only: no privilege needed
    out = run(["prlimit", f"--memlock={LOW}:{'unlimited' if hard == resource.RLIM_INFINITY else hard}"])
    assert out["created"], out.get("error")
    if out["charged"]:
        assert out["soft"] != LOW  # raised (to infinity, else to the hard limit), as libbpf does
    else:
        assert out["soft"] == LOW  # a memcg kernel: the limit is left alone
        assert not out["probed"]  # and nothing was probed on the way to a successful map


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_memlock_that_cannot_be_raised_is_named() -> None:
    out = run(["prlimit", f"--memlock={LOW}:{LOW}", "setpriv", "--bounding-set", "-sys_resource",
               "--inh-caps", "-sys_resource", "--"])
    if out["charged"]:
        assert not out["created"]
        assert "RLIMIT_MEMLOCK" in out["error"] and "64 KiB" in out["error"], out["error"]
        assert "needs root" not in out["error"]
    else:
        assert out["created"], out.get("error")  # memcg accounting: the limit does not matter
