"""eBPF instructions: model, encoding, builder with labels, text assembler/disassembler, emulator.

Layout (one job a module)::

    opcodes      ISA field values and the set of valid opcodes
    instruction  Instruction (encoding fields + label/reference/source/comment/meta), SourcePos
    encoding     encode()/decode(): 8-byte slots, little or big endian
    registers    R0..R10 (Reg: an int that builder functions read as "register, not immediate")
    builder      mov64(), ldx(), jeq(), call(), ld_map_fd(), label()... one function per operation
    linker       link(): labels -> pc-relative offsets; bind_maps(): map names -> fds
    text         assemble(): LLVM/bpftool syntax -> instructions + .map declarations
    disasm       disassemble(), format_instruction(): instructions -> the text llvm-mc-19 prints
    mapdecl      MapDecl: a `.map` directive as plain data
    emulator     run()/Emulator: reference semantics for differential tests

Names are re-exported lazily (``from ebpf.asm import mov64`` imports only what it needs), so
``import ebpf.asm`` costs next to nothing; the builder functions are also reachable as
``ebpf.asm.builder.*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from ebpf.lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ebpf.asm.builder import *  # noqa: F401, F403
    from ebpf.asm.disasm import disassemble, format_instruction  # noqa: F401
    from ebpf.asm.emulator import Emulator, EmulatorError, run  # noqa: F401
    from ebpf.asm.encoding import decode, encode  # noqa: F401
    from ebpf.asm.instruction import Instruction, Label, ProgramItem, SourcePos  # noqa: F401
    from ebpf.asm.linker import bind_maps, link  # noqa: F401
    from ebpf.asm.mapdecl import MapDecl  # noqa: F401
    from ebpf.asm.registers import FP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Reg  # noqa: F401
    from ebpf.asm.text import Assembly, assemble  # noqa: F401

_MODULES = {
    "ebpf.asm.instruction": ("Instruction", "Label", "ProgramItem", "SourcePos"),
    "ebpf.asm.encoding": ("encode", "decode"),
    "ebpf.asm.registers": ("Reg", "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "FP"),
    "ebpf.asm.linker": ("link", "bind_maps"),
    "ebpf.asm.text": ("assemble", "Assembly"),
    "ebpf.asm.disasm": ("disassemble", "format_instruction"),
    "ebpf.asm.mapdecl": ("MapDecl",),
    "ebpf.asm.emulator": ("run", "Emulator", "EmulatorError"),
}
_BUILDER = (
    "label "
    "add64 add32 sub64 sub32 mul64 mul32 div64 div32 sdiv64 sdiv32 mod64 mod32 smod64 smod32 "
    "or64 or32 and64 and32 lsh64 lsh32 rsh64 rsh32 arsh64 arsh32 xor64 xor32 mov64 mov32 neg64 neg32 "
    "movsx64 movsx32 to_le to_be bswap addr_space_cast ldx ldsx stx st ld_abs ld_ind "
    "atomic_add atomic_or atomic_and atomic_xor atomic_xchg atomic_cmpxchg ja gotol may_goto "
    "jeq jgt jge jset jne jsgt jsge jlt jle jslt jsle "
    "jeq32 jgt32 jge32 jset32 jne32 jsgt32 jsge32 jlt32 jle32 jslt32 jsle32 "
    "call call_local call_kfunc callx exit_ helper_id "
    "ld_imm64 ld_map_fd ld_map_value ld_map_idx ld_map_idx_value ld_btf_id ld_func"
).split()

_LAZY: Dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}
_LAZY.update({name: "ebpf.asm.builder" for name in _BUILDER})

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
