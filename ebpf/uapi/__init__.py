"""Kernel ABI constants in one place, as IntEnums with the uapi names.

The big enums (commands, map/program/attach/link types, CO-RE relocation kinds, helper ids) are
transcribed from include/uapi/linux/bpf.h into :mod:`ebpf.uapi._generated` and (the helper ids)
:mod:`ebpf.uapi._helpers`; the few flags below are small enough to keep by hand. ``HelperId`` is
imported on first use: its 200+ members cost more than a millisecond at every start otherwise.
"""

from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING

from ebpf.lazy import lazy_exports
from ebpf.uapi._generated import (
    AttachType,
    BpfCmd,
    CoreReloKind,
    LinkType,
    MapType,
    ProgType,
    StatsType,
)

if TYPE_CHECKING:  # pragma: no cover
    from ebpf.uapi._helpers import HelperId  # noqa: F401

__all__ = [
    "AttachType", "BpfCmd", "CoreReloKind", "HelperId", "LinkType", "MapType", "ProgType",
    "StatsType", "UpdateFlag", "MapFlag", "ProgFlag", "PseudoSrc", "PseudoCall",
    "OBJ_NAME_LEN", "RINGBUF_BUSY_BIT", "RINGBUF_DISCARD_BIT", "RINGBUF_HDR_SZ",
    "F_CURRENT_CPU", "STACK_FLAGS", "TEST_RUN_FLAGS",
]

OBJ_NAME_LEN = 16


class UpdateFlag(IntEnum):
    """Flags of BPF_MAP_UPDATE_ELEM."""

    ANY = 0
    NOEXIST = 1
    EXIST = 2
    F_LOCK = 4


class MapFlag(IntFlag):
    """map_flags of BPF_MAP_CREATE."""

    NONE = 0
    NO_PREALLOC = 1 << 0
    NO_COMMON_LRU = 1 << 1
    NUMA_NODE = 1 << 2
    RDONLY = 1 << 3
    WRONLY = 1 << 4
    STACK_BUILD_ID = 1 << 5
    ZERO_SEED = 1 << 6
    RDONLY_PROG = 1 << 7
    WRONLY_PROG = 1 << 8
    CLONE = 1 << 9
    MMAPABLE = 1 << 10
    PRESERVE_ELEMS = 1 << 11
    INNER_MAP = 1 << 12
    LINK = 1 << 13
    PATH_FD = 1 << 14
    VTYPE_BTF_OBJ_FD = 1 << 15
    TOKEN_FD = 1 << 16
    SEGV_ON_FAULT = 1 << 17
    NO_USER_CONV = 1 << 18


class ProgFlag(IntFlag):
    """prog_flags of BPF_PROG_LOAD."""

    NONE = 0
    STRICT_ALIGNMENT = 1 << 0
    ANY_ALIGNMENT = 1 << 1
    TEST_RND_HI32 = 1 << 2
    TEST_STATE_FREQ = 1 << 3
    SLEEPABLE = 1 << 4
    XDP_HAS_FRAGS = 1 << 5
    XDP_DEV_BOUND_ONLY = 1 << 6
    TEST_REG_INVARIANTS = 1 << 7


class PseudoSrc(IntEnum):
    """src_reg values of a BPF_LD | BPF_IMM | BPF_DW instruction."""

    NONE = 0
    MAP_FD = 1
    MAP_VALUE = 2
    BTF_ID = 3
    FUNC = 4
    MAP_IDX = 5
    MAP_IDX_VALUE = 6


class PseudoCall(IntEnum):
    """src_reg values of a BPF_JMP | BPF_CALL instruction."""

    HELPER = 0
    CALL = 1
    KFUNC_CALL = 2


RINGBUF_BUSY_BIT = 1 << 31
RINGBUF_DISCARD_BIT = 1 << 30
RINGBUF_HDR_SZ = 8
F_CURRENT_CPU = 0xFFFFFFFF
STACK_FLAGS = {"SKIP_FIELD_MASK": 0xFF, "USER_STACK": 1 << 8, "FAST_STACK_CMP": 1 << 9, "REUSE_STACKID": 1 << 10}
TEST_RUN_FLAGS = {"ON_CPU": 1 << 0, "XDP_LIVE_FRAMES": 1 << 1}


__getattr__, __dir__ = lazy_exports(__name__, {"HelperId": "ebpf.uapi._helpers"})
