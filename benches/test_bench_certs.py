"""Warm versus cold certificate lookups: a warm credential() does no X.509 work and no I/O."""
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
