"""pytest-benchmark suites, side by side on one token and key (run: pytest benches --benchmark-enable).

Ratios, not seconds, are what to compare; `python benches/gate.py` computes them in one process.

With benchmarks enabled, a signature backend other than the native engine ends the run (exit 3)
unless --allow-fallback is given (benches/conftest.py); the header names the backend.
"""
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from manverify import es256
from manverify.bench import DEST, ORIG

ECDSA = ec.ECDSA(hashes.SHA256())


def test_cryptography_verify(benchmark, setup):
    benchmark(setup.pub.verify, setup.der, setup.pp.signing_input, ECDSA)


def test_es256_verify_warm_key(benchmark, setup):
    assert benchmark(es256.verify, setup.key, setup.pp.signing_input, setup.pp.signature)


def test_pyjwt_decode(benchmark, setup):
    benchmark(setup.jwt.decode, setup.token, setup.pem, algorithms=["ES256"])


def test_verifier_verify_cached_certificate(benchmark, setup):
    r = benchmark(setup.verifier.verify, setup.header, orig=ORIG, dest=DEST, now=setup.now)
    assert r.ok


def test_verifier_verify_cold_certificate(benchmark, setup):
    """First call for an x5u: chain parsing, path validation, profile, key table, then verify."""
    from manverify import Verifier

    def cold():
        v = Verifier(trust_anchors=[setup.lab.root.pem], certificates={setup.lab.x5u: setup.lab.chain_pem})
        return v.verify(setup.header, orig=ORIG, dest=DEST, now=setup.now)

    assert benchmark(cold).ok


def test_key_load(benchmark, setup):
    benchmark(es256.key_from_public, setup.pub)


def test_verify_many_1_thread(benchmark, setup):
    assert all(r.ok for r in benchmark(setup.verifier.verify_many, setup.batch))


def test_verify_many_2_threads(benchmark, setup):
    assert all(r.ok for r in benchmark(setup.verifier2.verify_many, setup.batch))


def test_cold_key_load_and_verify(benchmark, setup):
    """First use of a key: table build (mv_key_load) plus one verify."""
    pp = setup.pp
    assert benchmark(lambda: es256.verify(es256.key_from_public(setup.pub), pp.signing_input, pp.signature))


def test_es256_verify_many_1_thread(benchmark, setup):
    assert all(benchmark(es256.verify_many, *setup.sig_batch, threads=1))


def test_es256_verify_many_2_threads(benchmark, setup):
    assert all(benchmark(es256.verify_many, *setup.sig_batch, threads=2))
