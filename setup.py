"""Only here for cffi's build hook: metadata lives in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["ebpf/sys/ffi_build.py:ffibuilder"])
