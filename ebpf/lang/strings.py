"""C strings in the DSL: ``==``, ``!=`` and ``in`` on char arrays and literals, ``L.startswith``.

A ``char[N]`` (``comm``, a struct or map field, a tracepoint field, ``task.comm``, a buffer
from :func:`ebpf.lang.builtins.str`) holds a C string: its bytes up to the first NUL, or all
N bytes when it has none (strnlen's rule). Bytes after the NUL never count, so
``comm == "dd"`` is true for "dd" and false for "ddx" whatever stale bytes follow. A literal
(``str``, UTF-8 encoded, or ``bytes``) longer than the array can never be equal to it nor a
prefix of it: that is a compile error, since such a test is always a mistake. A literal may
not contain a NUL. Only ``==`` and ``!=`` compare strings (no ordering).

The code is loop-free and compares the widest aligned words the memory allows (8/4/2/1
bytes; the verifier wants stack and context loads aligned):

* against a literal, each word of the array is compared with the matching word of the
  literal and its NUL (``"bash"`` vs a char[16]: one 4-byte and one 1-byte compare);
* two arrays: per word ``d = a ^ b``; the NUL bytes of a word are found without branches
  (``~(((w & 0x7f..) + 0x7f..) | w | 0x7f..)`` has 0x80 exactly in its zero bytes) and
  ``(d & -d) - 1`` masks the bytes before the first difference, so one test says "a NUL came
  first: equal" and a second "a difference came first: not equal"; else the next word.

Arrays in kernel or user memory (``task.comm`` read through probe reads) are copied to the
stack once; BPF memory (stack, map values, ring buffer records, globals, the context,
BTF-typed kernel memory) is read in place.
"""

from __future__ import annotations

import ast
from typing import Any, Iterable, NamedTuple, Optional, Sequence, Union

from ebpf.asm import opcodes as o
from ebpf.lang.ir import FP
from ebpf.lang.types import ArrayType, IntType, PtrType, boolean, wrap
from ebpf.lang.values import Item, Loc, Static, Val

__all__ = ["is_text", "is_char_array", "compare_jump", "compare_value", "member_jump", "startswith"]

_DIRECT = ("stack", "map", "ringbuf", "global", "rodata", "ctx", "btf")
_COPIED = ("kernel", "user")
_SIZES = (8, 4, 2, 1)


class _Mem(NamedTuple):
    """A char array readable in place: ``size`` bytes at ``base + off``; ``base`` is known to
    be aligned to ``align`` bytes (1 when nothing is known)."""

    base: int
    off: int
    size: int
    align: int


def is_char_array(t: Any) -> bool:
    return isinstance(t, ArrayType) and isinstance(t.elem, IntType) and t.elem.name == "char"


def is_text(item: Item) -> bool:
    """Whether a comparison with ``item`` is a string comparison: a literal or an array (arrays
    are never scalars, so sending any array here only improves the error for the wrong ones)."""
    if isinstance(item, Static):
        return isinstance(item.obj, (str, bytes))
    return isinstance(item, Loc) and isinstance(item.type, ArrayType)


def _lowbit(n: int) -> int:
    return min(8, n & -n) if n else 8


def _operand(comp: Any, item: Item, node: Any, what: str = "compare") -> Union[_Mem, bytes]:
    if isinstance(item, Static) and isinstance(item.obj, (str, bytes)):
        data = item.obj.encode() if isinstance(item.obj, str) else bytes(item.obj)
        if b"\0" in data:
            raise comp.error(f"the string literal {item.obj!r} contains a NUL byte", node)
        return data
    if isinstance(item, Loc) and is_char_array(item.type):
        loc = item
        if loc.space in _COPIED:
            tmp = comp.stack_object(loc.type, zero=False, temp=True)
            comp.copy(tmp, loc, node)
            loc = tmp
        elif loc.space not in _DIRECT:
            raise comp.error(f"cannot {what} a string in {loc.space} memory", node)
        size = loc.type.size
        if loc.relo is not None or not -0x8000 <= loc.off <= 0x7FFF - size:
            # a CO-RE field (its offset is patched on the address, not on each load)
            a = comp.addr_of(loc)
            return _Mem(a.reg, 0, size, _lowbit(loc.off))
        align = 1 if loc.space == "stack" and loc.base != FP else 8  # an indexed stack array
        return _Mem(loc.base, loc.off, size, align)
    t = getattr(item, "type", None)
    if isinstance(t, PtrType) and isinstance(t.target, IntType) and t.target.size == 1:
        raise comp.error(f"this is a pointer to a string ({t.name}): read the string first, "
                         "e.g. L.str(p) == \"name\"", node)
    if isinstance(t, ArrayType):
        raise comp.error(f"strings are char arrays; a {t.name} is not one (compare its elements)", node)
    name = t.name if t is not None else type(getattr(item, "obj", item)).__name__
    raise comp.error(f"cannot {what} a {name} with a string", node)


