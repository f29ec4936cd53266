"""CO-RE: resolve the compiler's relocation records against a target BTF and patch instructions.

The compiler attaches a :class:`~ebpf.btf.relo.CoreRelo` to every instruction whose offset or
constant depends on kernel types (``insn.meta["core"]``). :func:`relocate` resolves each one
against a target (the running kernel by default, or any BTF) and returns patched copies:
a new ``off`` for loads/stores (with the access size adjusted where libbpf allows it), a new
``imm`` for ALU immediates and LD_IMM64. What cannot be resolved is *poisoned* the way libbpf
does it: the instruction becomes ``call 0xbad2310`` (both slots of an LD_IMM64), which the
verifier accepts in dead code, so a program that guards a missing field with a FIELD_EXISTS
check loads, and rejects when reached (see :func:`poisoned_slots` and
:func:`ebpf.verifier.describe` for the message that names the relocation).

Semantics (libbpf's, relo_core.c / libbpf.c):

* **Candidates** of the root type are the target types of the same kind (ENUM and ENUM64
  together) whose essential name equals the root's (``task_struct___old`` looks for
  ``task_struct`` and its flavours). The main BTF (vmlinux) is searched first; module BTFs
  only when it has none. Candidate lists are cached per target BTF and pruned per
  :class:`Relocator` (per program) as relocations of the same root type rule candidates out,
  as libbpf's candidate cache is.
* **Matching**: field paths by member name through anonymous members with bounds-checked
  array indices (:mod:`ebpf.btf.core_spec`); type kinds by :func:`types_are_compat`,
  TYPE_MATCHES by :func:`types_match`; enum values by essential enumerator name.
* **Ambiguity**: every matching candidate must give the same bit offset (fields) and the same
  value, else :class:`~ebpf.errors.RelocationError`. Identical candidates (a BTF that was
  never deduplicated holds hundreds of copies of ``task_struct``) agree, so they count as one;
  for TYPE_ID_TARGET, whose ids always differ, copies of the same layout are one and the
  first is used.
* **No match**: FIELD_EXISTS, ENUMVAL_EXISTS and the type kinds give 0; every other kind
  poisons its instruction.
* **Local types**: given the BTF the program was compiled against (``local_btf``), the local
  root type and path are followed there too and libbpf's compatibility rules are applied
  member by member (``bpf_core_fields_are_compat``), the instruction must hold the value the
  local type gives, and load/store sizes are adjusted only when both fields are pointers or
  both unsigned integers. Without it (or when the local BTF lacks the type or path, as for a
  flavour or a field guarded by an existence check) the record's names are all there is: the
  instruction must hold ``local_value``, and a load/store whose width differs from a scalar
  target field is resized when that field is a pointer or an unsigned integer (and the load
  is not sign-extending), poisoned otherwise. TYPE_MATCHES needs the local type.
"""

from __future__ import annotations

