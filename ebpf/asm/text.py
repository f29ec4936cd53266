"""The text assembler: LLVM/bpftool eBPF assembly to instructions (and map declarations).

The syntax is the one ``llvm-mc -triple=bpfel -mcpu=v4`` accepts, and
:func:`ebpf.asm.disasm.disassemble` prints exactly what llvm-mc-19 prints, so listings move
freely between us and LLVM::

    r0 = *(u32 *)(r1 + 8)        *(u64 *)(r10 - 8) = r1        w0 += 1        r0 = -r0
    if r1 > 5 goto +3            if w1 s< w2 goto LBB0_1       goto +1        gotol +100000
    call 5                       exit                          r1 = 0x1234567890 ll
    r0 = be16 r0                 r0 = bswap64 r0               r0 = (s8)r1    r0 = *(s16 *)(r1 + 2)
    lock *(u64 *)(r1 + 0) += r2  r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)
    r0 = cmpxchg_64(r1 + 0, r0, r2)   r0 = xchg_64(r1 + 0, r0)   may_goto +2   callx r1
    r0 = *(u8 *)skb[4]           r0 = *(u32 *)skb[r1]          r0 = addr_space_cast(r1, 0, 1)

Labels are ``name:`` (several may share an instruction, one may precede an instruction on
the same line, and one after the last instruction names the end of the program, where a jump
assembles and the verifier judges it); jumps and calls name them or give a slot offset (``+3``,
``-1``). Numeric local labels (``1:``) may be defined again and again: ``1b`` is the closest
``1:`` before, ``1f`` the next one after. Comments start with ``#``, ``//`` or ``;`` (a comment
after an instruction is kept in its ``comment``). Registers may be written upper-case.
Integers are C literals: decimal, ``0x`` hex, ``0b`` binary, ``0``-prefixed octal, with an
optional ``U``/``L``/``LL``/``UL``/``ULL`` suffix in any case (``5ll`` is the number 5; a
64-bit load is ``r1 = 5 ll``). A literal must fit in 64 bits; a 32-bit immediate keeps the
low 32 bits of a wider value, as llvm-mc does (``w0 = 0xffffffff`` is ``w0 = -1`` and
``r0 = 0x1234567890`` is ``r0 = 0x34567890``); offsets must fit their 16 bits. ``gotol``
takes a full 32-bit offset (llvm-mc-19 only accepts 16 bits). Directives as in llvm-mc:
``.8byte``/``.quad N[, N...]`` are raw instruction words (the little-endian 64-bit value of
one slot; an LD_IMM64 takes two words), ``.rept N`` ... ``.endr`` repeats the lines between
(nested, up to a million lines in all).

Extensions (our own; llvm-mc has no syntax for these, its ``ld_pseudo r1, 1, 5`` is accepted
on input but loses the second immediate):

* ``call ktime_get_ns`` / ``call bpf_ktime_get_ns``: a helper by name, when no label of that
  name exists (llvm reads ``call name`` as a bpf-to-bpf call to a label, and so do we if the
  label is defined). The disassembler prints helper calls as numbers, like llvm
  (``disassemble(..., annotate=True)`` adds the name as a comment).
* ``call pc+3`` / ``call pc-7``: bpf-to-bpf call by offset (llvm prints ``call 3`` and loses
  the pseudo-call src=1); ``call name`` when the label exists.
* ``call kfunc[1234]``, ``call kfunc[1234, idx:2]``, ``call kfunc[bpf_task_acquire]``: kfunc
  call (src=2) by BTF id, ``idx`` = fd_array index of the module BTF (off), or by name (left
  in ``reference`` for the loader).
* ``rN = map[counts] ll``, ``rN = map[fd:5] ll``: PSEUDO_MAP_FD by map name (symbolic, bound by
  the loader) or raw fd; ``rN = map[idx:3] ll``: PSEUDO_MAP_IDX (fd_array index).
* ``rN = map_value[counts] + 8 ll``, ``map_value[fd:5] + 8``, ``map_value[idx:3] + 8``:
  PSEUDO_MAP_VALUE / PSEUDO_MAP_IDX_VALUE with the value offset (second immediate).
* ``rN = btf_id[1234] ll``, ``btf_id[1234, fd:7]``, ``btf_id[name]``: PSEUDO_BTF_ID, with the
  module BTF object fd as second immediate.
* ``rN = func[name] ll``, ``rN = func[pc+3] ll``: PSEUDO_FUNC (callback address).
  (The trailing ``ll`` of these pseudo loads is optional on input and always printed.)
* ``r0 = *(u32 *)skb[r1 + 4]``: LD_IND with a non-zero immediate.
* ``.insn code=0x07 dst=0 src=1 off=5 imm=5``: any raw instruction (the disassembler prints
  non-canonical encodings this way so that nothing is lost).
* ``.map NAME type=hash key=4 value=8 max_entries=1024 flags=no_prealloc|0x10``: declares a
  map (see :class:`MapDecl`); ``key``/``value``/``flags`` default to 0. Map names used in
  ``map[...]`` need not be declared in the same text (the loader may supply them).
* ``.text``, ``.globl``, ``.global``, ``.type``, ``.size``, ``.p2align``, ``.align``,
  ``.file``, ``.addrsig`` are accepted and ignored (they appear in ``clang -S`` output).
"""

from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from ebpf.asm import opcodes as o
from ebpf.asm.builder import helper_id
from ebpf.asm.disasm import disassemble
from ebpf.asm.instruction import Instruction, Label, ProgramItem, SourcePos
from ebpf.asm.linker import link as _link
from ebpf.asm.linker import merge_labels
from ebpf.asm.mapdecl import MapDecl
from ebpf.errors import AssemblerError

__all__ = ["Assembly", "assemble", "disassemble"]


class Assembly(NamedTuple):
    """What :func:`assemble` returns: the (linked) instructions and the ``.map`` declarations."""

    instructions: List[Instruction]
    maps: List[MapDecl]


class _Syntax(Exception):
    """A problem on the current line; :func:`assemble` adds the line number and text."""


