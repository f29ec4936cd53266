"""The README's DSL example runs as printed (with its endless loop bounded and an open made)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import ebpf

ROOT = pathlib.Path(__file__).parents[2]


def test_readme_dsl_example_sees_an_open(tmp_path: pathlib.Path) -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("## Writing your own: the DSL")[1].split("```python")[1].split("```")[0]
    loop = "    for ev in live.events.stream(Event):\n        print(ev.pid, ev.comm, ev.fname)"
    assert loop in code
    code = code.replace(loop, (
        "    def opener():\n"
        "        time.sleep(0.3)\n"
        "        open('/etc/hostname').close()\n"
        "    threading.Thread(target=opener).start()\n"
        "    for ev in live.events.stream(Event, timeout=2.0):\n"
        "        if ev.fname == b'/etc/hostname' and ev.ret >= 0:\n"
        "            print('SEEN', ev.pid)\n"
        "            break\n"
    ))
    script = tmp_path / "readme_dsl.py"
    script.write_text("import threading, time\n" + code)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(pathlib.Path(ebpf.__file__).parents[1]), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("SEEN "), res.stdout
