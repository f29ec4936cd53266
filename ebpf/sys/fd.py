"""Ownership of kernel file descriptors.

Programs, maps, links and BTF objects are file descriptors; the kernel object lives as long as
some fd (or pin) refers to it. :class:`FD` closes exactly once, deterministically through
``close()``/``with``, and as a last resort when garbage-collected, so that nothing we create
outlives the process unless the user pinned it.
"""

from __future__ import annotations

import os
from typing import Optional


class FD:
    """An owned file descriptor; ``int(fd)`` gives the number, ``close()`` releases it."""

    __slots__ = ("_fd", "__weakref__")

    def __init__(self, fd: int):
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        self._fd: Optional[int] = fd

    def __int__(self) -> int:
        if self._fd is None:
            from ebpf.errors import EbpfError

            raise EbpfError("file descriptor already closed")
        return self._fd

    __index__ = __int__

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def dup(self) -> FD:
        """A second, independently owned descriptor for the same kernel object."""
        return FD(os.dup(int(self)))

    def detach(self) -> int:
        """Give up ownership and return the raw number (the caller must close it)."""
        fd = int(self)
        self._fd = None
        return fd

    def __enter__(self) -> FD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FD({self._fd})" if self._fd is not None else "FD(closed)"
