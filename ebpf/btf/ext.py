"""Program BTF with func_info and line_info, built from instructions' source positions.

Every instruction the DSL or the text assembler emits carries ``source`` (file, line, column,
text). We turn that into the kernel's line_info so that the verifier's log interleaves our
source lines (``; x = task.real_parent.tgid @ tool.py:12``) and ``bpftool prog dump xlated``
shows them. func_info marks each subprogram start (the entry and every bpf-to-bpf call or
callback target), which the kernel requires as soon as line_info is given.

Records (include/uapi/linux/bpf.h): ``bpf_func_info {u32 insn_off; u32 type_id}`` and
``bpf_line_info {u32 insn_off; u32 file_name_off; u32 line_off; u32 line_col}`` with
``line_col = line << 10 | col``; offsets count instruction slots.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, NamedTuple, Sequence

from ebpf.btf.builder import FUNC_GLOBAL, FUNC_STATIC, BTFBuilder

FUNC_INFO = struct.Struct("<II")
LINE_INFO = struct.Struct("<IIII")

_CALL = 0x85
_LD_IMM64 = 0x18
_PSEUDO_CALL = 1
_PSEUDO_FUNC = 4


class ProgramBTF(NamedTuple):
    blob: bytes
    func_info: bytes
    line_info: bytes
    func_info_rec_size: int = FUNC_INFO.size
    line_info_rec_size: int = LINE_INFO.size


def subprogram_starts(insns: Sequence[Any]) -> Dict[int, str]:
    """Slot index -> name of every function start: 0 and each local call or callback target."""
    slots = []
    pc = 0
    for insn in insns:
        slots.append(pc)
        pc += 2 if insn.opcode == _LD_IMM64 else 1
    labels = {slot: insn.label for slot, insn in zip(slots, insns) if insn.label}
    starts: Dict[int, str] = {}
    for slot, insn in zip(slots, insns):
        if (insn.opcode == _CALL and insn.src == _PSEUDO_CALL) or (
            insn.opcode == _LD_IMM64 and insn.src == _PSEUDO_FUNC
        ):
            target = slot + int(insn.imm) + 1
            starts.setdefault(target, labels.get(target) or f"sub_{target}")
    return starts


def _clean(name: str) -> str:
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
    return out if out and not out[0].isdigit() else "f_" + out


def program_btf(insns: Sequence[Any], name: str) -> ProgramBTF:
    """BTF (one FUNC per subprogram, ``int f(void *ctx)``) plus func_info and line_info."""
    b = BTFBuilder()
    int_id = b.int("int", 4, signed=True)
    ctx_ptr = b.pointer(0)
    proto = b.func_proto(int_id, [("ctx", ctx_ptr)])
    starts = subprogram_starts(insns)
    funcs: List[bytes] = [FUNC_INFO.pack(0, b.func(_clean(name), proto, FUNC_GLOBAL))]
    for slot in sorted(starts):
        if slot != 0:
            funcs.append(FUNC_INFO.pack(slot, b.func(_clean(starts[slot]), proto, FUNC_STATIC)))
    lines: List[bytes] = []
    last = None
    pc = 0
    for insn in insns:
        src = getattr(insn, "source", None)
        key = (src.file, src.line, src.col) if src is not None else None
        if pc == 0 or pc in starts or (key is not None and key != last):
            if src is not None:
                lines.append(LINE_INFO.pack(pc, b.string(src.file), b.string(src.text.strip()),
                                            min(src.line, (1 << 22) - 1) << 10 | min(max(src.col, 0), 0x3FF)))
            else:
                lines.append(LINE_INFO.pack(pc, 0, 0, 0))
            last = key
        pc += 2 if insn.opcode == _LD_IMM64 else 1
    return ProgramBTF(b.encode(), b"".join(funcs), b"".join(lines))


def has_source(insns: Sequence[Any]) -> bool:
    """True when any instruction knows where it came from (worth emitting line info)."""
    return any(getattr(insn, "source", None) is not None for insn in insns)
