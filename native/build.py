"""cffi build script (API, out-of-line mode): compiles native/mv_native.c into manverify._native.

Run by setup.py through `cffi_modules`; MANVERIFY_CFLAGS adds flags (the sanitizer build uses it).
"""
import os
import re
import shlex
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
int mv_version(void);
size_t mv_table_size(void);
size_t mv_scratch_size(void);
int mv_key_load(unsigned char *table, size_t table_len, unsigned char *scratch, size_t scratch_len,
                const unsigned char *point65, size_t point_len);
int mv_verify(const unsigned char *gtable, const unsigned char *qtable,
              const unsigned char *msg, size_t msg_len, const unsigned char *sig64, size_t sig_len);
int mv_verify_batch(const unsigned char *gtable, const unsigned char *const *qtables,
                    const unsigned char *const *msgs, const size_t *msg_lens,
                    const unsigned char *const *sigs, int *out, size_t n);
int mv_verify_batch_packed(const unsigned char *gtable, const unsigned char *const *qtables,
                           const unsigned char *msgs, size_t msgs_len, const size_t *offsets,
                           const unsigned char *sigs, size_t sigs_len, int *out, size_t n);
int mv_sha256(unsigned char *out32, const unsigned char *msg, size_t msg_len);
int mv_table_mul(unsigned char *out65, const unsigned char *table, const unsigned char *k32);
int mv_naive_mul(unsigned char *out65, const unsigned char *point65, const unsigned char *k32);
"""

ffi = FFI()
# mv.h is the ABI; mv_native.h adds the CPU-feature report and test hooks (between cdef markers).
_EXTRA = re.search(r"/\* cdef-begin \*/(.*?)/\* cdef-end \*/", (HERE / "mv_native.h").read_text(), re.S)
ffi.cdef(CDEF + _EXTRA.group(1))
ffi.set_source(
    "manverify._native",
    '#include "mv_native.h"',
    # Paths relative to the project root, where setup.py runs (absolute paths would leak into
    # the sdist/wheel metadata).
    sources=["native/mv_native.c"],
    include_dirs=["native"],
    depends=["native/mv.h", "native/mv_native.h", "native/field_impl.h", "native/scalar_impl.h",
             "native/group_impl.h", "native/ecmult_impl.h", "native/sha256_impl.h"],
    extra_compile_args=["-O3", "-funroll-loops", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    + shlex.split(os.environ.get("MANVERIFY_CFLAGS", "")),
    extra_link_args=shlex.split(os.environ.get("MANVERIFY_LDFLAGS", "")),
)

if __name__ == "__main__":
    ffi.compile(verbose=True)
