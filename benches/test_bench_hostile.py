"""Hostile sizes beside the usual call (run: pytest benches/test_bench_hostile.py --benchmark-enable).

The usual INVITE is the per-call baseline; every other row is a request at the limits
(tests/hostile.py builds them, tests/test_hostile.py holds them to a loose bound). Compare each row
with the usual call in the same run: the target is any request under 5 ms.

With benchmarks enabled, a signature backend other than the native engine ends the run (exit 3)
unless --allow-fallback is given (benches/conftest.py); the header names the backend.
"""
import email.utils

import pytest

from manverify import sip
from manverify.bench import DEST, ORIG
from tests import hostile


@pytest.fixture(scope="module")
def shapes(setup):
    return hostile.requests(setup.header.split(";", 1)[0], f"Identity: {setup.header}")


@pytest.fixture(scope="module")
def identity_lists(setup):
    return hostile.identity_lists(setup.header.split(";", 1)[0])


def test_sip_check_usual_invite(benchmark, setup):
    raw = hostile.invite(f"From: <sip:{ORIG}@h>;tag=1", f"To: <tel:{DEST}>",
                         f"P-Asserted-Identity: <sip:{ORIG}@h;user=phone>", f"Identity: {setup.header}",
                         "Date: " + email.utils.formatdate(setup.now, usegmt=True))
    assert benchmark(sip.check, raw, setup.verifier, now=setup.now).verstat == "TN-Validation-Passed"


@pytest.mark.parametrize("name", ["identity params x31", "identity quoted x31", "PAI elements", "PAI commas",
                                  "PAI open angle", "From digits", "Date", "folding", "fields", "mapping"])
def test_sip_check_at_the_limits(benchmark, setup, shapes, name):
    benchmark(sip.check, shapes[name], setup.verifier, now=setup.now)


@pytest.mark.parametrize("name", ["params x1", "params x10", "quoted x1", "quoted x10"])
def test_verify_identity_values_at_the_limits(benchmark, setup, identity_lists, name):
    benchmark(setup.verifier.verify, identity_lists[name], orig=ORIG, dest=DEST, now=setup.now)
