"""The fetch time budget holds against servers that answer slowly byte by byte (headers, TLS
handshake) and against a resolver that does not answer: nothing blocks a worker past it."""
import socket
import threading
import time

import pytest

from manverify.certs import CertStore, Credential
from manverify.certs import fetch as fetch_mod

from .certserver import CertServer, Route, TLSLab
from .conftest import NOW


@pytest.fixture(scope="module")
def tls():
    return TLSLab()


def store_for(lab, tls, port, **kw):
    return CertStore(trust_anchors=[lab.root.pem], allow_loopback=True, tls_ca=tls.ca_pem,
                     https_ports=(port,), total_timeout=1.0, connect_timeout=0.5, **kw)


def test_headers_dripped_byte_by_byte_are_cut_at_the_total_budget(lab, tls):
    with CertServer(tls) as srv:
        srv.routes["/drip.pem"] = Route(lab.chain_pem, drip=0.2)  # 20 bytes/s: the headers alone take ~4 s
        store = store_for(lab, tls, srv.port)
        t0 = time.monotonic()
        r = store.credential(srv.url("/drip.pem"), NOW)
        elapsed = time.monotonic() - t0
    assert r.code == 436 and r.reason == "fetch-timeout", r
    assert elapsed < 1.6


class DripTLS:
    """A TCP server on 127.0.0.1 that starts a TLS record and then sends one byte at a time."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn):
        with conn:
            try:
                conn.sendall(bytes([0x16, 0x03, 0x03, 0x40, 0x00]))  # handshake record of 16 KiB
                while not self.stop.is_set():
                    conn.sendall(b"\x00")
                    time.sleep(0.05)
            except OSError:
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def test_a_dripped_tls_handshake_is_cut_at_the_total_budget(lab, tls):
    with DripTLS() as srv:
        store = store_for(lab, tls, srv.port)
        t0 = time.monotonic()
        r = store.credential(f"https://127.0.0.1:{srv.port}/a.pem", NOW)
        elapsed = time.monotonic() - t0
    assert r.code == 436 and r.reason in ("fetch-tls", "fetch-timeout"), r
    assert elapsed < 1.6


def test_a_resolver_that_does_not_answer_is_cut_at_the_connect_budget(monkeypatch):
    # No loopback server can make DNS slow: stand in for a hung resolver.
    real = socket.getaddrinfo

    def hung(host, *a, **kw):
        if host == "slow-dns.example.fr":
            time.sleep(3)
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", hung)
    t0 = time.monotonic()
    with pytest.raises(fetch_mod.FetchError) as e:
        fetch_mod.fetch("https://slow-dns.example.fr/a.pem",
                        limits=fetch_mod.Limits(connect_timeout=0.3, total_timeout=1.0))
    assert e.value.kind == "dns" and time.monotonic() - t0 < 0.8


def test_x5u_and_crl_fetches_share_one_budget(lab, tls):
    # A slow x5u followed by a slow CRL used to take both budgets back to back.
    from manverify import pki
    with CertServer(tls) as srv, CertServer() as crl_srv:
        signer = pki.make_signer(lab.intermediate, now=NOW, crl_url=crl_srv.url("/ca.crl"))
        srv.routes["/op.pem"] = Route(signer.pem + lab.intermediate.pem, delay=0.7)
        crl_srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW)), delay=0.7)
        store = store_for(lab, tls, srv.port)
        t0 = time.monotonic()
        r = store.credential(srv.url("/op.pem"), NOW)
        elapsed = time.monotonic() - t0
        assert r.code == 437 and r.reason == "crl-unavailable" and "took longer" in r.detail, r
        assert elapsed < 1.4
        # With the budget to do both, both are done.
        roomy = CertStore(trust_anchors=[lab.root.pem], allow_loopback=True, tls_ca=tls.ca_pem,
                          https_ports=(srv.port,), total_timeout=3.0, connect_timeout=0.5)
        assert isinstance(roomy.credential(srv.url("/op.pem"), NOW), Credential)


def test_size_cap_without_content_length(lab, tls):
    # No Content-Length to refuse up front: the reader must stop at the cap by itself.
    with CertServer(tls) as srv:
        srv.routes["/big.pem"] = Route(lab.chain_pem * 100, length=False)
        srv.routes["/ok.pem"] = Route(lab.chain_pem, length=False)
        store = store_for(lab, tls, srv.port, max_bytes=16 * 1024)
        r = store.credential(srv.url("/big.pem"), NOW)
        assert r.code == 436 and r.reason == "fetch-oversized", r
        assert isinstance(store.credential(srv.url("/ok.pem"), NOW), Credential)