import weakref
from typing import (
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ebpf.asm import opcodes as o
from ebpf.asm.instruction import Instruction, ProgramItem
from ebpf.btf import types as T
from ebpf.btf.core_compat import strip, types_are_compat, types_match
from ebpf.btf.core_spec import FieldSpec, Mismatch, describe_type, field_value, local_spec, match_field
from ebpf.btf.errors import BTFError
from ebpf.btf.kinds import Kind
from ebpf.btf.names import essential_name
from ebpf.btf.relo import CoreRelo, has_core_relocations
from ebpf.btf.spec import BTF
from ebpf.errors import RelocationError
from ebpf.uapi import CoreReloKind

__all__ = [
    "POISON_IMM", "CoreFix", "CoreTarget", "PoisonInfo", "Relocator", "has_core_relocations",
    "kernel_target", "parse_type_name", "poisoned_slots", "relocate", "resolve",
]

#: libbpf's poison: ``call 0xbad2310`` ("bad relo"); the verifier says ``invalid func unknown#195896080``.
POISON_IMM = 0xBAD2310

K = CoreReloKind
FIELD_KINDS = frozenset({K.FIELD_BYTE_OFFSET, K.FIELD_BYTE_SIZE, K.FIELD_EXISTS, K.FIELD_SIGNED,
                         K.FIELD_LSHIFT_U64, K.FIELD_RSHIFT_U64})
TYPE_KINDS = frozenset({K.TYPE_ID_LOCAL, K.TYPE_ID_TARGET, K.TYPE_EXISTS, K.TYPE_SIZE, K.TYPE_MATCHES})
ENUMVAL_KINDS = frozenset({K.ENUMVAL_EXISTS, K.ENUMVAL_VALUE})
#: kinds that give 0 rather than poison when nothing matches
ZERO_WHEN_MISSING = frozenset({K.FIELD_EXISTS, K.ENUMVAL_EXISTS, K.TYPE_ID_TARGET, K.TYPE_EXISTS,
                               K.TYPE_SIZE, K.TYPE_MATCHES})

KindGroup = Tuple[Kind, ...]
_ENUMS: KindGroup = (Kind.ENUM, Kind.ENUM64)
_PREFIXES: Dict[str, KindGroup] = {
    "struct": (Kind.STRUCT,), "union": (Kind.UNION,), "enum": _ENUMS, "typedef": (Kind.TYPEDEF,),
}
#: the kinds a bare name is looked for as, in this order (the first that has candidates wins)
_BARE: Tuple[KindGroup, ...] = ((Kind.STRUCT,), (Kind.UNION,), _ENUMS, (Kind.TYPEDEF,), (Kind.INT,), (Kind.FLOAT,))
_KIND_WORD = {Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ENUM: "enum", Kind.ENUM64: "enum",
              Kind.TYPEDEF: "typedef", Kind.INT: "int", Kind.FLOAT: "float"}


def parse_type_name(type_name: str, kind: Optional[CoreReloKind] = None) -> Tuple[Tuple[KindGroup, ...], str]:
    """``"struct task_struct"`` -> ``(((STRUCT,),), "task_struct")``; a bare name may be any of
    several kinds (only enums for enum-value relocations)."""
    words = type_name.split(None, 1)
    if words and words[0] in _PREFIXES:
        groups: Tuple[KindGroup, ...] = (_PREFIXES[words[0]],)
        name = words[1].strip() if len(words) == 2 else ""
    else:
        groups = _BARE
        name = type_name.strip()
    if kind in ENUMVAL_KINDS:
        groups = tuple(g for g in groups if g == _ENUMS)
        if not groups:
            raise RelocationError(f"{kind.name if kind is not None else ''} needs an enum, not {type_name!r}")
    if not name:
        raise RelocationError(f"CO-RE relocations of anonymous types are not supported ({type_name!r})")
    return groups, name


# --------------------------------------------------------------------------- targets

_CandidateKey = Tuple[str, KindGroup, bool]
_CANDIDATES: weakref.WeakKeyDictionary[BTF, Dict[_CandidateKey, Tuple[int, ...]]] = weakref.WeakKeyDictionary()


def _btf_candidates(btf: BTF, kinds: KindGroup, essential: str, own_only: bool) -> List[T.Type]:
    cache = _CANDIDATES.get(btf)
    if cache is None:
        cache = _CANDIDATES[btf] = {}
    key = (essential, kinds, own_only)
    ids = cache.get(key)
    if ids is None:
        found = btf.candidates(essential, kinds)
        ids = cache[key] = tuple(t.id for t in found if not own_only or t.id >= btf.first_id)
    return [btf.type_by_id(i) for i in ids]


class CoreTarget:
    """Where candidates are searched: *main* (vmlinux) first, then, only when it has none,
    each module's own types.

    *modules* is a sequence of split BTFs on *main*, or a function returning them (called the
    first time main has no candidate: module BTF is read only when needed). *label* names the
    target in messages (``"this kernel"``).
    """

    def __init__(
        self, main: BTF, modules: Union[Sequence[BTF], Callable[[], Sequence[BTF]]] = (), *, label: str = "",
    ) -> None:
        self.main = main
        self._modules = modules
        self.label = label or f"target BTF {main.name}"

    @classmethod
    def of(cls, target: Union[BTF, CoreTarget, None]) -> CoreTarget:
        """A target from a BTF (a split BTF searches its base first, then its own types, as a
        module on vmlinux), a CoreTarget, or None for the running kernel."""
        if target is None:
            return kernel_target()
        if isinstance(target, CoreTarget):
            return target
        if target.base is not None:
            return cls(target.base, [target], label=f"target BTF {target.name}")
        return cls(target)

    def modules(self) -> Sequence[BTF]:
        if callable(self._modules):
            self._modules = list(self._modules())
        return self._modules

    def candidates(self, kinds: KindGroup, name: str) -> List[T.Type]:
        """Types of *kinds* whose essential name is that of *name*: vmlinux's, else modules'."""
        essential = essential_name(name)
        found = _btf_candidates(self.main, kinds, essential, own_only=False)
        if found:
            return found
        for module in self.modules():
            found.extend(_btf_candidates(module, kinds, essential, own_only=True))
        return found

    def __repr__(self) -> str:
        return f"<CoreTarget {self.label}>"


def _kernel_modules() -> List[BTF]:
    from ebpf.btf.kernel import module_btf, module_names

    out = []
    for name in module_names():
        try:
            out.append(module_btf(name))
        except BTFError:
            continue  # unloaded meanwhile, or unreadable: it cannot hold candidates
    return out


def kernel_target() -> CoreTarget:
    """The running kernel: its vmlinux BTF, then its loaded modules' BTF."""
    from ebpf.btf.kernel import kernel_btf

    return CoreTarget(kernel_btf(), _kernel_modules, label="this kernel")


# --------------------------------------------------------------------------- results


class CoreFix(NamedTuple):
    """How one relocation resolved.

    *value* is what the instruction gets (0 when poisoned); *poison* says the instruction is
    to be poisoned and *reason* why (or why an existence kind gave 0). *target* is the
    candidate type used and *bit_offset* the field's offset in it. *expected* is the value
    the instruction must hold before patching (None: not checked). For FIELD_BYTE_OFFSET of
    a plain field, *new_size*/*new_type* describe the target field and *orig_size* the local
    one (0 without a local type), and *resize_ok* whether the load/store size may change.
    """

    relo: CoreRelo
    value: int
    poison: bool = False
    reason: str = ""
    target: Optional[T.Type] = None
    bit_offset: Optional[int] = None
    expected: Optional[int] = None
    new_size: int = 0
    new_type: Optional[T.Type] = None
    orig_size: int = 0
    resize_ok: bool = True


class PoisonInfo(NamedTuple):
    """Kept in ``meta["core_poison"]`` of a poisoned instruction (both slots of an LD_IMM64)."""

    relo: CoreRelo
    reason: str
    where: str  # "on this kernel", "against target BTF x"

    def explain(self) -> str:
        return f"CO-RE relocation {self.relo.describe()} cannot be resolved {self.where} ({self.reason})"


# --------------------------------------------------------------------------- resolution


def _resizable(t: Optional[T.Type]) -> bool:
    """libbpf adjusts a load/store size only for pointers and unsigned integers."""
    return isinstance(t, T.Pointer) or (isinstance(t, T.Int) and not t.signed)


def _shape(t: T.Type, depth: int = 0) -> Tuple[object, ...]:
    """What identifies a type among copies: kind and name (a forward declaration counts as
    its struct/union), what references lead to, the size and member count of anonymous
    composites; never type ids. Typedefs and qualifiers are looked through."""
    t = strip(t)
    if isinstance(t, T.Fwd):  # a forward declaration in one copy is the definition in another
        return (Kind.UNION if t.is_union else Kind.STRUCT, t.name)
    if t.name or depth > 8:
        return (t.kind, t.name)
    if isinstance(t, T.Array):
        return (t.kind, t.nelems, _shape(t.type, depth + 1))
    if isinstance(t, T.Reference):
        return (t.kind, _shape(t.type, depth + 1))
    if isinstance(t, T.Composite):
        return (t.kind, t.size, len(t.members))
    return (t.kind,)


def _same_layout(a: T.Type, b: T.Type) -> bool:
    """Structurally the same type for CO-RE's purposes (copies in a non-deduplicated BTF)."""
    if type(a) is not type(b) or a.name != b.name:
        return False
    if isinstance(a, T.Composite) and isinstance(b, T.Composite):
        return a.size == b.size and len(a.members) == len(b.members) and all(
            x.name == y.name and x.bit_offset == y.bit_offset and x.bitfield_size == y.bitfield_size
            and _shape(x.type) == _shape(y.type)
            for x, y in zip(a.members, b.members)
        )
    if isinstance(a, T.Enum) and isinstance(b, T.Enum):
        return a.size == b.size and a.values == b.values
    if isinstance(a, T.Int) and isinstance(b, T.Int):
        return (a.size, a.encoding, a.bits) == (b.size, b.encoding, b.bits)
    return _shape(a) == _shape(b)


class _Match(NamedTuple):
    cand: T.Type
    fix: CoreFix
    key: Tuple[object, ...]  # what must agree between candidates


class Relocator:
    """Resolves and applies relocations against one target, for one program (or collection):
    candidate lists are pruned as relocations rule candidates out, as libbpf does per object.

    *local_btf* is the BTF the program was compiled against (enables libbpf's compatibility
    checks, see the module docstring); *local_type_ids* maps a relocation's ``type_name`` to
    the id of that type in the program's own BTF, which TYPE_ID_LOCAL needs.
    """

    def __init__(
        self, target: Union[BTF, CoreTarget, None] = None, *, local_btf: Optional[BTF] = None,
        local_type_ids: Optional[Mapping[str, int]] = None,
    ) -> None:
        self.target = CoreTarget.of(target)
        self.local_btf = local_btf
        self.local_type_ids = dict(local_type_ids or {})
        self.where = "on this kernel" if self.target.label == "this kernel" else f"against {self.target.label}"
        self._pruned: Dict[Tuple[KindGroup, str], List[T.Type]] = {}
        self.fixes: List[Tuple[int, CoreFix]] = []  # (instruction index, fix) of the last relocate()

    # ------------------------------------------------------------------ resolving

    def resolve(self, relo: CoreRelo) -> CoreFix:
        """The fix for *relo* (RelocationError when it is malformed or ambiguous)."""
        kind = CoreReloKind(relo.kind)
        if kind == K.TYPE_ID_LOCAL:
            return self._type_id_local(relo)
        groups, name = parse_type_name(relo.type_name, kind)
        local_root = self._local_root(groups, name)
        if local_root is not None:
            groups = tuple(g for g in groups if local_root.kind in g)
        local: Optional[FieldSpec] = None
        if local_root is not None and kind in FIELD_KINDS:
            try:
                local = local_spec(local_root, relo.access)
            except Mismatch:
                local_root = None  # the local BTF lacks the path: the record's names decide
        if local_root is not None and kind in ENUMVAL_KINDS:
            if not isinstance(local_root, T.Enum) or local_root.value_of(self._enumerator(relo)) is None:
                local_root = None
        if kind == K.TYPE_MATCHES and local_root is None:
            raise RelocationError(
                f"CO-RE relocation {relo.describe()}: TYPE_MATCHES needs the local definition of the type "
                "(pass the BTF the program was compiled against as local_btf)"
            )
        cands, key = self._candidates(groups, name)
        expected = self._expected(kind, relo, local_root, local)
        matches: List[_Match] = []
        reasons: List[str] = []
        for cand in cands:
            try:
                matches.append(self._match(kind, relo, cand, local_root, local, expected))
            except Mismatch as e:
                reasons.append(str(e))
        if not matches:
            if not cands:
                words = " or ".join(dict.fromkeys(_KIND_WORD.get(g[0], g[0].name.lower()) for g in groups))
                reason = f"no {words} {essential_name(name)} in {self._target_text()}"
            else:
                reason = reasons[0]
            if kind in ZERO_WHEN_MISSING:
                return CoreFix(relo, 0, reason=reason, expected=expected)
            return CoreFix(relo, 0, poison=True, reason=reason, expected=expected)
        first = matches[0]
        for other in matches[1:]:
            if other.key != first.key:
                if kind == K.TYPE_ID_TARGET and _same_layout(first.cand, other.cand):
                    continue
                raise RelocationError(
                    f"CO-RE relocation {relo.describe()} is ambiguous {self.where}: candidates "
                    f"[{first.cand.id}] {describe_type(first.cand)} and [{other.cand.id}] "
                    f"{describe_type(other.cand)} give {self._key_text(first.key)} and {self._key_text(other.key)}"
                )
        if key is not None and len(matches) < len(cands):
            self._pruned[key] = [m.cand for m in matches]
        return first.fix

    @staticmethod
    def _key_text(key: Tuple[object, ...]) -> str:
        if len(key) == 2:
            return f"bit offset {key[0]}, value {key[1]}"
        return f"value {key[0]}"

    def _target_text(self) -> str:
        return "this kernel's BTF" if self.target.label == "this kernel" else self.target.label

    def _type_id_local(self, relo: CoreRelo) -> CoreFix:
        type_id = self.local_type_ids.get(relo.type_name)
        if type_id is None:
            raise RelocationError(
                f"CO-RE relocation {relo.describe()}: TYPE_ID_LOCAL needs the type in the program's own BTF, "
                "which ebpf.btf.ext.program_btf does not emit yet (pass local_type_ids)"
            )
        return CoreFix(relo, type_id)

    @staticmethod
    def _enumerator(relo: CoreRelo) -> str:
        if len(relo.access) != 1 or not isinstance(relo.access[0], str):
            raise RelocationError(f"CO-RE relocation {relo.describe()}: the access must be one enumerator name")
        return relo.access[0]

    def _local_root(self, groups: Tuple[KindGroup, ...], name: str) -> Optional[T.Type]:
        if self.local_btf is None:
            return None
        for group in groups:
            ids = self.local_btf.ids_by_name(name, group)
            if ids:
                return self.local_btf.type_by_id(ids[0])
        return None

    def _candidates(
        self, groups: Tuple[KindGroup, ...], name: str
    ) -> Tuple[List[T.Type], Optional[Tuple[KindGroup, str]]]:
        for group in groups:
            key = (group, name)  # per local type, as libbpf's candidate cache is
            pruned = self._pruned.get(key)
            if pruned is not None:
                return pruned, key
            found = self.target.candidates(group, name)
            if found:
                return found, key
        return [], None

    def _expected(
        self, kind: CoreReloKind, relo: CoreRelo, local_root: Optional[T.Type], local: Optional[FieldSpec]
    ) -> Optional[int]:
        """The value the instruction must hold before patching (None: not checked)."""
        if kind in (K.TYPE_ID_LOCAL, K.TYPE_ID_TARGET):
            return None
        if local_root is None:
            return relo.local_value
        if kind in FIELD_KINDS:
            if kind == K.FIELD_EXISTS:
                return 1
            assert local is not None
            fv = field_value(kind, local, local.root.btf.byte_order)
            return fv.value if fv.validate else None
        if kind in ENUMVAL_KINDS:
            if kind == K.ENUMVAL_EXISTS:
                return 1
            assert isinstance(local_root, T.Enum)
            return local_root.value_of(self._enumerator(relo))
        if kind == K.TYPE_SIZE:
            return _size(local_root)
        return 1  # TYPE_EXISTS, TYPE_MATCHES

    def _match(
        self, kind: CoreReloKind, relo: CoreRelo, cand: T.Type, local_root: Optional[T.Type],
        local: Optional[FieldSpec], expected: Optional[int],
    ) -> _Match:
        if kind in FIELD_KINDS:
            spec = match_field(cand, relo.access, local)
            if kind == K.FIELD_EXISTS:
                fix = CoreFix(relo, 1, target=cand, bit_offset=spec.bit_offset, expected=expected)
                return _Match(cand, fix, (spec.bit_offset, 1))
            fv = field_value(kind, spec, cand.btf.byte_order)
            orig_size = 0
            resize_ok = True
            if local is not None and kind == K.FIELD_BYTE_OFFSET:
                lv = field_value(kind, local, local.root.btf.byte_order)
                orig_size = lv.size
                if lv.size != fv.size:
                    resize_ok = (isinstance(lv.type, T.Pointer) and isinstance(fv.type, T.Pointer)) or (
                        isinstance(lv.type, T.Int) and isinstance(fv.type, T.Int)
                        and not lv.type.signed and not fv.type.signed
                    )
            elif kind == K.FIELD_BYTE_OFFSET:
                resize_ok = _resizable(fv.type)
            fix = CoreFix(relo, fv.value, target=cand, bit_offset=spec.bit_offset, expected=expected,
                          new_size=fv.size, new_type=fv.type, orig_size=orig_size, resize_ok=resize_ok)
            return _Match(cand, fix, (spec.bit_offset, fv.value))
        if kind in ENUMVAL_KINDS:
            if not isinstance(cand, T.Enum):
                raise Mismatch(f"{describe_type(cand)} is not an enum")
            wanted = essential_name(self._enumerator(relo))
            for value in cand.values:
                if essential_name(value.name) == wanted:
                    result = 1 if kind == K.ENUMVAL_EXISTS else value.value
                    return _Match(cand, CoreFix(relo, result, target=cand, expected=expected), (result,))
            raise Mismatch(f"no value {relo.access[0]} in {describe_type(cand)}")
        # type kinds
        if local_root is not None:
            ok = types_match(local_root, cand) if kind == K.TYPE_MATCHES else types_are_compat(local_root, cand)
            if not ok:
                raise Mismatch(f"{describe_type(cand)} [{cand.id}] of {cand.btf.name} is not compatible with the "
                               f"local {describe_type(local_root)}")
        if kind == K.TYPE_SIZE:
            result = _size(cand)
        elif kind == K.TYPE_ID_TARGET:
            result = cand.id
        else:
            result = 1
        return _Match(cand, CoreFix(relo, result, target=cand, expected=expected), (result,))

    # ------------------------------------------------------------------ patching

    def relocate(self, insns: Iterable[ProgramItem]) -> List[Instruction]:
        """Copies of *insns* with every ``meta["core"]`` relocation applied (labels pass through).

        The fix is recorded in the copy's ``meta["core_fix"]``; a poisoned instruction's
        ``meta["core_poison"]`` holds a :class:`PoisonInfo`. :attr:`fixes` lists them all.
        """
        out: List[Instruction] = []
        self.fixes = []
        for index, item in enumerate(insns):
            if not isinstance(item, Instruction):
                out.append(item)  # type: ignore[arg-type]  # Label markers, for link() later
                continue
            meta = item._meta
            relo = meta.get("core") if meta else None
            if relo is None:
                out.append(item)
                continue
            if not isinstance(relo, CoreRelo):
                raise RelocationError(f"instruction {index}: meta['core'] is {relo!r}, not a CoreRelo")
            try:
                fix = self.resolve(relo)
                out.extend(self.apply(item, fix))
            except RelocationError as e:
                raise RelocationError(f"{_where(index, item)}: {e}") from None
            except BTFError as e:
                raise RelocationError(f"{_where(index, item)}: CO-RE relocation {relo.describe()}: {e}") from None
            self.fixes.append((index, fix))
        return out

    def apply(self, insn: Instruction, fix: CoreFix) -> List[Instruction]:
        """The instruction(s) replacing *insn*: patched, or poisoned (two for an LD_IMM64)."""
        if fix.poison:
            return self._poison(insn, PoisonInfo(fix.relo, fix.reason, self.where))
        relo = fix.relo
        new = insn.copy()
        new.meta["core_fix"] = fix
        cls = insn.cls
        value = fix.value
        if insn.opcode == o.LD_IMM64:
            if insn.src != o.PSEUDO_NONE or insn.off != 0:
                raise RelocationError(f"CO-RE relocation {relo.describe()} on an LD_IMM64 that is not a plain constant")
            _check(relo, fix.expected, insn.imm, 64)
            if not -(1 << 63) <= value < (1 << 64):
                raise RelocationError(f"CO-RE relocation {relo.describe()}: value {value} does not fit 64 bits")
            new.imm = value - (1 << 64) if value >= (1 << 63) else value
        elif cls in (o.ALU, o.ALU64):
            if insn.uses_src_reg or insn.op == o.END:
                raise RelocationError(
                    f"CO-RE relocation {relo.describe()} on an ALU instruction without an immediate operand"
                )
            _check(relo, fix.expected, insn.imm, 32)
            top = 1 << 32 if cls == o.ALU else 1 << 31
            if not -(1 << 31) <= value < top:
                raise RelocationError(
                    f"CO-RE relocation {relo.describe()}: value {value} does not fit the instruction's 32-bit immediate"
                )
            new.imm = value - (1 << 32) if value >= (1 << 31) else value
        elif cls in (o.LDX, o.ST, o.STX):
            _check(relo, fix.expected, insn.off, 16)
            if not 0 <= value <= 0x7FFF:
                raise RelocationError(
                    f"CO-RE relocation {relo.describe()}: offset {value} does not fit a load/store's 16-bit offset"
                )
            new.off = value
            size = self._new_size(insn, fix)
            if size < 0:
                return self._poison(insn, PoisonInfo(relo, self._size_reason(insn, fix), self.where))
            if size:
                new.opcode = (insn.opcode & ~0x18) | o.BYTES_SIZE[size]
        else:
            raise RelocationError(
                f"CO-RE relocation {relo.describe()} on {insn} (only loads/stores, ALU immediates and "
                "LD_IMM64 can be relocated)"
            )
        return [new]

    @staticmethod
    def _new_size(insn: Instruction, fix: CoreFix) -> int:
        """0: keep the access size; 1/2/4/8: the new size; -1: the size cannot be adjusted."""
        if fix.relo.kind != K.FIELD_BYTE_OFFSET or not fix.new_size:
            return 0
        width = insn.width
        if fix.orig_size:  # libbpf: the local field's size against the target's
            if fix.orig_size == fix.new_size:
                return 0
            if width != fix.orig_size:
                raise RelocationError(
                    f"CO-RE relocation {fix.relo.describe()}: the instruction accesses {width} bytes, "
                    f"the local field has {fix.orig_size}"
                )
        else:  # no local type: the access is taken to cover a scalar field entirely
            if not isinstance(fix.new_type, (T.Int, T.Pointer, T.Enum, T.Float)) or width == fix.new_size:
                return 0
            if insn.mode == o.MEMSX:
                return -1
        if not fix.resize_ok or fix.new_size not in o.BYTES_SIZE:
            return -1
        return fix.new_size

    @staticmethod
    def _size_reason(insn: Instruction, fix: CoreFix) -> str:
        target = describe_type(fix.new_type) if fix.new_type is not None else "?"
        unit = "byte" if fix.new_size == 1 else "bytes"
        return (f"the field is {fix.new_size} {unit} ({target}) where the program accesses {insn.width}, "
                "and only pointers and unsigned integers may change size")

    @staticmethod
    def _poison(insn: Instruction, info: PoisonInfo) -> List[Instruction]:
        meta = {k: v for k, v in (insn._meta or {}).items() if k != "core"}
        meta["core_poison"] = info
        comment = f"instruction poisoned by CO-RE: {info.explain()}"
        first = Instruction(o.JMP | o.CALL, 0, o.CALL_HELPER, 0, POISON_IMM, label=insn.label,
                            source=insn.source, comment=comment, meta=meta)
        if insn.opcode != o.LD_IMM64:
            return [first]
        second = Instruction(o.JMP | o.CALL, 0, o.CALL_HELPER, 0, POISON_IMM, source=insn.source, comment=comment,
                             meta={"core_poison": info})
        return [first, second]


def _size(t: T.Type) -> int:
    try:
        return t.btf.size_of(t)
    except BTFError as e:
        raise RelocationError(f"{describe_type(t)} has no size: {e}") from None


def _check(relo: CoreRelo, expected: Optional[int], actual: int, bits: int) -> None:
    if expected is None:
        return
    mask = (1 << bits) - 1
    if (expected & mask) != (actual & mask):
        raise RelocationError(
            f"CO-RE relocation {relo.describe()}: the instruction holds {actual}, the relocation expects "
            f"{expected} (the value the program was compiled with)"
        )


def _where(index: int, insn: Instruction) -> str:
    src = insn.source
    at = f" ({src.file}:{src.line}: {src.text.strip()})" if src is not None else ""
    return f"instruction {index}{at}"


# --------------------------------------------------------------------------- entry points


def relocate(
    insns: Iterable[ProgramItem], target: Union[BTF, CoreTarget, None] = None, *,
    local_btf: Optional[BTF] = None, local_type_ids: Optional[Mapping[str, int]] = None,
) -> List[Instruction]:
    """Copies of *insns* with their CO-RE relocations resolved against *target* (default: the
    running kernel and its modules) and applied; see the module docstring."""
    return Relocator(target, local_btf=local_btf, local_type_ids=local_type_ids).relocate(insns)


def resolve(
    relo: CoreRelo, target: Union[BTF, CoreTarget, None] = None, *, local_btf: Optional[BTF] = None,
) -> CoreFix:
    """Resolve one relocation (with fresh candidate lists) without touching instructions."""
    return Relocator(target, local_btf=local_btf).resolve(relo)


def poisoned_slots(insns: Iterable[Instruction]) -> Dict[int, str]:
    """Slot index (what the verifier log counts) -> explanation, for every poisoned instruction."""
    out: Dict[int, str] = {}
    slot = 0
    for insn in insns:
        meta = insn._meta
        info = meta.get("core_poison") if meta else None
        if isinstance(info, PoisonInfo):
            out[slot] = info.explain()
        slot += insn.size
    return out
