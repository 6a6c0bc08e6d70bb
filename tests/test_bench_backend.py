"""Every benchmark says which signature backend it measures and refuses to run without the native
engine unless told (--allow-fallback), before measuring anything (issue 19, item 12)."""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import manverify
from manverify import bench

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ROOT / "benches"
FALLBACK = dict(os.environ, MANVERIFY_BACKEND="cryptography")


def _run(argv, env=FALLBACK, cwd=ROOT):
    return subprocess.run([sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _refused(p, what):
    assert p.returncode == bench.EXIT_NOT_NATIVE, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert f"{what}: refusing to measure" in p.stderr and bench.ALLOW_FALLBACK in p.stderr


def _with_tree(env=FALLBACK):
    # This checkout's package first on the path (the tests may run against an installed one).
    return dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(manverify.__file__).parents[1]),
                                                               env.get("PYTHONPATH")])))


def test_manverify_bench_refuses_the_fallback():
    p = _run(["-m", "manverify", "bench"], _with_tree())
    _refused(p, "manverify bench")
    assert "manverify bench: signature backend cryptography (MANVERIFY_BACKEND=cryptography)" in p.stdout


def test_manverify_bench_json_keeps_stdout_for_the_report():
    p = _run(["-m", "manverify", "bench", "--json"], _with_tree())
    _refused(p, "manverify bench")
    assert p.stdout == "" and "signature backend cryptography" in p.stderr


@pytest.mark.parametrize("script, args", [("gate.py", []), ("counters.py", []),
                                          ("serve_load.py", ["secsipidx", "--seconds", "1"])])
def test_benchmark_scripts_refuse_the_fallback(script, args):
    p = _run([str(BENCHES / script), *args], _with_tree())
    _refused(p, Path(script).stem if script != "gate.py" else "gate")
    assert "signature backend cryptography (MANVERIFY_BACKEND=cryptography)" in p.stdout


def test_serve_load_from_a_tree_without_the_engine_refuses(tmp_path):
    # The case that went unnoticed: a source tree where the engine was never built. serve_load
    # runs the servers from its own checkout, so it asks them, not itself, which backend they use.
    tree = tmp_path / "checkout"
    shutil.copytree(Path(manverify.__file__).parent, tree / "manverify",
                    ignore=shutil.ignore_patterns("_native*.so", "_native*.pyd", "__pycache__"))
    shutil.copytree(BENCHES, tree / "benches", ignore=shutil.ignore_patterns("__pycache__"))
    # Shadows any engine an editable install of another checkout would lend the package.
    (tree / "manverify" / "_native.py").write_text("raise ImportError('not built in this tree')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MANVERIFY_BACKEND", "PYTHONPATH")}
    p = _run([str(tree / "benches" / "serve_load.py"), "secsipidx", "--seconds", "1"], env, cwd=tmp_path)
    _refused(p, "serve_load")
    assert "serve_load: signature backend cryptography (" in p.stdout


def test_load_sip_asks_the_venv_kamailio_embeds(tmp_path):
    load_sip = _module("load_sip")
    missing = load_sip.stack.missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (installed by .ci/run)")
    # A "venv" whose python runs this tree on the fallback: what a venv built without a compiler is.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexec env MANVERIFY_BACKEND=cryptography "
                      f"PYTHONPATH={Path(manverify.__file__).parents[1]} {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    p = _run([str(BENCHES / "load_sip.py"), "--venv", str(venv), "--rates", "1", "--seconds", "1"], _with_tree(os.environ))
    _refused(p, "load_sip")


def test_pytest_benchmark_suites_refuse_the_fallback_when_measuring():
    args = ["-m", "pytest", "-p", "no:cacheprovider", str(BENCHES / "test_bench_certs.py")]
    p = _run(args + ["--benchmark-enable"], _with_tree())
    assert p.returncode == bench.EXIT_NOT_NATIVE and "refusing to measure" in p.stdout + p.stderr, p.stdout[-2000:]
    assert "passed" not in p.stdout  # nothing was measured


def _module(name):
    spec = importlib.util.spec_from_file_location(name, BENCHES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gate_measures_the_fallback_when_told(monkeypatch, capsys):
    gate = _module("gate")
    monkeypatch.setattr(gate.bench, "backend_line", lambda: "cryptography (MANVERIFY_BACKEND=cryptography)")
    monkeypatch.setattr(gate, "observe", lambda: {name: limit for name, (limit, _, _) in gate.LIMITS.items()})
    assert gate.main([]) == bench.EXIT_NOT_NATIVE
    assert gate.main([bench.ALLOW_FALLBACK]) == 0
    assert "gate: signature backend cryptography" in capsys.readouterr().out


def test_native_is_said_and_allowed():
    assert bench.refusal("x", "native", False) is None
    assert bench.refusal("x", "cryptography (why)", True) is None
    assert "cryptography (why)" in bench.refusal("x", "cryptography (why)", False)
