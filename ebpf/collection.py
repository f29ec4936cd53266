"""A set of programs, maps and global data loaded together, and closed together.

:class:`CollectionSpec` is pure data (what a tool or an assembly file declares);
:func:`load` creates the maps, writes and freezes global data, loads every program against
them and returns a :class:`Collection`, a context manager that owns all of it and the links
made by :meth:`Collection.attach`.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from ebpf.errors import LoadError
from ebpf.globals import GlobalData, GlobalSection
from ebpf.program import Program, ProgramSpec


class CollectionSpec:
    """Programs, maps and data sections, by name."""

    def __init__(
        self,
        programs: Iterable[ProgramSpec] = (),
        maps: Iterable[Any] = (),
        sections: Iterable[GlobalSection] = (),
    ):
        self.programs: Dict[str, ProgramSpec] = {}
        self.maps: Dict[str, Any] = {}
        self.sections: Dict[str, GlobalSection] = {}
        for p in programs:
            self.add_program(p)
        for m in maps:
            self.add_map(m)
        for s in sections:
            self.sections[s.name] = s

    def add_program(self, spec: ProgramSpec) -> ProgramSpec:
        if spec.name in self.programs:
            raise LoadError(f"two programs named {spec.name!r}")
        self.programs[spec.name] = spec
        return spec

    def add_map(self, spec: Any) -> Any:
        if spec.name in self.maps or spec.name in self.sections:
            raise LoadError(f"two maps named {spec.name!r}")
        self.maps[spec.name] = spec
        return spec

    def section(self, name: str) -> GlobalSection:
        """The data section ``name`` (".rodata", ".data", ".bss"), created on first use."""
        if name not in self.sections:
            self.sections[name] = GlobalSection(name)
        return self.sections[name]


class Collection:
    """Live maps, programs, data sections and links; closes them all, links first."""

    def __init__(self) -> None:
        self.maps: Dict[str, Any] = {}
        self.programs: Dict[str, Program] = {}
        self.data: Dict[str, GlobalData] = {}
        self.links: List[Any] = []
        self.borrowed: set = set()  # names of maps the caller lent us: not ours to close

    @property
    def rodata(self) -> GlobalData:
        return self.data[".rodata"]

    @property
    def bss(self) -> GlobalData:
        return self.data[".bss"]

    def __getattr__(self, name: str) -> Any:
        for table in ("maps", "programs"):
            objs = self.__dict__.get(table, {})
            if name in objs:
                return objs[name]
        raise AttributeError(f"collection has no map or program named {name!r}")

    def __getitem__(self, name: str) -> Any:
        for table in (self.maps, self.programs, self.data):
            if name in table:
                return table[name]
        raise KeyError(name)

    def attach(self, names: Optional[Iterable[str]] = None) -> List[Any]:
        """Attach the programs named (default: every program that declares a hook)."""
        chosen = list(names) if names is not None else [
            n for n, p in self.programs.items() if p.spec is not None and p.spec.attach_to
        ]
        made = []
        for name in chosen:
            link = self.programs[name].attach()
            self.links.append(link)
            made.append(link)
        return made

    def close(self) -> None:
        for link in reversed(self.links):
            link.close()
        self.links.clear()
        for prog in self.programs.values():
            prog.close()
        for name, m in self.maps.items():
            if name not in self.borrowed:
                m.close()
        for d in self.data.values():
            d.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(
    spec: CollectionSpec,
    *,
    globals: Optional[Mapping[str, Mapping[str, Any]]] = None,
    maps: Optional[Mapping[str, Any]] = None,
    target_btf: Optional[Any] = None,
    **rodata: Any,
) -> Collection:
    """Create everything ``spec`` declares and load its programs.

    ``rodata`` keyword arguments set ``.rodata`` variables (constants to the verifier);
    ``globals={".bss": {...}}`` sets initial values of other sections; ``maps`` supplies
    existing live maps to use instead of creating those names (sharing maps between loads).
    ``target_btf`` is the BTF CO-RE relocations are resolved against (default: the running
    kernel's).
    """
    from ebpf.loader import load_program

    values: Dict[str, Dict[str, Any]] = {k: dict(v) for k, v in (globals or {}).items()}
    if rodata:
        values.setdefault(".rodata", {}).update(rodata)
    unknown = set(values) - set(spec.sections)
    if unknown:
        raise LoadError(f"no data section(s) {sorted(unknown)} in this collection")
    out = Collection()
    try:
        for name, section in spec.sections.items():
            out.data[name] = section.create(values.get(name))
        for name, mspec in spec.maps.items():
            if maps and name in maps:
                out.maps[name] = maps[name]
                out.borrowed.add(name)
            else:
                out.maps[name] = mspec.create()
        refs: Dict[str, Any] = dict(out.maps)
        refs.update({name: d.map for name, d in out.data.items()})
        for name, pspec in spec.programs.items():
            out.programs[name] = load_program(pspec, refs, target_btf=target_btf)
    except BaseException:
        out.close()
        raise
    return out
