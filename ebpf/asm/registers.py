"""Register names R0..R10.

Registers are ints 0..10, but of their own ``int`` subclass :class:`Reg`: builder functions such
as ``add64(R1, R2)`` vs ``add64(R1, 2)`` take "register or immediate" in one argument, and the
type is what tells them apart. Any int is accepted where only a register can go (``dst``).
"""

from __future__ import annotations

from ebpf.errors import AssemblerError

__all__ = ["Reg", "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "FP"]


class Reg(int):
    """A register number (0..10); r10 is the read-only frame pointer."""

    __slots__ = ()

    def __new__(cls, number: int) -> Reg:
        if not 0 <= number <= 10:
            raise AssemblerError(f"bad register r{number}: registers are r0..r10")
        return super().__new__(cls, number)

    def __repr__(self) -> str:
        return f"R{int(self)}"

    def __str__(self) -> str:
        # Formats as its number (int's default str would use the repr above): instructions hold
        # Reg objects in dst/src and f-strings such as f"r{dst}" must still print "r1".
        return int.__repr__(self)


R0 = Reg(0)  # return value, helper results
R1 = Reg(1)  # first argument (the context on entry)
R2 = Reg(2)
R3 = Reg(3)
R4 = Reg(4)
R5 = Reg(5)
R6 = Reg(6)  # r6..r9 are callee-saved
R7 = Reg(7)
R8 = Reg(8)
R9 = Reg(9)
R10 = Reg(10)
FP = R10
