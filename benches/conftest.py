"""The pytest-benchmark suites (pytest benches --benchmark-enable [--allow-fallback]).

The header names the signature backend measured; with benchmarks enabled, a backend other than
the native engine ends the session before any measurement (exit 3) unless --allow-fallback is
given: the figures would be the `cryptography` fallback's under the engine's test names.
"""
import pytest

from manverify import bench
from manverify.bench import Setup


def pytest_addoption(parser):
    parser.addoption(bench.ALLOW_FALLBACK, action="store_true", default=False,
                     help="manverify: benchmark even when the signature backend is not the native engine")


def pytest_report_header(config):
    return f"manverify signature backend: {bench.backend_line()}"


def _measuring(config) -> bool:
    # pytest-benchmark's own rule (its session.py); --benchmark-skip runs no benchmark at all
    disabled = config.getoption("benchmark_disable") and not config.getoption("benchmark_enable")
    return not disabled and not config.getoption("benchmark_skip")


def pytest_sessionstart(session):
    config = session.config
    if _measuring(config):
        why = bench.refusal("pytest-benchmark", bench.backend_line(), config.getoption("allow_fallback"))
        if why:
            pytest.exit(why, returncode=bench.EXIT_NOT_NATIVE)


@pytest.fixture(scope="session")
def setup():
    return Setup(batch=256)
