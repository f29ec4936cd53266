"""CO-RE on the running kernel: programs "compiled" with another kernel's offsets (Ubuntu 5.4's,
from the corpus facts) are relocated at load time and read the right fields; a field this
kernel lacks is guarded with FIELD_EXISTS (dead branch poisoned, program loads) or, unguarded,
fails with a message naming it.

Programs are built with ebpf.asm and hand-made CoreRelo records, as the compiler will emit them.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

from ebpf import asm as A
from ebpf.asm import opcodes as o
from ebpf.btf import BTF, load
from ebpf.btf.core import Relocator
from ebpf.btf.relo import CoreRelo
from ebpf.collection import CollectionSpec
from ebpf.collection import load as load_collection
from ebpf.errors import VerifierError
from ebpf.maps.spec import MapSpec
from ebpf.program import ProgramSpec
from ebpf.uapi import CoreReloKind as K
from ebpf.uapi import ProgType

HOOK = "syscalls/sys_enter_getppid"
GET_CURRENT_TASK, GET_CURRENT_TASK_BTF, PROBE_READ_KERNEL = 35, 158, 113
GET_CURRENT_PID_TGID, MAP_UPDATE_ELEM = 14, 2
# struct task_struct on Ubuntu 5.4.0-1059-aws (corpus facts): what the program was "compiled" with
OLD = {"real_parent": 2256, "tgid": 2244, "comm": 2680, "state": 16}
CHILD = (
    "import os, sys\n"
    "ppid = os.getppid()\n"  # the syscall the program hooks
    "comm = open('/proc/self/comm').read().strip()\n"
    "sys.stdout.write(f'{ppid} {os.getpid()} {comm}\\n')\n"
)


def core(insn: A.Instruction, kind: K, access: Tuple[Any, ...], value: int) -> A.Instruction:
    """Attach a relocation whose compile-time value *value* the instruction holds."""
    if insn.cls in (o.LDX, o.ST, o.STX):  # loads and stores: the offset
        insn.off = value
    else:
        insn.imm = value
    insn.meta["core"] = CoreRelo(kind, "struct task_struct", access, value)
    return insn


def probe_read(dst_fp: int, size: int, src_reg: int, field: str) -> List[Any]:
    """bpf_probe_read_kernel(fp + dst_fp, size, src_reg + offsetof(task_struct, field))."""
    return [
        A.mov64(A.R1, A.R10), A.add64(A.R1, dst_fp),
        A.mov64(A.R2, size),
        A.mov64(A.R3, src_reg),
        core(A.add64(A.R3, 0), K.FIELD_BYTE_OFFSET, (field,), OLD[field]),
        A.call(PROBE_READ_KERNEL),
    ]


def store(map_name: str, value_fp: int) -> List[Any]:
    """out[current tgid] = fp[value_fp:...]"""
    return [
        A.call(GET_CURRENT_PID_TGID), A.rsh64(A.R0, 32), A.stx(4, A.R10, A.R0, -4),
        A.ld_map_fd(A.R1, map_name),
        A.mov64(A.R2, A.R10), A.add64(A.R2, -4),
        A.mov64(A.R3, A.R10), A.add64(A.R3, value_fp),
        A.mov64(A.R4, 0),
        A.call(MAP_UPDATE_ELEM),
        A.mov64(A.R0, 0), A.exit_(),
    ]


def parent_program() -> List[Any]:
    """Value at fp-48: u32 real_parent->tgid, u32 pad, char comm[16], char parent_comm[16]."""
    prog: List[Any] = [A.call(GET_CURRENT_TASK), A.mov64(A.R6, A.R0)]
    prog += [A.st(8, A.R10, off, 0) for off in (-56, -48, -40, -32, -24, -16)]
    prog += probe_read(-56, 8, A.R6, "real_parent")  # parent = current->real_parent
    prog += [A.ldx(8, A.R7, A.R10, -56)]
    prog += probe_read(-48, 4, A.R7, "tgid")  # parent->tgid
    prog += probe_read(-40, 16, A.R6, "comm")  # current->comm
    prog += probe_read(-24, 16, A.R7, "comm")  # parent->comm
    return prog + store("out", -48)


def run_child() -> Tuple[int, int, str]:
    out = subprocess.run([sys.executable, "-S", "-c", CHILD], capture_output=True, text=True, check=True,
                         timeout=30).stdout.split()
    return int(out[0]), int(out[1]), out[2]


def comm_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode()


def test_reads_real_parent_tgid_and_comm_through_core() -> None:
    spec = CollectionSpec([ProgramSpec("core_parent", ProgType.TRACEPOINT, parent_program(), attach_to=HOOK)],
                          [MapSpec("out", "hash", "u32", 40, 1024)])
    with load_collection(spec) as coll:
        relocated = coll.programs["core_parent"].instructions
        offsets = [i.imm for i in relocated if i.meta.get("core_fix") is not None]
        assert offsets and all(o not in OLD.values() for o in offsets)  # really patched for this kernel
        coll.attach()
        ppid, pid, comm = run_child()
        value = coll.maps["out"].get(pid)
    assert ppid == os.getpid()
    assert value is not None, "the program did not see the child's getppid()"
    tgid, _pad, child_comm, parent_comm = struct.unpack("=II16s16s", bytes(value))
    assert tgid == ppid == os.getpid()
    assert cstr(child_comm) == comm
    assert cstr(parent_comm) == comm_of(os.getpid())


def guarded_program() -> List[Any]:
    """if field_exists(task->state): v = task->state (old kernels) else v = task->__state."""
    return [
        A.call(GET_CURRENT_TASK_BTF), A.mov64(A.R6, A.R0),
        A.st(8, A.R10, -16, 0), A.st(8, A.R10, -8, 0),
        core(A.mov64(A.R1, 0), K.FIELD_EXISTS, ("state",), 1),
        A.jeq(A.R1, 0, "new"),
        core(A.ldx(8, A.R2, A.R6, 0), K.FIELD_BYTE_OFFSET, ("state",), OLD["state"]),
        A.mov64(A.R3, 1),
        A.ja("store"),
        A.label("new"),
        core(A.ldx(4, A.R2, A.R6, 0), K.FIELD_BYTE_OFFSET, ("__state",), 0),  # absent on 5.4: 0
        A.mov64(A.R3, 2),
        A.label("store"),
        A.stx(4, A.R10, A.R3, -16),  # which branch ran
        A.stx(4, A.R10, A.R2, -12),  # the state read
        core(A.ldx(4, A.R2, A.R6, 0), K.FIELD_BYTE_OFFSET, ("tgid",), OLD["tgid"]),
        A.stx(4, A.R10, A.R2, -8),
    ] + store("out", -16)


def test_guarded_missing_field_loads_and_takes_the_other_branch() -> None:
    spec = CollectionSpec([ProgramSpec("core_guard", ProgType.TRACEPOINT, guarded_program(), attach_to=HOOK)],
                          [MapSpec("out", "hash", "u32", 12, 1024)])
    with load_collection(spec) as coll:
        relocated = coll.programs["core_guard"].instructions
        poisoned = [i for i in relocated if "core_poison" in i.meta]
        assert len(poisoned) == 1 and poisoned[0].imm == 0xBAD2310  # the dead state read
        coll.attach()
        _ppid, pid, _comm = run_child()
        value = coll.maps["out"].get(pid)
    assert value is not None, "the program did not see the child's getppid()"
    branch, state, tgid = struct.unpack("=III", bytes(value))
    assert branch == 2  # __state, not state
    assert state == 0  # TASK_RUNNING while making a system call
    assert tgid == pid


def test_unguarded_missing_field_fails_naming_it() -> None:
    prog = [
        A.call(GET_CURRENT_TASK_BTF),
        A.mov64(A.R6, A.R0),
        core(A.ldx(8, A.R0, A.R6, 0), K.FIELD_BYTE_OFFSET, ("state",), OLD["state"]),
        A.mov64(A.R0, 0), A.exit_(),
    ]
    spec = CollectionSpec([ProgramSpec("core_bad", ProgType.TRACEPOINT, prog, attach_to=HOOK)])
    with pytest.raises(VerifierError) as e:
        load_collection(spec).close()
    first = e.value.summary.splitlines()[0]
    assert first == (
        "program 'core_bad': instruction 2 was poisoned: CO-RE relocation field_byte_offset of "
        "struct task_struct.state cannot be resolved on this kernel (no field state in struct task_struct)"
    )
    assert "invalid func unknown#195896080" in e.value.log


def test_unguarded_poisoned_ld_imm64_names_the_enum_value() -> None:
    ld = A.ld_imm64(A.R0, 7)
    ld.meta["core"] = CoreRelo(K.ENUMVAL_VALUE, "enum pid_type", ("PIDTYPE_NO_SUCH",), 7)
    spec = CollectionSpec([ProgramSpec("core_enum", ProgType.TRACEPOINT, [A.mov64(A.R1, 0), ld, A.exit_()],
                                       attach_to=HOOK)])
    with pytest.raises(VerifierError) as e:
        load_collection(spec).close()
    assert ("instruction 1 was poisoned: CO-RE relocation enumval_value of enum pid_type.PIDTYPE_NO_SUCH "
            "cannot be resolved on this kernel (no value PIDTYPE_NO_SUCH in enum pid_type)") in e.value.summary


def test_target_btf_is_passed_through_collection_load(tmp_path: Any) -> None:
    """Relocating for another kernel's BTF (the 5.4 blob of the corpus) gives its offsets."""
    corpus = "/work/shared/btf/5.4.0-1059-aws-amd64.btf.xz"
    if not os.path.exists(corpus):
        pytest.skip("no BTF corpus to take another kernel's BTF from")
    import lzma

    path = tmp_path / "5.4.btf"
    with lzma.open(corpus) as src:
        path.write_bytes(src.read())
    other: BTF = load(str(path))
    spec = CollectionSpec([ProgramSpec("core_other", ProgType.TRACEPOINT, parent_program(), attach_to=HOOK)],
                          [MapSpec("out", "hash", "u32", 40, 16)])
    with load_collection(spec, target_btf=other) as coll:
        offsets = [i.imm for i in coll.programs["core_other"].instructions if i.meta.get("core_fix") is not None]
    assert offsets == [OLD["real_parent"], OLD["tgid"], OLD["comm"], OLD["comm"]]


