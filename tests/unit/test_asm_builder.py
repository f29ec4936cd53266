"""Builder functions, label resolution (link) and map binding (bind_maps)."""

from __future__ import annotations

from typing import Callable

import pytest

from ebpf.asm import (
    FP,
    R0,
    R1,
    R2,
    R3,
    R6,
    Instruction,
    Label,
    Reg,
    bind_maps,
    disassemble,
    encode,
    label,
    link,
)
from ebpf.asm import builder as b
from ebpf.asm import opcodes as o
from ebpf.errors import AssemblerError, LoadError
from ebpf.uapi import HelperId


def test_register_vs_immediate_operand() -> None:
    assert b.add64(R1, R2).fields() == (o.ALU64 | o.ADD | o.X, 1, 2, 0, 0)
    assert b.add64(R1, 2).fields() == (o.ALU64 | o.ADD | o.K, 1, 0, 0, 2)
    assert b.add32(1, R2).opcode == o.ALU | o.ADD | o.X  # any int works as dst
    assert b.sdiv64(R1, R2).off == 1 and b.smod32(R1, 3).off == 1
    assert b.movsx64(R0, R1, 32).fields() == (0xBF, 0, 1, 32, 0)
    assert b.bswap(R3, 64).fields() == (0xD7, 3, 0, 0, 64)
    assert b.to_be(R3, 16).fields() == (0xDC, 3, 0, 0, 16)


def test_memory_and_atomics() -> None:
    assert b.ldx("dw", R0, FP, -8) == b.ldx(8, R0, R10(), -8)
    assert b.stx(4, R10(), R1, -4).opcode == 0x63
    assert b.st("b", R1, 2, 7).fields() == (0x72, 1, 0, 2, 7)
    assert b.ldsx(2, R0, R1, 2).opcode == 0x89
    assert b.atomic_add(8, R1, R2, 0, fetch=True).imm == 0x01
    assert b.atomic_cmpxchg(4, R1, R2).fields() == (0xC3, 1, 2, 0, 0xF1)
    assert b.ld_abs(1, 4).opcode == 0x30 and b.ld_ind(4, R1, 2).fields() == (0x40, 0, 1, 0, 2)


def R10() -> Reg:
    return Reg(10)


def test_calls() -> None:
    assert b.call("ktime_get_ns").imm == 5
    assert b.call("bpf_ktime_get_ns").imm == 5
    assert b.call(HelperId.map_lookup_elem).imm == 1
    assert b.call(7).imm == 7
    assert b.call_local("f").src == o.CALL_PSEUDO
    k = b.call_kfunc(1234, module=2)
    assert (k.src, k.imm, k.off) == (o.CALL_KFUNC, 1234, 2)
    assert b.call_kfunc("bpf_task_acquire").reference == "bpf_task_acquire"


def test_pseudo_loads() -> None:
    assert b.ld_map_fd(R1, 5).fields() == (o.LD_IMM64, 1, 1, 0, 5)
    mv = b.ld_map_value(R1, 5, 8)
    assert (mv.src, mv.imm & 0xFFFFFFFF, mv.imm >> 32) == (2, 5, 8)
    named = b.ld_map_value(R2, "counts", 16)
    assert (named.reference, named.imm) == ("counts", 16 << 32)
    assert b.ld_btf_id(R1, 77, btf_fd=3).imm == (3 << 32) | 77
    assert b.ld_map_idx(R1, 3).src == 5 and b.ld_map_idx_value(R1, 3, 4).src == 6


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: b.mov64(11, 1), "bad register 11"),
        (lambda: b.add64(R1, 1 << 32), "out of range"),
        (lambda: b.ldx(3, R0, R1, 0), "bad access size 3"),
        (lambda: b.ldx(8, R0, R1, 40000), "offset 40000"),
        (lambda: b.movsx32(R0, R1, 32), "8 or 16"),
        (lambda: b.to_le(R0, 8), "16, 32 or 64"),
        (lambda: b.atomic_add(2, R1, R2), "4 or 8 bytes"),
        (lambda: b.call("no_such_helper"), "unknown helper 'no_such_helper'"),
        (lambda: b.gotol(1 << 31), "32 bits"),
        (lambda: Reg(11), "bad register r11"),
        (lambda: b.ldsx(8, R0, R1), "no 8-byte form"),
    ],
)
def test_builder_errors(make: Callable[[], object], message: str) -> None:
    with pytest.raises(AssemblerError, match=message):
        make()


# -- link ---------------------------------------------------------------------------------------


def test_forward_and_backward_jumps_count_slots() -> None:
    prog = link([
        b.mov64(R0, 0),                  # 0
        label("loop"),
        b.add64(R0, 1),                  # 1
        b.ld_imm64(R1, 1 << 40),         # 2-3 (two slots)
        b.jlt(R0, 10, "loop"),           # 4 -> 1: off = 1 - 4 - 1 = -4
        b.jeq(R0, R1, "out"),            # 5 -> 8: off = 2
        b.gotol("out"),                  # 6 -> 8: imm = 1
        b.ja("loop"),                    # 7 -> 1: off = -7
        label("out"),
        b.exit_(),                       # 8
    ])
    assert [i.off for i in prog if i.is_jump and i.opcode != 0x06] == [-4, 2, -7]
    assert prog[5].imm == 1 and prog[5].opcode == 0x06
    assert prog[1].label == "loop" and prog[-1].label == "out"
    # references survive, so the listing shows names and re-linking is a no-op
    assert link(prog) == prog
    assert "if r0 < 10 goto loop" in disassemble(prog)


