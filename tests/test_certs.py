"""Certificate trust: local copy, profile, fetch faults, caches, CRLs — against real loopback servers."""
import json
import multiprocessing
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from manverify import ConfigError, pki
from manverify.certs import CertStore, Credential, CredentialError

from . import docpages
from .certserver import CertServer, Route, TLSLab
from .conftest import NOW


@pytest.fixture(scope="module")
def tls():
    return TLSLab()


def store_for(lab, **kw):
    kw.setdefault("certificates", {lab.x5u: lab.chain_pem})
    return CertStore(trust_anchors=[lab.root.pem], **kw)


def chain(cert, lab):
    return cert.pem + lab.intermediate.pem


def outcome(lab, cert, profile="man", now=NOW, **kw):
    x5u = "https://certs.example.fr/t.pem"
    return CertStore(trust_anchors=[lab.root.pem], certificates={x5u: chain(cert, lab)},
                     profile=profile, **kw).credential(x5u, now)


# ------------------------------------------------------------------ local copy and profile
def test_local_copy_gives_a_credential_and_warm_calls_are_hits(lab):
    store = store_for(lab)
    c = store.credential(lab.x5u, NOW)
    assert isinstance(c, Credential) and c.spc == "1001" and "1.2.250.1.695.1.1.1.0" in c.policies
    for _ in range(5):
        assert store.credential(lab.x5u, NOW) is c  # the very same object: no parsing on the warm path
    s = store.stats()
    assert s["loads"] == 1 and s["hits"] == 5 and s["fetches"] == 0


def test_local_directory_by_basename_and_manifest(lab, tmp_path):
    (tmp_path / "op1001.pem").write_bytes(lab.chain_pem)
    (tmp_path / "other-name.pem").write_bytes(lab.chain_pem)
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False)
    assert isinstance(store.credential("https://certs.example.fr/op1001.pem", NOW), Credential)
    (tmp_path / "x5u.json").write_text(json.dumps({"https://sti.example.fr/cert?id=7": "other-name.pem"}))
    assert isinstance(store.credential("https://sti.example.fr/cert?id=7", NOW), Credential)
    missing = store.credential("https://certs.example.fr/none.pem", NOW)
    assert missing.code == 436 and "local copy" in missing.detail
    assert store.credential("https://certs.example.fr/../x5u.json", NOW).code == 436


def test_garbage_local_copy_is_436(lab):
    x5u = "https://certs.example.fr/g.pem"
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: b"-----BEGIN CERTIFICATE-----\nAAAA\n"})
    r = store.credential(x5u, NOW)
    assert r.code == 436 and "cannot be parsed" in r.detail


def test_untrusted_and_p384_root(lab):
    rogue = pki.lab_pki(now=NOW)
    store = CertStore(trust_anchors=[lab.root.pem], certificates={rogue.x5u: rogue.chain_pem})
    r = store.credential(rogue.x5u, NOW)
    assert r.code == 437 and "not trusted" in r.detail
    p384 = pki.lab_pki(now=NOW, root_curve=ec.SECP384R1())  # a real SHAKEN root is P-384
    assert isinstance(store_for(p384).credential(p384.x5u, NOW), Credential)