BPFTOOL_STRUCTS = ("task_struct", "mm_struct", "file", "dentry", "request", "sk_buff", "sock", "inode")


def bpftool_members() -> Dict[str, List[Tuple[str, int, int]]]:
    """(name, bits_offset, bitfield_size) of the named direct members of some structs, as
    ``bpftool btf dump file /sys/kernel/btf/vmlinux format raw`` prints them."""
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.path.exists(tool):
        pytest.skip("needs bpftool")
    raw = subprocess.run([tool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw"],
                         capture_output=True, text=True, check=True).stdout
    out: Dict[str, List[Tuple[str, int, int]]] = {}
    current: Optional[str] = None
    for line in raw.splitlines():
        if not line.startswith("\t"):
            m = re.match(r"\[\d+\] STRUCT '(\w+)' size=", line)
            current = m.group(1) if m and m.group(1) in BPFTOOL_STRUCTS and m.group(1) not in out else None
            if current:
                out[current] = []
            continue
        if current:
            m = re.match(r"\t'(\w+)' type_id=\d+ bits_offset=(\d+)(?: bitfield_size=(\d+))?", line)
            if m:
                out[current].append((m.group(1), int(m.group(2)), int(m.group(3) or 0)))
    return out


def test_offsets_agree_with_bpftool() -> None:
    """The running kernel, relocated through the default target, against bpftool's reading."""
    members = bpftool_members()
    assert set(members) == set(BPFTOOL_STRUCTS)
    relocator = Relocator()
    checked = 0
    for struct_name, fields in members.items():
        for name, bits, bitfield in fields:
            relo = CoreRelo(K.FIELD_BYTE_OFFSET, f"struct {struct_name}", (name,))
            got = relocator.resolve(relo)
            if bitfield:
                assert got.value * 8 <= bits < (got.value + 8) * 8, f"{struct_name}.{name}"
                lshift = relocator.resolve(relo._replace(kind=K.FIELD_LSHIFT_U64)).value
                size = relocator.resolve(relo._replace(kind=K.FIELD_BYTE_SIZE)).value
                assert 64 - lshift - bitfield == bits - got.value * 8, f"{struct_name}.{name}"  # little-endian
                assert size * 8 >= bits - got.value * 8 + bitfield
            else:
                assert got.value * 8 == bits, f"{struct_name}.{name}"
            checked += 1
    assert checked > 400
