"""The one exception BTF reading raises.

A blob comes from outside (a file, a kernel, a module): when it is bad or cut short, the
caller gets a :class:`BTFError` naming the part that is wrong and where, never an
``IndexError`` or ``struct.error`` from deep inside the decoder.
"""

from __future__ import annotations

from ebpf.errors import EbpfError


class BTFError(EbpfError):
    """Malformed or truncated BTF, a type id or string offset out of range, or a missing type."""