_REG = r"([rRwW][0-9]+)"
_NUM = r"([+-]?\s*(?:0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)[uU]?[lL]{0,2})"
_INT = re.compile(r"([+-]?)\s*(?:0[xX]([0-9a-fA-F]+)|0[bB]([01]+)|([0-9]+))[uU]?[lL]{0,2}")
_ADDR = _REG + r"\s*(?:([+-])\s*" + _NUM + r")?"
_USZ = r"(u8|u16|u32|u64)"

_COMMENT = re.compile(r"#|//|;")
_LABEL = re.compile(r"\s*([A-Za-z_.$][A-Za-z0-9_.$]*|[0-9]+)\s*:(?!=)")
_LOCAL_REF = re.compile(r"([0-9]+)([bf])")
_WORD = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_ASSIGN = re.compile(_REG + r"\s*(s>>=|s/=|s%=|<<=|>>=|\+=|-=|\*=|/=|%=|\|=|&=|\^=|=)\s*(.*)$")
_IF = re.compile(
    r"if\s+" + _REG + r"\s*(==|!=|s>=|s<=|s>|s<|>=|<=|>|<|&)\s*(" + _REG[1:-1] + r"|[+-]?\s*[A-Za-z0-9_]+)"
    r"\s+goto\s+(\S+)$"
)
_GOTO = re.compile(r"(goto|gotol|may_goto)\s+(\S+)$")
_CALL = re.compile(r"call\s+(.+)$")
_CALLX = re.compile(r"callx\s+" + _REG + "$")
_STORE = re.compile(r"\*\s*\(\s*" + _USZ + r"\s*\*\s*\)\s*\(\s*" + _ADDR + r"\s*\)\s*=\s*(.+)$")
_LOCK = re.compile(
    r"lock\s+\*\s*\(\s*" + _USZ + r"\s*\*\s*\)\s*\(\s*" + _ADDR + r"\s*\)\s*(\+=|\|=|&=|\^=)\s*" + _REG + "$"
)
_LD_PSEUDO = re.compile(r"ld_pseudo\s+" + _REG + r"\s*,\s*" + _NUM + r"\s*,\s*" + _NUM + "$")

_R_LOAD = re.compile(r"\*\s*\(\s*([us](?:8|16|32|64))\s*\*\s*\)\s*\(\s*" + _ADDR + r"\s*\)$")
_R_SKB = re.compile(r"\*\s*\(\s*" + _USZ + r"\s*\*\s*\)\s*skb\s*\[\s*(?:" + _ADDR + "|" + _NUM + r")\s*\]$")
_R_NEG = re.compile(r"-\s*" + _REG + "$")
_R_END = re.compile(r"(be|le|bswap)(16|32|64)\s+" + _REG + "$")
_R_MOVSX = re.compile(r"\(\s*s(8|16|32)\s*\)\s*" + _REG + "$")
_R_FETCH = re.compile(
    r"atomic_fetch_(add|or|and|xor)\s*\(\s*\(\s*" + _USZ + r"\s*\*\s*\)\s*\(\s*" + _ADDR + r"\s*\)\s*,\s*"
    + _REG + r"\s*\)$"
)
_R_CMPXCHG = re.compile(
    r"cmpxchg(_64|32_32)\s*\(\s*" + _ADDR + r"\s*,\s*" + _REG + r"\s*,\s*" + _REG + r"\s*\)$"
)
_R_XCHG = re.compile(r"xchg(_64|32_32)\s*\(\s*" + _ADDR + r"\s*,\s*" + _REG + r"\s*\)$")
_R_ASCAST = re.compile(r"addr_space_cast\s*\(\s*" + _REG + r"\s*,\s*" + _NUM + r"\s*,\s*" + _NUM + r"\s*\)$")
_R_PSEUDO = re.compile(r"(map|map_value|btf_id|func)\s*\[([^\]]*)\]\s*(?:([+-])\s*" + _NUM + r")?\s*(ll)?$")
_R_IMM = re.compile(_NUM + r"(\s+ll)?$")
_R_REG = re.compile(_REG + "$")
_R_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KFUNC = re.compile(r"kfunc\s*\[([^\],]*)(?:,\s*idx\s*:\s*" + _NUM + r")?\s*\]$")
_PCREL = re.compile(r"pc\s*([+-]\s*[0-9]+)$")
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*$")
_KEYVAL = re.compile(r"\s*([A-Za-z0-9_]+)\s*=\s*([^\s=]+)")

_ALU_OPS = {
    "+=": o.ADD, "-=": o.SUB, "*=": o.MUL, "/=": o.DIV, "|=": o.OR, "&=": o.AND, "<<=": o.LSH,
    ">>=": o.RSH, "%=": o.MOD, "^=": o.XOR, "s>>=": o.ARSH, "s/=": o.DIV, "s%=": o.MOD,
}
_JMP_OPS = {
    "==": o.JEQ, ">": o.JGT, ">=": o.JGE, "&": o.JSET, "!=": o.JNE, "s>": o.JSGT, "s>=": o.JSGE,
    "<": o.JLT, "<=": o.JLE, "s<": o.JSLT, "s<=": o.JSLE,
}
_ATOMIC_OPS = {"+=": o.ADD, "|=": o.OR, "&=": o.AND, "^=": o.XOR}
_FETCH_OPS = {"add": o.ADD, "or": o.OR, "and": o.AND, "xor": o.XOR}
_SIZE = {"u8": o.B, "u16": o.H, "u32": o.W, "u64": o.DW, "s8": o.B, "s16": o.H, "s32": o.W}
_RAW_WORDS = frozenset({".8byte", ".quad"})
_MAX_LINES = 1_000_000  # what .rept may expand to: the kernel's limit on instructions
_IGNORED_DIRECTIVES = frozenset(
    {".text", ".globl", ".global", ".type", ".size", ".p2align", ".align", ".file", ".addrsig",
     ".addrsig_sym"}
)
_KEYWORDS = frozenset(
    {"if", "goto", "gotol", "may_goto", "call", "callx", "exit", "lock", "ld_pseudo"}
)
_RHS_WORDS = frozenset(
    {"be", "le", "bswap", "atomic_fetch_add", "atomic_fetch_or", "atomic_fetch_and", "atomic_fetch_xor",
     "cmpxchg_64", "cmpxchg32_32", "xchg_64", "xchg32_32", "addr_space_cast", "map", "map_value",
     "btf_id", "func"}
)

