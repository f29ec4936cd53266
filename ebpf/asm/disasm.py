"""Instructions to assembly text, in exactly the syntax ``llvm-mc-19 -triple=bpfel -mcpu=v4`` prints.

Every instruction llvm can express is printed as llvm-mc-19's disassembler prints it (so the
text reassembles with llvm-mc to the same bytes: ``w0 = *(u32 *)(r1 + 8)``, ``if r1 > 5 goto
+3``, ``r1 = -1 ll``). What llvm cannot express uses the extensions documented in
:mod:`ebpf.asm.text` (map, BTF-id and func loads, kfunc and local calls by offset, LD_IND with an
offset) and anything non-canonical (reserved fields set, registers 11-15, unknown opcodes) is
printed as a raw ``.insn`` line, so ``assemble(disassemble(x)) == x`` for every decodable
program.
"""

from __future__ import annotations

from typing import Callable, Container, Dict, Iterable, List, Optional, Union

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, Label, ProgramItem

__all__ = ["format_instruction", "disassemble"]

_ALU_SYM = {
    o.ADD: "+", o.SUB: "-", o.MUL: "*", o.DIV: "/", o.OR: "|", o.AND: "&", o.LSH: "<<",
    o.RSH: ">>", o.MOD: "%", o.XOR: "^", o.ARSH: "s>>",
}
_JMP_SYM = {
    o.JEQ: "==", o.JGT: ">", o.JGE: ">=", o.JSET: "&", o.JNE: "!=", o.JSGT: "s>", o.JSGE: "s>=",
    o.JLT: "<", o.JLE: "<=", o.JSLT: "s<", o.JSLE: "s<=",
}
_ATOMIC_SYM = {o.ADD: "+=", o.OR: "|=", o.AND: "&=", o.XOR: "^="}
_ATOMIC_FETCH = {o.ADD: "add", o.OR: "or", o.AND: "and", o.XOR: "xor"}
_USIZE = {o.B: "u8", o.H: "u16", o.W: "u32", o.DW: "u64"}
_SSIZE = {o.B: "s8", o.H: "s16", o.W: "s32"}

Names = Union[bool, Container[str]]


def _raw(insn: Instruction) -> str:
    return f".insn code={insn.opcode:#04x} dst={insn.dst} src={insn.src} off={insn.off} imm={insn.imm}"


def _mem(reg: int, off: int) -> str:
    return f"r{reg} + {off}" if off >= 0 else f"r{reg} - {-off}"


def _rel(value: int) -> str:
    return f"+{value}" if value >= 0 else str(value)


def _target(insn: Instruction, value: int, names: Names) -> str:
    ref = insn.reference
    if ref is not None and (names is True or (names is not False and ref in names)):
        return ref
    return _rel(value)


def _alu(insn: Instruction, names: Names) -> Optional[str]:
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    wide = code & 0x07 == o.ALU64
    p = "r" if wide else "w"
    op = code & 0xF0
    if op == o.END:
        if src or off:
            return None
        if imm not in (16, 32, 64):
            return None
        if wide:
            return f"r{dst} = bswap{imm} r{dst}" if not code & o.X else None
        return f"r{dst} = {'be' if code & o.X else 'le'}{imm} r{dst}"
    if op == o.NEG:
        if src or off or imm or code & o.X:
            return None
        return f"{p}{dst} = -{p}{dst}"
    if code & o.X:
        if op == o.MOV:
            if off == 0 and imm == 0:
                return f"{p}{dst} = {p}{src}"
            if off in (8, 16, 32) and imm == 0 and (wide or off != 32):
                return f"{p}{dst} = (s{off}){p}{src}"
            if wide and off == o.ADDR_SPACE_CAST:
                return f"r{dst} = addr_space_cast(r{src}, {(imm >> 16) & 0xFFFF}, {imm & 0xFFFF})"
            return None
        if imm:
            return None
        sym = _ALU_SYM[op]
        if off:
            if off != 1 or op not in (o.DIV, o.MOD):
                return None
            sym = "s" + sym
        return f"{p}{dst} {sym}= {p}{src}"
    if src:
        return None
    if op == o.MOV:
        return f"{p}{dst} = {imm}" if off == 0 else None
    sym = _ALU_SYM[op]
    if off:
        if off != 1 or op not in (o.DIV, o.MOD):
            return None
        sym = "s" + sym
    return f"{p}{dst} {sym}= {imm}"


