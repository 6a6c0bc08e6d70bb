"""Certificate store faults found in review: what a bad or hostile x5u must not be able to do to
the cache (pin itself on disk, re-parse on every call, evict good credentials, grow the stats)."""
import time

import pytest

from manverify import pki
from manverify.certs import CertStore, Credential, CredentialError

from .certserver import CertServer, Route, TLSLab
from .conftest import NOW


@pytest.fixture(scope="module")
def tls():
    return TLSLab()


def fetching_store(lab, tls, srv, **kw):
    return CertStore(trust_anchors=[lab.root.pem], allow_loopback=True, tls_ca=tls.ca_pem,
                     https_ports=(srv.port,), total_timeout=1.0, connect_timeout=0.5, **kw)


def test_a_bad_response_is_not_pinned_in_the_disk_cache(lab, tls, tmp_path):
    # A transient bad answer (an error page served with 200, a half-deployed renewal) must be
    # forgotten after the negative TTL, not kept on disk for a day by every worker.
    with CertServer(tls) as srv:
        srv.routes["/op.pem"] = Route(b"<html>maintenance</html>", content_type="text/plain")
        store = fetching_store(lab, tls, srv, cache_dir=tmp_path, negative_ttl=1)
        assert store.credential(srv.url("/op.pem"), NOW).code == 436
        assert not list(tmp_path.glob("*.json"))
        srv.routes["/op.pem"] = Route(lab.chain_pem)
        assert isinstance(store.credential(srv.url("/op.pem"), NOW + 2), Credential)
        assert srv.hits["/op.pem"] == 2
        # An untrusted chain is obtained fine but must not be cached on disk either.
        rogue = pki.lab_pki(now=NOW)
        srv.routes["/rogue.pem"] = Route(rogue.chain_pem)
        assert store.credential(srv.url("/rogue.pem"), NOW).code == 437
        assert len(list(tmp_path.glob("*.json"))) == 1  # only the good chain
    # A restarted worker finds the good chain on disk, with the server gone.
    again = CertStore(trust_anchors=[lab.root.pem], cache_dir=tmp_path, allow_loopback=True,
                      tls_ca=tls.ca_pem, https_ports=(srv.port,), total_timeout=1.0)
    assert isinstance(again.credential(srv.url("/op.pem"), NOW + 3), Credential)
    assert again.stats()["disk_hits"] == 1 and again.stats()["fetches"] == 0


def test_an_expired_chain_is_not_parsed_again_on_every_call(lab, tls, tmp_path):
    old = pki.make_signer(lab.intermediate, not_before=NOW - 400 * 86400, not_after=NOW - 86400)
    x5u = "https://certs.example.fr/old.pem"
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: old.pem + lab.intermediate.pem},
                      negative_ttl=30)
    for i in range(20):
        r = store.credential(x5u, NOW + i)
        assert r.code == 437 and "expired" in r.detail
    assert store.stats()["loads"] == 1
    assert store.credential(x5u, NOW + 31).code == 437 and store.stats()["loads"] == 2
    # Fetched, it is neither re-fetched per call nor shared through the disk cache.
    with CertServer(tls) as srv:
        srv.routes["/old.pem"] = Route(old.pem + lab.intermediate.pem)
        store = fetching_store(lab, tls, srv, cache_dir=tmp_path)
        for i in range(5):
            assert store.credential(srv.url("/old.pem"), NOW + i).code == 437
        assert srv.hits["/old.pem"] == 1 and not list(tmp_path.glob("*.json"))


