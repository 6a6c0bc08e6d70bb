"""The certificate defects of issue 10, against published production certificates where we have
them (tests/vectors/certs/, see its README) and the lab PKI reproducing production shapes where
we do not: each test failed before its fix."""
import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from manverify import ConfigError, Verifier, pki
from manverify.certs import CertStore, Credential, CredentialError, StoreOptions
from manverify.certs._warn import RateLimited

from .conftest import NOW

VECTORS = Path(__file__).parent / "vectors" / "certs"


def published(name):
    return x509.load_der_x509_certificate((VECTORS / name).read_bytes())


def pem(*certs):
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def middle_of(cert):
    return (cert.not_valid_before_utc.timestamp() + cert.not_valid_after_utc.timestamp()) / 2


# ------------------------------------------------------------------ published production chains
@pytest.mark.parametrize("issuer, leaf, intermediate, root, spc", [
    ("TransNexus", "transnexus-leaf-873J.der", "transnexus-issuing-ca1.der", "transnexus-root-ca1.der", "873J"),
    # Item 10: CertificatePolicies critical on all three; a P-521 root signs a P-384 intermediate
    # with SHA-384, which signs the P-256 leaf.
    ("NetNumber", "netnumber-leaf-8697.der", "netnumber-intermediate-ca1.der", "netnumber-root-ca1.der", "8697"),
])
def test_published_shaken_chains_are_trusted_under_atis(issuer, leaf, intermediate, root, spc):
    leaf, intermediate, root = published(leaf), published(intermediate), published(root)
    x5u = f"https://certs.example.com/{issuer}.pem"
    store = CertStore(trust_anchors=[root], certificates={x5u: pem(leaf, intermediate)}, profile="atis",
                      fetch=False)
    c = store.credential(x5u, middle_of(leaf))
    assert isinstance(c, Credential), c
    assert c.spc == spc and c.fingerprint == hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()
    # Under another root the same chain is not trusted.
    other = CertStore(trust_anchors=[pki.make_ca().pem], certificates={x5u: pem(leaf, intermediate)},
                      profile="atis", fetch=False)
    assert other.credential(x5u, middle_of(leaf)).reason == "untrusted"


def test_a_published_leaf_with_a_tampered_byte_is_not_trusted():
    leaf = bytearray(published("netnumber-leaf-8697.der").public_bytes(Encoding.DER))
    at = leaf.find(b"Baltimore")
    leaf[at] = ord("b")  # a changed subject: the issuer's signature no longer covers it
    x5u = "https://certs.example.com/t.pem"
    chain = pem(x509.load_der_x509_certificate(bytes(leaf)), published("netnumber-intermediate-ca1.der"))
    store = CertStore(trust_anchors=[published("netnumber-root-ca1.der")], profile="atis", fetch=False,
                      certificates={x5u: chain})
    r = store.credential(x5u, middle_of(published("netnumber-leaf-8697.der")))
    assert r.reason == "untrusted" and "does not verify" in r.detail, r


# ------------------------------------------------------------------ production shapes, lab-made
def national_chain(now=NOW, **root_kw):
    """A P-384 root and intermediate signing with ecdsa-with-SHA384, CertificatePolicies critical
    on all three (the shape of a national SHAKEN PKI), a lower-case SPC on the leaf."""
    policy = dict(policy=pki.ATIS_POLICY_OID, policy_critical=True)
    root = pki.make_ca("national root", curve=ec.SECP384R1(), hash_alg=hashes.SHA384(), now=now,
                       **{**policy, **root_kw})
    inter = pki.make_ca("national intermediate", issuer=root, curve=ec.SECP384R1(), hash_alg=hashes.SHA384(),
                        now=now, path_length=0, **policy)
    leaf = pki.make_signer(inter, spc="558a", hash_alg=hashes.SHA384(), now=now, **policy)
    return root, inter, leaf


def national_store(root, inter, leaf, **kw):
    x5u = "https://cr.example.com/558a.pem"
    return x5u, CertStore(trust_anchors=[root.pem], certificates={x5u: leaf.pem + inter.pem}, profile="atis",
                          fetch=False, **kw)


