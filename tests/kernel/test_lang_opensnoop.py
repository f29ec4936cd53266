"""The DSL's opensnoop (examples/opensnoop_dsl.py) traces real openat() calls end to end."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
from typing import Any, List

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "opensnoop_dsl.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("opensnoop_dsl_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_opensnoop_reports_opens_with_pid_comm_ret_and_name(tmp_path: pathlib.Path) -> None:
    mod = load_example()
    missing = tmp_path / f"no-such-file-{os.getpid()}"
    present = tmp_path / "present.txt"
    present.write_text("x")
    with open("/proc/thread-self/comm") as f:
        comm = f.read().strip().encode()
    with mod.tool.load(targ_tgid=os.getpid()) as live:
        live.attach()
        try:
            open(missing).close()
        except FileNotFoundError:
            pass
        fd = os.open(present, os.O_RDONLY)
        os.close(fd)
        events: List[Any] = []
        for _ in range(20):
            events += live.events.read(decode=mod.Event)
            names = {e.fname for e in events}
            if str(missing).encode() in names and str(present).encode() in names:
                break
            live.events.poll(events.append, 100, decode=mod.Event)
    by_name = {e.fname: e for e in events}
    miss = by_name[str(missing).encode()]
    assert miss.pid == os.getpid()
    assert miss.comm == comm
    assert miss.ret == -2  # ENOENT
    assert miss.uid == os.getuid()
    hit = by_name[str(present).encode()]
    assert hit.ret == fd
    assert hit.pid == os.getpid() and hit.comm == comm
    assert all(e.pid == os.getpid() for e in events)  # the .rodata filter held


def test_opensnoop_programs_are_small() -> None:
    """Code size stays near clang -O2's (libbpf-tools' opensnoop: see benchmarks/bench_lang.py)."""
    mod = load_example()
    spec = mod.tool.spec()
    sizes = {name: sum(i.size for i in p.instructions) for name, p in spec.programs.items()}
    assert sizes["enter_openat"] <= 40, sizes
    assert sizes["exit_openat"] <= 60, sizes