def _jmp(insn: Instruction, names: Names) -> Optional[str]:
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    op = code & 0xF0
    is32 = code & 0x07 == o.JMP32
    if op == o.JA:
        if dst or src:
            return None
        if is32:
            return f"gotol {_target(insn, imm, names)}" if off == 0 else None
        return f"goto {_target(insn, off, names)}" if imm == 0 else None
    if not is32:
        if op == o.CALL:
            if code & o.X:
                return f"callx r{dst}" if not (src or off or imm) else None
            if dst:
                return None
            if src == o.CALL_HELPER:
                return f"call {imm}" if off == 0 else None
            if src == o.CALL_PSEUDO:
                if off:
                    return None
                ref = insn.reference
                if ref is not None and (names is True or (names is not False and ref in names)):
                    return f"call {ref}"
                return f"call pc{_rel(imm)}"
            if src == o.CALL_KFUNC:
                ref = insn.reference
                if ref is not None and imm == 0 and names is not False:
                    what = ref
                else:
                    what = str(imm)
                return f"call kfunc[{what}, idx:{off}]" if off else f"call kfunc[{what}]"
            return None
        if op == o.EXIT:
            return "exit" if not (dst or src or off or imm) else None
        if op == o.JCOND:
            return f"may_goto {_target(insn, off, names)}" if not (dst or src or imm) else None
    p = "w" if is32 else "r"
    sym = _JMP_SYM[op]
    if code & o.X:
        if imm:
            return None
        return f"if {p}{dst} {sym} {p}{src} goto {_target(insn, off, names)}"
    if src:
        return None
    return f"if {p}{dst} {sym} {imm} goto {_target(insn, off, names)}"


def _pseudo_arg(insn: Instruction, low: int, names: Names) -> str:
    ref = insn.reference
    if ref is not None and low == 0 and names is not False:
        return ref
    return ""


def _ld(insn: Instruction, names: Names) -> Optional[str]:
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    if code == o.LD_IMM64:
        if off:
            return None
        if src == o.PSEUDO_NONE:
            return f"r{dst} = {imm} ll"
        low = imm & 0xFFFFFFFF
        low_s = low - (1 << 32) if low & 0x80000000 else low
        high = imm >> 32
        if src == o.PSEUDO_FUNC:
            if high:
                return None
            ref = insn.reference
            if ref is not None and (names is True or (names is not False and ref in names)):
                return f"r{dst} = func[{ref}] ll"
            return f"r{dst} = func[pc{_rel(low_s)}] ll"
        if src == o.PSEUDO_BTF_ID:
            what = _pseudo_arg(insn, low, names) or str(low_s)
            extra = f", fd:{high}" if high else ""
            return f"r{dst} = btf_id[{what}{extra}] ll"
        if src in o.MAP_PSEUDOS:
            name = _pseudo_arg(insn, low, names)
            if not name:
                name = f"idx:{low_s}" if src in (o.PSEUDO_MAP_IDX, o.PSEUDO_MAP_IDX_VALUE) else f"fd:{low_s}"
            if src in (o.PSEUDO_MAP_FD, o.PSEUDO_MAP_IDX):
                return f"r{dst} = map[{name}] ll" if high == 0 else None
            if high == 0:
                return f"r{dst} = map_value[{name}] ll"
            return f"r{dst} = map_value[{name}] {'+' if high >= 0 else '-'} {abs(high)} ll"
        return None
    mode = code & 0xE0
    size = _USIZE[code & 0x18]
    if dst or off or code & 0x18 == o.DW:
        return None
    if mode == o.ABS:
        return f"r0 = *({size} *)skb[{imm}]" if src == 0 else None
    if mode == o.IND:
        if imm == 0:
            return f"r0 = *({size} *)skb[r{src}]"
        return f"r0 = *({size} *)skb[{_mem(src, imm)}]"
    return None


def _ldx(insn: Instruction, names: Names) -> Optional[str]:
    code = insn.opcode
    if insn.imm:
        return None
    size = code & 0x18
    if code & 0xE0 == o.MEMSX:
        return f"r{insn.dst} = *({_SSIZE[size]} *)({_mem(insn.src, insn.off)})"
    p = "r" if size == o.DW else "w"
    return f"{p}{insn.dst} = *({_USIZE[size]} *)({_mem(insn.src, insn.off)})"


def _st(insn: Instruction, names: Names) -> Optional[str]:
    if insn.src:
        return None
    return f"*({_USIZE[insn.opcode & 0x18]} *)({_mem(insn.dst, insn.off)}) = {insn.imm}"


