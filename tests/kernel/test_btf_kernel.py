"""The running kernel's BTF (/sys/kernel/btf/vmlinux) read by us, checked against bpftool."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Dict

import pytest

from ebpf.btf import BTFError, CDumper, Composite, Enum, Kind, kernel_btf, module_btf
from ebpf.btf.kernel import VMLINUX

BPFTOOL = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
TYPES = [
    "struct task_struct", "struct file", "struct sk_buff", "union bpf_attr", "struct bpf_prog_info",
    "enum bpf_map_type", "struct pt_regs", "struct trace_entry", "struct rq", "struct dentry",
    "struct sock_common", "typedef pid_t", "struct bpf_func_info", "struct perf_event_attr",
]

pytestmark = pytest.mark.skipif(not os.path.exists(VMLINUX), reason=f"feature probe: no {VMLINUX}")


@pytest.fixture(scope="module")
def bpftool_definitions() -> Dict[str, str]:
    """Each definition in bpftool's C dump of vmlinux, keyed by its first line's ``kind name``."""
    if BPFTOOL is None:
        pytest.skip("needs bpftool")
    done = subprocess.run([BPFTOOL, "btf", "dump", "file", VMLINUX, "format", "c"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found: Dict[str, str] = {"__full__": done.stdout}
    for chunk in done.stdout.split("\n\n"):
        head = chunk.split("\n", 1)[0]
        words = head.split()
        if len(words) >= 2 and words[0] in ("struct", "union", "enum") and head.endswith("{"):
            found.setdefault(f"{words[0]} {words[1]}", chunk)
        elif words[:1] == ["typedef"] and chunk.endswith(";"):
            found.setdefault("typedef " + chunk.rstrip(";").split()[-1], chunk)
    return found


@pytest.fixture(scope="module")
def dumper() -> CDumper:
    return CDumper(kernel_btf())


@pytest.mark.parametrize("spec", TYPES)
def test_definition_matches_bpftool(bpftool_definitions: Dict[str, str], dumper: CDumper, spec: str) -> None:
    keyword, name = spec.split()
    kinds = {"struct": Kind.STRUCT, "union": Kind.UNION, "enum": (Kind.ENUM, Kind.ENUM64), "typedef": Kind.TYPEDEF}
    btf = kernel_btf()
    ours = dumper.definition(btf.type_by_name(name, kinds[keyword]).id)  # type: ignore[arg-type]
    assert ours == bpftool_definitions[spec]


def test_whole_dump_matches_bpftool(bpftool_definitions: Dict[str, str]) -> None:
    assert CDumper(kernel_btf()).dump_all() == bpftool_definitions["__full__"]


def test_kernel_btf_is_shared_and_answers() -> None:
    btf = kernel_btf()
    assert kernel_btf() is btf
    task = btf.type_by_name("task_struct", Kind.STRUCT)
    assert isinstance(task, Composite)
    assert task.field("comm").type.sizeof() == 16
    assert task.field("real_parent").type.resolve().kind == Kind.PTR
    assert btf.size_of(btf.type_by_name("pid_t")) == 4
    map_type = btf.type_by_name("bpf_map_type")
    assert isinstance(map_type, Enum) and map_type.value_of("BPF_MAP_TYPE_HASH") == 1
    funcs = btf.ids_by_name("bpf_map_lookup_elem", Kind.FUNC) + btf.ids_by_name("do_sys_openat2", Kind.FUNC)
    assert funcs
    assert btf.byte_order == sys.byteorder


def test_module_btf() -> None:
    with pytest.raises(BTFError, match="no BTF for module"):
        module_btf("no_such_module_here")
    with pytest.raises(BTFError, match="not a kernel module name"):
        module_btf("../vmlinux")
    modules = [n for n in os.listdir("/sys/kernel/btf") if n != "vmlinux"]
    if modules:
        mod = module_btf(modules[0])
        assert mod.base is kernel_btf() and mod.first_id == kernel_btf().last_id + 1
        assert module_btf(modules[0]) is mod
