"""The one exception BTF reading raises (defined with the others in :mod:`ebpf.errors`).

A blob comes from outside (a file, a kernel, a module): when it is bad or cut short, the
caller gets a :class:`BTFError` naming the part that is wrong and where, never an
``IndexError`` or ``struct.error`` from deep inside the decoder.
"""

from __future__ import annotations

from ebpf.errors import BTFError

__all__ = ["BTFError"]