def test_calls_and_func_loads_resolve_into_imm() -> None:
    prog = link([
        label("main"),
        b.ld_func(R2, "cb"),             # 0-1 -> 4: imm = 4 - 0 - 1 (kernel: target = i + imm + 1)
        b.call_local("cb"),              # 2 -> 4: imm = 1
        b.exit_(),                       # 3
        label("cb"),
        b.mov64(R0, 0),                  # 4
        b.call_local("main"),            # 5 -> 0: imm = -6
        b.exit_(),
    ])
    assert prog[0].imm == 3 and prog[1].imm == 1
    assert prog[4].imm == -6 and prog[4].src == o.CALL_PSEUDO
    back = link([label("f"), b.exit_(), b.ld_func(R1, "f")])
    assert back[1].imm == 0xFFFFFFFE  # -2 in the low half; the high half stays 0
    assert encode(back)[12:16] == b"\xfe\xff\xff\xff"


def test_link_does_not_mutate_input() -> None:
    jump = b.ja("end")
    items = [jump, label("end"), b.exit_()]
    out = link(items)
    assert jump.off == 0 and out[0].off == 0 and out[0] is jump  # offset 0: nothing to change
    first = b.ja("end")
    out = link([first, b.exit_(), label("end"), b.exit_()])
    assert first.off == 0 and out[0].off == 1 and out[0] is not first


def test_several_labels_on_one_instruction() -> None:
    prog = link([b.ja("b"), label("a"), label("b"), b.exit_(), b.ja("a")])
    assert prog[0].off == 0 and prog[2].off == -2


def test_label_field_on_instruction_works_like_marker() -> None:
    target = b.exit_()
    target.label = "done"
    assert link([b.ja("done"), b.mov64(R0, 0), target])[0].off == 1


def test_undefined_label() -> None:
    with pytest.raises(AssemblerError, match="undefined label 'nowhere'"):
        link([b.jeq(R0, 0, "nowhere"), b.exit_()])


def test_duplicate_label() -> None:
    with pytest.raises(AssemblerError, match="duplicate label 'x'"):
        link([label("x"), b.exit_(), label("x"), b.exit_()])
    first = b.exit_()
    first.label = "y"
    second = b.exit_()
    second.label = "y"
    with pytest.raises(AssemblerError, match="duplicate label 'y'"):
        link([first, second])


def test_label_at_end_names_the_end_of_the_program() -> None:
    """As in llvm-mc: the jump gets the offset past the last instruction (the verifier judges it)."""
    linked = link([b.ja("end"), b.exit_(), label("end")])
    assert linked[0].off == 1 and linked[0].reference is None
    assert link(linked)[0].off == 1


def test_jump_out_of_16_bit_range_names_label() -> None:
    body = [b.mov64(R0, 0)] * 40000
    with pytest.raises(AssemblerError, match=r"jump to 'far' out of range: offset 40000 .*gotol"):
        link([b.ja("far"), *body, label("far"), b.exit_()])
    prog = link([b.gotol("far"), *body, label("far"), b.exit_()])
    assert prog[0].imm == 40000


def test_helper_and_map_references_are_not_resolved_by_link() -> None:
    prog = link([b.ld_map_fd(R1, "counts"), b.call_kfunc("bpf_x"), b.exit_()])
    assert prog[0].reference == "counts" and prog[0].imm == 0
    assert prog[1].reference == "bpf_x" and prog[1].imm == 0


# -- bind_maps ----------------------------------------------------------------------------------


def test_bind_maps_writes_fd_and_keeps_src_and_offset() -> None:
    prog = link([b.ld_map_fd(R1, "counts"), b.ld_map_value(R2, "data", -8), b.ld_imm64(R3, 9), b.exit_()])
    bound = bind_maps(prog, {"counts": 7, "data": 9})
    assert (bound[0].src, bound[0].imm) == (o.PSEUDO_MAP_FD, 7)
    assert (bound[1].src, bound[1].imm & 0xFFFFFFFF, bound[1].imm >> 32) == (o.PSEUDO_MAP_VALUE, 9, -8)
    assert bound[2] is prog[2]
    assert prog[0].imm == 0  # input untouched
    assert bound[0].reference == "counts"  # kept, so the listing still names the map
    assert "r1 = map[counts] ll" in disassemble(prog)
    assert "r1 = map[fd:7] ll" in disassemble(bound)


def test_bind_maps_unknown_map() -> None:
    with pytest.raises(LoadError, match="unknown map 'missing'"):
        bind_maps([b.ld_map_fd(R1, "missing")], {})


def test_unlinked_builder_list_disassembles_with_labels() -> None:
    items = [b.jeq(R1, 0, "out"), b.mov64(R0, 1), label("out"), b.exit_()]
    listing = disassemble(items)
    assert listing == "\tif r1 == 0 goto out\n\tr0 = 1\nout:\n\texit\n"
    from ebpf.asm import assemble

    assert assemble(listing).instructions == link(items)


def test_label_marker_repr_and_equality() -> None:
    assert label("a") == Label("a") and repr(label("a")) == "label('a')"
    with pytest.raises(AssemblerError):
        label("")


def test_callee_saved_names() -> None:
    assert int(R6) == 6 and isinstance(b.mov64(R6, R1), Instruction)
