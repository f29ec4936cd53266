"""USDT probes: ``.note.stapsdt`` parsing, x86_64 argument specs, semaphores, attaching.

Each ``stapsdt`` note (type 3) describes one probe site: the address of its ``nop``, the link-time
address of ``.stapsdt.base`` (to correct for prelinking), the semaphore's address (0 if none),
then ``provider\\0name\\0args\\0``. The section's layout is declared once with construct
(:func:`note_formats`, imported only when USDT is used), which parses it and builds it (for
tests). Arguments are GNU as operands with a size prefix: ``-4@%edi`` (signed 4-byte register),
``8@-16(%rbp)`` (memory at register + offset), ``4@$5`` (constant), ``8@(%rax,%rdx,8)``
(base + index * scale).

Attaching puts one uprobe on every site (the site index as BPF cookie) with the semaphore's file
offset as ``ref_ctr_offset`` so that the kernel sets the semaphore while the probe exists.
Programs read arguments with :meth:`UsdtArg.load`, which emits the instructions that fetch an
argument from the ``pt_regs`` context (and from user memory for memory operands).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ebpf.attach.link import Link, MultiLink
from ebpf.attach.uprobe import attach_uprobe
from ebpf.errors import AttachError

NT_STAPSDT = 3

# struct pt_regs on x86_64 (arch/x86/include/uapi/asm/ptrace.h, the kernel's view)
PT_REGS_X86_64 = {
    "r15": 0, "r14": 8, "r13": 16, "r12": 24, "rbp": 32, "rbx": 40, "r11": 48, "r10": 56,
    "r9": 64, "r8": 72, "rax": 80, "rcx": 88, "rdx": 96, "rsi": 104, "rdi": 112, "orig_rax": 120,
    "rip": 128, "cs": 136, "eflags": 144, "rsp": 152, "ss": 160,
}
_ALIASES: Dict[str, str] = {}
for _full, _names in {
    "rax": ("eax", "ax", "al", "ah"), "rbx": ("ebx", "bx", "bl", "bh"), "rcx": ("ecx", "cx", "cl", "ch"),
    "rdx": ("edx", "dx", "dl", "dh"), "rsi": ("esi", "si", "sil"), "rdi": ("edi", "di", "dil"),
    "rbp": ("ebp", "bp", "bpl"), "rsp": ("esp", "sp", "spl"), "rip": ("eip", "ip"),
}.items():
    for _n in _names:
        _ALIASES[_n] = _full
for _i in range(8, 16):
    for _suffix in ("d", "w", "b"):
        _ALIASES[f"r{_i}{_suffix}"] = f"r{_i}"
_HIGH_BYTE = ("ah", "bh", "ch", "dh")

_ARG_RE = re.compile(
    r"^(?P<size>-?\d+)@(?:"
    r"\$(?P<const>-?(?:0x[0-9a-fA-F]+|\d+))"
    r"|%(?P<reg>[a-z0-9]+)"
    r"|(?P<off>-?(?:0x[0-9a-fA-F]+|\d+))?\(%(?P<base>[a-z0-9]+)(?:,%(?P<index>[a-z0-9]+)(?:,(?P<scale>\d+))?)?\)"
    r")$"
)


class UsdtArg(NamedTuple):
    """One argument: ``kind`` is "const", "reg", "deref" (memory at reg + offset) or "sib"."""

    size: int  # bytes
    signed: bool
    kind: str
    reg: str = ""  # the 64-bit register name (rax...)
    offset: int = 0  # constant value, or memory displacement
    index_reg: str = ""
    scale: int = 1
    shift: int = 0  # 8 for %ah-style high-byte registers
    text: str = ""

    @property
    def reg_offset(self) -> int:
        return PT_REGS_X86_64[self.reg]

    def load(self, dst: int, ctx: int, stack_off: int = -8) -> List[Any]:
        """Instructions putting this argument, sign- or zero-extended to 64 bits, in ``dst``.

        ``ctx`` holds the ``pt_regs`` pointer and must be a callee-saved register (r6-r9) when
        the argument is in memory: that path calls ``bpf_probe_read_user`` (clobbers r0-r5)
        into ``fp + stack_off``.
        """
        from ebpf import asm as A

        d, c = A.Reg(dst), A.Reg(ctx)
        out: List[Any] = []
        if self.kind == "const":
            out.append(A.ld_imm64(d, self.offset) if not -(1 << 31) <= self.offset < (1 << 31)
                       else A.mov64(d, self.offset))
            return out
        if self.kind == "reg":
            out.append(A.ldx(8, d, c, self.reg_offset))
            if self.shift:
                out.append(A.rsh64(d, self.shift))
            out.extend(_extend(d, self.size, self.signed))
            return out
        if ctx not in (6, 7, 8, 9):
            raise AttachError(f"USDT argument {self.text!r} is in memory: ctx must be in r6-r9, not r{ctx}")
        out.append(A.ldx(8, A.R3, c, self.reg_offset))
        if self.kind == "sib":
            out.append(A.ldx(8, A.R2, c, PT_REGS_X86_64[self.index_reg]))
            if self.scale != 1:
                out.append(A.mul64(A.R2, self.scale))
            out.append(A.add64(A.R3, A.R2))
        if self.offset:
            out.append(A.add64(A.R3, self.offset))
        out += [A.mov64(A.R1, A.R10), A.add64(A.R1, stack_off), A.mov64(A.R2, self.size),
                A.call("probe_read_user"), A.ldx(self.size, d, A.R10, stack_off)]
        if self.signed and self.size < 8:
            out.extend(_extend(d, self.size, True))
        return out


def _extend(dst: int, size: int, signed: bool) -> List[Any]:
    from ebpf import asm as A

    if size >= 8:
        return []
    shift = 64 - size * 8
    return [A.lsh64(dst, shift), (A.arsh64 if signed else A.rsh64)(dst, shift)]


def parse_arg(text: str) -> UsdtArg:
    """One x86_64 argument spec (``-4@%edi``, ``8@-16(%rbp)``, ``4@$5``, ``8@(%rax,%rdx,8)``)."""
    m = _ARG_RE.match(text.strip())
    if m is None:
        raise AttachError(f"unsupported USDT argument spec {text!r}")
    size = int(m.group("size"))
    signed = size < 0
    size = abs(size)
    if size not in (1, 2, 4, 8):
        raise AttachError(f"bad USDT argument size in {text!r}")
    if m.group("const") is not None:
        return UsdtArg(size, signed, "const", offset=int(m.group("const"), 0), text=text)

    def reg64(name: str) -> str:
        full = _ALIASES.get(name, name)
        if full not in PT_REGS_X86_64:
            raise AttachError(f"unknown register %{name} in USDT argument {text!r}")
        return full

    if m.group("reg") is not None:
        name = m.group("reg")
        return UsdtArg(size, signed, "reg", reg64(name), shift=8 if name in _HIGH_BYTE else 0, text=text)
    off = int(m.group("off"), 0) if m.group("off") else 0
    if m.group("index"):
        return UsdtArg(size, signed, "sib", reg64(m.group("base")), off, reg64(m.group("index")),
                       int(m.group("scale") or 1), text=text)
    return UsdtArg(size, signed, "deref", reg64(m.group("base")), off, text=text)


def parse_args(text: str) -> List[UsdtArg]:
    return [parse_arg(part) for part in text.split()] if text.strip() else []


class UsdtProbe(NamedTuple):
    """One probe site in one file."""

    path: str
    provider: str
    name: str
    address: int  # link-time address of the nop (corrected for .stapsdt.base)
    offset: int  # file offset of the nop (what the uprobe takes)
    semaphore: int  # link-time address of the semaphore (0: none)
    semaphore_offset: int  # its file offset (ref_ctr_offset)
    args_text: str

    @property
    def args(self) -> List[UsdtArg]:
        return parse_args(self.args_text)


@functools.cache
def note_formats(little_endian: bool = True, bits: int = 64) -> Tuple[Any, Any]:
    """The construct declarations ``(notes, stapsdt)`` for one ELF byte order and class.

    ``notes`` is a whole note section: ``{u32 namesz; u32 descsz; u32 type; name; desc}`` records,
    name and desc each padded to 4 bytes (namesz counts the name's NUL, descsz is the desc's
    length, both rebuilt when building). ``stapsdt`` is the desc of one ``stapsdt`` note: three
    addresses of the ELF's word size, then three NUL-terminated strings. Both parse and build;
    construct is imported here, so only programs that use USDT pay for it.
    """
    import construct as C

    if bits not in (32, 64):
        raise AttachError(f"ELF class {bits} is not 32 or 64 bits")
    u32 = C.Int32ul if little_endian else C.Int32ub
    addr = {(32, True): C.Int32ul, (32, False): C.Int32ub, (64, True): C.Int64ul, (64, False): C.Int64ub}[
        (bits, little_endian)]
    note = C.Struct(
        "namesz" / C.Rebuild(u32, lambda ctx: len(ctx.name.encode("ascii")) + 1),
        "descsz" / C.Rebuild(u32, C.len_(C.this.desc)),
        "type" / u32,
        "name" / C.Aligned(4, C.PaddedString(C.this.namesz, "ascii")),
        "desc" / C.Aligned(4, C.Bytes(C.this.descsz)),
    )
    stapsdt = C.Struct(
        "pc" / addr,
        "base" / addr,
        "semaphore" / addr,
        "provider" / C.CString("utf8"),
        "name" / C.CString("utf8"),
        "args" / C.CString("utf8"),
    )
    # Terminated: a note cut short is an error, not the silent end of the section
    return C.FocusedSeq("notes", "notes" / C.GreedyRange(note), C.Terminated), stapsdt


class StapsdtNote(NamedTuple):
    """One ``stapsdt`` note as written in the file (addresses before any prelink correction)."""

    pc: int
    base: int  # link-time address of .stapsdt.base
    semaphore: int
    provider: str
    name: str
    args: str


def parse_notes(data: bytes, little_endian: bool = True, bits: int = 64) -> List[StapsdtNote]:
    """The ``stapsdt`` notes (type 3, name "stapsdt") of a ``.note.stapsdt`` section's bytes;
    other notes are skipped. A malformed section is an AttachError."""
    import construct as C

    notes, stapsdt = note_formats(little_endian, bits)
    try:
        out = []
        for n in notes.parse(data):
            if n.type == NT_STAPSDT and n.name == "stapsdt":
                d = stapsdt.parse(n.desc)
                out.append(StapsdtNote(d.pc, d.base, d.semaphore, d.provider, d.name, d.args))
        return out
    except (C.ConstructError, UnicodeDecodeError) as e:
        raise AttachError(f"malformed .note.stapsdt section: {str(e).splitlines()[0][:200]}") from None


def build_notes(entries: List[StapsdtNote], little_endian: bool = True, bits: int = 64) -> bytes:
    """The bytes of a ``.note.stapsdt`` section holding ``entries`` (the inverse of parse_notes)."""
    notes, stapsdt = note_formats(little_endian, bits)
    return bytes(notes.build([
        {"type": NT_STAPSDT, "name": "stapsdt", "desc": stapsdt.build(e._asdict())} for e in entries]))


def _elf_ident(path: str, f: Any) -> Tuple[bool, int]:
    """(little endian, bits) from e_ident: EI_CLASS is byte 4 (1: 32, 2: 64), EI_DATA byte 5 (1: LE, 2: BE)."""
    ident = f.read(6)
    if len(ident) < 6 or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise AttachError(f"{path}: not an ELF file with a known class and byte order")
    return ident[5] == 1, 32 * ident[4]


def usdt_probes(binary: str, pid: Optional[int] = None) -> List[UsdtProbe]:
    """Every USDT probe site of ``binary`` (a path or library name)."""
    from ebpf.symbols.elf import SymbolError, elf_file
    from ebpf.symbols.libraries import resolve_binary

    try:
        path = resolve_binary(binary, pid)
        info = elf_file(path)
    except SymbolError as e:
        raise AttachError(f"cannot read USDT probes of {binary}: {e}") from None
    section = info.sections.get(".note.stapsdt")
    if section is None:
        return []
    try:
        with open(path, "rb") as f:
            little, bits = _elf_ident(path, f)
            f.seek(section[1])
            data = f.read(section[2])
    except OSError as e:
        raise AttachError(f"cannot read USDT probes of {path}: {e.strerror}") from None
    base = info.sections.get(".stapsdt.base")
    base_addr = base[0] if base else None
    probes = []
    for n in parse_notes(data, little, bits):
        pc, sema = n.pc, n.semaphore
        if base_addr is not None and n.base:  # prelinked: shift by how far .stapsdt.base moved
            pc += base_addr - n.base
            if sema:
                sema += base_addr - n.base
        try:
            probes.append(UsdtProbe(path, n.provider, n.name, pc, info.vaddr_to_offset(pc), sema,
                                    info.vaddr_to_offset(sema, executable=False) if sema else 0, n.args))
        except SymbolError as e:
            raise AttachError(f"USDT probe {n.provider}:{n.name} of {path}: {e}") from None
    return probes


def find_usdt(binary: str, provider: str, name: str, pid: Optional[int] = None) -> List[UsdtProbe]:
    sites = [p for p in usdt_probes(binary, pid) if p.name == name and (not provider or p.provider == provider)]
    if not sites:
        raise AttachError(f"no USDT probe {provider}:{name} in {binary}")
    return sites


class UsdtLink(MultiLink):
    """The uprobes of one USDT probe; ``sites[i]`` is the site whose BPF cookie is ``i``."""

    def __init__(self, links: List[Link], target: str, sites: List[UsdtProbe]):
        super().__init__(links, target, kind="usdt")
        self.sites = sites


def attach_usdt(program: Any, binary: str, provider: str, name: str, *, pid: int = -1,
                legacy: Optional[bool] = None) -> UsdtLink:
    """Attach a KPROBE-type program to every site of USDT probe ``provider:name`` in ``binary``.

    The BPF cookie of each site's uprobe is its index in ``link.sites`` (read it with
    ``bpf_get_attach_cookie`` when sites differ in where they keep their arguments).
    """
    sites = find_usdt(binary, provider, name, pid if pid > 0 else None)
    links: List[Link] = []
    try:
        for i, site in enumerate(sites):
            links.append(attach_uprobe(program, site.path, None, offset=site.offset, pid=pid, cookie=i,
                                       ref_ctr_offset=site.semaphore_offset, legacy=legacy))
    except BaseException:
        for link in links:
            link.close()
        raise
    return UsdtLink(links, f"{sites[0].path}:{provider}:{name}", sites)
