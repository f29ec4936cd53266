"""The caches against the real kernel: a cached program the verifier refuses is compiled afresh,
and a poisoned BTF index planted by another user does not change what root's exitsnoop reports."""

from __future__ import annotations

import os
import pathlib
import shutil
import struct
import subprocess
import sys
from typing import List

import pytest
from toolrun import ToolRun

from ebpf import cache_files
from ebpf.asm import Instruction
from ebpf.asm import opcodes as o
from ebpf.btf import Composite
from ebpf.btf import cache as btf_cache
from ebpf.btf.kernel import VMLINUX
from ebpf.lang import spec_file

NOBODY = 65534
ROOT = pathlib.Path(__file__).resolve().parents[2]

TOOL = '''
from ebpf import lang as L
from ebpf.lang import u32, u64

coll = L.Collection("cachekern")
counts = coll.array_map("counts", value=u64, max_entries=4)


@coll.socket_filter
def prog(ctx):
    counts[u32(L.get_smp_processor_id()) & 3] += 1
    return 0
'''


def test_cached_program_the_verifier_refuses_is_recompiled(tmp_path: pathlib.Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EBPF_CACHE_DIR", str(tmp_path / "cache"))
    src = tmp_path / "cachekern_tool.py"
    src.write_text(TOOL)
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('cachekern_tool', {str(src)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "with module.coll.load() as live:\n"
        "    print(live.programs['prog'].info()['xlated_prog_len'] > 16)\n"
        "print('ebpf.lang.compiler' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run() -> List[str]:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run() == ["True", "True"]  # compiled, cached
    (entry,) = (tmp_path / "cache" / "programs").iterdir()
    payload = cache_files.unseal(entry.read_bytes(), spec_file.MAGIC)
    assert payload is not None
    key = bytes(payload[spec_file._HEAD.size:spec_file._HEAD.size + spec_file._HEAD.unpack_from(payload)[0]])
    good = spec_file.decode_spec(payload, key.decode())
    assert good is not None
    bad = good.copy()
    bad.instructions = [Instruction(o.LDX | o.MEM | o.DW, 0, 9, 0), Instruction(o.JMP | o.EXIT)]  # r9 unset
    entry.write_bytes(b"".join(cache_files.seal(spec_file.MAGIC, spec_file.encode_spec(bad, key.decode()))))
    assert run() == ["True", "True"]  # refused, dropped, compiled again: loaded
    assert run() == ["True", "False"]  # and the good compile is what the cache holds now


def test_planted_btf_index_does_not_change_exitsnoop(tmp_path: pathlib.Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache under a directory another user owns (XDG_CACHE_HOME in a world-writable place):
    their index, which makes ``u64`` decode as ``u8``, would turn a 0.3 s age into the uptime (the
    compile cache is emptied before each run: a compile made from a trusted poison persists there)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    home = shared / "home"
    monkeypatch.setenv("EBPF_CACHE_DIR", str(home / "ebpf"))
    monkeypatch.setattr(cache_files, "_notes", [])
    btf = btf_cache.load_cached(VMLINUX, defer=False)  # the real index, written as root
    (cached,) = (home / "ebpf" / "btf").iterdir()
    (task,) = btf.types_by_name("task_struct")
    assert isinstance(task, Composite)
    member = task.find_member("start_time")
    assert member is not None
    victim = member.type.id  # the typedef u64
    donor = next(t.id for t in btf.types_by_name("u8") if t.kind == btf.type_by_id(victim).kind)
    assert (victim - 1) % max(1, btf.count // btf_cache._SAMPLES), "start_time's type is a sampled record"
    payload = cache_files.unseal(cached.read_bytes(), btf_cache._MAGIC)
    assert payload is not None
    raw = bytearray(payload)
    at = btf_cache._HEADER.size
    struct.pack_into("=I", raw, at + 4 * (victim - 1), struct.unpack_from("=I", raw, at + 4 * (donor - 1))[0])
    cached.write_bytes(b"".join(cache_files.seal(btf_cache._MAGIC, [bytes(raw)])))

    def age() -> float:
        shutil.rmtree(home / "ebpf" / "programs", ignore_errors=True)  # what the last run compiled
        child = subprocess.Popen(["/bin/sh", "-c", "read x; sleep 0.3; exit 4"], stdin=subprocess.PIPE)
        tool = ToolRun("exitsnoop", "-p", str(child.pid))
        tool.wait_for(lambda line: "PCOMM" in line)
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait() == 4
        tool.proc.wait(10)
        tool.stop()
        (line,) = [x for x in tool.seen[1:] if x]
        return float(line.split()[4])

    assert age() > 10  # trusted (ours), the poison works: the age is about the uptime
    for who in (home, home / "ebpf", cached):  # planted by someone else: ignored
        os.chown(who, NOBODY, NOBODY)
        assert 0.25 <= age() < 5
        os.chown(who, 0, 0)