_U32 = 1 << 32
_I32_MIN = -(1 << 31)
_I64_MIN = -(1 << 63)
_U64 = 1 << 64
_DIGITS = {16: 16, 2: 64, 8: 22, 10: 20}  # more digits than this (leading zeros aside) exceed 64 bits


# -- operands ----------------------------------------------------------------------------------


def _reg(token: str) -> Tuple[int, bool]:
    """Register number and whether it is a 32-bit (``w``) name."""
    number = int(token[1:]) if len(token) <= 3 else o.MAX_REG + 1
    if number > o.MAX_REG:
        raise _Syntax(f"bad register {token!r}: registers are r0..r10 (w0..w10)")
    return number, token[0] in "wW"


def _reg64(token: str, what: str) -> int:
    number, is32 = _reg(token)
    if is32:
        raise _Syntax(f"{what} must be a 64-bit register (r0..r10), not {token!r}")
    return number


def _num(token: str) -> int:
    """A C integer literal (see the module docstring); its magnitude must fit in 64 bits."""
    if token.isascii() and token.isdigit() and (token[0] != "0" or len(token) == 1) and len(token) < 20:
        return int(token)  # the common case, plain decimal
    m = _INT.fullmatch(token.strip())
    if m is None:
        raise _Syntax(f"expected a number, not {token.strip()!r}")
    sign, hexa, binary, other = m.groups()
    if hexa is not None:
        digits, base = hexa, 16
    elif binary is not None:
        digits, base = binary, 2
    elif other[0] == "0" and len(other) > 1:
        digits, base = other, 8
        if "8" in other or "9" in other:
            raise _Syntax(f"bad octal number {token.strip()!r} (a leading 0 means octal, as in C)")
    else:
        digits, base = other, 10
    digits = digits.lstrip("0") or "0"
    # checked before int(): Python refuses decimal strings over 4300 digits with ValueError
    value = int(digits, base) if len(digits) <= _DIGITS[base] else _U64
    if value >= _U64:
        shown = token.strip() if len(token.strip()) <= 30 else token.strip()[:27] + "..."
        raise _Syntax(f"integer {shown!r} does not fit in 64 bits")
    return -value if sign == "-" else value


def _imm32(value: int) -> int:
    """The low 32 bits of a 32-bit immediate, as llvm-mc keeps them (``r0 = 0x1234567890``)."""
    return value & 0xFFFFFFFF


def _keyvals(text: str) -> Tuple[List[Tuple[str, str]], str]:
    """``key=value`` pairs from the start of ``text`` and what is left after them.

    Matched one pair at a time from where the last ended (linear in the line's length; a
    ``finditer`` search restarts at every character of a long malformed line).
    """
    pairs: List[Tuple[str, str]] = []
    pos = 0
    while True:
        m = _KEYVAL.match(text, pos)
        if m is None:
            return pairs, text[pos:].strip()
        pairs.append((m.group(1), m.group(2)))
        pos = m.end()


def _imm32_signed(value: int, what: str) -> int:
    if not _I32_MIN <= value < -_I32_MIN:
        raise _Syntax(f"{what} {value} out of range for a signed 32-bit field")
    return value


def _off16(value: int, what: str = "offset") -> int:
    if not -0x8000 <= value <= 0x7FFF:
        raise _Syntax(f"{what} {value} out of range for a signed 16-bit field")
    return value


def _addr(base: str, sign: Optional[str], off: Optional[str]) -> Tuple[int, int]:
    reg = _reg64(base, "a memory base")
    if off is None:
        return reg, 0
    value = _num(off)
    return reg, _off16(-value if sign == "-" else value)


def _same_width(a: str, b: str) -> None:
    if (a[0] in "wW") != (b[0] in "wW"):
        raise _Syntax(f"register width mismatch: {a} and {b}")


# -- the parser ----------------------------------------------------------------------------------


