"""An on-disk cache of compiled DSL programs, so that a warm start does no ``ast`` work.

Compiling a tool's programs, with the imports only the compiler needs (``ast``, the front end,
lowering, register allocation), is 10-15 ms of a tool's start; reading the finished
:class:`~ebpf.program.ProgramSpec` back is well under a millisecond. An entry is used only when
everything the compiler would read is the same as when it was written. The key is text made of:

* the cache format, the Python version, and the compiler: size and mtime of every ``.py`` file
  of the ``ebpf`` package;
* the kernel the program was compiled against (tracepoint formats, kernel BTF, feature probes):
  its boot id and release, and the effective uid;
* the instruction-set level asked for (``Collection(isa=)``, ``$EBPF_ISA``) or ``auto``: the
  running kernel's, probed on a miss only (the boot id above stands for it);
* the program's declaration (kind, hook, program and attach types, extras, context) and the
  maps and globals of its collection;
* the function: its file's content, name and line, defaults and attributes, and the value of
  every name its code or its source lines mention (closure cells, module globals, builtins),
  recursively for the functions, classes and objects those values reach (a ``Struct``'s layout,
  a map's types, an options object's attributes...).

A value the key cannot describe (an open file, a kernel BTF object, a function without a source
file...) means no caching for that program: it is compiled as before. Files live in
``programs/`` of the cache root (:mod:`ebpf.cache_files`: ``$EBPF_CACHE_DIR``, empty for no cache,
else ``$XDG_CACHE_HOME/ebpf`` or ``~/.cache/ebpf``), one per program, in the flat format of
:mod:`ebpf.lang.spec_file` behind a checksum, used only where nobody but the user could have
written them. At most ``MAX_FILES`` entries are kept; the oldest go first. A program read back
from the cache that the kernel refuses is dropped (:func:`discard`) and compiled afresh once, by
:meth:`ebpf.lang.collection.Collection.load`.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
import types
import weakref
import zlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ebpf import cache_files
from ebpf.lang import spec_file

if TYPE_CHECKING:
    from ebpf.program import ProgramSpec

__all__ = ["compile_cached", "program_key", "cache_dir", "discard"]

FORMAT = 2
SUBDIR = "programs"
MAX_FILES = 256
_MAX_NODES = 50_000
_LOCAL_BTF = "core_local_btf"  # ebpf.btf.relo.LOCAL_BTF_EXTRA: the kernel BTF object, not stored
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALARS = (type(None), bool, int, float, complex, str, bytes)

_compiler_key: Optional[str] = None
_file_crcs: Dict[str, str] = {}
_file_lines: Dict[str, List[str]] = {}
_STDLIB = os.path.dirname(os.__file__) + os.sep
_SITE = ("site-packages", "dist-packages")


class Unkeyable(Exception):
    """A value the key cannot describe: the program is compiled without the cache."""


def cache_dir() -> Optional[str]:
    """The directory of compiled programs, or None when caching is switched off."""
    return cache_files.cache_dir(SUBDIR)


# Entries this process read back, by declaration: what discard() removes.
_served: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def compile_cached(decl: Any) -> ProgramSpec:
    """``compile_program(decl)``, or its result read back from the cache when nothing changed."""
    key = None
    if cache_files.cache_root() is not None:
        try:
            key = program_key(decl)
        except Exception:  # noqa: BLE001 - the cache must never be why a compile fails
            key = None
    if key is not None:
        spec = _load(_entry_name(decl.name, key), key)
        if spec is not None:
            _served[decl] = _entry_name(decl.name, key)
            return spec
    from ebpf.lang.compiler import compile_program

    spec = compile_program(decl)
    _served.pop(decl, None)
    if key is not None:
        _store(_entry_name(decl.name, key), key, spec)
    return spec


def discard(decl: Any) -> bool:
    """Remove the cache entry *decl*'s last compile was read from; False if it was compiled."""
    name = _served.pop(decl, None)
    if name is None:
        return False
    cache_files.remove(SUBDIR, [name])
    return True


# ---- the key -------------------------------------------------------------------------------------


