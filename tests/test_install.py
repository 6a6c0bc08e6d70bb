"""Installing without the native engine: what setup.py does when it cannot build it, and what
`manverify --version` tells the operator afterwards."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import manverify
from manverify import __version__, es256

SOURCE = Path(__file__).resolve().parents[1]


def _version(*, env=None, block_native=False) -> str:
    block = "import sys; sys.modules['manverify._native'] = None; " if block_native else ""
    code = block + "from manverify.cli import main; raise SystemExit(main(['--version']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **(env or {})})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_version_names_the_backend_in_use():
    if es256._lib is not None:
        assert _version() == f"manverify {__version__}, signature backend native"
    else:
        assert _version().startswith(f"manverify {__version__}, signature backend cryptography (")


def test_version_says_why_the_engine_is_missing():
    out = _version(block_native=True)
    assert out.startswith(f"manverify {__version__}, signature backend cryptography (")
    # an engine that is there but does not import, or (an install without a compiler) never built
    why = "manverify._native does not import: " if es256._lib is not None else "the native engine was not built"
    assert out.split(" (", 1)[1].startswith(why)


def test_version_says_when_the_backend_is_forced():
    out = _version(env={"MANVERIFY_BACKEND": "cryptography"})
    assert out.startswith(f"manverify {__version__}, signature backend cryptography (")
    if es256._lib is not None:
        assert out.endswith("(MANVERIFY_BACKEND=cryptography)")


# ---------------------------------------------------------------------- setup.py's optional build
@pytest.fixture
def tree(tmp_path):
    """A scratch copy of the source tree (setup.py writes its build products beside it)."""
    if not (SOURCE / "setup.py").exists():
        pytest.skip("setup.py is not beside the tests (installed package without its source tree)")
    dest = tmp_path / "src"
    dest.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(SOURCE / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.o", "_native.c", "_native_skipped.txt", "_build")
    shutil.copytree(SOURCE / "native", dest / "native", ignore=ignore)
    # the package as imported: the checkout's, or the installed one when the tests run against an install
    shutil.copytree(Path(manverify.__file__).parent, dest / "manverify", ignore=ignore)
    return dest


def _build(tree: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "MANVERIFY_REQUIRE_NATIVE"}
    return subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree,
                          capture_output=True, text=True, timeout=300, env={**environ, **env})


def test_without_a_compiler_the_build_succeeds_as_pure_python_and_says_why(tree):
    run = _build(tree, CC="false")
    assert run.returncode == 0, run.stderr
    said = [line for line in run.stderr.splitlines() if line.startswith("manverify:")]
    assert len(said) == 1, run.stderr  # one line, whatever setuptools says about the compiler's failure
    assert said[0].startswith("manverify: native engine not built (C compiler 'false' cannot compile a file "
                              "including Python.h: ")
    assert said[0].endswith("); installing pure Python, signatures use cryptography")
    assert not list((tree / "manverify").glob("_native*.so"))
    assert "C compiler 'false'" in (tree / "manverify" / "_native_skipped.txt").read_text()


def test_require_native_turns_a_missing_compiler_into_a_failure(tree):
    run = _build(tree, CC="false", MANVERIFY_REQUIRE_NATIVE="1")
    assert run.returncode != 0
    assert "MANVERIFY_REQUIRE_NATIVE=1 but the native engine cannot be built" in run.stderr


def test_a_broken_engine_fails_the_build_when_the_compiler_works(tree):
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("no C compiler (gcc, installed by .ci/run)")
    with open(tree / "native" / "mv_native.c", "a") as f:
        f.write("\n#error a broken engine must not install as pure Python\n")
    run = _build(tree)
    assert run.returncode != 0
    assert "a broken engine must not install" in run.stderr
    assert not (tree / "manverify" / "_native_skipped.txt").exists()
