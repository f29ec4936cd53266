"""Bad input to `ebpf asm`: one line on stderr naming the cause, exit status 1, no traceback."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

CASES = {
    "bad register": ("r0 = 0\nr11 = 1\nexit\n", ["line 2", "r11"]),
    "bad 32-bit register": ("w12 += 1\nexit\n", ["line 1", "w12"]),
    "malformed": ("r0 = 0\nr0 === 1\nexit\n", ["line 2"]),
    "unknown mnemonic": ("frobnicate r1\nexit\n", ["line 1", "frobnicate"]),
    "undefined label": ("if r1 == 0 goto nowhere\nexit\n", ["nowhere"]),
    "integer over 64 bits": ("r0 = 0x1ffffffffffffffff\nexit\n", ["line 1", "does not fit in 64 bits"]),
    "integer over 4300 digits": ("r0 = " + "9" * 5000 + "\nexit\n", ["line 1", "does not fit in 64 bits"]),
    "a 20 kB line": (".insn " + "a" * 20000 + "\nexit\n", ["line 1", "..."]),
    "empty file": ("", ["no instructions"]),
    "only comments and directives": ("# nothing\n.text\n.globl f\n// more\n", ["no instructions"]),
    "out-of-range jump": ("goto +40000\nexit\n", ["line 1"]),
    "undeclared map": ("r1 = map[counts] ll\nexit\n", ["counts", "not declared"]),
}


def ebpf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ebpf", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_assembly(case: str, tmp_path: pathlib.Path) -> None:
    text, needles = CASES[case]
    src = tmp_path / "bad.s"
    src.write_text(text)
    res = ebpf("asm", str(src), "-o", str(tmp_path / "out.bin"))
    assert res.returncode == 1, res
    assert res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("ebpf asm: error: ")
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)
    assert len(res.stderr) < 400
    assert not (tmp_path / "out.bin").exists()


def test_not_utf8(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "latin1.s"
    src.write_bytes(b"r0 = 0 # caf\xe9\nexit\n")
    res = ebpf("asm", str(src), "-o", str(tmp_path / "out.bin"))
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert "is not UTF-8 text (byte 0xe9 at offset 12)" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([sys.executable, "-m", "ebpf", "asm", "-", "-o", str(tmp_path / "out.bin")],
                         input=b"\xff\xfe", capture_output=True, timeout=60)
    assert res.returncode == 1 and b"stdin is not UTF-8 text" in res.stderr and res.stderr.count(b"\n") == 1


def test_missing_file(tmp_path: pathlib.Path) -> None:
    res = ebpf("asm", str(tmp_path / "nope.s"), "-o", str(tmp_path / "o"))
    assert res.returncode == 1 and "cannot read" in res.stderr and res.stderr.count("\n") == 1


def test_bad_attach_spec(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "ok.s"
    src.write_text("r0 = 0\nexit\n")
    res = ebpf("asm", str(src), "--attach", "kprobe-ish:foo")
    assert res.returncode == 1 and "bad --attach" in res.stderr and res.stderr.count("\n") == 1


def test_roundtrip_through_raw_bytes(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "p.s"
    src.write_text("r0 = 0\nif r1 s> r2 goto +1\nw0 = -1\nr1 = 0x123456789 ll\nexit\n")
    assert ebpf("asm", str(src), "-o", str(tmp_path / "p.bin")).returncode == 0
    assert (tmp_path / "p.bin").stat().st_size == 6 * 8
    res = ebpf("disasm", str(tmp_path / "p.bin"))
    assert res.returncode == 0
    assert [ln.strip() for ln in res.stdout.splitlines()] == [
        "r0 = 0", "if r1 s> r2 goto +1", "w0 = -1", "r1 = 4886718345 ll", "exit",
    ]


def test_disasm_rejects_truncated_bytecode(tmp_path: pathlib.Path) -> None:
    (tmp_path / "t.bin").write_bytes(b"\x18\x01" + bytes(10))
    res = ebpf("disasm", str(tmp_path / "t.bin"))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
