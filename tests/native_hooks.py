"""The native engine's test build: mv_native.c compiled again with -DMV_TEST_HOOKS into a separate
module, so tests can reach the internals (field, scalar, table and SHA-256 code) while the shipped
`manverify._native` exports only the ABI of native/mv.h.

The build reuses native/build.py's sources and flags (MANVERIFY_CFLAGS included, so the sanitizer
run instruments this module too) and adds the hooks' declarations from native/mv_native.h. Tables
loaded by the shipped module are plain memory of the same layout: the hooks read them as they are.
"""
from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parents[1] / "native"
MODULE = "_mv_test_hooks"


@functools.lru_cache(maxsize=None)
def build():
    """(ffi, lib) of the test build; compiled once per test process into a temporary directory."""
    from cffi import FFI

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler (gcc, which .ci/run installs) for the native test build")
    spec = importlib.util.spec_from_file_location("_mv_build", NATIVE / "build.py")
    shipped = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shipped)
    _, source, _, options = shipped.ffi._assigned_source  # what set_source() was given
    options = dict(options, sources=[str(NATIVE / "mv_native.c")], include_dirs=[str(NATIVE)],
                   depends=[], define_macros=[*options.get("define_macros", []), ("MV_TEST_HOOKS", "1")])
    options.pop("py_limited_api", None)  # a throwaway module for this interpreter only
    ffi = FFI()
    ffi.cdef(shipped._declarations("mv.h") + shipped._declarations("mv_native.h"))
    ffi.set_source(MODULE, source, **options)
    tmp = tempfile.mkdtemp(prefix="mv-test-hooks-")
    atexit.register(shutil.rmtree, tmp, True)
    path = ffi.compile(tmpdir=tmp, verbose=False)
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ffi, module.lib
