"""The README's assembly-from-Python example runs as printed, on a program whose jumps use a
second label of an instruction and a numeric local label (``ProgramSpec`` links the assembled
instructions once more: every name must survive the first link)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import ebpf

ROOT = pathlib.Path(__file__).parents[2]


def test_readme_asm_example_with_shared_labels(tmp_path: pathlib.Path) -> None:
    readme = (ROOT / "README.md").read_text()
    code = readme.split("## The assembler")[1].split("```python")[1].split("```")[0]
    assert "A.assemble(open(\"examples/count_openat.s\").read()).instructions" in code
    code = code.replace("    ...\n", "    open('/etc/hostname').close()\n")
    code = code.replace('    print(coll.maps["counts"].items())', (
        "    counts = dict(coll.maps['counts'].items())\n"
        "    print('SEEN' if counts.get(os.getpid(), 0) >= 1 else counts)"))
    source = (ROOT / "examples" / "count_openat.s").read_text()
    assert source.count("\nout:\n") == 1 and "        goto out\n" in source
    source = source.replace("\nout:\n", "\ndone:\nout:\n").replace("        goto out\n", "        goto done\n")
    source = source.replace("first:\n", "1:\n").replace("goto first", "goto 1f")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "count_openat.s").write_text(source)
    (tmp_path / "readme_asm.py").write_text("import os\n" + code)
    res = subprocess.run([sys.executable, "readme_asm.py"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env={"PYTHONPATH": str(pathlib.Path(ebpf.__file__).parents[1]),
                                            "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "SEEN", res.stdout
