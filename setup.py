# The C engine is built by cffi (API mode); everything else is in pyproject.toml.
#
# The engine is optional: on a host without a usable C toolchain (no compiler, no Python headers)
# the package installs as pure Python and uses `cryptography`. The build says so in one line and
# leaves the reason in manverify/_native_skipped.txt, which `manverify --version` repeats. A broken
# engine on a working toolchain still fails the build, and MANVERIFY_REQUIRE_NATIVE=1 (CI) makes
# a missing toolchain fail too.
import os
import re
import sys
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

SKIPPED_NOTE = Path("manverify", "_native_skipped.txt")


class OptionalNativeBuildExt(build_ext):
    def run(self):
        note = Path(self.build_lib if not self.inplace else ".", SKIPPED_NOTE)
        if note.exists():
            note.unlink()
        reason = self._toolchain_missing()
        if reason is None:
            super().run()
            return
        if os.environ.get("MANVERIFY_REQUIRE_NATIVE") == "1":
            sys.exit(f"manverify: MANVERIFY_REQUIRE_NATIVE=1 but the native engine cannot be built: {reason}")
        line = f"manverify: native engine not built ({reason}); installing pure Python, signatures use cryptography"
        print(line, file=sys.stderr)
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(reason + "\n")

    def _toolchain_missing(self):
        """Why no extension can be built here (None if a trivial one can): compiles a file that
        includes Python.h with the very compiler and flags the engine would get."""
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler

        compiler = new_compiler(compiler=self.compiler, force=True)
        customize_compiler(compiler)
        for ext in self.extensions:
            compiler.set_include_dirs(self.include_dirs + list(ext.include_dirs))
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp, "probe.c")
            probe.write_text("#include <Python.h>\nint mv_probe(void) { return 0; }\n")
            try:
                compiler.compile([str(probe)], output_dir=tmp)
            except Exception as e:  # CompileError, a missing executable, ...: all mean "no toolchain"
                # distutils quotes the whole command line; the compiler's own words went to stderr
                detail = re.sub(r"^Command '\[.*?\]' ", "", str(e).strip()).rstrip(".") or type(e).__name__
                return f"C compiler {compiler.compiler_so[0]!r} cannot compile a file including Python.h: {detail}"
        return None


setup(
    cmdclass={"build_ext": OptionalNativeBuildExt},
    cffi_modules=["native/build.py:ffi"],
    # One abi3 wheel per platform: cffi compiles against the limited API, so CPython >= 3.9 loads it.
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
