"""Map declarations found in assembly text (``.map`` directives), as plain data.

The assembler only records what the text declares; turning a declaration into a MapSpec (and
checking it against the kernel's limits) is the loader's job, so this module depends on nothing.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MapDecl"]


class MapDecl(NamedTuple):
    """``.map NAME type=TYPE key=N value=N max_entries=N [flags=N|NAME|NAME...]``.

    ``type`` is the lower-case name of a ``bpf_map_type`` without its prefix (``hash``,
    ``array``, ``percpu_hash``, ``ringbuf``...); ``flags`` is the numeric ``map_flags``.
    """

    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
