# The C engine is built by cffi (API mode); everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["native/build.py:ffi"])