def program_key(decl: Any) -> str:
    """The text that must match for a cached compile of ``decl`` to be used (raises Unkeyable)."""
    k = _Keyer()
    isa = getattr(decl.collection, "isa", None)  # as ebpf.lang.isa.resolve reads it (not imported: start-up)
    parts = [f"ebpf-compile-cache {FORMAT}", sys.version, _compiler(), _kernel(), f"euid {os.geteuid()}",
             f"isa {isa if isa is not None else os.environ.get('EBPF_ISA') or 'auto'}"]
    k.add(("decl", decl.name, decl.kind, decl.prog_type, decl.attach_to, decl.target, decl.attach_type))
    k.add(decl.extras)
    k.add(decl.ctx)
    coll = decl.collection
    k.add(("collection", coll.name, coll.license))
    for name in sorted(coll.maps):
        k.add(coll.maps[name])
    for name in sorted(coll.globals):
        k.add(coll.globals[name])
    k.add(decl.fn)
    return "\n".join(parts) + "\n" + "".join(k.out)


def _compiler() -> str:
    """Size and mtime of every source file of the package (memoised for the process)."""
    global _compiler_key
    if _compiler_key is None:
        import ebpf

        root = os.path.dirname(os.path.abspath(ebpf.__file__))
        items: List[str] = [getattr(ebpf, "__version__", "?")]
        stack = [root]
        while stack:
            d = stack.pop()
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        stack.append(e.path)
                elif e.name.endswith(".py"):
                    st = e.stat()
                    items.append(f"{os.path.relpath(e.path, root)}:{st.st_size}:{st.st_mtime_ns}")
        _compiler_key = f"compiler {zlib.crc32(chr(10).join(items).encode()):08x} {len(items)}"
    return _compiler_key


def _kernel() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError as e:
        raise Unkeyable("no boot id") from e
    u = os.uname()
    return f"kernel {boot} {u.release} {u.version} {u.machine}"


def _file_crc(path: str) -> str:
    found = _file_crcs.get(path)
    if found is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise Unkeyable(f"cannot read {path}") from e
        found = _file_crcs[path] = f"{len(data)}:{zlib.crc32(data):08x}:{zlib.adler32(data):08x}"
    return found


def _code_names(code: types.CodeType, out: Set[str]) -> None:
    out.update(code.co_names)
    out.update(code.co_freevars)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_names(c, out)


def _last_line(code: types.CodeType) -> int:
    last = code.co_firstlineno
    if hasattr(code, "co_lines"):
        lines = [line for _, _, line in code.co_lines()]
    else:  # Python 3.9
        import dis

        lines = [line for _, line in dis.findlinestarts(code)]
    for line in lines:
        if line is not None and line > last:
            last = line
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            last = max(last, _last_line(c))
    return last


def _source_names(code: types.CodeType) -> Set[str]:
    """Identifiers on the function's source lines (annotations are resolved from the source,
    and do not appear in the code object)."""
    lines = _file_lines.get(code.co_filename)
    if lines is None:
        try:
            with open(code.co_filename, encoding="utf-8", errors="replace") as f:
                lines = _file_lines[code.co_filename] = f.read().splitlines()
        except OSError as e:
            raise Unkeyable("no source") from e
    first = code.co_firstlineno - 1
    if not 0 <= first < len(lines):
        raise Unkeyable("source lines moved")
    indent = len(lines[first]) - len(lines[first].lstrip())
    end = min(_last_line(code), len(lines))
    while end < len(lines):  # the block goes on to the next line indented no deeper than the def
        text = lines[end]
        stripped = text.lstrip()
        if stripped and not stripped.startswith("#") and len(text) - len(stripped) <= indent:
            break
        end += 1
    return set(_IDENT.findall("\n".join(lines[first:end])))