def test_items_9_10_13_leaf_signed_with_sha384_critical_policies_lower_case_spc():
    x5u, store = national_store(*national_chain())
    c = store.credential(x5u, NOW)
    assert isinstance(c, Credential), c
    assert c.spc == "558A"  # item 13: reported in upper case
    assert "2.16.840.1.114569.1.1.1" in c.policies


def test_item_9_the_leaf_key_must_still_be_p256_and_sha1_is_refused():
    root, inter, _ = national_chain()
    x5u = "https://cr.example.com/x.pem"
    p384 = pki.make_signer(inter, curve=ec.SECP384R1(), hash_alg=hashes.SHA384(), policy=pki.ATIS_POLICY_OID, now=NOW)
    r = CertStore(trust_anchors=[root.pem], certificates={x5u: p384.pem + inter.pem}, profile="atis").credential(x5u, NOW)
    assert r.reason == "profile" and "P-256" in r.detail
    sha512 = pki.make_signer(inter, hash_alg=hashes.SHA512(), policy=pki.ATIS_POLICY_OID, now=NOW)
    r = CertStore(trust_anchors=[root.pem], certificates={x5u: sha512.pem + inter.pem}, profile="atis").credential(x5u, NOW)
    assert r.reason == "profile" and "SHA384" in r.detail


def test_item_13_spc_allowlist_compares_case_insensitively_and_still_refuses_non_alphanumerics(lab):
    root, inter, leaf = national_chain()
    x5u, store = national_store(root, inter, leaf, spc_allowlist=["558A"])
    assert store.credential(x5u, NOW).spc == "558A"
    x5u, store = national_store(root, inter, leaf, spc_allowlist=["558b"])
    assert store.credential(x5u, NOW).reason == "spc-not-allowed"
    bad = pki.make_signer(inter, spc="55-a", policy=pki.ATIS_POLICY_OID, now=NOW)
    x5u, store = national_store(root, inter, bad)
    assert store.credential(x5u, NOW).reason == "profile"


def test_item_14_a_root_without_key_usage_is_trusted_as_configured():
    x5u, store = national_store(*national_chain(key_usage=False))
    assert isinstance(store.credential(x5u, NOW), Credential)


def test_item_14_an_intermediate_still_needs_key_cert_sign():
    root = pki.make_ca("root without KeyUsage", key_usage=False, now=NOW)
    inter = pki.make_ca("intermediate without KeyUsage", issuer=root, key_usage=False, now=NOW)
    leaf = pki.make_signer(inter, now=NOW)
    x5u = "https://certs.example.fr/x.pem"
    r = CertStore(trust_anchors=[root.pem], certificates={x5u: leaf.pem + inter.pem}).credential(x5u, NOW)
    assert r.reason == "untrusted" and "keyCertSign" in r.detail


def test_an_unknown_critical_extension_on_a_ca_is_still_refused():
    root = pki.make_ca(now=NOW)
    odd = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    inter = pki.make_ca("odd intermediate", issuer=root, now=NOW, policy=pki.MAN_POLICY_OID)
    # Re-issue the intermediate with the unknown critical extension (make_ca has no such knob).
    b = (x509.CertificateBuilder().subject_name(inter.cert.subject).issuer_name(root.cert.subject)
         .public_key(inter.key.public_key()).serial_number(7)
         .not_valid_before(inter.cert.not_valid_before_utc).not_valid_after(inter.cert.not_valid_after_utc))
    for e in inter.cert.extensions:
        b = b.add_extension(e.value, e.critical)
    inter = pki.Issued(b.add_extension(odd, critical=True).sign(root.key, hashes.SHA256()), inter.key)
    leaf = pki.make_signer(inter, now=NOW)
    x5u = "https://certs.example.fr/x.pem"
    r = CertStore(trust_anchors=[root.pem], certificates={x5u: leaf.pem + inter.pem}).credential(x5u, NOW)
    assert r.reason == "untrusted" and "1.2.3.4" in r.detail


