"""CertStore.credential(): warm (a known, validated x5u) against cold (first sight: fetch over
HTTPS from a loopback server, parse, path validation, profile, TNAuthList, CRL).

Run: python -m pytest benches/bench_certs.py --benchmark-enable -p no:cacheprovider
(not collected by the default run; benches/test_bench_certs.py has the local-copy pair).

The warm benchmarks run with the X.509 loader and the fetcher replaced by functions that
raise, so they show — not just claim — that the per-call path parses nothing and does no I/O.

With benchmarks enabled, a signature backend other than the native engine ends the run (exit 3)
unless --allow-fallback is given (benches/conftest.py); the header names the backend.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.certserver

from manverify import pki  # noqa: E402
from manverify.certs import CertStore, Credential  # noqa: E402
from manverify.certs import fetch as fetch_mod  # noqa: E402
from manverify.certs import trust as trust_mod  # noqa: E402
from tests.certserver import CertServer, Route, TLSLab  # noqa: E402

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def world():
    lab = pki.lab_pki(now=NOW)
    tls = TLSLab()
    with CertServer(tls) as srv:
        crl_srv = CertServer()
        with crl_srv:
            signer = pki.make_signer(lab.intermediate, now=NOW, crl_url=crl_srv.url("/ca.crl"))
            crl_srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW)),
                                              content_type="application/pkix-crl")
            srv.routes["/op.pem"] = Route(lab.chain_pem)
            srv.routes["/crl.pem"] = Route(signer.pem + lab.intermediate.pem)
            yield lab, tls, srv


def new_store(lab, tls, srv):
    return CertStore(trust_anchors=[lab.root.pem], allow_loopback=True, allow_http=False, tls_ca=tls.ca_pem,
                     https_ports=(srv.port,))


def _forbid(monkeypatch):
    def no(*a, **k):
        raise AssertionError("the warm path must not parse or fetch")

    monkeypatch.setattr(trust_mod, "load_certificates", no)
    monkeypatch.setattr(fetch_mod, "fetch", no)


@pytest.mark.parametrize("path", ["/op.pem", "/crl.pem"], ids=["no-crl", "with-crl"])
def test_warm(benchmark, world, monkeypatch, path):
    lab, tls, srv = world
    store = new_store(lab, tls, srv)
    url = srv.url(path)
    assert isinstance(store.credential(url, NOW), Credential)
    before = store.stats()
    _forbid(monkeypatch)
    assert isinstance(benchmark(store.credential, url, NOW), Credential)
    after = store.stats()
    assert after["loads"] == before["loads"] and after["fetches"] == before["fetches"]


@pytest.mark.parametrize("path", ["/op.pem", "/crl.pem"], ids=["no-crl", "with-crl"])
def test_cold_https_fetch(benchmark, world, path):
    lab, tls, srv = world
    url = srv.url(path)

    def cold():
        return new_store(lab, tls, srv).credential(url, NOW)

    assert isinstance(benchmark.pedantic(cold, rounds=40, warmup_rounds=2), Credential)


def test_cold_local_copy(benchmark, world):
    lab, _, _ = world

    def cold():
        s = CertStore(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
        return s.credential(lab.x5u, NOW)

    assert isinstance(benchmark.pedantic(cold, rounds=100, warmup_rounds=2), Credential)
