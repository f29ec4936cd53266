"""A compiled :class:`~ebpf.program.ProgramSpec` as flat binary, the compile cache's entry format.

No pickle: a cache file is data that is decoded, never code that is run, and reading it back
must cost a fraction of a millisecond (importing pickle alone costs ~2 ms). The layout, all
little-endian, after the sealed header of :mod:`ebpf.cache_files`:

* ``_HEAD``: counts and sizes of what follows, the spec's scalar fields, and string indices
  of its name, license and hook;
* the cache key (UTF-8), compared whole with the key of the program being compiled;
* the string table: every string of the spec, UTF-8, joined by NUL (a string holding a NUL
  makes the spec unstorable), so decoding it is one ``decode().split()``;
* ``_INSN`` records, one per instruction: encoding fields, then indices (-1: none) of its
  label, reference, comment, source position and CO-RE relocation;
* ``_SOURCE`` records (file, line, column, text) shared by the instructions of one line;
* ``_RELO`` records (kind, type name, local value, first access step, step count) and their
  ``_STEP`` access steps (a string index or an integer);
* the ``extras`` dict in a small tagged encoding of plain values (None, bool, int, float,
  str, bytes, tuple, list, dict).

Anything else in a spec (another ``meta`` key, an object in ``extras``) raises
:class:`Unstorable`: that program is compiled every time instead.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Tuple

from ebpf.program import ProgramSpec

__all__ = ["Unstorable", "encode_spec", "decode_spec", "MAGIC"]

MAGIC = b"EBPFPRG2"
# sizes: key, strings, insns, sources, relos, steps, extras; spec: type, attach type, attach BTF id, flags,
# kernel version, string indices of name, license, hook
_HEAD = struct.Struct("<7i2i3I3i")
_INSN = struct.Struct("<BBhqiiiii")
_SOURCE = struct.Struct("<iiii")
_RELO = struct.Struct("<iiqii")
_STEP = struct.Struct("<iq")  # (1, string index) or (0, integer)
_NONE = -1
_LD_IMM64 = 0x18  # BPF_LD | BPF_IMM | BPF_DW


class Unstorable(Exception):
    """A spec holding something the file format does not describe."""


class _Strings:
    def __init__(self) -> None:
        self.index: Dict[str, int] = {}
        self.items: List[str] = []

    def __call__(self, text: Optional[str]) -> int:
        if text is None:
            return _NONE
        found = self.index.get(text)
        if found is None:
            if type(text) is not str or "\0" in text:
                raise Unstorable(f"string {text!r}")
            found = self.index[text] = len(self.items)
            self.items.append(text)
        return found


def encode_spec(spec: ProgramSpec, key: str) -> List[bytes]:
    """The payload parts of an entry for *spec* compiled under *key* (raises Unstorable)."""
    from ebpf.asm.instruction import SourcePos
    from ebpf.btf.relo import CoreRelo
    from ebpf.uapi import CoreReloKind

    s = _Strings()
    sources: Dict[SourcePos, int] = {}
    src_out = bytearray()
    relo_out = bytearray()
    step_out = bytearray()
    insn_out = bytearray()
    nrelos = nsteps = 0
    for insn in spec.instructions:
        src = _NONE
        if insn.source is not None:
            file, line, col, text = pos = insn.source
            src = sources.get(pos, _NONE)
            if src == _NONE:
                src = sources[pos] = len(sources)
                src_out += _SOURCE.pack(s(file), line, col, s(text))
        relo = _NONE
        meta = getattr(insn, "_meta", None)
        if meta:
            core = meta.get("core")
            if len(meta) != 1 or type(core) is not CoreRelo or type(core.kind) is not CoreReloKind:
                raise Unstorable(f"instruction metadata {sorted(meta)}")
            relo = nrelos
            nrelos += 1
            relo_out += _RELO.pack(int(core.kind), s(core.type_name), core.local_value, nsteps, len(core.access))
            for step in core.access:
                if type(step) is str:
                    step_out += _STEP.pack(1, s(step))
                elif type(step) is int:
                    step_out += _STEP.pack(0, step)
                else:
                    raise Unstorable(f"access step {step!r}")
                nsteps += 1
        insn_out += _INSN.pack(insn.opcode, insn.dst | insn.src << 4, insn.off, insn.imm, s(insn.label),
                               s(insn.reference), s(insn.comment), src, relo)
    extras = bytearray()
    _put(extras, spec.extras, s)
    attach_type = _NONE if spec.attach_type is None else int(spec.attach_type)
    fields = (int(spec.type), attach_type, spec.attach_btf_id, spec.flags, spec.kern_version,
              s(spec.name), s(spec.license), s(spec.attach_to))
    strings = "\0".join(s.items).encode()
    raw_key = key.encode()
    try:
        head = _HEAD.pack(len(raw_key), len(strings), len(spec.instructions), len(sources), nrelos, nsteps,
                          len(extras), *fields)
    except struct.error as e:
        raise Unstorable(str(e)) from None
    return [head, raw_key, strings, bytes(insn_out), bytes(src_out), bytes(relo_out), bytes(step_out),
            bytes(extras)]


def decode_spec(payload: memoryview, key: str) -> Optional[ProgramSpec]:
    """The spec in *payload* when it was stored under *key*; None for another key.

    A payload that passed its checksum but does not decode raises (struct.error, ValueError,
    IndexError, EbpfError...): the caller treats any exception as a miss.
    """
    from ebpf.asm.instruction import Instruction, SourcePos

    (nkey, nstr, ninsn, nsrc, nrelo, nstep, nextra, ptype, attach_type, btf_id, flags, kver, name, lic,
     attach_to) = _HEAD.unpack_from(payload, 0)
    pos = _HEAD.size
    raw_key = key.encode()
    if nkey != len(raw_key) or payload[pos:pos + nkey] != raw_key:
        return None
    pos += nkey
    strings = str(payload[pos:pos + nstr], "utf-8").split("\0")
    pos += nstr
    insn_view = payload[pos:pos + ninsn * _INSN.size]
    pos += ninsn * _INSN.size
    sources = [SourcePos(strings[f], line, col, strings[t])
               for f, line, col, t in _SOURCE.iter_unpack(payload[pos:pos + nsrc * _SOURCE.size])]
    pos += nsrc * _SOURCE.size
    relo_view = payload[pos:pos + nrelo * _RELO.size]
    pos += nrelo * _RELO.size
    steps = [strings[v] if is_str else v for is_str, v in _STEP.iter_unpack(payload[pos:pos + nstep * _STEP.size])]
    pos += nstep * _STEP.size
    relos: List[Any] = []
    if nrelo:
        from ebpf.btf.relo import CoreRelo
        from ebpf.uapi import CoreReloKind

        relos = [CoreRelo(CoreReloKind(kind), strings[name_i], tuple(steps[first:first + count]), value)
                 for kind, name_i, value, first, count in _RELO.iter_unpack(relo_view)]
    extras, end = _get(payload, pos, strings)
    if end != pos + nextra or end != payload.nbytes or not isinstance(extras, dict):
        raise ValueError("trailing data")
    none = _NONE
    insns = []
    new = Instruction.__new__
    for op, regs, off, imm, label, ref, comment, src, relo in _INSN.iter_unpack(insn_view):
        # the record's formats bound every field as Instruction() would, but imm (32 bits
        # except in LD_IMM64); slots are set directly: 4x faster than the checking constructor
        if not -0x80000000 <= imm <= 0x7FFFFFFF and op != _LD_IMM64:
            raise ValueError(f"immediate {imm} of opcode {op:#x}")
        insn = new(Instruction)
        insn.opcode = op
        insn.dst = regs & 0xF
        insn.src = regs >> 4
        insn.off = off
        insn.imm = imm
        insn.label = None if label == none else strings[label]
        insn.reference = None if ref == none else strings[ref]
        insn.comment = None if comment == none else strings[comment]
        insn.source = None if src == none else sources[src]
        insn._meta = None if relo == none else {"core": relos[relo]}
        insns.append(insn)
    return ProgramSpec(strings[name], ptype, insns, strings[lic], strings[attach_to],
                       None if attach_type == none else attach_type, btf_id, flags, kver, extras)


# ---- extras: tagged plain values -----------------------------------------------------------------

_TAG = struct.Struct("<Bq")  # tag, then an integer, a string index or a length
_FLOAT = struct.Struct("<d")
_NONE_T, _FALSE, _TRUE, _INT, _FLOAT_T, _STR, _BYTES, _TUPLE, _LIST, _DICT = range(10)


def _put(out: bytearray, value: Any, s: _Strings) -> None:
    t = type(value)
    if value is None:
        out += _TAG.pack(_NONE_T, 0)
    elif t is bool:
        out += _TAG.pack(_TRUE if value else _FALSE, 0)
    elif t is int:
        if not -(1 << 63) <= value < (1 << 63):
            raise Unstorable(f"integer {value}")
        out += _TAG.pack(_INT, value)
    elif t is float:
        out += _TAG.pack(_FLOAT_T, 0) + _FLOAT.pack(value)
    elif t is str:
        out += _TAG.pack(_STR, s(value))
    elif t is bytes:
        out += _TAG.pack(_BYTES, len(value)) + value
    elif t in (tuple, list):
        out += _TAG.pack(_TUPLE if t is tuple else _LIST, len(value))
        for v in value:
            _put(out, v, s)
    elif t is dict:
        out += _TAG.pack(_DICT, len(value))
        for k, v in value.items():
            _put(out, k, s)
            _put(out, v, s)
    else:
        raise Unstorable(f"a {t.__qualname__} in extras")


def _get(data: memoryview, pos: int, strings: List[str]) -> Tuple[Any, int]:
    tag, n = _TAG.unpack_from(data, pos)
    pos += _TAG.size
    if tag == _NONE_T:
        return None, pos
    if tag in (_FALSE, _TRUE):
        return tag == _TRUE, pos
    if tag == _INT:
        return n, pos
    if tag == _FLOAT_T:
        return _FLOAT.unpack_from(data, pos)[0], pos + _FLOAT.size
    if tag == _STR:
        return strings[n], pos
    if tag == _BYTES:
        if n < 0 or pos + n > data.nbytes:
            raise ValueError("bytes past the end")
        return bytes(data[pos:pos + n]), pos + n
    if tag in (_TUPLE, _LIST, _DICT):
        if not 0 <= n <= data.nbytes:
            raise ValueError("bad length")
        items = []
        for _ in range(n * 2 if tag == _DICT else n):
            v, pos = _get(data, pos, strings)
            items.append(v)
        if tag == _DICT:
            return dict(zip(items[::2], items[1::2])), pos
        return (tuple(items) if tag == _TUPLE else items), pos
    raise ValueError(f"unknown tag {tag}")