class _Keyer:
    """Writes a deterministic description of values; each object is described once."""

    def __init__(self) -> None:
        self.out: List[str] = []
        self.seen: Dict[int, int] = {}
        self.keep: List[Any] = []  # keeps ids valid while keying
        self.nodes = 0

    def add(self, value: Any, attrs: Tuple[str, ...] = ()) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise Unkeyable("too much to describe")
        w = self.out.append
        t = type(value)
        if t in _SCALARS:
            w(f"{t.__name__}:{value!r};")
            return
        if isinstance(value, (int, float, str, bytes)):  # IntEnum members and the like
            w(f"{t.__module__}.{t.__qualname__}:{value!r};")
            return
        ref = self.seen.get(id(value))
        if ref is not None:
            w(f"@{ref};")
            return
        self.seen[id(value)] = len(self.seen)
        self.keep.append(value)
        if t in (tuple, list):
            w("(" if t is tuple else "[")
            for v in value:
                self.add(v, attrs)
            w(");")
        elif t is dict:
            w("{")
            for kv, v in value.items():
                self.add(kv)
                self.add(v, attrs)
            w("};")
        elif t in (set, frozenset):
            w("set{")
            for text in sorted(_Keyer.describe(v) for v in value):
                w(text)
            w("};")
        elif isinstance(value, types.FunctionType):
            self.function(value)
        elif isinstance(value, types.ModuleType):
            self.module(value, attrs)
        elif isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            owner = getattr(value, "__self__", None)
            if owner is not None and not isinstance(owner, types.ModuleType):
                raise Unkeyable("builtin method of an object")
            w(f"builtin:{getattr(value, '__module__', '')}.{value.__qualname__};")
        elif isinstance(value, types.MethodType):
            w("method(")
            self.add(value.__self__, attrs)
            self.add(value.__func__, attrs)
            w(");")
        elif isinstance(value, (staticmethod, classmethod)):
            w(f"{t.__name__}(")
            self.add(value.__func__, attrs)
            w(");")
        elif isinstance(value, property):
            w("property(")
            for f in (value.fget, value.fset, value.fdel):
                self.add(f, attrs)
            w(");")
        elif isinstance(value, type):
            self.cls(value)
        else:
            self.instance(value, attrs)

    @staticmethod
    def describe(value: Any) -> str:
        k = _Keyer()
        k.add(value)
        return "".join(k.out)

    def function(self, fn: types.FunctionType) -> None:
        code = fn.__code__
        file = code.co_filename
        if not os.path.isfile(file):
            raise Unkeyable(f"{fn.__qualname__} has no source file")
        self.out.append(f"fn:{fn.__module__}.{fn.__qualname__}@{file}:{code.co_firstlineno}:{_file_crc(file)}(")
        self.add(fn.__defaults__)
        self.add(fn.__kwdefaults__)
        self.add(dict(vars(fn)))
        if _stdlib(file):
            self.out.append(");")  # the standard library's: part of the Python version
            return
        names: Set[str] = set()
        _code_names(code, names)
        names |= _source_names(code)
        closure = {}
        for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
            if _filled(cell):
                closure[var] = cell.cell_contents
        attrs = tuple(sorted(names))
        glb = fn.__globals__
        for name in attrs:
            if name in closure:
                self.out.append(f"c.{name}=")
                self.add(closure[name], attrs)
            elif name in glb:
                self.out.append(f"g.{name}=")
                self.add(glb[name], attrs)
            elif hasattr(builtins, name):
                self.out.append(f"b.{name};")
        self.out.append(");")

    def module(self, mod: types.ModuleType, attrs: Tuple[str, ...]) -> None:
        name = mod.__name__
        if name == "ebpf" or name.startswith("ebpf.lang") or name in sys.builtin_module_names:
            self.out.append(f"module:{name};")  # the compiler's own API: part of the compiler key
            return
        file = getattr(mod, "__file__", None)
        if file and _stdlib(file):
            self.out.append(f"module:{name};")  # the standard library's: part of the Python version
            return
        self.out.append(f"module:{name}:{_file_crc(file) if file else '-'}(")
        if "__getattr__" in vars(mod):
            raise Unkeyable(f"module {name} computes its attributes")
        d = vars(mod)
        for a in attrs:
            if a in d and not isinstance(d[a], types.ModuleType):
                self.out.append(f"{a}=")
                self.add(d[a], attrs)
        self.out.append(");")

    def cls(self, c: type) -> None:
        mod = c.__module__
        if mod == "builtins" or _stdlib(getattr(sys.modules.get(mod), "__file__", None) or ""):
            self.out.append(f"type:{mod}.{c.__qualname__};")
            return
        self.out.append(f"type:{mod}.{c.__qualname__}(")
        import enum

        if issubclass(c, enum.Enum):
            self.add([(m.name, m.value) for m in c])
        else:
            if mod.startswith("ebpf.") and not mod.startswith("ebpf.tools"):
                pass  # the compiler's classes: part of the compiler key
            else:
                for base in c.__mro__[1:]:
                    self.add(base)
                for name, v in vars(c).items():
                    if name in ("_ebpf_struct", "_ebpf_codec", "__dict__", "__weakref__", "__doc__", "__module__",
                                "__qualname__", "__annotations__", "__slots__"):
                        continue
                    self.out.append(f"{name}=")
                    self.add(v)
                if _is_struct(c):
                    self.add(c.layout())  # type: ignore[attr-defined]  # field types as resolved
        self.out.append(");")

    def instance(self, v: Any, attrs: Tuple[str, ...]) -> None:
        t = type(v)
        qual = f"{t.__module__}.{t.__qualname__}"
        special = _SPECIAL.get(qual)
        if special is not None:
            self.out.append(f"{qual}:{special(v)!r};")
            return
        self.out.append(f"obj:{qual}(")
        self.add(t)
        d = getattr(v, "__dict__", None)
        if d is not None:
            self.add(dict(d), attrs)
        for cls in t.__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                    self.out.append(f"{slot}=")
                    self.add(getattr(v, slot, None), attrs)
        if d is None and not any(getattr(c, "__slots__", None) for c in t.__mro__):
            raise Unkeyable(f"cannot describe a {qual}")
        self.out.append(");")


