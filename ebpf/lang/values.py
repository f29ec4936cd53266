"""What an expression compiles to: a value in a register or constant, a memory location, or a
compile-time Python object.

* :class:`Val` -- an rvalue of integer or pointer type: a constant (folded at compile time) or
  a virtual register. Integers of 4 bytes or fewer keep their value in the low 32 bits of the
  register (sign- or zero-extended to 32 bits); ``hz`` says the upper half is known to be
  zero, so widening an unsigned value costs nothing when it is. ``literal`` marks a constant
  whose type comes only from the integer-literal rule (a literal, a Python int, or arithmetic
  on those alone): a local it initialises is an ``i64`` (:func:`local_type`), whereas a typed
  constant (``u32(0xFFFFFFFF)``, ``len(arr)``, a cast) keeps its type as any other value does.
* :class:`Loc` -- an lvalue: ``base`` register (or r10 for the stack) plus ``off`` bytes, of a
  type, in a memory space (stack, map, ringbuf, ctx, btf, kernel, user). Struct and array
  values are always locations (reference semantics, as Python's objects), scalars are loaded
  from them when used as values. ``relo`` is the CO-RE relocation that produced ``off``.
* :class:`Static` -- a Python object known at compile time (a map declaration, a type, a
  constant, an inline function, the ``ebpf.lang`` module...).
"""

from __future__ import annotations

from typing import Any, Optional, Union

from ebpf.lang.types import BoolType, IntType, PtrType, Type, i64, literal_type, u64

CONST = 0
REG = 1


class Val:
    __slots__ = ("type", "kind", "reg", "imm", "hz", "literal")

    def __init__(self, type: Type, kind: int, reg: int = 0, imm: int = 0, hz: bool = False,
                 literal: bool = False) -> None:
        self.type = type
        self.kind = kind
        self.reg = reg
        self.imm = imm
        self.hz = hz
        self.literal = literal

    @staticmethod
    def const(type: Type, value: int, literal: bool = False) -> Val:
        if isinstance(type, IntType):
            value = type.wrap(value)
        return Val(type, CONST, imm=value, hz=0 <= value <= 0xFFFFFFFF, literal=literal)

    @staticmethod
    def of_literal(value: int) -> Val:
        """An integer literal (or a Python int): typed by the first of i32, u32, i64, u64 that
        holds it; raises OverflowError beyond 64 bits."""
        return Val.const(literal_type(value), value, literal=True)

    @staticmethod
    def in_reg(type: Type, reg: int, hz: bool = False) -> Val:
        return Val(type, REG, reg=reg, hz=hz)

    @property
    def is_const(self) -> bool:
        return self.kind == CONST

    @property
    def is_ptr(self) -> bool:
        return isinstance(self.type, PtrType)

    def __repr__(self) -> str:
        what = f"#{self.imm}" if self.kind == CONST else f"v{self.reg}"
        return f"<Val {self.type.name} {what}{' literal' if self.literal else ''}>"


def local_type(v: Val) -> Type:
    """The type a new local (or unannotated inline parameter) takes from its first value.

    Any value's own type, typed constants included; only a literal constant (see
    :attr:`Val.literal`) makes an ``i64`` (a ``u64`` when it does not fit), so that
    ``n = 0`` counts in 64 bits as Python code expects while ``c = u32(0xFFFFFFFF)`` stays a
    ``u32`` and ``c + 1`` wraps to 0, as in C.
    """
    if v.literal and isinstance(v.type, IntType) and not isinstance(v.type, BoolType):
        return i64 if i64.fits(v.imm) else u64
    return v.type


class Loc:
    __slots__ = ("type", "base", "off", "space", "relo")

    def __init__(self, type: Type, base: int, off: int, space: str, relo: Any = None) -> None:
        self.type = type
        self.base = base
        self.off = off
        self.space = space
        self.relo = relo

    def __repr__(self) -> str:
        return f"<Loc {self.type.name} v{self.base}{self.off:+d} {self.space}>"


class Static:
    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __repr__(self) -> str:
        return f"<Static {self.obj!r}>"


Item = Union[Val, Loc, Static]
OptVal = Optional[Val]
