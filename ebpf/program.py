"""Program specs (pure data) and loaded programs (live file descriptors).

A :class:`ProgramSpec` can be built, inspected and assembled without privileges; loading it
(:func:`ebpf.loader.load_program`) gives a :class:`Program` that owns the kernel object and
closes deterministically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ebpf.errors import LoadError
from ebpf.sys.fd import FD
from ebpf.uapi import AttachType, ProgType

if TYPE_CHECKING:
    from ebpf.asm import Instruction
    from ebpf.attach.link import Link
    from ebpf.sys.bpf import TestRunResult


def prog_type_of(value: Union[ProgType, str, int]) -> ProgType:
    """Accept ``ProgType.XDP``, ``"xdp"``, ``"BPF_PROG_TYPE_XDP"`` or the number."""
    if isinstance(value, ProgType):
        return value
    if isinstance(value, int):
        return ProgType(value)
    name = value.upper().replace("-", "_")
    name = name[len("BPF_PROG_TYPE_"):] if name.startswith("BPF_PROG_TYPE_") else name
    aliases = {"RAW_TP": "RAW_TRACEPOINT", "TC": "SCHED_CLS", "SOCKET": "SOCKET_FILTER"}
    try:
        return ProgType[aliases.get(name, name)]
    except KeyError:
        raise LoadError(f"unknown program type {value!r}") from None


def attach_type_of(value: Union[AttachType, str, int, None]) -> Optional[AttachType]:
    if value is None or isinstance(value, AttachType):
        return value
    if isinstance(value, int):
        return AttachType(value)
    name = value.upper()
    name = name[len("BPF_"):] if name.startswith("BPF_") else name
    try:
        return AttachType[name]
    except KeyError:
        raise LoadError(f"unknown attach type {value!r}") from None


_FIELDS = ("name", "type", "instructions", "license", "attach_to", "attach_type", "attach_btf_id", "flags",
           "kern_version", "extras", "log_level")
_NEW_DICT: Any = object()  # ``extras`` not given: a fresh dict (what dataclasses' default_factory did)


class ProgramSpec:
    """Everything needed to load one program; no kernel state.

    ``attach_to`` names the hook (``"syscalls/sys_enter_openat"`` for a tracepoint,
    ``"sched_switch"`` for a raw tracepoint); ``attach_type`` is the kernel's
    expected_attach_type where the program type needs one. ``log_level`` (1, 2, or with 4 for
    statistics) asks the verifier for its log even when it accepts the program
    (``Program.verifier_log``); 0, the default, loads without one and fetches a level-1 log only
    to explain a rejection.

    A plain class with the ``__init__``, ``__repr__`` and ``__eq__`` a dataclass would have:
    ``dataclasses`` imports ``inspect``, which costs milliseconds at every tool's start.
    """

    __match_args__ = ("name", "type", "instructions", "license", "attach_to", "attach_type", "attach_btf_id",
                      "flags", "kern_version", "extras", "log_level")
    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as a dataclass

    def __init__(self, name: str, type: Union[ProgType, str, int], instructions: List[Instruction],
                 license: str = "GPL", attach_to: str = "", attach_type: Union[AttachType, str, int, None] = None,
                 attach_btf_id: int = 0, flags: int = 0, kern_version: int = 0,
                 extras: Dict[str, Any] = _NEW_DICT, log_level: int = 0) -> None:
        self.name = name
        self.type: ProgType = type  # type: ignore[assignment]  # normalised below
        self.instructions = instructions
        self.license = license
        self.attach_to = attach_to
        self.attach_type: Optional[AttachType] = attach_type  # type: ignore[assignment]  # normalised below
        self.attach_btf_id = attach_btf_id
        self.flags = flags
        self.kern_version = kern_version
        self.extras: Dict[str, Any] = {} if extras is _NEW_DICT else extras
        self.log_level = log_level
        self.__post_init__()

    def __post_init__(self) -> None:
        self.type = prog_type_of(self.type)
        self.attach_type = attach_type_of(self.attach_type)
        if not self.name:
            raise LoadError("a program needs a name")
        if not 0 <= self.log_level <= 7:
            raise LoadError(f"log_level {self.log_level} is not a verifier log level (1, 2, with 4 for statistics)")

    def _values(self) -> tuple:
        return tuple(getattr(self, f) for f in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in _FIELDS)
        return f"{type(self).__qualname__}({inner})"

    def copy(self) -> ProgramSpec:
        return type(self)(self.name, self.type, list(self.instructions), self.license, self.attach_to,
                          self.attach_type, self.attach_btf_id, self.flags, self.kern_version, dict(self.extras),
                          self.log_level)


class Program:
    """A loaded program. Use as a context manager or call :meth:`close`."""

    def __init__(self, fd: FD, spec: Optional[ProgramSpec], instructions: Optional[List[Instruction]] = None,
                 log: str = ""):
        self._fd = fd
        self.spec = spec
        self.name = spec.name if spec else ""
        self.instructions = instructions or []
        self.verifier_log = log

    @property
    def fd(self) -> int:
        return int(self._fd)

    def __int__(self) -> int:
        return int(self._fd)

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def close(self) -> None:
        self._fd.close()

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        kind = self.spec.type.name.lower() if self.spec else "?"
        return f"<Program {self.name!r} {kind} {state}>"

    # --- kernel queries -----------------------------------------------------------------------

    def info(self) -> Dict[str, Any]:
        """What the kernel knows of the program (id, tag, name, sizes, run statistics)."""
        from ebpf.sys import bpf
        from ebpf.sys.ffi import ffi

        i = bpf.obj_get_info_by_fd(self.fd, ffi.new("struct bpf_prog_info *"))
        return {
            "id": i.id,
            "type": ProgType(i.type) if i.type in ProgType._value2member_map_ else i.type,
            "tag": bytes(i.tag).hex(),
            "name": ffi.string(i.name).decode(errors="replace"),
            "xlated_prog_len": i.xlated_prog_len,
            "jited_prog_len": i.jited_prog_len,
            "nr_map_ids": i.nr_map_ids,
            "verified_insns": i.verified_insns,
            "run_time_ns": i.run_time_ns,
            "run_cnt": i.run_cnt,
            "btf_id": i.btf_id,
        }

    @property
    def id(self) -> int:
        return int(self.info()["id"])

    def xlated(self) -> bytes:
        """The program as the kernel rewrote it (BPF_OBJ_GET_INFO_BY_FD xlated_prog_insns)."""
        from ebpf.sys import bpf
        from ebpf.sys.ffi import ffi

        first = bpf.obj_get_info_by_fd(self.fd, ffi.new("struct bpf_prog_info *"))
        n = first.xlated_prog_len
        if n == 0:
            return b""
        buf = ffi.new("char[]", n)
        info = ffi.new("struct bpf_prog_info *")
        info.xlated_prog_len = n
        info.xlated_prog_insns = int(ffi.cast("uintptr_t", buf))
        bpf.obj_get_info_by_fd(self.fd, info)
        return bytes(ffi.buffer(buf, n))

    def test_run(self, data: bytes = b"", *, ctx: bytes = b"", repeat: int = 0, data_out_size: int = 0,
                 ctx_out_size: int = 0) -> TestRunResult:
        """BPF_PROG_TEST_RUN: run the program in the kernel on synthetic input."""
        from ebpf.sys import bpf

        return bpf.prog_test_run(self.fd, data, ctx_in=ctx, repeat=repeat, data_out_size=data_out_size,
                                 ctx_out_size=ctx_out_size)

    # --- hooks and pins -----------------------------------------------------------------------

    def attach(self, target: Optional[str] = None, **options: Any) -> Link:
        """Attach to ``target`` (default: the spec's ``attach_to``) in the way the type demands.

        See :mod:`ebpf.attach.dispatch` for the targets of each program type; ``options`` go to
        the hook's attach function (``pid=``, ``cookie=``, ``direction=``, ``sample_freq=``...).
        """
        from ebpf.attach.dispatch import attach_program

        return attach_program(self, target, **options)

    def pin(self, path: str) -> None:
        """Pin the program in bpffs so that it outlives this process."""
        from ebpf.sys import bpf

        bpf.obj_pin(self.fd, path)

    @classmethod
    def from_pin(cls, path: str) -> Program:
        from ebpf.sys import bpf

        return cls(FD(bpf.obj_get(path)), None)

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        from ebpf.sys import bpf

        prog = cls(FD(bpf.prog_get_fd_by_id(prog_id)), None)
        prog.name = str(prog.info()["name"])
        return prog
