"""``python examples/X.py | head``: when the reader of the pipe goes away, each Python example
ends quietly, status 0 and nothing on stderr, as the tools do (no BrokenPipeError traceback, no
"Exception ignored" at shutdown). A real pipe, closed after the first lines, while events keep
coming (this test opens files until the example has exited)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_ends_quietly_when_the_pipe_closes(example: pathlib.Path, tmp_path: pathlib.Path) -> None:
    stop = threading.Event()

    def open_files() -> None:  # events, before and after the pipe closes
        while not stop.is_set():
            open(tmp_path / "x", "w").close()
            time.sleep(0.01)

    read_end, write_end = os.pipe()
    proc = subprocess.Popen([sys.executable, str(example)], stdout=write_end, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    os.close(write_end)
    opener = threading.Thread(target=open_files, daemon=True)
    opener.start()
    try:
        with os.fdopen(read_end, "rb") as head:  # `head -2`: two lines, then gone
            lines = [head.readline(), head.readline()]
        _, err = proc.communicate(timeout=20)
    finally:
        stop.set()
        opener.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert all(lines), f"the example printed {lines}"
    assert proc.returncode == 0 and err == b"", err.decode(errors="replace")
