"""Instructions to bytes and back, in the kernel's 8-byte slot format.

A slot is ``code u8, regs u8, off s16, imm s32``; on little-endian targets ``regs`` holds dst in
the low nibble and src in the high one, on big-endian the other way round. LD_IMM64 takes two
slots, the second with a zero header and the high 32 bits of the immediate. Precompiled
``struct.Struct`` objects do the packing: this is the hot path of every program load.
"""

from __future__ import annotations

import struct
from typing import Iterable, List

from ebpf.asm.instruction import Instruction
from ebpf.asm.opcodes import LD_IMM64, VALID_OPCODES
from ebpf.errors import EncodingError

__all__ = ["encode", "decode", "SLOT_SIZE"]

SLOT_SIZE = 8
_LOW = 0xFFFFFFFF

_SLOT = {"little": struct.Struct("<BBhi"), "big": struct.Struct(">BBhi")}
# LD_IMM64 packed in one call: first slot with the low half unsigned, 4 zero header bytes, high half.
_WIDE = {"little": struct.Struct("<BBhIxxxxi"), "big": struct.Struct(">BBhIxxxxi")}


def _check_order(byteorder: str) -> None:
    if byteorder not in _SLOT:
        raise ValueError(f"byteorder must be 'little' or 'big', not {byteorder!r}")


def encode(insns: Iterable[Instruction], byteorder: str = "little") -> bytes:
    """Encode instructions to their wire form (what BPF_PROG_LOAD and ELF sections hold).

    Fields are not re-validated here (the constructor did that); a field that was later set to
    something unencodable raises :class:`EncodingError` naming the instruction's index.
    """
    _check_order(byteorder)
    insns = insns if isinstance(insns, list) else list(insns)
    pack = _SLOT[byteorder].pack
    pack_wide = _WIDE[byteorder].pack
    out: List[bytes] = []
    append = out.append
    try:
        if byteorder == "little":
            for insn in insns:
                if insn.opcode == LD_IMM64:
                    imm = insn.imm
                    append(pack_wide(LD_IMM64, insn.dst | insn.src << 4, insn.off, imm & _LOW, imm >> 32))
                else:
                    append(pack(insn.opcode, insn.dst | insn.src << 4, insn.off, insn.imm))
        else:
            for insn in insns:
                if insn.opcode == LD_IMM64:
                    imm = insn.imm
                    append(pack_wide(LD_IMM64, insn.src | insn.dst << 4, insn.off, imm & _LOW, imm >> 32))
                else:
                    append(pack(insn.opcode, insn.src | insn.dst << 4, insn.off, insn.imm))
    except (struct.error, TypeError) as exc:
        _raise_unencodable(insns, len(out), exc)
    return b"".join(out)


def _raise_unencodable(insns: List[Instruction], index: int, exc: Exception) -> None:
    """Name the instruction (and its source line, when known) that the fast path choked on."""
    insn = insns[index]
    where = f"instruction {index}"
    if insn.source is not None:
        where += f" ({insn.source.file}:{insn.source.line})"
    raise EncodingError(f"cannot encode {where}: {insn!r}: {exc}") from exc


def decode(data: bytes, byteorder: str = "little") -> List[Instruction]:
    """Decode a program's bytes; the inverse of :func:`encode`.

    Raises :class:`EncodingError` with the byte offset for a length that is not a multiple of
    8, an unknown opcode, an LD_IMM64 cut short, or an LD_IMM64 whose second slot has a
    non-zero code, register or offset field. Register numbers 11-15 and non-zero reserved
    fields are kept as they are (the disassembler shows them as ``.insn``), so that
    ``encode(decode(b)) == b`` for anything that decodes.
    """
    _check_order(byteorder)
    size = len(data)
    if size % SLOT_SIZE:
        raise EncodingError(
            f"program length {size} is not a multiple of 8 "
            f"(trailing bytes at offset {size - size % SLOT_SIZE})"
        )
    little = byteorder == "little"
    slots = _SLOT[byteorder].iter_unpack(data)
    out: List[Instruction] = []
    append = out.append
    valid = VALID_OPCODES
    offset = 0
    for code, regs, off, imm in slots:
        if code not in valid:
            raise EncodingError(f"unknown opcode {code:#04x} at byte offset {offset}")
        if code == LD_IMM64:
            nxt = next(slots, None)
            if nxt is None:
                raise EncodingError(f"truncated LD_IMM64 at byte offset {offset}: second slot missing")
            if nxt[0] or nxt[1] or nxt[2]:
                raise EncodingError(
                    f"LD_IMM64 at byte offset {offset}: second slot (byte offset {offset + 8}) "
                    "must have zero code, registers and offset"
                )
            imm = (nxt[3] << 32) | (imm & 0xFFFFFFFF)
            offset += 8
        if little:
            append(Instruction(code, regs & 0x0F, regs >> 4, off, imm))
        else:
            append(Instruction(code, regs >> 4, regs & 0x0F, off, imm))
        offset += 8
    return out