def test_rejection_counters_are_keyed_by_reason_not_by_url(lab, tls):
    store = CertStore(trust_anchors=[lab.root.pem], fetch=False)
    for i in range(50):
        r = store.credential(f"https://h{i}.example.fr/a.pem", NOW)
        assert r.code == 436 and r.reason == "not-in-local-copy" and f"h{i}.example.fr" in r.detail
    assert store.stats()["rejections_by_reason"] == {"not-in-local-copy": 50}
    rules = CertStore(trust_anchors=[lab.root.pem])
    for url in ("http://a.example.fr/x.pem", "https://10.0.0.1/x.pem", "https://a.example.fr:9/x.pem"):
        rules.credential(url, NOW)
    assert rules.stats()["rejections_by_reason"] == {"fetch-url": 2, "fetch-address": 1}
    old = pki.make_signer(lab.intermediate, not_before=NOW - 400 * 86400, not_after=NOW - 86400)
    x5u = "https://certs.example.fr/old.pem"
    expired = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: old.pem + lab.intermediate.pem})
    assert expired.credential(x5u, NOW).reason == "expired"
    assert expired.stats()["rejections_by_reason"] == {"expired": 1}
    with CertServer(tls) as srv:
        srv.routes["/r.pem"] = Route(b"", status=302, headers={"Location": "https://127.0.0.1/"})
        assert fetching_store(lab, tls, srv).credential(srv.url("/r.pem"), NOW).reason == "fetch-redirect"


def test_junk_x5u_values_cannot_evict_good_credentials(lab):
    store = CertStore(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem}, fetch=False,
                      max_entries=8)
    good = store.credential(lab.x5u, NOW)
    assert isinstance(good, Credential)
    for i in range(100):
        assert store.credential(f"https://junk{i}.example.fr/x.pem", NOW).code == 436
    assert store.credential(lab.x5u, NOW) is good
    s = store.stats()
    assert s["loads"] == 101 and s["entries"] == 1 and s["failed_entries"] == 8
    # negative_hits counts answers served from a cached failure, not first failures
    assert s["negative_hits"] == 0
    store.credential("https://junk99.example.fr/x.pem", NOW + 1)
    assert store.stats()["negative_hits"] == 1


@pytest.mark.parametrize("x5u", [None, b"https://certs.example.fr/op1001.pem", 5, ["a"], {"a": 1}])
def test_x5u_of_the_wrong_type_is_436(lab, tmp_path, x5u):
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path)
    r = store.credential(x5u, NOW)
    assert r.code == 436 and "string" in r.detail



def test_a_revocation_found_by_the_background_refresh_replaces_the_entry(lab, tmp_path):
    x5u = "https://certs.example.fr/rv.pem"
    signer = pki.make_signer(lab.intermediate, now=NOW, crl_url="http://crl.example.fr/ca.crl")
    crl_file = tmp_path / "ca.crl"
    crl_file.write_bytes(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW, next_update_days=1)))
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + lab.intermediate.pem},
                      crls=[str(crl_file)], fetch=False, crl_refresh=1000)
    assert isinstance(store.credential(x5u, NOW), Credential)
    crl_file.write_bytes(pki.crl_pem(pki.make_crl(lab.intermediate, [signer.cert], now=NOW + 950)))
    store.credential(x5u, NOW + 950)  # 95 % of the 1000 s revocation lifetime: refresh behind the call
    deadline = time.monotonic() + 5
    while store.stats()["refreshes"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    r = store.credential(x5u, NOW + 951)
    assert isinstance(r, CredentialError) and r.reason == "revoked"


def test_local_crl_files_are_read_again_when_the_sync_replaces_them(lab, tmp_path):
    # MAN local mode: no fetching; the operator's job replaces the CRL file daily. Before this,
    # the store kept the CRL read at start-up and failed every call once it went stale.
    x5u = "https://certs.example.fr/s.pem"
    signer = pki.make_signer(lab.intermediate, now=NOW, crl_url="http://crl.example.fr/ca.crl")
    crl_dir = tmp_path / "crl"
    crl_dir.mkdir()
    (crl_dir / "ca.crl").write_bytes(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW, next_update_days=1)))
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + lab.intermediate.pem},
                      crls=[str(crl_dir)], fetch=False, refresh_ahead=1.0)
    assert isinstance(store.credential(x5u, NOW), Credential)
    later = NOW + 2 * 86400  # past the first CRL's nextUpdate
    r = store.credential(x5u, later)
    assert r.reason == "crl-unavailable" and "stale" in r.detail
    (crl_dir / "ca.crl").write_bytes(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=later)))
    assert isinstance(store.credential(x5u, later + 31), Credential)
    # A torn write (the sync caught mid-copy) keeps the last good CRL in use; the next good
    # file is read at the following revocation re-check (crl_refresh, 24 h by default).
    (crl_dir / "ca.crl").write_bytes(b"-----BEGIN X509 CRL-----\nMIIB")
    assert isinstance(store.credential(x5u, later + 31 + 86401), Credential)
    (crl_dir / "ca.crl").write_bytes(pki.crl_pem(pki.make_crl(lab.intermediate, [signer.cert], now=later)))
    r = store.credential(x5u, later + 31 + 2 * 86402)
    assert r.code == 437 and r.reason == "revoked"