# ------------------------------------------------------------------ items 11 and 12: unreadable certificates
def test_item_11_one_unreadable_anchor_is_skipped_named_and_logged(lab, caplog):
    from cryptography.utils import CryptographyDeprecationWarning

    bad_version = pki.with_version_number(pki.make_ca("bad version root"), 3)
    null_params = pki.with_null_parameters(pki.make_ca("null root"))
    garbage = b"\x30\x03\x02\x01\x01"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        with caplog.at_level(logging.WARNING, logger="manverify"):
            v = Verifier(trust_anchors=[bad_version, lab.root.pem, null_params, garbage],
                         certificates={lab.x5u: lab.chain_pem})
    names = [s.name for s in v.store.skipped_anchors]
    assert names == ["CN=bad version root,O=manverify lab,C=FR", "CN=null root,O=manverify lab,C=FR",
                     f"SHA-256 {hashlib.sha256(garbage).hexdigest()}"]
    assert "InvalidVersion" in v.store.skipped_anchors[0].reason
    logged = [r.getMessage() for r in caplog.records if r.name == "manverify.certs.trust"]
    assert len(logged) == 3 and all("skipped" in m for m in logged) and "null root" in logged[1]
    assert isinstance(v.store.credential(lab.x5u, NOW), Credential)  # the good anchor still works
    with pytest.raises(ConfigError, match="bad version root"):
        Verifier(trust_anchors=[bad_version])  # ConfigError only when no anchor is usable


def test_item_11_a_pem_bundle_loses_only_its_unreadable_certificate(lab, tmp_path):
    bad = pki.with_version_number(pki.make_ca("bad version root"), 3)
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(x509.load_der_x509_certificate(pki.make_v1_root()).public_bytes(Encoding.PEM)
                       + b"-----BEGIN CERTIFICATE-----\n" + __import__("base64").encodebytes(bad)
                       + b"-----END CERTIFICATE-----\n" + lab.root.pem)
    store = CertStore(trust_anchors=[str(bundle)], certificates={lab.x5u: lab.chain_pem})
    assert [s.name for s in store.skipped_anchors] == ["CN=bad version root,O=manverify lab,C=FR"]
    assert isinstance(store.credential(lab.x5u, NOW), Credential)


def test_item_12_any_parse_failure_at_an_x5u_is_unparsable(lab):
    bad = pki.with_version_number(pki.make_ca("bad version"), 3)
    x5u = "https://certs.example.fr/v.pem"
    r = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: bad}).credential(x5u, NOW)
    assert (r.code, r.reason) == (436, "unparsable"), r
    with pytest.raises(ConfigError):  # never a raw InvalidVersion out of the constructor
        CertStore(trust_anchors=[lab.root.pem], crl_signers=[bad])


# ------------------------------------------------------------------ item 15: configuration mistakes
@pytest.mark.parametrize("kw, fragment", [
    (dict(cache_dir_max_file=10), "did you mean 'cache_dir_max_files'"),
    (dict(cache_dir_max_files="x"), "cache_dir_max_files"),
    (dict(max_entries=True), "max_entries"),
    (dict(fetch="no"), "fetch"),
    (dict(https_ports=443), "https_ports"),
    (dict(https_ports=["443"]), "https_ports"),
    (dict(spc_allowlist="1001"), "spc_allowlist"),
    (dict(min_ttl="1d"), "min_ttl"),
    (dict(max_bytes=1.5), "max_bytes"),
    (dict(profile="MAN"), "profile"),
    (dict(crl_policy="open"), "crl_policy"),
    (dict(cache_dir=42), "cache_dir"),
    (dict(certificates=42), "certificates"),
])
def test_item_15_every_store_option_mistake_is_a_config_error(lab, kw, fragment):
    for build in (lambda: CertStore(trust_anchors=[lab.root.pem], **kw),
                  lambda: Verifier(trust_anchors=[lab.root.pem], **kw)):
        with pytest.raises(ConfigError, match=fragment):
            build()
        with pytest.raises((TypeError, ValueError)):  # the builtins still catch it
            build()