def test_expired_and_not_yet_valid(lab):
    old = pki.make_signer(lab.intermediate, not_before=NOW - 400 * 86400, not_after=NOW - 86400)
    r = outcome(lab, old)
    assert r.code == 437 and "expired" in r.detail
    # MAN issues certificates a week before their notBefore: pre-load, accept when the time comes.
    early = pki.make_signer(lab.intermediate, not_before=NOW + 7 * 86400, days=365)
    x5u = "https://certs.example.fr/early.pem"
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: chain(early, lab)})
    r = store.credential(x5u, NOW)
    assert r.code == 437 and "not valid before" in r.detail
    assert isinstance(store.credential(x5u, NOW + 8 * 86400), Credential)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(curve=ec.SECP384R1()), "P-256"),
        (dict(ca=True), "CA=true"),
        (dict(key_usage=False), "KeyUsage is missing"),
        (dict(spc=None), "TNAuthList"),
        (dict(spc="1001", tn_ones=("33612345678",)), "exactly one SPC"),
        (dict(spc="ab-c"), "A-Z 0-9"),
        (dict(policy=pki.ATIS_POLICY_OID), "MAN CP"),
        (dict(extra_extensions=[(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00"), True)]),
         "critical"),
    ],
)
def test_profile_violations_are_437(lab, kw, fragment):
    r = outcome(lab, pki.make_signer(lab.intermediate, now=NOW, **kw))
    assert isinstance(r, CredentialError) and r.code == 437, r
    assert fragment in r.detail


def test_policy_rules_per_profile(lab):
    no_cp = pki.make_signer(lab.intermediate, policy=None, now=NOW)
    assert isinstance(outcome(lab, no_cp), Credential)  # MAN certificates from before the CP
    assert outcome(lab, no_cp, accept_missing_policy=False).code == 437
    atis = pki.make_signer(lab.intermediate, policy=pki.ATIS_POLICY_OID, now=NOW)
    assert isinstance(outcome(lab, atis, profile="atis"), Credential)
    assert outcome(lab, pki.make_signer(lab.intermediate, now=NOW), profile="atis").code == 437
    bare = pki.make_signer(lab.intermediate, spc=None, policy=None, now=NOW)
    assert isinstance(outcome(lab, bare, profile="rfc"), Credential)


def test_spc_allowlist_and_tn_authorisation(lab):
    assert isinstance(outcome(lab, lab.signer, spc_allowlist={"1001"}), Credential)
    assert outcome(lab, lab.signer, spc_allowlist={"2002"}).code == 437
    tn_cert = pki.make_signer(lab.intermediate, spc=None, tn_ranges=[("33612345600", 100)], now=NOW)
    x5u = "https://certs.example.fr/tn.pem"
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: chain(tn_cert, lab)}, profile="rfc")
    cred = store.credential(x5u, NOW)
    assert store.authorizes(cred, "33612345650") and not store.authorizes(cred, "33612345700")
    assert store.authorizes(store_for(lab).credential(lab.x5u, NOW), "33699999999")  # SPC-only


def test_config_errors(lab, tmp_path):
    with pytest.raises(ConfigError, match="cannot read trust anchor"):
        CertStore(trust_anchors=[str(tmp_path / "none.pem")])
    with pytest.raises(ConfigError, match="no certificate found"):
        CertStore(trust_anchors=[b"junk"])
    with pytest.raises(ConfigError, match="empty"):
        CertStore(trust_anchors=[])
    with pytest.raises(ConfigError, match="directory"):
        CertStore(trust_anchors=[lab.root.pem], certificates=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="crl_policy"):
        CertStore(trust_anchors=[lab.root.pem], crl_policy="maybe")
    with pytest.raises(ConfigError, match="CRL"):
        CertStore(trust_anchors=[lab.root.pem], crls=[b"not a crl"])


# ------------------------------------------------------------------ fetching x5u
def fetching_store(lab, tls, srv, **kw):
    return CertStore(trust_anchors=[lab.root.pem], allow_loopback=True, tls_ca=tls.ca_pem,
                     https_ports=(srv.port,), total_timeout=1.0, connect_timeout=0.5, **kw)


def test_https_fetch_then_cache(lab, tls):
    with CertServer(tls) as srv:
        srv.routes["/op.pem"] = Route(lab.chain_pem)
        store = fetching_store(lab, tls, srv)
        for _ in range(3):
            assert isinstance(store.credential(srv.url("/op.pem"), NOW), Credential)
        assert srv.hits["/op.pem"] == 1 and store.stats()["fetches"] == 1
        # DER of the signer alone is a chain too short to reach the root through the intermediate
        srv.routes["/op.der"] = Route(lab.signer.cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.DER),
                                      content_type="application/pkix-cert")
        r = store.credential(srv.url("/op.der"), NOW)
        assert r.code == 437 and "not trusted" in r.detail