def test_a_resynchronised_certificate_directory_is_picked_up(lab, tmp_path):
    (tmp_path / "op1001.pem").write_bytes(lab.chain_pem)
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False, refresh_ahead=1.0)
    x5u = "https://certs.example.fr/op1001.pem"
    first = store.credential(x5u, NOW)
    renewed = pki.make_signer(lab.intermediate, now=NOW)
    (tmp_path / "op1001.pem").write_bytes(renewed.pem + lab.intermediate.pem)
    assert store.credential(x5u, NOW + 3600) is first  # within the day: the cached credential
    again = store.credential(x5u, NOW + 86400 + 1)
    assert isinstance(again, Credential) and again.fingerprint != first.fingerprint


def test_crl_configuration_mistakes(lab, tmp_path):
    from manverify import ConfigError
    torn = tmp_path / "torn.crl"
    torn.write_bytes(b"-----BEGIN X509 CRL-----\nMIIB")
    with pytest.raises(ConfigError, match="truncated"):
        CertStore(trust_anchors=[lab.root.pem], crls=[str(torn)])
    with pytest.raises(ConfigError, match="cannot read CRL"):
        CertStore(trust_anchors=[lab.root.pem], crls=[str(tmp_path / "absent.crl")])
    with pytest.raises(ConfigError, match="crls must be"):
        CertStore(trust_anchors=[lab.root.pem], crls=42)


def test_crl_stats_and_the_pa_checked_at_the_call_time(lab):
    # The PA certificate that signs MAN's indirect CRL is validated at the caller's `now`
    # (time is an input), and stats() reports how old the CRLs in use are.
    pa = pki.make_crl_signer(lab.root, now=NOW, days=30)
    x5u = "https://certs.example.fr/pa.pem"
    signer = pki.make_signer(lab.intermediate, now=NOW, crl_url="http://crl.example.fr/man.crl",
                             crl_issuer_name=pa.cert.subject)
    later = NOW + 60 * 86400  # the PA has expired by then
    crl_now = pki.crl_pem(pki.make_crl(pa, [], now=NOW, indirect=True))
    crl_later = pki.crl_pem(pki.make_crl(pa, [], now=later, indirect=True))
    kw = dict(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + lab.intermediate.pem},
              crl_signers=[pa.pem], fetch=False)
    store = CertStore(crls=[crl_now], **kw)
    assert isinstance(store.credential(x5u, NOW), Credential)
    # the age is operational (by the wall clock): the lab CRL's thisUpdate is NOW - 1 h
    before = time.time()
    s = store.stats()
    issued = NOW - 3600
    assert before - issued <= s["crl_age"] <= time.time() - issued
    assert list(s["crl_ages"]) == [pa.cert.subject.rfc4514_string()]
    r = CertStore(crls=[crl_later], **kw).credential(x5u, later)
    assert r.reason == "crl-unavailable" and "not trusted at this time" in r.detail
    open_store = CertStore(crls=[crl_later], crl_policy="fail-open", **kw)
    assert isinstance(open_store.credential(x5u, later), Credential)
    assert open_store.stats()["crl_fail_open"] == 1


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(), None),
        (dict(eku=["1.3.6.1.5.5.7.3.20"]), None),  # an EKU without clientAuth: not a TLS chain
        (dict(basic_constraints=False), "2.5.29.19"),
        (dict(ca=False), "cA must be asserted"),
        (dict(bc_critical=False), "2.5.29.19"),
        (dict(key_cert_sign=False), "keyCertSign"),
    ],
    ids=["good", "eku-other", "no-basic-constraints", "ca-false", "bc-not-critical", "no-keyCertSign"],
)
def test_ca_rules_of_path_validation(lab, kw, fragment):
    inter = pki.make_intermediate(lab.root, now=NOW, **kw)
    signer = pki.make_signer(inter, now=NOW)
    x5u = "https://certs.example.fr/ca.pem"
    r = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + inter.pem}).credential(x5u, NOW)
    if fragment is None:
        assert isinstance(r, Credential), r
    else:
        assert r.code == 437 and r.reason == "untrusted" and fragment in r.detail, r


