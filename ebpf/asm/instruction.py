"""The instruction model: one eBPF instruction plus the metadata later layers hang on it.

An :class:`Instruction` holds the raw encoding fields (``opcode``, ``dst``, ``src``, ``off``,
``imm``) so that encoding is a straight ``struct`` pack, and keeps what the encoding cannot
carry next to them: the label defined here, the symbol it refers to (resolved by
:func:`ebpf.asm.linker.link` or, for maps, by the loader), where it came from (for BTF line
info and error messages), a comment, and a free ``meta`` dict (CO-RE relocation records, map
objects). ``__slots__`` keeps construction and attribute access fast; the builder creates one
object per instruction.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from ebpf.asm import opcodes as _op
from ebpf.errors import EncodingError

__all__ = ["ProgramItem", "Instruction", "Label", "SourcePos"]

_LD_IMM64 = _op.LD_IMM64


class SourcePos(NamedTuple):
    """Where an instruction came from: file, 1-based line and column, and the source text."""

    file: str
    line: int
    col: int
    text: str


def _normalize_imm(opcode: int, imm: int) -> int:
    """Bring an immediate given as unsigned into the signed range the encoding uses.

    Both ``0xffffffff`` and ``-1`` are natural ways to write the same 32-bit immediate; storing
    one form makes equality and decoding agree.
    """
    if opcode == _LD_IMM64:
        if -(1 << 63) <= imm < (1 << 63):
            return imm
        if 0 <= imm < (1 << 64):
            return imm - (1 << 64)
        raise EncodingError(f"64-bit immediate {imm} out of range")
    if 0 <= imm <= 0xFFFFFFFF:
        return imm - (1 << 32)
    raise EncodingError(f"immediate {imm} does not fit in 32 bits")


class ProgramItem:
    """What an instruction list given to the linker may hold: instructions and label markers.

    A common base so that a literal like ``[ja("out"), label("out"), exit_()]`` has one
    element type for type checkers.
    """

    __slots__ = ()


class Label(ProgramItem):
    """A marker in an instruction list: the next instruction gets this label when linked."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"label({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Label) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Label", self.name))


class Instruction(ProgramItem):
    """One eBPF instruction (an LD_IMM64 counts as one instruction of two slots).

    ``off`` is signed 16-bit, ``imm`` signed 32-bit except for LD_IMM64 where it is the whole
    signed 64-bit value (the encoder splits it over the two slots). Values given in unsigned
    form are normalized. Equality compares the encoding fields only, so decoded instructions
    compare equal to built ones whatever their metadata; instructions are therefore unhashable.
    """

    __slots__ = ("opcode", "dst", "src", "off", "imm", "label", "reference", "source", "comment", "_meta")

    def __init__(
        self,
        opcode: int,
        dst: int = 0,
        src: int = 0,
        off: int = 0,
        imm: int = 0,
        *,
        label: Optional[str] = None,
        reference: Optional[str] = None,
        source: Optional[SourcePos] = None,
        comment: Optional[str] = None,
        meta: Optional[dict] = None,
    ) -> None:
        if not (0 <= dst <= 15 and 0 <= src <= 15 and 0 <= opcode <= 0xFF):
            raise EncodingError(f"bad instruction fields: opcode={opcode:#x} dst={dst} src={src}")
        if not -0x8000 <= off <= 0x7FFF:
            if not 0 <= off <= 0xFFFF:
                raise EncodingError(f"offset {off} does not fit in 16 bits")
            off -= 0x10000
        if not -0x80000000 <= imm <= 0x7FFFFFFF:
            imm = _normalize_imm(opcode, imm)
        self.opcode = opcode
        self.dst = dst
        self.src = src
        self.off = off
        self.imm = imm
        self.label = label
        self.reference = reference
        self.source = source
        self.comment = comment
        self._meta = meta

    @property
    def meta(self) -> dict:
        """Free-form data for later layers; created on first use so plain instructions stay small."""
        if self._meta is None:
            self._meta = {}
        return self._meta

    @meta.setter
    def meta(self, value: dict) -> None:
        self._meta = value

    # -- decoding the opcode ------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Slots occupied: 2 for LD_IMM64, 1 otherwise (jump offsets count slots)."""
        return 2 if self.opcode == _LD_IMM64 else 1

    @property
    def cls(self) -> int:
        """Instruction class (``opcodes.ALU64``, ``opcodes.JMP``...)."""
        return self.opcode & 0x07

    @property
    def op(self) -> int:
        """Operation of an ALU or JMP instruction (``opcodes.ADD``, ``opcodes.JEQ``...)."""
        return self.opcode & 0xF0

    @property
    def mode(self) -> int:
        """Mode of a load or store (``opcodes.MEM``, ``opcodes.ATOMIC``...)."""
        return self.opcode & 0xE0

    @property
    def uses_src_reg(self) -> bool:
        """True for the register (``BPF_X``) form of an ALU or JMP instruction."""
        return bool(self.opcode & 0x08)

    @property
    def width(self) -> int:
        """Bytes accessed by a load or store (1, 2, 4 or 8)."""
        return _op.SIZE_BYTES[self.opcode & 0x18]

    @property
    def is_ld_imm64(self) -> bool:
        return self.opcode == _LD_IMM64

    @property
    def is_jump(self) -> bool:
        """A branch whose target is pc-relative in ``off`` (or ``imm`` for gotol)."""
        cls = self.opcode & 0x07
        if cls == _op.JMP32:
            return True
        return cls == _op.JMP and (self.opcode & 0xF0) not in (_op.CALL, _op.EXIT)

    @property
    def is_call(self) -> bool:
        return self.opcode & 0xF7 == _op.JMP | _op.CALL

    @property
    def is_exit(self) -> bool:
        return self.opcode == _op.JMP | _op.EXIT

    @property
    def is_map_load(self) -> bool:
        """An LD_IMM64 whose immediate the loader replaces with a map fd (or fd_array index)."""
        return self.opcode == _LD_IMM64 and self.src in _op.MAP_PSEUDOS

    # -- identity -------------------------------------------------------------------------------

    def fields(self) -> tuple:
        """The encoding fields as a tuple (what equality compares)."""
        return (self.opcode, self.dst, self.src, self.off, self.imm)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instruction):
            return NotImplemented
        return (
            self.opcode == other.opcode
            and self.dst == other.dst
            and self.src == other.src
            and self.off == other.off
            and self.imm == other.imm
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, and equality ignores metadata

    def copy(self) -> Instruction:
        """A copy with its own ``meta`` dict (linking returns copies rather than mutating)."""
        new = Instruction.__new__(Instruction)
        new.opcode = self.opcode
        new.dst = self.dst
        new.src = self.src
        new.off = self.off
        new.imm = self.imm
        new.label = self.label
        new.reference = self.reference
        new.source = self.source
        new.comment = self.comment
        new._meta = dict(self._meta) if self._meta is not None else None
        return new

    def __repr__(self) -> str:
        extra = ""
        for name in ("label", "reference", "comment"):
            value: Any = getattr(self, name)
            if value is not None:
                extra += f", {name}={value!r}"
        return (
            f"Instruction({self.opcode:#04x}, dst={self.dst}, src={self.src}, off={self.off}, "
            f"imm={self.imm}{extra})"
        )

    def __str__(self) -> str:
        """The instruction in assembly syntax (imports the disassembler on first use)."""
        from ebpf.asm.disasm import format_instruction

        return format_instruction(self)