@pytest.mark.parametrize(
    "route, fragment",
    [
        (Route(b"", status=404), "404"),
        (Route(b"oops", status=500), "500"),
        (Route(b"", status=302, headers={"Location": "https://127.0.0.1/elsewhere.pem"}), "redirects are not followed"),
        (Route(b"x" * 70000), "larger than"),
        (Route(b"<html>hello</html>", content_type="text/html"), "not a certificate chain"),
        (Route(b"\x00\x01garbage"), "cannot be parsed"),
    ],
    ids=["404", "500", "redirect", "oversized", "wrong-type", "garbage"],
)
def test_fetch_faults_are_436(lab, tls, route, fragment):
    with CertServer(tls) as srv:
        srv.routes["/x.pem"] = route
        r = fetching_store(lab, tls, srv).credential(srv.url("/x.pem"), NOW)
        assert r.code == 436 and fragment in r.detail, r


def test_self_signed_chain_is_437(lab, tls):
    other = pki.make_ca("self-signed")
    with CertServer(tls) as srv:
        srv.routes["/s.pem"] = Route(pki.make_signer(other, now=NOW).pem)
        assert fetching_store(lab, tls, srv).credential(srv.url("/s.pem"), NOW).code == 437


def test_slow_server_is_cut_at_the_budget(lab, tls):
    with CertServer(tls) as srv:
        srv.routes["/slow.pem"] = Route(lab.chain_pem, delay=3.0)
        store = fetching_store(lab, tls, srv)
        t0 = time.monotonic()
        r = store.credential(srv.url("/slow.pem"), NOW)
        assert r.code == 436 and "longer than" in r.detail
        assert time.monotonic() - t0 < 2.0


def test_dead_server_and_url_rules(lab, tls):
    with CertServer(tls) as srv:
        port = srv.port
        store = fetching_store(lab, tls, srv)
    r = store.credential(f"https://127.0.0.1:{port}/gone.pem", NOW)  # server stopped
    assert r.code == 436 and "connect" in r.detail
    rules = CertStore(trust_anchors=[lab.root.pem])
    for url, fragment in [
        ("http://certs.example.fr/a.pem", "not https"),
        ("https://certs.example.fr:444/a.pem", "port 444"),
        ("https://user@certs.example.fr/a.pem", "user information"),
        ("https://certs.example.fr/a.pem?x=1", "query"),
        ("https://10.1.2.3/a.pem", "private or special"),
        ("https://192.168.0.1/a.pem", "private or special"),
        ("https://127.0.0.1/a.pem", "private or special"),  # loopback only in lab mode
        ("https://[::1]/a.pem", "private or special"),
        ("https://169.254.169.254/latest", "private or special"),
        ("ftp://certs.example.fr/a.pem", "not https"),
    ]:
        r = rules.credential(url, NOW)
        assert r.code == 436 and fragment in r.detail, (url, r)


def test_http_only_in_lab_mode_on_loopback(lab):
    with CertServer() as srv:
        srv.routes["/a.pem"] = Route(lab.chain_pem)
        assert CertStore(trust_anchors=[lab.root.pem]).credential(srv.url("/a.pem"), NOW).code == 436
        lab_store = CertStore(trust_anchors=[lab.root.pem], allow_http=True)
        assert isinstance(lab_store.credential(srv.url("/a.pem"), NOW), Credential)


def test_negative_caching(lab, tls):
    with CertServer(tls) as srv:
        store = fetching_store(lab, tls, srv, negative_ttl=30)
        url = srv.url("/missing.pem")
        for i in range(5):
            assert store.credential(url, NOW + i).code == 436
        assert srv.hits["/missing.pem"] == 1
        assert store.credential(url, NOW + 31).code == 436
        assert srv.hits["/missing.pem"] == 2
        assert store.stats()["negative_hits"] == 4  # answers from the cached failure; the first was a miss