def test_path_length_and_chain_depth(lab):
    i0 = pki.make_intermediate(lab.root, "i0", now=NOW, path_length=0)
    i1 = pki.make_intermediate(i0, "i1", now=NOW)
    signer = pki.make_signer(i1, now=NOW)
    x5u = "https://certs.example.fr/deep.pem"
    r = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + i1.pem + i0.pem}).credential(x5u, NOW)
    assert r.code == 437 and "path length" in r.detail
    # An intermediate that expired while the signer is still valid: the chain is expired.
    root = pki.make_ca(now=NOW - 100 * 86400)
    short = pki.make_intermediate(root, "short", now=NOW - 20 * 86400, days=10)
    signer = pki.make_signer(short, now=NOW, not_before=NOW - 15 * 86400, days=365)
    r = CertStore(trust_anchors=[root.pem], certificates={x5u: signer.pem + short.pem}).credential(x5u, NOW)
    assert r.code == 437 and r.reason == "expired"


def test_an_overlong_x5u_is_refused_and_not_cached(lab):
    store = CertStore(trust_anchors=[lab.root.pem], fetch=False)
    r = store.credential("https://certs.example.fr/" + "a" * 5000, NOW)
    assert r.code == 436 and r.reason == "fetch-url" and len(r.detail) < 100
    assert store.stats()["failed_entries"] == 0


def test_a_fetched_crl_is_fetched_again_once_past_its_next_update(lab):
    x5u = "https://certs.example.fr/n.pem"
    with CertServer() as srv:
        signer = pki.make_signer(lab.intermediate, now=NOW, crl_url=srv.url("/ca.crl"))
        srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW, next_update_days=0.5)))
        store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + lab.intermediate.pem},
                          allow_http=True, allow_loopback=True, refresh_ahead=1.0)
        assert isinstance(store.credential(x5u, NOW), Credential)
        later = NOW + 0.6 * 86400
        srv.routes["/ca.crl"] = Route(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=later)))
        assert isinstance(store.credential(x5u, later), Credential)
        assert srv.hits["/ca.crl"] == 2


def test_workers_refreshing_one_url_through_cache_dir_fetch_it_once(lab, tls, tmp_path):
    with CertServer(tls) as srv:
        srv.routes["/op.pem"] = Route(lab.chain_pem)
        a = fetching_store(lab, tls, srv, cache_dir=tmp_path)
        b = fetching_store(lab, tls, srv, cache_dir=tmp_path)
        url = srv.url("/op.pem")
        assert isinstance(a.credential(url, NOW), Credential)
        assert isinstance(b.credential(url, NOW), Credential) and b.stats()["disk_hits"] == 1

        def refreshed(store, n):
            deadline = time.monotonic() + 5
            while store.stats()["refreshes"] < n and time.monotonic() < deadline:
                time.sleep(0.01)

        a.credential(url, NOW + 0.95 * 86400)  # 95 % of the day: a refreshes in the background
        refreshed(a, 1)
        b.credential(url, NOW + 0.96 * 86400)  # b refreshes too, and finds a's fresh copy
        refreshed(b, 1)
        assert srv.hits["/op.pem"] == 2 and b.stats()["fetches"] == 0


def test_warm_without_urls_loads_everything_the_local_copy_names(lab, tmp_path):
    (tmp_path / "a.pem").write_bytes(lab.chain_pem)
    (tmp_path / "x5u.json").write_text('{"https://sti.example.fr/a": "a.pem", "https://sti.example.fr/b": "b.pem"}')
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False)
    out = store.warm(now=NOW)
    assert isinstance(out["https://sti.example.fr/a"], Credential)
    assert out["https://sti.example.fr/b"].reason == "not-in-local-copy"
    mapped = CertStore(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
    assert list(mapped.warm(now=NOW)) == [lab.x5u]