class _Assembler:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.items: List[ProgramItem] = []
        self.labels: Dict[str, int] = {}  # name -> line
        self.maps: List[MapDecl] = []
        self.named_calls: List[Tuple[Instruction, str]] = []
        self.numeric: Dict[str, int] = {}  # numeric local label -> definitions so far
        self.forward: List[Tuple[str, str, int, str]] = []  # name, "1f", line, text
        self.half: Optional[Tuple[Tuple[int, int, int, int, int], int, str]] = None  # LD_IMM64 word
        self.lineno = 0
        self.raw_line = ""
        self.col = 0

    # -- driver --

    def run(self, text: str, link: bool) -> Assembly:
        for lineno, raw in _expand(text.splitlines()):
            self.lineno, self.raw_line = lineno, raw
            try:
                self.line(raw, lineno)
            except _Syntax as exc:
                raise AssemblerError(str(exc), line=lineno, text=raw) from None
        if self.half is not None:
            raise AssemblerError(
                "an LD_IMM64 word (opcode 0x18) needs its second half in the next .8byte word",
                line=self.half[1], text=self.half[2],
            )
        for name, token, lineno, raw in self.forward:
            if name not in self.labels:
                raise AssemblerError(f"no '{token[:-1]}:' after {token!r}", line=lineno, text=raw)
        for insn, name in self.named_calls:
            if name in self.labels:
                insn.src = o.CALL_PSEUDO
                insn.reference = name
                continue
            try:
                insn.imm = helper_id(name)
            except AssemblerError:
                if link:
                    src = insn.source
                    raise AssemblerError(
                        f"undefined label or helper {name!r}",
                        line=src.line if src else None, text=src.text if src else None,
                    ) from None
                insn.src = o.CALL_PSEUDO
                insn.reference = name
        if link:
            insns = _link(self.items)
            if not insns:
                raise AssemblerError("no instructions: the text is empty or has only comments, labels and "
                                     "directives")
        else:
            insns, trailing = merge_labels(self.items)
            if trailing:
                raise AssemblerError(f"label {trailing[0]!r} is not followed by an instruction",
                                     line=self.labels[trailing[0]])
        return Assembly(insns, self.maps)

    def line(self, raw: str, lineno: int) -> None:
        text = raw
        comment: Optional[str] = None
        m = _COMMENT.search(text)
        if m is not None:
            comment = text[m.end():].strip() or None
            text = text[: m.start()]
        pos = 0
        while True:
            m = _LABEL.match(text, pos)
            if m is None:
                break
            self.define(m.group(1), lineno)
            pos = m.end()
        text = text[pos:].strip()
        if not text:
            return
        self.col = raw.find(text) + 1
        # one space for every run of blanks: the patterns' neighbouring optional blanks
        # (``\s*(...)?\s*``) then backtrack over one space, not over thousands
        text = " ".join(text.split())
        if self.half is not None and not text.startswith(tuple(_RAW_WORDS)):
            raise AssemblerError(
                "an LD_IMM64 word (opcode 0x18) needs its second half in the next .8byte word",
                line=self.half[1], text=self.half[2],
            )
        if text[0] == "." and self.directive(text):
            return
        self.emit(self.instruction(text), comment)

    def emit(self, insn: Instruction, comment: Optional[str]) -> None:
        insn.source = SourcePos(self.filename, self.lineno, self.col, self.raw_line.strip())
        insn.comment = comment
        self.items.append(insn)

    def define(self, name: str, lineno: int) -> None:
        if self.half is not None:
            raise _Syntax(f"a label cannot split an LD_IMM64 in two .8byte words (line {self.half[1]})")
        if name.isascii() and name.isdigit():
            key = name.lstrip("0") or "0"
            count = self.numeric[key] = self.numeric.get(key, 0) + 1
            name = _local_name(key, count)
        if name in self.labels:
            raise _Syntax(f"duplicate label {name!r} (first defined on line {self.labels[name]})")
        if _R_REG.match(name) is not None:
            raise _Syntax(f"label {name!r} looks like a register")
        self.labels[name] = lineno
        self.items.append(Label(name))

    def label_ref(self, token: str) -> Optional[str]:
        """The label a jump, call or func[] names: a symbol, or ``1b``/``1f``; None for neither."""
        if _SYMBOL.match(token):
            return token
        m = _LOCAL_REF.fullmatch(token)
        if m is None:
            return None
        key = m.group(1).lstrip("0") or "0"
        count = self.numeric.get(key, 0)
        if m.group(2) == "b":
            if count == 0:
                raise _Syntax(f"no '{m.group(1)}:' before {token!r}")
            return _local_name(key, count)
        name = _local_name(key, count + 1)
        self.forward.append((name, token, self.lineno, self.raw_line))
        return name

    # -- directives --

    def directive(self, text: str) -> bool:
        """Handle a directive; False if the line is an instruction after all (``.insn``)."""
        word = text.split(None, 1)[0]
        if word in _IGNORED_DIRECTIVES:
            return True
        if word == ".map":
            self.map_decl(text[4:].strip())
            return True
        if word in _RAW_WORDS:
            self.raw_words(text[len(word):])
            return True
        if word == ".insn":
            return False
        if word in (".rept", ".endr"):
            raise _Syntax(f"{word!r} must begin its line (no label before it)")
        raise _Syntax(f"unknown directive {word[:40]!r}")

    def raw_words(self, rest: str) -> None:
        """``.8byte``/``.quad``: each value is one slot; an LD_IMM64 pairs with the next value."""
        values = [v.strip() for v in rest.split(",")]
        if not all(re.fullmatch(_NUM, v) for v in values):
            raise _Syntax("expected '.8byte N[, N...]' (raw 64-bit instruction words)")
        for value in values:
            number = _num(value)
            if number < _I64_MIN:
                raise _Syntax(f"integer {value!r} does not fit in 64 bits")
            word = number & (_U64 - 1)
            fields = (word & 0xFF, (word >> 8) & 0x0F, (word >> 12) & 0x0F, (word >> 16) & 0xFFFF, word >> 32)
            if self.half is not None:
                (code, dst, src, off, low), lineno, raw = self.half
                if fields[:4] != (0, 0, 0, 0):
                    raise AssemblerError(
                        "the second half of an LD_IMM64 (.8byte) word must have zero code, registers and "
                        "offset", line=lineno, text=raw,
                    )
                self.half = None
                insn = Instruction(code, dst, src, off, fields[4] << 32 | low)
            elif fields[0] == o.LD_IMM64:
                self.half = (fields, self.lineno, self.raw_line)
                continue
            else:
                insn = Instruction(*fields)
            self.emit(insn, None)

    def map_decl(self, rest: str) -> None:
        parts = rest.split(None, 1)
        if not parts or not _SYMBOL.match(parts[0]):
            raise _Syntax("expected '.map NAME type=TYPE key=N value=N max_entries=N [flags=...]'")
        name = parts[0]
        if any(m.name == name for m in self.maps):
            raise _Syntax(f"duplicate map {name!r}")
        pairs, left = _keyvals(parts[1] if len(parts) > 1 else "")
        if left:
            raise _Syntax(f"malformed .map argument {left!r}")
        fields: Dict[str, str] = {}
        for key, value in pairs:
            if key in fields:
                raise _Syntax(f"duplicate .map key {key!r}")
            fields[key] = value
        unknown = set(fields) - {"type", "key", "value", "max_entries", "flags"}
        if unknown:
            raise _Syntax(
                f"unknown .map key {sorted(unknown)[0]!r} (use type, key, value, max_entries, flags)"
            )
        if "type" not in fields or "max_entries" not in fields:
            raise _Syntax(f".map {name} needs type= and max_entries=")
        from ebpf.uapi import MapFlag, MapType  # deferred: only files with maps pay for the enums

        type_name = fields["type"].lower()
        if type_name.upper() not in MapType.__members__:
            raise _Syntax(f"unknown map type {fields['type']!r}")
        flags = 0
        for flag in fields.get("flags", "0").split("|"):
            if re.fullmatch(_NUM, flag):
                _num(flag)  # range check before the mask
                flags |= _num(flag)
            elif flag.upper() in MapFlag.__members__:
                flags |= int(MapFlag[flag.upper()])
            else:
                raise _Syntax(f"unknown map flag {flag!r}")
        sizes = []
        for key in ("key", "value", "max_entries"):
            value = fields.get(key, "0")
            if not re.fullmatch(_NUM, value) or not 0 <= _num(value) < _U32:
                raise _Syntax(f".map {key}= must be an unsigned 32-bit number, not {value!r}")
            sizes.append(_num(value))
        self.maps.append(MapDecl(name, type_name, sizes[0], sizes[1], sizes[2], flags))

    # -- instructions --

    def instruction(self, text: str) -> Instruction:
        c = text[0]
        if c == "*":
            return self.store(text)
        if c == "." and text.startswith(".insn"):
            return self.raw(text[5:])
        m = _ASSIGN.match(text)
        if m is not None:
            return self.assign(m.group(1), m.group(2), m.group(3).strip())
        w = _WORD.match(text)
        word = w.group(0) if w is not None else ""
        if word == "if":
            return self.cond_jump(text)
        if word in ("goto", "gotol", "may_goto"):
            return self.goto(text)
        if word == "call":
            return self.call(text)
        if word == "callx":
            m = _CALLX.match(text)
            if m is None:
                raise _Syntax("expected 'callx rN'")
            return Instruction(o.JMP | o.CALL | o.X, _reg64(m.group(1), "callx target"))
        if word == "exit":
            if text != "exit":
                raise _Syntax("'exit' takes no operands")
            return Instruction(o.JMP | o.EXIT)
        if word == "lock":
            return self.lock(text)
        if word == "ld_pseudo":
            return self.ld_pseudo(text)
        if word and word not in _KEYWORDS and not re.fullmatch(r"[rRwW][0-9]+", word):
            raise _Syntax(f"unknown mnemonic {word!r}")
        if re.fullmatch(r"[rRwW][0-9]+", word):
            _reg(word)  # a bad register name is the likelier mistake than a bad operator
        raise _Syntax("malformed instruction")

    def raw(self, rest: str) -> Instruction:
        fields = {"code": None, "dst": "0", "src": "0", "off": "0", "imm": "0"}
        seen = set()
        pairs, left = _keyvals(rest)
        for key, value in pairs:
            if key not in fields or key in seen:
                raise _Syntax(f"bad .insn field {key!r} (use code=, dst=, src=, off=, imm=)")
            seen.add(key)
            fields[key] = value
        if fields["code"] is None or left:
            raise _Syntax("expected '.insn code=N [dst=N] [src=N] [off=N] [imm=N]'")
        code, dst, src, off, imm = (_num(fields[k] or "") for k in ("code", "dst", "src", "off", "imm"))
        if not 0 <= code <= 0xFF or not 0 <= dst <= 15 or not 0 <= src <= 15:
            raise _Syntax(".insn code must be 0..255 and dst/src 0..15")
        _off16(off)
        if code == o.LD_IMM64:
            if not _I64_MIN <= imm < _U64:
                raise _Syntax(f"immediate {imm} out of range for a 64-bit field")
        elif not _I32_MIN <= imm < _U32:
            raise _Syntax(f"immediate {imm} out of range for a 32-bit field")
        return Instruction(code, dst, src, off, imm)

    def assign(self, dst_tok: str, op: str, rhs: str) -> Instruction:
        dst, is32 = _reg(dst_tok)
        if op != "=":
            cls = o.ALU if is32 else o.ALU64
            alu = _ALU_OPS[op] | cls
            off = 1 if op in ("s/=", "s%=") else 0
            m = _R_REG.match(rhs)
            if m is not None:
                src, _ = _reg(m.group(1))
                _same_width(dst_tok, m.group(1))
                return Instruction(alu | o.X, dst, src, off)
            m = _R_IMM.match(rhs)
            if m is not None and m.group(2) is None:
                return Instruction(alu, dst, 0, off, _imm32(_num(m.group(1))))
            raise self.bad_operand(rhs)
        if not rhs:
            raise _Syntax("missing right-hand side")
        c = rhs[0]
        if c == "*":
            return self.load(dst_tok, dst, is32, rhs)
        if c == "(":
            m = _R_MOVSX.match(rhs)
            if m is None:
                raise _Syntax("expected '(s8|s16|s32)rN'")
            bits = int(m.group(1))
            src, _ = _reg(m.group(2))
            _same_width(dst_tok, m.group(2))
            if is32 and bits == 32:
                raise _Syntax("32-bit movsx sign-extends from 8 or 16 bits only")
            return Instruction((o.ALU if is32 else o.ALU64) | o.MOV | o.X, dst, src, bits)
        m = _R_REG.match(rhs)
        if m is not None:
            src, _ = _reg(m.group(1))
            _same_width(dst_tok, m.group(1))
            return Instruction((o.ALU if is32 else o.ALU64) | o.MOV | o.X, dst, src)
        m = _R_IMM.match(rhs)
        if m is not None:
            value = _num(m.group(1))
            if m.group(2) is not None:
                if is32:
                    raise _Syntax(f"a 64-bit immediate load needs a 64-bit register, not {dst_tok!r}")
                return Instruction(o.LD_IMM64, dst, 0, 0, value & (_U64 - 1))
            return Instruction((o.ALU if is32 else o.ALU64) | o.MOV, dst, 0, 0, _imm32(value))
        if c == "-":
            m = _R_NEG.match(rhs)
            if m is None:
                raise self.bad_operand(rhs)
            src, _ = _reg(m.group(1))
            if m.group(1).lower() != dst_tok.lower():
                raise _Syntax(f"negation is in place: expected '{dst_tok} = -{dst_tok}'")
            return Instruction((o.ALU if is32 else o.ALU64) | o.NEG, dst)
        w = _R_WORD.match(rhs)
        word = w.group(0) if w is not None else ""
        m = _R_END.match(rhs)
        if m is not None:
            kind, bits, reg = m.group(1), int(m.group(2)), m.group(3)
            if is32 or reg[0] in "wW":
                raise _Syntax(f"{kind}{bits} operates on 64-bit registers (rN = {kind}{bits} rN)")
            if reg.lower() != dst_tok.lower():
                raise _Syntax(f"{kind}{bits} is in place: expected '{dst_tok} = {kind}{bits} {dst_tok}'")
            _reg(reg)
            if kind == "bswap":
                return Instruction(o.ALU64 | o.END | o.TO_LE, dst, 0, 0, bits)
            return Instruction(o.ALU | o.END | (o.TO_BE if kind == "be" else o.TO_LE), dst, 0, 0, bits)
        if word.startswith("atomic_fetch_"):
            return self.fetch(dst_tok, rhs)
        if word in ("cmpxchg_64", "cmpxchg32_32"):
            return self.cmpxchg(dst_tok, rhs)
        if word in ("xchg_64", "xchg32_32"):
            return self.xchg(dst_tok, rhs)
        if word == "addr_space_cast":
            m = _R_ASCAST.match(rhs)
            if m is None:
                raise _Syntax("expected 'rN = addr_space_cast(rM, DST_AS, SRC_AS)'")
            dst = _reg64(dst_tok, "addr_space_cast destination")
            src = _reg64(m.group(1), "addr_space_cast source")
            das, sas = _num(m.group(2)), _num(m.group(3))
            if not (0 <= das <= 0xFFFF and 0 <= sas <= 0xFFFF):
                raise _Syntax("address spaces must be 0..65535")
            return Instruction(o.ALU64 | o.MOV | o.X, dst, src, o.ADDR_SPACE_CAST, das << 16 | sas)
        if word in ("map", "map_value", "btf_id", "func"):
            return self.pseudo(dst_tok, rhs)
        if word and word not in _RHS_WORDS and not re.fullmatch(r"[rRwW][0-9]+", word):
            raise _Syntax(f"unknown mnemonic {word!r}")
        raise self.bad_operand(rhs)

    @staticmethod
    def bad_operand(rhs: str) -> _Syntax:
        m = re.match(r"[rRwW]([0-9]+)\b", rhs)
        if m is not None and (len(m.group(1)) > 2 or int(m.group(1)) > o.MAX_REG):
            return _Syntax(f"bad register {m.group(0)!r}: registers are r0..r10 (w0..w10)")
        m = _R_IMM.match(rhs)
        if m is not None:
            return _Syntax(f"'ll' needs a 64-bit register: {rhs!r}")
        return _Syntax(f"malformed operand {rhs!r}")

    def load(self, dst_tok: str, dst: int, is32: bool, rhs: str) -> Instruction:
        m = _R_LOAD.match(rhs)
        if m is not None:
            size = m.group(1)
            base, off = _addr(m.group(2), m.group(3), m.group(4))
            if size[0] == "s":
                if size == "s64":
                    raise _Syntax("there is no sign-extending 64-bit load (use u64)")
                if is32:
                    raise _Syntax(f"sign-extending loads write a 64-bit register, not {dst_tok!r}")
                return Instruction(o.LDX | o.MEMSX | _SIZE[size], dst, base, off)
            if is32 and size == "u64":
                raise _Syntax(f"a u64 load needs a 64-bit register, not {dst_tok!r}")
            return Instruction(o.LDX | o.MEM | _SIZE[size], dst, base, off)
        m = _R_SKB.match(rhs)
        if m is not None:
            size = m.group(1)
            if size == "u64":
                raise _Syntax("legacy packet loads are 1, 2 or 4 bytes")
            if dst != 0 or is32:
                raise _Syntax("legacy packet loads (skb[...]) always write r0")
            if m.group(2) is not None:
                src = _reg64(m.group(2), "an skb index")
                imm = 0
                if m.group(4) is not None:
                    imm = _imm32_signed(_num(m.group(4)) * (-1 if m.group(3) == "-" else 1), "packet offset")
                return Instruction(o.LD | o.IND | _SIZE[size], 0, src, 0, imm)
            return Instruction(o.LD | o.ABS | _SIZE[size], 0, 0, 0, _imm32(_num(m.group(5))))
        raise self.bad_operand(rhs)

    def store(self, text: str) -> Instruction:
        m = _STORE.match(text)
        if m is None:
            raise _Syntax("malformed store: expected '*(uN *)(rN + off) = rM' or '= imm'")
        size = _SIZE[m.group(1)]
        base, off = _addr(m.group(2), m.group(3), m.group(4))
        value = m.group(5).strip()
        r = _R_REG.match(value)
        if r is not None:
            src, is32 = _reg(r.group(1))
            if is32 and size == o.DW:
                raise _Syntax(f"a u64 store needs a 64-bit register, not {r.group(1)!r}")
            return Instruction(o.STX | o.MEM | size, base, src, off)
        r = _R_IMM.match(value)
        if r is not None and r.group(2) is None:
            return Instruction(o.ST | o.MEM | size, base, 0, off, _imm32(_num(r.group(1))))
        raise self.bad_operand(value)

    def lock(self, text: str) -> Instruction:
        m = _LOCK.match(text)
        if m is None:
            raise _Syntax("malformed atomic: expected 'lock *(u32|u64 *)(rN + off) op= rM'")
        size = _SIZE[m.group(1)]
        if size not in (o.W, o.DW):
            raise _Syntax("atomic operations are u32 or u64")
        base, off = _addr(m.group(2), m.group(3), m.group(4))
        src, is32 = _reg(m.group(6))
        if is32 and size == o.DW:
            raise _Syntax(f"a u64 atomic needs a 64-bit register, not {m.group(6)!r}")
        return Instruction(o.STX | o.ATOMIC | size, base, src, off, _ATOMIC_OPS[m.group(5)])

    def fetch(self, dst_tok: str, rhs: str) -> Instruction:
        m = _R_FETCH.match(rhs)
        if m is None:
            raise _Syntax("expected 'rN = atomic_fetch_OP((u64 *)(rM + off), rN)'")
        size = _SIZE[m.group(2)]
        if size not in (o.W, o.DW):
            raise _Syntax("atomic operations are u32 or u64")
        base, off = _addr(m.group(3), m.group(4), m.group(5))
        arg = m.group(6)
        src, is32 = _reg(arg)
        _same_width(dst_tok, arg)
        if is32 and size == o.DW:
            raise _Syntax(f"a u64 atomic needs a 64-bit register, not {arg!r}")
        if arg.lower() != dst_tok.lower():
            raise _Syntax(f"atomic_fetch_{m.group(1)} returns into its operand: expected '{arg} = ...'")
        return Instruction(o.STX | o.ATOMIC | size, base, src, off, _FETCH_OPS[m.group(1)] | o.FETCH)

    def cmpxchg(self, dst_tok: str, rhs: str) -> Instruction:
        m = _R_CMPXCHG.match(rhs)
        if m is None:
            raise _Syntax("expected 'r0 = cmpxchg_64(rN + off, r0, rM)'")
        wide = m.group(1) == "_64"
        base, off = _addr(m.group(2), m.group(3), m.group(4))
        old, new = m.group(5), m.group(6)
        for tok in (dst_tok, old, new):
            number, is32 = _reg(tok)
            if is32 == wide:
                raise _Syntax(f"cmpxchg{m.group(1)} takes {'r' if wide else 'w'} registers, not {tok!r}")
        if _reg(dst_tok)[0] != 0 or _reg(old)[0] != 0:
            raise _Syntax("cmpxchg compares with and returns into r0")
        return Instruction(o.STX | o.ATOMIC | (o.DW if wide else o.W), base, _reg(new)[0], off, o.CMPXCHG)

    def xchg(self, dst_tok: str, rhs: str) -> Instruction:
        m = _R_XCHG.match(rhs)
        if m is None:
            raise _Syntax("expected 'rN = xchg_64(rM + off, rN)'")
        wide = m.group(1) == "_64"
        base, off = _addr(m.group(2), m.group(3), m.group(4))
        arg = m.group(5)
        for tok in (dst_tok, arg):
            if _reg(tok)[1] == wide:
                raise _Syntax(f"xchg{m.group(1)} takes {'r' if wide else 'w'} registers, not {tok!r}")
        if arg.lower() != dst_tok.lower():
            raise _Syntax(f"xchg returns into its operand: expected '{arg} = ...'")
        return Instruction(o.STX | o.ATOMIC | (o.DW if wide else o.W), base, _reg(arg)[0], off, o.XCHG)

    def pseudo(self, dst_tok: str, rhs: str) -> Instruction:
        m = _R_PSEUDO.match(rhs)
        if m is None:
            raise _Syntax(f"malformed pseudo load {rhs!r}")
        dst = _reg64(dst_tok, "a 64-bit load")
        kind, arg = m.group(1), m.group(2).strip()
        extra = 0
        if m.group(4) is not None:
            if kind != "map_value":
                raise _Syntax(f"only map_value[...] takes an offset, not {kind}[...]")
            extra = _num(m.group(4)) * (-1 if m.group(3) == "-" else 1)
            extra = _imm32_signed(extra, "map value offset")
        if kind == "func":
            pm = _PCREL.match(arg)
            if pm is not None:
                delta = _imm32_signed(_num(pm.group(1)), "offset")
                return Instruction(o.LD_IMM64, dst, o.PSEUDO_FUNC, 0, delta & 0xFFFFFFFF)
            name = self.label_ref(arg)
            if name is None:
                raise _Syntax(f"expected func[label] or func[pc+N], not func[{arg}]")
            return Instruction(o.LD_IMM64, dst, o.PSEUDO_FUNC, reference=name)
        if kind == "btf_id":
            parts = [p.strip() for p in arg.split(",")]
            if len(parts) == 2 and parts[1].startswith("fd:"):
                extra = _imm32_signed(self.number(parts[1][3:]), "BTF object fd")
            elif len(parts) != 1:
                raise _Syntax(f"expected btf_id[ID] or btf_id[ID, fd:N], not btf_id[{arg}]")
            return self.pseudo_ref(dst, o.PSEUDO_BTF_ID, parts[0], extra)
        if arg.startswith("fd:"):
            src = o.PSEUDO_MAP_VALUE if kind == "map_value" else o.PSEUDO_MAP_FD
            return self.pseudo_num(dst, src, self.number(arg[3:]), extra)
        if arg.startswith("idx:"):
            src = o.PSEUDO_MAP_IDX_VALUE if kind == "map_value" else o.PSEUDO_MAP_IDX
            return self.pseudo_num(dst, src, self.number(arg[4:]), extra)
        src = o.PSEUDO_MAP_VALUE if kind == "map_value" else o.PSEUDO_MAP_FD
        if not _SYMBOL.match(arg):
            raise _Syntax(f"expected {kind}[name], {kind}[fd:N] or {kind}[idx:N], not {kind}[{arg}]")
        return Instruction(o.LD_IMM64, dst, src, 0, extra << 32, reference=arg)

    @staticmethod
    def number(text: str) -> int:
        text = text.strip()
        if not re.fullmatch(_NUM, text):
            raise _Syntax(f"expected a number, not {text!r}")
        return _num(text)

    def pseudo_ref(self, dst: int, src: int, arg: str, extra: int) -> Instruction:
        if re.fullmatch(_NUM, arg):
            return self.pseudo_num(dst, src, _num(arg), extra)
        if not _SYMBOL.match(arg):
            raise _Syntax(f"expected a number or a name, not {arg!r}")
        return Instruction(o.LD_IMM64, dst, src, 0, extra << 32, reference=arg)

    @staticmethod
    def pseudo_num(dst: int, src: int, low: int, high: int) -> Instruction:
        _imm32_signed(low, "value")
        return Instruction(o.LD_IMM64, dst, src, 0, high << 32 | (low & 0xFFFFFFFF))

    def ld_pseudo(self, text: str) -> Instruction:
        m = _LD_PSEUDO.match(text)
        if m is None:
            raise _Syntax("expected 'ld_pseudo rN, SRC, IMM'")
        dst = _reg64(m.group(1), "ld_pseudo destination")
        src = _num(m.group(2))
        if not 0 <= src <= 15:
            raise _Syntax(f"pseudo source {src} out of range 0..15")
        return Instruction(o.LD_IMM64, dst, src, 0, _imm32(_num(m.group(3))) & 0xFFFFFFFF)

    # -- control flow --

    def target16(self, opcode: int, dst: int, src: int, imm: int, target: str) -> Instruction:
        name = self.label_ref(target)
        if name is not None:
            return Instruction(opcode, dst, src, 0, imm, reference=name)
        if not re.fullmatch(_NUM, target):
            raise _Syntax(f"bad jump target {target!r}")
        return Instruction(opcode, dst, src, _off16(_num(target), "jump offset"), imm)

    def cond_jump(self, text: str) -> Instruction:
        m = _IF.match(text)
        if m is None:
            raise _Syntax("malformed conditional jump: expected 'if rN OP rM|imm goto target'")
        left, op, right, target = m.group(1), m.group(2), m.group(3), m.group(4)
        dst, is32 = _reg(left)
        cls = o.JMP32 if is32 else o.JMP
        code = cls | _JMP_OPS[op]
        if re.fullmatch(r"[rRwW][0-9]+", right):
            src, _ = _reg(right)
            _same_width(left, right)
            return self.target16(code | o.X, dst, src, 0, target)
        if not re.fullmatch(_NUM, right):
            raise _Syntax(f"bad comparison operand {right!r}")
        return self.target16(code, dst, 0, _imm32(_num(right)), target)

    def goto(self, text: str) -> Instruction:
        m = _GOTO.match(text)
        if m is None:
            raise _Syntax("expected 'goto target'")
        word, target = m.group(1), m.group(2)
        if word == "goto":
            return self.target16(o.JMP | o.JA, 0, 0, 0, target)
        if word == "may_goto":
            return self.target16(o.JMP | o.JCOND, 0, 0, 0, target)
        name = self.label_ref(target)
        if name is not None:
            return Instruction(o.JMP32 | o.JA, reference=name)
        if not re.fullmatch(_NUM, target):
            raise _Syntax(f"bad jump target {target!r}")
        return Instruction(o.JMP32 | o.JA, 0, 0, 0, _imm32_signed(_num(target), "jump offset"))

    def call(self, text: str) -> Instruction:
        m = _CALL.match(text)
        if m is None:
            raise _Syntax("expected 'call helper|label|pc+N|kfunc[...]'")
        arg = m.group(1).strip()
        if re.fullmatch(_NUM, arg):
            return Instruction(o.JMP | o.CALL, 0, o.CALL_HELPER, 0, _imm32(_num(arg)))
        pm = _PCREL.match(arg)
        if pm is not None:
            delta = _imm32_signed(_num(pm.group(1)), "call offset")
            return Instruction(o.JMP | o.CALL, 0, o.CALL_PSEUDO, 0, delta)
        km = _KFUNC.match(arg)
        if km is not None:
            what = km.group(1).strip()
            idx = _off16(_num(km.group(2)), "kfunc module index") if km.group(2) is not None else 0
            if re.fullmatch(_NUM, what):
                return Instruction(o.JMP | o.CALL, 0, o.CALL_KFUNC, idx, _imm32_signed(_num(what), "BTF id"))
            if not _SYMBOL.match(what):
                raise _Syntax(f"expected kfunc[ID] or kfunc[name], not kfunc[{what}]")
            return Instruction(o.JMP | o.CALL, 0, o.CALL_KFUNC, idx, reference=what)
        if _SYMBOL.match(arg):
            insn = Instruction(o.JMP | o.CALL)
            self.named_calls.append((insn, arg))
            return insn
        name = self.label_ref(arg)  # 1b, 1f: always a local function
        if name is not None:
            return Instruction(o.JMP | o.CALL, 0, o.CALL_PSEUDO, reference=name)
        raise _Syntax(f"bad call target {arg!r}")