def test_store_options_are_one_frozen_value_and_build_a_store(lab):
    options = StoreOptions.create(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem},
                                  spc_allowlist=["1001", "558a"], https_ports=[443])
    assert options.spc_allowlist == frozenset({"1001", "558A"}) and options.https_ports == (443,)
    assert options.crl_policy == "fail-closed"  # the MAN default
    with pytest.raises(Exception):
        options.max_entries = 1
    store = CertStore.from_options(options)
    assert store.options is options and isinstance(store.credential(lab.x5u, NOW), Credential)
    with pytest.raises(ConfigError):
        StoreOptions.create(certificates={})  # no trust anchors


# ------------------------------------------------------------------ items 5 and 17: the local copy
def test_item_5_with_a_manifest_an_unlisted_x5u_is_not_found_by_its_last_segment(lab, tmp_path):
    (tmp_path / "op.pem").write_bytes(lab.chain_pem)
    (tmp_path / "x5u.json").write_text(json.dumps({"https://certs.example.fr/op.pem": "op.pem"}))
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False)
    assert isinstance(store.credential("https://certs.example.fr/op.pem", NOW), Credential)
    r = store.credential("https://attacker.invalid/x/op.pem", NOW)
    assert (r.code, r.reason) == (436, "not-in-local-copy"), r


def test_item_17_a_replaced_manifest_is_read_again_without_a_restart(lab, tmp_path, caplog):
    (tmp_path / "a.pem").write_bytes(lab.chain_pem)
    (tmp_path / "b.pem").write_bytes(lab.chain_pem)
    manifest = tmp_path / "x5u.json"
    manifest.write_text(json.dumps({"https://certs.example.fr/a": "a.pem"}))
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False, negative_ttl=1.0)
    assert store.credential("https://certs.example.fr/b", NOW).reason == "not-in-local-copy"
    # The daily sync adds an operator (written beside and renamed, as a sync does).
    new = tmp_path / ".x5u.json.tmp"
    new.write_text(json.dumps({"https://certs.example.fr/a": "a.pem", "https://certs.example.fr/b": "b.pem"}))
    os.replace(new, manifest)
    assert isinstance(store.credential("https://certs.example.fr/b", NOW + 2), Credential)
    assert sorted(store.warm(now=NOW + 2)) == ["https://certs.example.fr/a", "https://certs.example.fr/b"]
    # A torn manifest keeps the previous one in use, and says so.
    manifest.write_text('{"https://certs.example.fr/a": ')
    with caplog.at_level(logging.WARNING, logger="manverify"):
        assert isinstance(store.credential("https://certs.example.fr/a", NOW + 3), Credential)
        assert len(store.warm(now=NOW + 3)) == 2
    assert any("previous manifest" in r.getMessage() for r in caplog.records)


def test_item_17_warm_validates_every_file_of_a_directory_without_manifest(lab, tmp_path):
    (tmp_path / "good.pem").write_bytes(lab.chain_pem)
    (tmp_path / "junk.crt").write_bytes(b"not a certificate")
    (tmp_path / "notes.txt").write_text("not looked at")
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False)
    report = store.warm(now=NOW)
    assert sorted(Path(k).name for k in report) == ["good.pem", "junk.crt"]
    assert isinstance(report[str(tmp_path / "good.pem")], Credential)
    assert report[str(tmp_path / "junk.crt")].reason == "unparsable"


# ------------------------------------------------------------------ logging
def test_fetch_failures_are_logged_once_per_url_per_interval(lab, caplog):
    store = CertStore(trust_anchors=[lab.root.pem], negative_ttl=0.001, connect_timeout=0.5, total_timeout=0.5)
    url = "https://127.0.0.1:8443/dead.pem"  # loopback is refused before any connection
    with caplog.at_level(logging.WARNING, logger="manverify"):
        for i in range(5):
            assert store.credential(url, NOW + i).code == 436
        assert isinstance(store.credential(lab.x5u, NOW), CredentialError)
    fetch_logs = [r for r in caplog.records if r.name == "manverify.certs.store"]
    assert [r.levelno for r in fetch_logs] == [logging.WARNING, logging.WARNING]  # one per URL
    assert url in fetch_logs[0].getMessage() and store.stats()["fetch_errors"] == 6