def _chunk(remaining: int, pos: int, mems: Iterable[_Mem]) -> int:
    """The widest load at ``pos`` that stays inside and is aligned in every operand."""
    for s in _SIZES:
        if s <= remaining and all(s <= m.align and (m.off + pos) % s == 0 for m in mems):
            return s
    return 1


def _load(comp: Any, m: _Mem, pos: int, size: int) -> int:
    r: int = comp.vreg()
    comp.emit(o.LDX | o.MEM | o.BYTES_SIZE[size], r, m.base, m.off + pos)
    return r


def _goto(comp: Any, label: str, fall: Optional[str]) -> None:
    if label != fall:
        comp.jump(label)


def _jne_const(comp: Any, reg: int, value: int, size: int, target: str) -> None:
    if size <= 4:
        comp.emit(o.JMP32 | o.JNE, reg, 0, 0, wrap(value, 4, True), target=target)
        return
    imm = wrap(value, 8, True)
    if -(1 << 31) <= imm < (1 << 31):
        comp.emit(o.JMP | o.JNE, reg, 0, 0, imm, target=target)
        return
    c = comp.vreg()
    comp.set_const(c, value)
    comp.emit(o.JMP | o.JNE | o.X, reg, c, 0, 0, target=target)


def _against_literal(comp: Any, m: _Mem, data: bytes, yes: str, no: str, fall: Optional[str]) -> None:
    """Jump to ``yes`` when the array's first ``len(data)`` bytes are ``data``, else to ``no``."""
    pos = 0
    while pos < len(data):
        s = _chunk(len(data) - pos, pos, (m,))
        _jne_const(comp, _load(comp, m, pos, s), int.from_bytes(data[pos:pos + s], "little"), s, no)
        pos += s
    _goto(comp, yes, fall)


class _Masks:
    """0x7f7f...7f in a register, loaded once per comparison, for the 8-byte words."""

    def __init__(self, comp: Any) -> None:
        self.comp = comp
        self.reg: Optional[int] = None

    def low7(self) -> int:
        if self.reg is None:
            self.reg = self.comp.vreg()
            self.comp.set_const(self.reg, 0x7F7F7F7F7F7F7F7F)
        return self.reg


def _zero_bytes(comp: Any, w: int, size: int, masks: _Masks) -> int:
    """A register with 0x80 in each byte of the ``size``-byte word ``w`` that is zero, 0 elsewhere."""
    z: int = comp.vreg()
    if size == 8:
        m = masks.low7()
        comp.mov_reg(z, w)
        comp.emit(o.ALU64 | o.AND | o.X, z, m)
        comp.emit(o.ALU64 | o.ADD | o.X, z, m)
        comp.emit(o.ALU64 | o.OR | o.X, z, w)
        comp.emit(o.ALU64 | o.OR | o.X, z, m)
        comp.emit(o.ALU64 | o.XOR, z, 0, 0, -1)
        return z
    low7 = int.from_bytes(b"\x7f" * size, "little")
    high = int.from_bytes(b"\x80" * size, "little")
    comp.mov_reg(z, w, False)
    comp.emit(o.ALU | o.AND, z, 0, 0, low7)
    comp.emit(o.ALU | o.ADD, z, 0, 0, low7)
    comp.emit(o.ALU | o.OR | o.X, z, w)
    comp.emit(o.ALU | o.XOR, z, 0, 0, -1)
    comp.emit(o.ALU | o.AND, z, 0, 0, wrap(high, 4, True))
    return z


def _against_array(comp: Any, a: _Mem, b: _Mem, prefix: bool, yes: str, no: str, fall: Optional[str]) -> None:
    """Jump to ``yes`` when string ``a`` equals string ``b`` (``prefix``: starts with it), else ``no``."""
    common = min(a.size, b.size)
    masks = _Masks(comp)
    pos = 0
    while pos < common:
        s = _chunk(common - pos, pos, (a, b))
        wa, wb = _load(comp, a, pos, s), _load(comp, b, pos, s)
        jmp = o.JMP if s == 8 else o.JMP32
        if s == 1:
            if prefix:  # b ended: a starts with b
                comp.emit(o.JMP32 | o.JEQ, wb, 0, 0, 0, target=yes)
                comp.emit(o.JMP32 | o.JNE | o.X, wa, wb, 0, 0, target=no)
            else:
                comp.emit(o.JMP32 | o.JNE | o.X, wa, wb, 0, 0, target=no)
                comp.emit(o.JMP32 | o.JEQ, wa, 0, 0, 0, target=yes)
            pos += s
            continue
        alu = o.ALU64 if s == 8 else o.ALU
        z = _zero_bytes(comp, wb if prefix else wa, s, masks)
        comp.emit(alu | o.XOR | o.X, wa, wb)  # wa is now d, the differing bits
        before = comp.vreg()
        comp.mov_reg(before, wa, s == 8)
        if prefix:  # d ^ (d - 1): the bits up to and including the first difference
            comp.emit(alu | o.SUB, before, 0, 0, 1)
            comp.emit(alu | o.XOR | o.X, before, wa)
            comp.emit(alu | o.RSH, z, 0, 0, 7)  # a NUL of b in the first differing byte counts
        else:  # (d & -d) - 1: the bits below the first difference (all of them when d == 0)
            comp.emit(alu | o.NEG, before)
            comp.emit(alu | o.AND | o.X, before, wa)
            comp.emit(alu | o.SUB, before, 0, 0, 1)
        comp.emit(alu | o.AND | o.X, z, before)
        comp.emit(jmp | o.JNE, z, 0, 0, 0, target=yes)  # the string ended before any difference
        comp.emit(jmp | o.JNE, wa, 0, 0, 0, target=no)  # a difference before the end
        pos += s
    if a.size == b.size or prefix and b.size < a.size:
        _goto(comp, yes, fall)  # every byte equal and no NUL: the strings fill their arrays
        return
    longer = b if b.size > a.size else a  # its string must end right where the shorter array does
    w = _load(comp, longer, common, 1)
    comp.emit(o.JMP32 | o.JEQ, w, 0, 0, 0, target=yes)
    _goto(comp, no, fall)


