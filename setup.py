"""Only here for cffi's build hook: metadata lives in pyproject.toml.

``cffi_modules`` runs ebpf/sys/ffi_build.py at build time, which writes the pure-Python module
``ebpf/sys/_ffi.py`` (cffi's out-of-line ABI mode) into the wheel.
"""

import os
import sys

from setuptools import setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the build script imports ebpf.sys.cdefs

setup(cffi_modules=["ebpf/sys/ffi_build.py:ffibuilder"])