def test_single_flight(lab, tls):
    with CertServer(tls) as srv:
        srv.routes["/slow.pem"] = Route(lab.chain_pem, delay=0.4)
        store = fetching_store(lab, tls, srv)
        results = []
        threads = [threading.Thread(target=lambda: results.append(store.credential(srv.url("/slow.pem"), NOW)))
                   for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert len(results) == 10 and all(isinstance(r, Credential) for r in results)
        assert srv.hits["/slow.pem"] == 1


def test_http_freshness_floor_and_ceiling(lab, tls):
    with CertServer(tls) as srv:
        srv.routes["/short.pem"] = Route(lab.chain_pem, headers={"Cache-Control": "max-age=60"})
        srv.routes["/long.pem"] = Route(lab.chain_pem, headers={"Cache-Control": "max-age=172800"})
        store = fetching_store(lab, tls, srv, refresh_ahead=1.0)
        for path in ("/short.pem", "/long.pem"):
            store.credential(srv.url(path), NOW)
        store.credential(srv.url("/short.pem"), NOW + 23 * 3600)  # floor: 24 h
        assert srv.hits["/short.pem"] == 1
        store.credential(srv.url("/short.pem"), NOW + 25 * 3600)
        assert srv.hits["/short.pem"] == 2
        store.credential(srv.url("/long.pem"), NOW + 30 * 3600)  # server granted 48 h
        assert srv.hits["/long.pem"] == 1


def test_cache_never_outlives_the_certificate(lab, tls):
    brief = pki.make_signer(lab.intermediate, not_before=NOW - 86400, not_after=NOW + 3600)
    with CertServer(tls) as srv:
        srv.routes["/brief.pem"] = Route(chain(brief, lab), headers={"Cache-Control": "max-age=604800"})
        store = fetching_store(lab, tls, srv)
        assert isinstance(store.credential(srv.url("/brief.pem"), NOW), Credential)
        r = store.credential(srv.url("/brief.pem"), NOW + 7200)
        assert r.code == 437 and "expired" in r.detail


def test_refresh_ahead_in_background(lab, tls):
    with CertServer(tls) as srv:
        srv.routes["/r.pem"] = Route(lab.chain_pem)
        store = fetching_store(lab, tls, srv)
        store.credential(srv.url("/r.pem"), NOW)
        # 90 % into the 24 h lifetime: answer from cache, refresh behind the call
        assert isinstance(store.credential(srv.url("/r.pem"), NOW + 0.95 * 86400), Credential)
        deadline = time.monotonic() + 5
        while srv.hits["/r.pem"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.hits["/r.pem"] == 2


def _worker(args):
    root_pem, url, cache_dir, ca_pem, port, now = args
    store = CertStore(trust_anchors=[root_pem], cache_dir=cache_dir, allow_loopback=True, tls_ca=ca_pem,
                      https_ports=(port,), total_timeout=1.0)
    out = store.credential(url, now)
    return type(out).__name__, store.stats()["disk_hits"], store.stats()["fetches"]


def test_cache_dir_is_shared_by_processes(lab, tls, tmp_path):
    cache = str(tmp_path / "cache")
    with CertServer(tls) as srv:
        srv.routes["/op.pem"] = Route(lab.chain_pem)
        url, port = srv.url("/op.pem"), srv.port
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            first = pool.map(_worker, [(lab.root.pem, url, cache, tls.ca_pem, port, NOW)])
    assert first == [("Credential", 0, 1)]
    # Server gone: other processes (and restarts) are served from the disk cache.
    with ctx.Pool(2) as pool:
        again = pool.map(_worker, [(lab.root.pem, url, cache, tls.ca_pem, port, NOW)] * 4)
    assert all(r == ("Credential", 1, 0) for r in again)
    # A torn or foreign file is ignored, never trusted.
    for f in (tmp_path / "cache").glob("*.json"):
        f.write_bytes(b'{"url": "x", "exp')
    assert _worker((lab.root.pem, url, cache, tls.ca_pem, port, NOW))[0] == "CredentialError"


# ------------------------------------------------------------------ CRLs
def crl_lab():
    lab = pki.lab_pki(now=NOW)
    return lab


def test_direct_crl(lab):
    x5u = "https://certs.example.fr/c.pem"
    signer = pki.make_signer(lab.intermediate, now=NOW)
    other = pki.make_signer(lab.intermediate, now=NOW)
    crl = pki.make_crl(lab.intermediate, [signer.cert], now=NOW)
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: chain(signer, lab)}, crls=[pki.crl_pem(crl)])
    r = store.credential(x5u, NOW)
    assert r.code == 437 and "revoked" in r.detail
    store2 = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: chain(other, lab)}, crls=[pki.crl_pem(crl)])
    assert isinstance(store2.credential(x5u, NOW), Credential)


