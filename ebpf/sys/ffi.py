"""The cffi handle and libc, loaded the fast way when possible.

``ebpf.sys._ffi`` is generated at build time (see :mod:`ebpf.sys.ffi_build`). A source checkout
has no build step, so when the module is missing we parse the declarations once and, if the
package directory is writable, write the generated module next to us so that the next start
is fast too.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

ffi: Any
try:
    from ebpf.sys._ffi import ffi
except ImportError:  # source checkout, not built
    from cffi import FFI

    from ebpf.sys.cdefs import CDEF

    _builder = FFI()
    _builder.cdef(CDEF)
    _builder.set_source("ebpf.sys._ffi", None)
    _target = os.path.join(os.path.dirname(__file__), "_ffi.py")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # cffi announces the file it writes
            _builder.emit_python_code(_target + ".tmp")
        os.replace(_target + ".tmp", _target)
        from ebpf.sys._ffi import ffi
    except OSError:
        ffi = _builder

libc: Any = ffi.dlopen(None)
NULL: Any = ffi.NULL