def _local_name(number: str, count: int) -> str:
    """The label the ``count``-th definition of numeric label ``number`` stands for."""
    return f".L{number}${count}"


def _directive_word(raw: str) -> str:
    m = _COMMENT.search(raw)
    code = raw[: m.start()] if m is not None else raw
    parts = code.split(None, 1)
    return parts[0] if parts else ""


def _expand(lines: List[str]) -> List[Tuple[int, str]]:
    """Number the lines and unroll ``.rept N`` ... ``.endr`` blocks (nested), keeping line numbers."""
    if not any(".rept" in line or ".endr" in line for line in lines):
        return list(enumerate(lines, 1))
    out: List[Tuple[int, str]] = []
    open_blocks: List[Tuple[int, int, str, List[Tuple[int, str]]]] = []  # count, line, text, body
    for lineno, raw in enumerate(lines, 1):
        word = _directive_word(raw)
        if word == ".rept":
            arg = raw.split(None, 1)[1] if len(raw.split(None, 1)) > 1 else ""
            arg = _COMMENT.split(arg, 1)[0].strip()
            try:
                if not re.fullmatch(_NUM, arg):
                    raise _Syntax("expected '.rept COUNT'")
                count = _num(arg)
                if count < 0:
                    raise _Syntax(f"'.rept' count {count} is negative")
            except _Syntax as exc:
                raise AssemblerError(str(exc), line=lineno, text=raw) from None
            open_blocks.append((count, lineno, raw, []))
        elif word == ".endr":
            if not open_blocks:
                raise AssemblerError("'.endr' without '.rept'", line=lineno, text=raw)
            count, start, start_text, body = open_blocks.pop()
            into = open_blocks[-1][3] if open_blocks else out
            if len(into) + len(body) * count > _MAX_LINES:
                raise AssemblerError(f"'.rept' makes more than {_MAX_LINES} lines", line=start, text=start_text)
            into.extend(body * count)
        else:
            (open_blocks[-1][3] if open_blocks else out).append((lineno, raw))
    if open_blocks:
        _, start, start_text, _ = open_blocks[-1]
        raise AssemblerError("no matching '.endr' for this '.rept'", line=start, text=start_text)
    return out


def assemble(text: str, *, filename: str = "<asm>", link: bool = True) -> Assembly:
    """Assemble eBPF assembly text; returns the instructions and the ``.map`` declarations.

    With ``link`` (the default) label references are resolved to offsets and every label must
    be defined, and there must be an instruction; without it, instructions keep symbolic
    references (for linking with other pieces later; a ``call NAME`` that is neither a label
    nor a helper becomes a local call).
    Every instruction's ``source`` records file, line, column and text. Raises
    :class:`AssemblerError` with the line number and text of the first offending line.
    """
    return _Assembler(filename).run(text, link)
