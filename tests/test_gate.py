"""The CI performance gate's decision (not its measurements): a limit fails the build only when
every attempt crosses it."""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("gate", Path(__file__).resolve().parents[1] / "benches" / "gate.py")
gate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate)

GOOD = {"native verify / cryptography": 0.25, "Verifier.verify / cryptography": 0.48,
        "es256.verify_many 2 threads / 1": 1.9, "Verifier.verify_many 2 threads / 1": 1.5,
        "Screen.check / Verifier.verify": 0.85}


def run(monkeypatch, series):
    calls = iter(series)
    seen = []

    def observe():
        seen.append(1)
        return dict(next(calls))

    monkeypatch.setattr(gate, "observe", observe)
    monkeypatch.setattr(gate.bench, "backend_line", lambda: "native")
    return gate.main([]), len(seen)


def test_a_clean_measurement_passes_at_once(monkeypatch):
    assert run(monkeypatch, [GOOD]) == (0, 1)


def test_one_noisy_measurement_is_measured_again(monkeypatch):
    noisy = {**GOOD, "es256.verify_many 2 threads / 1": 1.2}
    assert run(monkeypatch, [noisy, GOOD]) == (0, 2)


def test_a_regression_seen_every_time_fails(monkeypatch, capsys):
    slow = {**GOOD, "native verify / cryptography": 1.1}
    assert run(monkeypatch, [slow] * gate.ATTEMPTS) == (1, gate.ATTEMPTS)
    assert "native verify / cryptography" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(GOOD))
def test_each_limit_is_checked_in_its_direction(monkeypatch, name):
    limit, _, direction = gate.LIMITS[name]
    worse = limit * (1.5 if direction == "max" else 0.5)
    assert run(monkeypatch, [{**GOOD, name: worse}] * gate.ATTEMPTS)[0] == 1