def test_nothing_is_logged_for_successful_calls(lab, caplog):
    store = CertStore(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
    with caplog.at_level(logging.DEBUG, logger="manverify"):
        for _ in range(3):
            assert isinstance(store.credential(lab.x5u, NOW), Credential)
    assert caplog.records == []


def test_the_rate_limit_counts_what_it_held_back(caplog):
    clock = [0.0]
    limited = RateLimited(logging.getLogger("manverify.test"), interval=60, max_keys=2, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="manverify"):
        for _ in range(4):
            limited.warning("a", "x5u %s is dead", "a")
        limited.warning("b", "x5u %s is dead", "b")
        clock[0] = 61.0
        limited.warning("a", "x5u %s is dead", "a")
        limited.warning("c", "x5u %s is dead", "c")  # a third key evicts the oldest ("b")
        limited.warning("b", "x5u %s is dead", "b")
    assert [r.getMessage() for r in caplog.records] == [
        "x5u a is dead", "x5u b is dead",
        "x5u a is dead (3 more like it in the last 60 s not logged)", "x5u c is dead", "x5u b is dead"]


def test_distinct_keys_together_are_capped_per_interval(caplog):
    clock = [0.0]
    limited = RateLimited(logging.getLogger("manverify.test"), interval=60, burst=3, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="manverify"):
        for i in range(10):  # ten distinct junk URLs in one minute: three get through
            limited.warning(f"https://junk{i}.invalid/", "x5u %s is dead", i)
        clock[0] = 61.0
        limited.warning("https://junk5.invalid/", "x5u %s is dead", 5)
    assert [r.getMessage() for r in caplog.records] == [
        "x5u 0 is dead", "x5u 1 is dead", "x5u 2 is dead",
        "x5u 5 is dead (1 more like it in the last 60 s not logged)"]


def test_crl_trouble_is_logged_when_failing_open(lab, caplog):
    x5u = "https://certs.example.fr/crl.pem"
    signer = pki.make_signer(lab.intermediate, now=NOW, crl_url="http://crl.example.fr/ca.crl")
    store = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: signer.pem + lab.intermediate.pem},
                      fetch=False, crl_policy="fail-open")
    with caplog.at_level(logging.WARNING, logger="manverify"):
        assert isinstance(store.credential(x5u, NOW), Credential)
    [record] = [r for r in caplog.records if r.name == "manverify.certs.trust"]
    assert "fail-open" in record.getMessage() and "fetching is off" in record.getMessage()


def test_a_failed_background_refresh_is_logged(lab, tmp_path, caplog):
    (tmp_path / "op.pem").write_bytes(lab.chain_pem)
    store = CertStore(trust_anchors=[lab.root.pem], certificates=tmp_path, fetch=False, min_ttl=100.0)
    x5u = "https://certs.example.fr/op.pem"
    assert isinstance(store.credential(x5u, NOW), Credential)
    (tmp_path / "op.pem").unlink()  # the sync lost the file: the refresh cannot find it
    with caplog.at_level(logging.WARNING, logger="manverify"):
        assert isinstance(store.credential(x5u, NOW + 95), Credential)  # past 90 %: refresh starts
        deadline = time.monotonic() + 5
        while not any(r.name == "manverify.certs.cache" for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.01)
    [record] = [r for r in caplog.records if r.name == "manverify.certs.cache"]
    assert "background refresh" in record.getMessage() and x5u in record.getMessage()


def test_a_crl_file_torn_by_the_sync_is_logged_and_its_previous_crls_kept(lab, tmp_path, caplog):
    crl_file = tmp_path / "ca.crl"
    crl_file.write_bytes(pki.crl_pem(pki.make_crl(lab.intermediate, [], now=NOW)))
    store = CertStore(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem}, crls=[str(crl_file)])
    crl_file.write_bytes(b"-----BEGIN X509 CRL-----\nAAAA")
    with caplog.at_level(logging.WARNING, logger="manverify"):
        assert isinstance(store.credential(lab.x5u, NOW), Credential)
    [record] = [r for r in caplog.records if r.name == "manverify.certs.crl"]
    assert str(crl_file) in record.getMessage() and "previous CRLs stay in use" in record.getMessage()