def test_indirect_crl_signed_by_the_pa(lab):
    pa = pki.make_crl_signer(lab.root, now=NOW)
    x5u = "https://certs.example.fr/i.pem"
    with CertServer() as srv:
        crl_url = srv.url("/man.crl")
        signer = pki.make_signer(lab.intermediate, now=NOW, crl_url=crl_url, crl_issuer_name=pa.cert.subject)
        same_serial_other_ca = (signer.cert.serial_number, lab.root.cert.subject)
        srv.routes["/man.crl"] = Route(pki.crl_pem(pki.make_crl(pa, [same_serial_other_ca], now=NOW, indirect=True)),
                                       content_type="application/pkix-crl")
        kw = dict(trust_anchors=[lab.root.pem], certificates={x5u: chain(signer, lab)}, crl_signers=[pa.pem],
                  allow_http=True, allow_loopback=True)
        # The serial is listed, but under another issuer: not this certificate.
        assert isinstance(CertStore(**kw).credential(x5u, NOW), Credential)
        srv.routes["/man.crl"] = Route(pki.crl_pem(pki.make_crl(pa, [signer.cert], now=NOW, indirect=True)))
        r = CertStore(**kw).credential(x5u, NOW)
        assert r.code == 437 and "revoked" in r.detail
        # Without the PA certificate nobody can vouch for the CRL: fail closed under MAN.
        kw.pop("crl_signers")
        r = CertStore(**kw).credential(x5u, NOW)
        assert r.code == 437 and "revocation status unknown" in r.detail
        assert isinstance(CertStore(crl_policy="fail-open", **kw).credential(x5u, NOW), Credential)


def test_crl_faults(lab):
    x5u = "https://certs.example.fr/f.pem"
    with CertServer() as srv:
        signer = pki.make_signer(lab.intermediate, now=NOW, crl_url=srv.url("/ca.crl"))
        base = dict(trust_anchors=[lab.root.pem], certificates={x5u: chain(signer, lab)}, allow_http=True,
                    allow_loopback=True)
        srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW)))
        assert isinstance(CertStore(**base).credential(x5u, NOW), Credential)
        assert CertStore(**base).stats()["crl_fetches"] == 0
        # stale
        srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW - 30 * 86400)))
        r = CertStore(**base).credential(x5u, NOW)
        assert r.code == 437 and "stale" in r.detail
        # signed by someone else
        impostor = pki.make_ca("manverify lab intermediate")  # same name, other key
        srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(impostor, [], now=NOW)))
        r = CertStore(**base).credential(x5u, NOW)
        assert r.code == 437 and "bad signature" in r.detail
        # unreachable
        srv.routes.pop("/ca.crl")
        r = CertStore(**base).credential(x5u, NOW)
        assert r.code == 437 and "404" in r.detail
        assert isinstance(CertStore(crl_policy="fail-open", **base).credential(x5u, NOW), Credential)
        # garbage
        srv.routes["/ca.crl"] = Route(b"garbage")
        assert CertStore(**base).credential(x5u, NOW).code == 437


