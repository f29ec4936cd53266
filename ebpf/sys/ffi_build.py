"""Build script for the out-of-line ABI module ``ebpf.sys._ffi``.

setuptools runs it at build time (``cffi_modules`` in setup.py): cffi turns :data:`CDEF` into a
pure-Python module holding the pre-parsed declarations, so no C compiler is needed at install
and no ``cdef`` parsing happens at run time.
"""

from cffi import FFI

from ebpf.sys.cdefs import CDEF

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("ebpf.sys._ffi", None)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
