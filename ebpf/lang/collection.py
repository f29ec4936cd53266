"""``L.Collection``: where a tool declares its maps, globals and programs.

Declarations are pure data: a map declaration knows its MapSpec, a global its offset in its
data section, a program its hook and function. Nothing is compiled until :meth:`Collection.spec`
(or :meth:`Collection.load`) asks, and then every program is compiled once and remembered.
Inside compiled functions the declaration objects are what the names refer to: ``events``
is a :class:`MapDecl` whose methods (``reserve``, ``get``...) the compiler knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

from ebpf.errors import EbpfError, for_the_caller
from ebpf.lang.types import Type, type_of, u32, u64

if TYPE_CHECKING:
    from ebpf.collection import Collection as LiveCollection
    from ebpf.collection import CollectionSpec
    from ebpf.globals import GlobalSection
    from ebpf.maps.spec import MapSpec
    from ebpf.program import ProgramSpec

__all__ = ["Collection", "MapDecl", "GlobalDecl", "ProgramDecl"]

Fn = Callable[..., Any]


class MapDecl:
    """A map as the DSL sees it: its kind, typed key and value, and the MapSpec it becomes."""

    def __init__(self, name: str, kind: str, key: Optional[Type], value: Optional[Type], max_entries: int,
                 flags: int = 0) -> None:
        self.name = name
        self.kind = kind
        self.key = key
        self.value = value
        self.max_entries = max_entries
        self.flags = flags

    @property
    def per_cpu(self) -> bool:
        return self.kind.startswith("percpu") or self.kind == "lru_percpu_hash"

    def map_spec(self) -> MapSpec:
        from ebpf.maps.spec import MapSpec

        return MapSpec(self.name, self.kind, key=self.key, value=self.value, max_entries=self.max_entries,
                       flags=self.flags)

    def __repr__(self) -> str:
        return f"<map {self.name} {self.kind}>"


class GlobalDecl:
    """A global variable in ``.rodata`` (constant once loaded) or ``.bss`` (shared, writable).

    In compiled code the name reads the variable; ``g.value = x`` / ``g.value += 1`` write a
    ``.bss`` scalar (``+=`` is atomic), ``g[i]`` and ``g.field`` reach into arrays and structs.
    """

    def __init__(self, section: str, name: str, type: Type, offset: int) -> None:
        self.section = section
        self.name = name
        self.type = type
        self.offset = offset

    def __repr__(self) -> str:
        return f"<global {self.section}:{self.name} {self.type.name}>"


class ProgramDecl:
    """A program: its function, program type, hook and the context its argument gets."""

    def __init__(self, coll: Collection, fn: Fn, kind: str, prog_type: str, attach_to: str = "",
                 attach_type: Optional[str] = None, ctx: Any = None, extras: Optional[Dict[str, Any]] = None,
                 name: Optional[str] = None, target: Optional[str] = None) -> None:
        self.collection = coll
        self.fn = fn
        self.kind = kind
        self.prog_type = prog_type
        self.attach_to = attach_to  # what Program.attach() dispatches on ("kprobe/do_sys_openat2")
        self.target = attach_to if target is None else target  # the hook itself ("do_sys_openat2")
        self.attach_type = attach_type
        self.ctx = ctx
        self.extras = extras or {}
        self.name = name or fn.__name__
        self.__name__ = self.name
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.name} is an eBPF program: load the collection and attach it")

    def compile(self) -> ProgramSpec:
        """Compile the function (or read the result back from the on-disk compile cache)."""
        from ebpf.lang.compile_cache import compile_cached

        try:
            return compile_cached(self)
        except EbpfError as e:
            raise for_the_caller(e)  # noqa: B904 - EBPF_DEBUG=1 shows the frames inside ebpf

    def __repr__(self) -> str:
        return f"<program {self.name} {self.kind} {self.attach_to}>"


class Collection:
    """Maps, globals and programs compiled and loaded together.

    ``spec()`` compiles every program (pure: reads only tracefs formats and kernel BTF) into an
    :class:`ebpf.collection.CollectionSpec`; ``load(**rodata)`` creates it in the kernel and
    returns the live :class:`ebpf.collection.Collection` (maps and programs as attributes,
    ``attach()``, a context manager).
    """

    def __init__(self, name: str, license: str = "GPL", *, source: Optional[str] = None,
                 isa: Optional[int] = None) -> None:
        """``source``: the Python text that defines the programs, when it is not in a file
        Python can read again (``exec(text)``); ``python -c``, stdin, the REPL and IPython cells
        are found without it. ``isa``: the eBPF instruction-set level (1-4) to compile for;
        by default ``$EBPF_ISA``, else what the running kernel takes (:mod:`ebpf.lang.isa`)."""
        if isa is not None:
            from ebpf.lang.isa import check_level

            isa = check_level(isa, f"collection {name}: isa")
        self.isa = isa
        if source is not None:
            from ebpf.lang.source_text import give

            give(source)
        self.name = name
        self.license = license
        self.maps: Dict[str, MapDecl] = {}
        self.globals: Dict[str, GlobalDecl] = {}
        self.programs: Dict[str, ProgramDecl] = {}
        self._sections: Dict[str, GlobalSection] = {}
        self._spec: Optional[CollectionSpec] = None

    def __repr__(self) -> str:
        return f"<Collection {self.name}: {len(self.programs)} programs, {len(self.maps)} maps>"

    # ---- maps -------------------------------------------------------------------------------

    def _map(self, name: str, kind: str, key: Any, value: Any, max_entries: int, flags: int = 0) -> MapDecl:
        if name in self.maps or name in self.globals:
            raise ValueError(f"collection {self.name}: {name!r} declared twice")
        decl = MapDecl(name, kind, type_of(key) if key is not None else None,
                       type_of(value) if value is not None else None, max_entries, flags)
        decl.map_spec().validate()  # fail at the declaration, not at load time
        self.maps[name] = decl
        self._spec = None
        return decl

    def hash_map(self, name: str, key: Any, value: Any, max_entries: int = 10240, flags: int = 0) -> MapDecl:
        return self._map(name, "hash", key, value, max_entries, flags)

    def lru_hash(self, name: str, key: Any, value: Any, max_entries: int = 10240, flags: int = 0) -> MapDecl:
        return self._map(name, "lru_hash", key, value, max_entries, flags)

    def percpu_hash(self, name: str, key: Any, value: Any, max_entries: int = 10240, flags: int = 0) -> MapDecl:
        return self._map(name, "percpu_hash", key, value, max_entries, flags)

    def lru_percpu_hash(self, name: str, key: Any, value: Any, max_entries: int = 10240, flags: int = 0) -> MapDecl:
        return self._map(name, "lru_percpu_hash", key, value, max_entries, flags)

    def array_map(self, name: str, value: Any, max_entries: int, flags: int = 0) -> MapDecl:
        return self._map(name, "array", u32, value, max_entries, flags)

    def percpu_array(self, name: str, value: Any, max_entries: int, flags: int = 0) -> MapDecl:
        return self._map(name, "percpu_array", u32, value, max_entries, flags)

    def ringbuf(self, name: str, size: int = 256 * 1024) -> MapDecl:
        return self._map(name, "ringbuf", None, None, size)

    def perf_event_array(self, name: str, max_entries: int = 0) -> MapDecl:
        return self._map(name, "perf_event_array", u32, u32, max_entries)

    def stack_trace(self, name: str, max_entries: int = 1024, depth: int = 127) -> MapDecl:
        return self._map(name, "stack_trace", u32, u64[depth], max_entries)

    def queue(self, name: str, value: Any, max_entries: int) -> MapDecl:
        return self._map(name, "queue", None, value, max_entries)

    def prog_array(self, name: str, max_entries: int) -> MapDecl:
        return self._map(name, "prog_array", u32, u32, max_entries)

    # ---- globals ----------------------------------------------------------------------------

    def _global(self, section: str, name: str, type: Any, default: Any) -> GlobalDecl:
        from ebpf.globals import GlobalSection

        if name in self.maps or name in self.globals:
            raise ValueError(f"collection {self.name}: {name!r} declared twice")
        t = type_of(type)
        sec = self._sections.get(section)
        if sec is None:
            sec = self._sections[section] = GlobalSection(section)
        var = sec.add(name, t, default)
        decl = GlobalDecl(section, name, t, var.offset)
        self.globals[name] = decl
        self._spec = None
        return decl

    def rodata(self, name: str, type: Any, default: Any = 0) -> GlobalDecl:
        """A constant set at load time (``load(name=value)``): the verifier sees its value."""
        return self._global(".rodata", name, type, default)

    def bss(self, name: str, type: Any, default: Any = 0) -> GlobalDecl:
        """A variable shared with user space (``live.bss[name]``)."""
        return self._global(".bss", name, type, default)

    # ---- programs ---------------------------------------------------------------------------

    def _program(self, kind: str, prog_type: str, attach_to: str = "", attach_type: Optional[str] = None,
                 ctx: Any = None, extras: Optional[Dict[str, Any]] = None,
                 name: Optional[str] = None, target: Optional[str] = None,
                 attach_options: Optional[Dict[str, Any]] = None) -> Callable[[Fn], ProgramDecl]:
        """The decorator of one program. ``attach_options`` are the decorator's keywords for the
        hook (``sample_freq=``, ``mode=``, ``pid=``...): kept in the spec's extras, they are the
        defaults of ``attach()`` (see :func:`ebpf.attach.dispatch.attach_program`)."""
        if attach_options:
            from ebpf.attach.dispatch import ATTACH_OPTIONS

            extras = {**(extras or {}), ATTACH_OPTIONS: attach_options}

        def decorate(fn: Fn) -> ProgramDecl:
            decl = ProgramDecl(self, fn, kind, prog_type, attach_to, attach_type, ctx, extras, name, target)
            if decl.name in self.programs:
                raise ValueError(f"collection {self.name}: two programs named {decl.name!r}")
            self.programs[decl.name] = decl
            self._spec = None
            return decl

        return decorate

    def tracepoint(self, target: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        """``@coll.tracepoint("syscalls/sys_enter_openat")``: ctx fields from the tracefs format."""
        return self._program("tracepoint", "tracepoint", target.replace(":", "/"), name=name)

    def raw_tracepoint(self, target: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        """``@coll.raw_tracepoint("sched_switch")``: ``ctx.args[i]`` are the raw u64 arguments."""
        return self._program("raw_tracepoint", "raw_tracepoint", target, name=name)

    def tp_btf(self, target: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        """``@coll.tp_btf("sched_switch")``: arguments by name and BTF type (``ctx.prev.pid``)."""
        return self._program("tp_btf", "tracing", target, "trace_raw_tp", name=name)

    def fentry(self, func: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        return self._program("fentry", "tracing", func, "trace_fentry", name=name)

    def fexit(self, func: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        """Like fentry, plus ``ctx.ret``: the function's return value."""
        return self._program("fexit", "tracing", func, "trace_fexit", name=name)

    def kprobe(self, func: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        """Arguments through pt_regs: ``ctx.arg(0)`` or by name when the function is in BTF."""
        return self._program("kprobe", "kprobe", f"kprobe/{func}", extras={"retprobe": False}, name=name,
                             target=func)

    def kretprobe(self, func: str, name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        return self._program("kretprobe", "kprobe", f"kretprobe/{func}", extras={"retprobe": True}, name=name,
                             target=func)

    def uprobe(self, target: str, name: Optional[str] = None, *, pid: int = -1) -> Callable[[Fn], ProgramDecl]:
        """``@coll.uprobe("/usr/lib/libc.so.6:malloc")`` (``PATH:SYMBOL[+OFFSET]`` or
        ``PATH:0xOFFSET``): ``ctx.arg(i)`` through pt_regs; ``pid`` >= 0 probes one process only."""
        return self._program("uprobe", "kprobe", f"uprobe/{target}", extras={"retprobe": False, "uprobe": True},
                             name=name, target=target, attach_options=_given(pid=(pid, -1)))

    def uretprobe(self, target: str, name: Optional[str] = None, *, pid: int = -1) -> Callable[[Fn], ProgramDecl]:
        """Like :meth:`uprobe`, on the function's return: ``ctx.ret`` is its return value."""
        return self._program("uretprobe", "kprobe", f"uretprobe/{target}",
                             extras={"retprobe": True, "uprobe": True}, name=name, target=target,
                             attach_options=_given(pid=(pid, -1)))

    def perf_event(self, event: str = "", name: Optional[str] = None, *, sample_freq: int = 0,
                   sample_period: int = 0, pid: int = -1, cpus: Optional[List[int]] = None,
                   type: Optional[int] = None, cookie: int = 0) -> Callable[[Fn], ProgramDecl]:
        """A sampling program (``ctx.sample_period``, ``ctx.addr``, ``ctx.ip``) on ``event``
        (``"cpu-clock"``...; empty: attach it yourself), ``sample_freq`` times a second or every
        ``sample_period`` events, on ``cpus`` (default all) for ``pid`` (default every process):
        the defaults of ``attach()``, as in :func:`ebpf.attach.perf_event.attach_perf_event`."""
        if sample_freq and sample_period:
            from ebpf.errors import AttachError

            raise AttachError(f"perf_event program on {event or 'an event'}: give exactly one of sample_period "
                              "and sample_freq")
        options = _given(sample_freq=(sample_freq, 0), sample_period=(sample_period, 0), pid=(pid, -1),
                         cpus=(None if cpus is None else list(cpus), None), type=(type, None), cookie=(cookie, 0))
        return self._program("perf_event", "perf_event", event, name=name, attach_options=options)

    def xdp(self, ifname: Any = "", name: Optional[str] = None, *, mode: str = "") -> Any:
        """``@coll.xdp("eth0")`` (or bare ``@coll.xdp``): ``ctx`` is ``struct xdp_md``; ``mode``
        ``"skb"``/``"native"``/``"hw"`` as in :func:`ebpf.attach.xdp.attach_xdp`."""
        if callable(ifname):
            return self._program("xdp", "xdp", "", "xdp")(ifname)
        return self._program("xdp", "xdp", ifname, "xdp", name=name, attach_options=_given(mode=(mode, "")))

    def tc(self, ifname: Any = "", ingress: bool = True, name: Optional[str] = None) -> Any:
        """A tc classifier on ``ifname`` (``live.attach()`` attaches it), ingress or egress:
        the direction holds also when the device is only given to ``attach()``."""
        if callable(ifname):
            return self._program("tc", "sched_cls", "", attach_options={"direction": "ingress"})(ifname)
        direction = "ingress" if ingress else "egress"
        where = f"{ifname}:{direction}" if ifname else ""
        return self._program("tc", "sched_cls", where, name=name, target=ifname,
                             attach_options={"direction": direction})

    def socket_filter(self, fn: Optional[Fn] = None, *, name: Optional[str] = None) -> Any:
        """``@coll.socket_filter``: a program over ``struct __sk_buff`` (also for test runs)."""
        deco = self._program("socket_filter", "socket_filter", name=name)
        return deco(fn) if fn is not None else deco

    def cgroup_skb(self, cgroup: str = "", egress: bool = False,
                   name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        return self._program("cgroup_skb", "cgroup_skb", cgroup,
                             "cgroup_inet_egress" if egress else "cgroup_inet_ingress", name=name)

    def program(self, type: Union[str, int], attach_to: str = "", attach_type: Union[str, int, None] = None,
                name: Optional[str] = None) -> Callable[[Fn], ProgramDecl]:
        """Any program type: ``@coll.program("sk_msg")``; ``ctx`` is then untyped (raw loads)."""
        from ebpf.program import prog_type_of

        kind = prog_type_of(type).name.lower()
        return self._program(kind, kind, attach_to, attach_type if attach_type is None else str(attach_type),
                             name=name)

    # ---- compile and load -----------------------------------------------------------------

    def spec(self) -> CollectionSpec:
        """Compile every program (once) into a CollectionSpec."""
        try:
            return self._compiled()
        except EbpfError as e:
            raise for_the_caller(e)  # noqa: B904 - EBPF_DEBUG=1 shows the frames inside ebpf

    def _compiled(self) -> CollectionSpec:
        if self._spec is None:
            from ebpf.collection import CollectionSpec

            spec = CollectionSpec()
            for m in self.maps.values():
                spec.add_map(m.map_spec())
            for sec in self._sections.values():
                spec.sections[sec.name] = sec
            for p in self.programs.values():
                ps = p.compile()
                ps.license = self.license
                spec.add_program(ps)
            self._spec = spec
        return self._spec

    def load(self, *, globals: Optional[Dict[str, Dict[str, Any]]] = None, maps: Optional[Dict[str, Any]] = None,
             **rodata: Any) -> LiveCollection:
        """Compile (if needed) and load; keyword arguments set ``.rodata`` globals.

        A program read back from the compile cache that the kernel (or CO-RE) refuses is
        dropped from the cache and compiled afresh, once: a cache must never be why a load fails.
        """
        try:
            return self._load(globals, maps, rodata)
        except EbpfError as e:
            raise for_the_caller(e)  # noqa: B904 - EBPF_DEBUG=1 shows the frames inside ebpf

    def _load(self, globals: Optional[Dict[str, Dict[str, Any]]], maps: Optional[Dict[str, Any]],
              rodata: Dict[str, Any]) -> LiveCollection:
        from ebpf.collection import load
        from ebpf.errors import AssemblerError, EncodingError, RelocationError, VerifierError
        from ebpf.lang.compile_cache import discard

        try:
            return load(self._compiled(), globals=globals, maps=maps, **rodata)
        except (VerifierError, RelocationError, EncodingError, AssemblerError):
            dropped = [discard(p) for p in self.programs.values()]  # every cached one, not just the first
            if not any(dropped):
                raise
        self._spec = None
        return load(self._compiled(), globals=globals, maps=maps, **rodata)

    def programs_named(self) -> List[str]:
        return list(self.programs)


def _given(**options: Tuple[Any, Any]) -> Dict[str, Any]:
    """The options whose value (first of each pair) differs from the default (second)."""
    return {key: value for key, (value, default) in options.items() if value != default}