def _stdlib(file: str) -> bool:
    """A file of the standard library (keyed by the Python version, not by content)."""
    return file.startswith(_STDLIB) and not any(s in file for s in _SITE)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
        return True
    except ValueError:
        return False


def _is_struct(c: type) -> bool:
    from ebpf.lang.types import Struct

    return issubclass(c, Struct) and c is not Struct


# Objects described by what the compiler uses of them, not by everything they reach.
_SPECIAL = {
    "ebpf.lang.types.KernelType": lambda v: v.c_name,  # resolved against the kernel: keyed by boot id
    "ebpf.lang.collection.Collection": lambda v: ("collection", v.name),
    "ebpf.lang.collection.ProgramDecl": lambda v: ("program", v.name, v.kind, v.prog_type, v.attach_to,
                                                   v.target, str(v.attach_type)),
}


# ---- the files -----------------------------------------------------------------------------------


def _entry_name(name: str, key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]
    data = key.encode()
    return f"{safe}-{zlib.crc32(data):08x}{zlib.adler32(data):08x}.prog"


def _load(entry: str, key: str) -> Optional[ProgramSpec]:
    raw = cache_files.read(SUBDIR, entry)
    if raw is None:
        return None
    payload = cache_files.unseal(raw, spec_file.MAGIC)
    if payload is None:
        return None  # damaged: rewritten after this compile
    try:
        spec = spec_file.decode_spec(payload, key)
    except Exception:  # noqa: BLE001 - an entry that does not decode is a miss
        return None
    if spec is None:
        return None
    from ebpf.btf.relo import has_core_relocations

    if has_core_relocations(spec.instructions):
        from ebpf.btf import kernel_btf

        spec.extras[_LOCAL_BTF] = kernel_btf()  # what the compiler resolved local values against
    return spec


def _store(entry: str, key: str, spec: ProgramSpec) -> None:
    plain = spec.copy()
    plain.extras.pop(_LOCAL_BTF, None)
    try:
        payload = spec_file.encode_spec(plain, key)
    except spec_file.Unstorable:
        return  # not caching is always allowed
    if cache_files.write(SUBDIR, entry, cache_files.seal(spec_file.MAGIC, payload)):
        _prune()


def _prune() -> None:
    found = cache_files.entries(SUBDIR)
    if len(found) <= MAX_FILES:
        return
    found.sort(key=lambda entry: entry[1])  # oldest first
    cache_files.remove(SUBDIR, [name for name, _ in found[: len(found) - MAX_FILES // 2]])