def test_stats_report_rejections_by_reason(lab):
    rogue = pki.lab_pki(now=NOW)
    store = CertStore(trust_anchors=[lab.root.pem], certificates={rogue.x5u: rogue.chain_pem})
    store.credential(rogue.x5u, NOW)
    s = store.stats()
    assert s["rejections"] == 1 and sum(s["rejections_by_reason"].values()) == 1
    json.dumps(s)


def test_warm_loads_ahead_of_traffic(lab, tmp_path):
    (tmp_path / "op1001.pem").write_bytes(lab.chain_pem)
    (tmp_path / "junk.pem").write_bytes(b"junk")
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False)
    out = store.warm(["https://certs.example.fr/op1001.pem", "https://certs.example.fr/junk.pem"], now=NOW)
    assert isinstance(out["https://certs.example.fr/op1001.pem"], Credential)
    assert out["https://certs.example.fr/junk.pem"].code == 436
    loads = store.stats()["loads"]
    assert isinstance(store.credential("https://certs.example.fr/op1001.pem", NOW), Credential)
    assert store.stats()["loads"] == loads  # the call found it ready


def test_the_man_local_copy_setup_works_as_written(lab, tmp_path):
    """docs/certificates.md's MAN example, run with its paths pointed at a lab layout (so it cannot rot)."""
    from manverify import Signer

    block = docpages.block("docs/certificates.md", "man-local-copy")
    pa = pki.make_crl_signer(lab.root, now=NOW)
    dp = "https://crl.example.fr/man.crl"
    good = pki.make_signer(lab.intermediate, spc="1001", now=NOW, crl_url=dp, crl_issuer_name=pa.cert.subject)
    bad = pki.make_signer(lab.intermediate, spc="1002", now=NOW, crl_url=dp, crl_issuer_name=pa.cert.subject)
    paths = {name: tmp_path / name for name in ("root.pem", "pa.pem", "certs", "crl", "cache")}
    paths["root.pem"].write_bytes(lab.root.pem)
    paths["pa.pem"].write_bytes(pa.pem)
    paths["certs"].mkdir()
    (paths["certs"] / "op1001.pem").write_bytes(chain(good, lab))
    (paths["certs"] / "op1002.pem").write_bytes(chain(bad, lab))
    paths["crl"].mkdir()
    (paths["crl"] / "man.crl").write_bytes(pki.crl_pem(pki.make_crl(pa, [bad.cert], now=NOW, indirect=True)))
    for placeholder, name in (("/etc/man/root.pem", "root.pem"), ("/etc/man/pa.pem", "pa.pem"),
                              ("/var/lib/man/certs/", "certs"), ("/var/lib/man/crl/", "crl"),
                              ("/var/cache/manverify", "cache")):
        assert placeholder in block
        block = block.replace(placeholder, str(paths[name]))
    scope: dict = {}
    exec(compile(block, "docs/certificates.md", "exec"), scope)
    verifier = scope["verifier"]

    def call(signer, x5u):
        header = Signer(signer.key_pem, x5u).sign("+33612345678", "+33198765432", iat=int(time.time()))
        return verifier.verify(header, orig="+33612345678", dest="+33198765432")

    assert call(good, "https://certs.example.fr/op1001.pem").spc == "1001"
    revoked = call(bad, "https://certs.example.fr/op1002.pem")
    assert revoked.sip_code == 437 and "revoked" in revoked.detail
    elsewhere = call(good, "https://certs.example.fr/op9999.pem")
    assert elsewhere.sip_code == 436 and "local copy" in elsewhere.detail
    assert verifier.store.stats()["fetches"] == 0
