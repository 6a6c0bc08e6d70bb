"""cffi build script (API, out-of-line mode): compiles native/mv_native.c into manverify._native.

Run by setup.py through `cffi_modules`; MANVERIFY_CFLAGS adds flags (the sanitizer build uses it).
"""
import os
import re
import shlex
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

ffi = FFI()


def _declarations(header: str) -> str:
    """The part of a header between its cdef markers: the C declarations are written once."""
    found = re.search(r"/\* cdef-begin\b.*?\*/(.*?)/\* cdef-end \*/", (HERE / header).read_text(), re.S)
    if found is None:
        raise RuntimeError(f"native/{header} has no cdef-begin/cdef-end markers")
    return found.group(1)


# mv.h is the whole ABI (mv_native.h's test hooks go only into tests/native_hooks.py's test build).
ffi.cdef(_declarations("mv.h"))
ffi.set_source(
    "manverify._native",
    '#include "mv_native.h"',
    # Paths relative to the project root, where setup.py runs (absolute paths would leak into
    # the sdist/wheel metadata).
    sources=["native/mv_native.c"],
    include_dirs=["native"],
    depends=["native/mv.h", "native/mv_native.h", "native/field_impl.h", "native/scalar_impl.h",
             "native/group_impl.h", "native/ecmult_impl.h", "native/sha256_impl.h", "native/passport_impl.h"],
    extra_compile_args=["-O3", "-funroll-loops", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    + shlex.split(os.environ.get("MANVERIFY_CFLAGS", "")),
    extra_link_args=shlex.split(os.environ.get("MANVERIFY_LDFLAGS", "")),
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