def _literal_fits(comp: Any, m: _Mem, data: bytes, what: str, node: Any) -> None:
    if len(data) > m.size:
        raise comp.error(f"the literal {data.decode(errors='replace')!r} has {len(data)} bytes and the array "
                         f"holds at most {m.size}: it can never {what}", node)


def _equal(comp: Any, a: Union[_Mem, bytes], b: Union[_Mem, bytes], yes: str, no: str, fall: Optional[str],
           node: Any) -> None:
    if isinstance(a, bytes) and isinstance(b, bytes):
        _goto(comp, yes if a == b else no, fall)
        return
    if isinstance(a, bytes):
        a, b = b, a
    assert isinstance(a, _Mem)
    if isinstance(b, bytes):
        _literal_fits(comp, a, b, "be equal", node)
        _against_literal(comp, a, b + b"\0" if len(b) < a.size else b, yes, no, fall)
    else:
        _against_array(comp, a, b, False, yes, no, fall)


def compare_jump(comp: Any, op: ast.cmpop, left: Item, right: Item, target: str, jump_if: bool, node: Any) -> None:
    """``left == right`` / ``left != right`` on strings: jump to ``target`` when the test is ``jump_if``."""
    if not isinstance(op, (ast.Eq, ast.NotEq)):
        raise comp.error("strings compare with == and != only (L.startswith(s, prefix) tests a prefix)", node)
    a, b = _operand(comp, left, node), _operand(comp, right, node)
    skip = comp.new_label("str")
    if isinstance(op, ast.Eq) == jump_if:
        _equal(comp, a, b, target, skip, skip, node)
    else:
        _equal(comp, a, b, skip, target, skip, node)
    comp.label(skip)


def compare_value(comp: Any, op: ast.cmpop, left: Item, right: Item, node: Any) -> Val:
    """``left == right`` as a bool value."""
    r = comp.vreg()
    end = comp.new_label("str")
    comp.emit(o.ALU64 | o.MOV, r, 0, 0, 1)
    compare_jump(comp, op, left, right, end, True, node)
    comp.emit(o.ALU64 | o.MOV, r, 0, 0, 0)
    comp.label(end)
    return Val.in_reg(boolean, r, True)


def member_jump(comp: Any, left: Item, choices: Sequence[Any], positive: bool, target: str, node: Any) -> None:
    """``comm in ("bash", "sh")``: jump to ``target`` when membership is ``positive``."""
    if not all(isinstance(c, (str, bytes)) for c in choices):
        raise comp.error("'in' on a string takes a constant tuple of string literals", node)
    a = _operand(comp, left, node)
    out = comp.new_label("str")
    for c in choices:
        nxt = comp.new_label("str")
        _equal(comp, a, _operand(comp, Static(c), node), target if positive else out, nxt, nxt, node)
        comp.label(nxt)
    if not positive:
        comp.jump(target)
    comp.label(out)


def startswith(comp: Any, text: Item, prefix: Item, node: Any) -> Val:
    """``L.startswith(s, prefix)`` as a bool value: ``prefix`` a literal or another char array."""
    a = _operand(comp, text, node, "test")
    if isinstance(a, bytes):
        raise comp.error("L.startswith(s, prefix): s must be a char array (the prefix may be a literal)", node)
    b = _operand(comp, prefix, node, "test")
    if isinstance(b, bytes):
        _literal_fits(comp, a, b, "be a prefix", node)
        if not b:
            return Val.const(boolean, 1)
    r = comp.vreg()
    yes, end = comp.new_label("str"), comp.new_label("str")
    comp.emit(o.ALU64 | o.MOV, r, 0, 0, 0)
    if isinstance(b, bytes):
        _against_literal(comp, a, b, yes, end, yes)
    else:
        _against_array(comp, a, b, True, yes, end, yes)
    comp.label(yes)
    comp.emit(o.ALU64 | o.MOV, r, 0, 0, 1)
    comp.label(end)
    return Val.in_reg(boolean, r, True)
