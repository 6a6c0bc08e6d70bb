"""Warm versus cold certificate lookups: a warm credential() does no X.509 work and no I/O.

Run: pytest benches/test_bench_certs.py --benchmark-enable [--allow-fallback]. With benchmarks
enabled, a signature backend other than the native engine ends the run (exit 3) unless
--allow-fallback is given (benches/conftest.py); the header names the backend.
"""
from manverify.certs import CertStore


def test_credential_warm(benchmark, setup):
    store = setup.verifier.store
    store.credential(setup.lab.x5u, setup.now)
    loads = store.stats()["loads"]
    benchmark(store.credential, setup.lab.x5u, setup.now)
    assert store.stats()["loads"] == loads  # nothing was parsed or fetched again


def test_credential_cold(benchmark, setup):
    def cold():
        s = CertStore(trust_anchors=[setup.lab.root.pem], certificates={setup.lab.x5u: setup.lab.chain_pem})
        return s.credential(setup.lab.x5u, setup.now)

    benchmark(cold)
