"""Global variables: ``.rodata`` (constants set at load time) and ``.bss``/``.data`` (shared state).

A section is a one-element array map whose value holds every variable at a fixed offset.
Programs reach a variable with a map-value load (``ld_map_value(dst, ".rodata", offset)``)
followed by a memory access. ``.rodata`` is created with BPF_F_RDONLY_PROG, written once and
frozen before programs load, so the verifier sees its values as constants and prunes branches
that depend on them; ``.bss`` stays writable from both sides and user space reads and writes
variables by name.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional

from ebpf.errors import LoadError
from ebpf.uapi import MapFlag

READONLY_SECTIONS = (".rodata",)


class GlobalVar(NamedTuple):
    name: str
    offset: int
    codec: Any  # an ebpf.maps.codec.Codec
    initial: Any


class GlobalSection:
    """The layout of one data section; pure data until :meth:`create`."""

    def __init__(self, name: str = ".bss"):
        if name not in (".rodata", ".bss", ".data"):
            raise LoadError(f"unknown data section {name!r} (use .rodata, .data or .bss)")
        self.name = name
        self.vars: Dict[str, GlobalVar] = {}
        self.size = 0

    @property
    def readonly(self) -> bool:
        return self.name in READONLY_SECTIONS

    def add(self, name: str, type: Any, initial: Any = 0) -> GlobalVar:
        """Declare a variable (``type`` is any codec spec: "u32", a Struct, (type, n)...)."""
        from ebpf.maps.codec import codec_for

        if name in self.vars:
            raise LoadError(f"global {name!r} declared twice in {self.name}")
        codec = codec_for(type)
        align = min(8, max(1, getattr(codec, "align", codec.size)))
        offset = (self.size + align - 1) // align * align
        var = GlobalVar(name, offset, codec, initial)
        codec.encode(initial)  # fail now, at declaration, on a value that does not fit
        self.vars[name] = var
        self.size = offset + codec.size
        return var

    def offset_of(self, name: str) -> int:
        return self._var(name).offset

    def _var(self, name: str) -> GlobalVar:
        try:
            return self.vars[name]
        except KeyError:
            known = ", ".join(self.vars) or "none"
            raise LoadError(f"no global {name!r} in {self.name} (globals: {known})") from None

    def image(self, values: Optional[Mapping[str, Any]] = None) -> bytes:
        """The section's bytes with initial values, overridden by ``values``."""
        values = dict(values or {})
        unknown = set(values) - set(self.vars)
        if unknown:
            raise LoadError(f"no global(s) {sorted(unknown)} in {self.name} (globals: {', '.join(self.vars)})")
        buf = bytearray(max(self.size, 1))
        for var in self.vars.values():
            raw = var.codec.encode(values.get(var.name, var.initial))
            buf[var.offset : var.offset + len(raw)] = raw
        return bytes(buf)

    def map_spec(self) -> Any:
        from ebpf.maps.spec import MapSpec

        flags = MapFlag.RDONLY_PROG if self.readonly else 0
        return MapSpec(self.name, "array", key="u32", value=max(self.size, 1), max_entries=1, flags=flags)

    def create(self, values: Optional[Mapping[str, Any]] = None) -> GlobalData:
        """Create the map, write the image and, for .rodata, freeze it."""
        data = self.image(values)
        m = self.map_spec().create()
        try:
            m[0] = data
            if self.readonly:
                m.freeze()
        except BaseException:
            m.close()
            raise
        return GlobalData(self, m)


class GlobalData:
    """A live data section: read (and, unless read-only, write) variables by name."""

    def __init__(self, section: GlobalSection, map: Any):
        self.section = section
        self.map = map

    @property
    def fd(self) -> int:
        return int(self.map.fd)

    def __getitem__(self, name: str) -> Any:
        var = self.section._var(name)
        raw = self.map[0]
        return var.codec.decode(bytes(raw[var.offset : var.offset + var.codec.size]))

    def __setitem__(self, name: str, value: Any) -> None:
        if self.section.readonly:
            raise LoadError(f"{self.section.name} is read-only once loaded (set {name!r} at load time)")
        var = self.section._var(name)
        raw = bytearray(self.map[0])
        raw[var.offset : var.offset + var.codec.size] = var.codec.encode(value)
        self.map[0] = bytes(raw)

    def as_dict(self) -> Dict[str, Any]:
        raw = bytes(self.map[0])
        return {v.name: v.codec.decode(raw[v.offset : v.offset + v.codec.size]) for v in self.section.vars.values()}

    def keys(self) -> List[str]:
        return list(self.section.vars)

    def close(self) -> None:
        self.map.close()