def _stx(insn: Instruction, names: Names) -> Optional[str]:
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    size = code & 0x18
    p = "r" if size == o.DW else "w"
    if code & 0xE0 == o.MEM:
        if imm:
            return None
        return f"*({_USIZE[size]} *)({_mem(dst, off)}) = {p}{src}"
    addr = _mem(dst, off)
    if imm in _ATOMIC_SYM:
        return f"lock *({_USIZE[size]} *)({addr}) {_ATOMIC_SYM[imm]} {p}{src}"
    if imm & ~o.FETCH in _ATOMIC_FETCH and imm & o.FETCH:
        name = _ATOMIC_FETCH[imm & ~o.FETCH]
        return f"{p}{src} = atomic_fetch_{name}(({_USIZE[size]} *)({addr}), {p}{src})"
    suffix = "_64" if size == o.DW else "32_32"
    if imm == o.XCHG:
        return f"{p}{src} = xchg{suffix}({addr}, {p}{src})"
    if imm == o.CMPXCHG:
        return f"{p}0 = cmpxchg{suffix}({addr}, {p}0, {p}{src})"
    return None


_BY_CLASS: Dict[int, Callable[[Instruction, Names], Optional[str]]] = {
    o.LD: _ld, o.LDX: _ldx, o.ST: _st, o.STX: _stx, o.ALU: _alu, o.JMP: _jmp, o.JMP32: _jmp, o.ALU64: _alu,
}


def format_instruction(insn: Instruction, names: Names = True) -> str:
    """One instruction as assembly text (no label, comment or indentation).

    ``names`` says when a symbolic ``reference`` is printed instead of the number: True
    (whenever set), False (never) or a container of the names that may be printed (the labels
    a listing defines).
    """
    code = insn.opcode
    if code not in o.VALID_OPCODES or insn.dst > o.MAX_REG or (insn.src > o.MAX_REG and code != o.LD_IMM64):
        return _raw(insn)
    text = _BY_CLASS[insn.opcode & 0x07](insn, names)
    return _raw(insn) if text is None else text


def helper_name(imm: int) -> Optional[str]:
    """The helper a call's immediate numbers (``bpf_get_current_pid_tgid`` for 14), as the kernel's
    own disassembler names it; None for an unknown id."""
    from ebpf.uapi import HelperId  # deferred: only annotated listings need it

    try:
        return "bpf_" + HelperId(imm).name
    except ValueError:
        return None


def disassemble(
    program: Union[bytes, bytearray, memoryview, Iterable[ProgramItem]],
    *,
    annotate: bool = False,
    indent: str = "\t",
    call_names: Optional[Callable[[int], Optional[str]]] = None,
) -> str:
    """A program (bytes, or instructions and Label markers) as a listing our assembler reads back.

    Each instruction is one line, indented like llvm-mc's output; ``label`` fields and Label
    markers become ``name:`` lines, and references to labels the listing defines are printed by
    name (so an unlinked builder list prints as readable, reassemblable text).
    Comments are kept as ``# text``. With ``annotate``, helper calls are named as the kernel's
    verifier log and ``bpftool prog dump`` name them: ``call bpf_get_current_pid_tgid#14`` (our
    assembler reads that back as the same call; llvm-mc would read a call to a symbol).
    ``call_names`` maps a helper call's immediate to its name (default :func:`helper_name`; the
    kernel's translated programs hold an address offset there instead, see ``ebpf disasm --id``).
    """
    items: List[ProgramItem]
    if isinstance(program, (bytes, bytearray, memoryview)):
        from ebpf.asm.encoding import decode

        items = list(decode(bytes(program)))
    else:
        items = list(program)
    defined = set()
    for item in items:
        name = item.name if isinstance(item, Label) else item.label if isinstance(item, Instruction) else None
        if name is not None:
            defined.add(name)
    lines: List[str] = []
    for insn in items:
        if isinstance(insn, Label):
            lines.append(f"{insn.name}:")
            continue
        if not isinstance(insn, Instruction):
            raise TypeError(f"cannot disassemble {insn!r}")
        if insn.label is not None:
            lines.append(f"{insn.label}:")
        text = indent + format_instruction(insn, defined)
        if annotate and insn.opcode == o.JMP | o.CALL and text == f"{indent}call {insn.imm}":  # canonical only
            name = (call_names or helper_name)(insn.imm)
            if name is not None:
                text = f"{indent}call {name}#{insn.imm}"
        comment = insn.comment
        if comment is not None:
            text += f" # {comment}"
        lines.append(text)
    return "\n".join(lines) + "\n" if lines else ""
