"""Trust files are read whole or refused: a trust-anchor bundle, a CRL signer file, a CRL file or
the local copy's manifest caught half-written (cut at any byte) is never applied in part. At start
that is a ConfigError naming the file; on reload the configuration in use stays and the log says
why (issue 19, item 5)."""
import base64
import hashlib
import json
import logging
import os

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from manverify import ConfigError, Signer, Verifier, pki
from manverify.certs import CertStore
from manverify.certs.trust import load_anchors

from .conftest import DEST, NOW, ORIG

GOOD = dict(orig=ORIG, dest=DEST, now=NOW)


@pytest.fixture(scope="module")
def two_labs():
    return pki.lab_pki(spc="1001", now=NOW), pki.lab_pki(spc="2002", now=NOW)


def _rewrite(path, data: bytes) -> None:
    """An in-place write (size or mtime moves, as a real edit's would)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(data)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def _cuts(data: bytes):
    """Every prefix of `data`, the empty one included."""
    return (data[:n] for n in range(len(data) + 1))


def _subjects(certs):
    return sorted(c.subject.rfc4514_string() for c in certs)


def _cut_anywhere(path, whole: bytes, load, caplog):
    """Write `whole` then each prefix of it to `path` and load it: every prefix is refused with a
    ConfigError naming the file, or read as everything `whole` holds, or (cut exactly between two
    blocks: a whole file of fewer blocks, nothing to refuse) read with a warning naming what the
    file no longer holds. How many prefixes were read with fewer items."""
    path.write_bytes(whole)
    full, fewer, held = len(load()), 0, True
    for cut in _cuts(whole):
        if not held:  # what the file held when last read whole in this process is what is compared
            path.write_bytes(whole)
            held = len(load()) == full
        caplog.clear()
        path.write_bytes(cut)
        try:
            got = load()
        except ConfigError as e:
            assert str(path) in str(e)
            continue
        if len(got) != full:
            warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert cut.rstrip().endswith(b"-----") and any(f"{path} no longer holds" in m for m in warned), \
                f"a cut at byte {len(cut)} was read as {len(got)} of {full}, without a word"
            fewer += 1
            held = False
    return fewer


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_two_root_file_cut_anywhere_is_refused_or_read_whole(two_labs, tmp_path, newline, caplog):
    both = b"".join(lab.root.pem for lab in two_labs).replace(b"\n", newline)
    path = tmp_path / "roots.pem"
    with caplog.at_level(logging.WARNING, logger="manverify"):
        fewer = _cut_anywhere(path, both, lambda: load_anchors([str(path)])[0], caplog)
    assert fewer == len(newline) + 1  # cut after the first END line, in its line ending or after it


def test_a_cut_in_the_second_root_keeps_the_trust_in_use_on_reload(two_labs, tmp_path, caplog):
    one, two = two_labs
    anchors = tmp_path / "roots.pem"
    anchors.write_bytes(one.root.pem + two.root.pem)
    v = Verifier(trust_anchors=[str(anchors)], certificates={two.x5u: two.chain_pem}, reload=True)
    call = Signer(two.signer.key_pem, two.x5u, clock=lambda: NOW).sign(ORIG, DEST)
    assert v.verify(call, **GOOD).ok
    store = v.store
    with caplog.at_level(logging.WARNING, logger="manverify.reload"):
        _rewrite(anchors, one.root.pem + two.root.pem[:len(two.root.pem) // 2])
        assert not v._watch.check()
    assert v.store is store and v.verify(call, **GOOD).ok
    logged = [r.getMessage() for r in caplog.records if r.name == "manverify.reload"]
    assert len(logged) == 1 and str(anchors) in logged[0] and "no END line" in logged[0], logged
    assert "truncated" in v._watch.error
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="manverify"):
        _rewrite(anchors, one.root.pem)  # a whole file without the second root: applied, and said
        assert v._watch.check() and v.verify(call, **GOOD).sip_code == 437
    fingerprint = hashlib.sha256(two.root.cert.public_bytes(Encoding.DER)).hexdigest()[:16]
    assert any(f"trust anchor file {anchors} no longer holds" in r.getMessage() and fingerprint in r.getMessage()
               for r in caplog.records)


def test_a_cut_anchor_file_at_start_is_a_config_error_naming_it(two_labs, tmp_path):
    one, two = two_labs
    anchors = tmp_path / "roots.pem"
    anchors.write_bytes(one.root.pem + two.root.pem[:300])
    with pytest.raises(ConfigError, match=f"trust anchor {anchors}: .*no END line"):
        Verifier(trust_anchors=[str(anchors)])


def _block(der: bytes, label: bytes = b"CERTIFICATE") -> bytes:
    return b"-----BEGIN " + label + b"-----\n" + base64.encodebytes(der) + b"-----END " + label + b"-----\n"


@pytest.mark.parametrize("damage, why", [
    (lambda good, other: good + b"-----BEGIN CERTIFICATE-----\n@@not base64@@\n-----END CERTIFICATE-----\n",
     "not base64"),
    (lambda good, other: good + _block(other.root.cert.public_bytes(Encoding.DER)[:-40]), "cut short"),
    (lambda good, other: good + _block(other.root.cert.public_bytes(Encoding.DER) + b"\0\0"), "follow"),
    (lambda good, other: good + b"-----BEGIN CERTIF\n", "cut PEM boundary"),
    (lambda good, other: good + b"----", "cut PEM boundary"),
    (lambda good, other: good + other.root.pem.replace(b"-----END CERTIFICATE-----", b"-----END CERT"),
     "not its END line"),
    (lambda good, other: good + other.root.pem.replace(b"CERTIFICATE", b"TRUSTED CERTIFICATE"),
     "TRUSTED CERTIFICATE block"),
    (lambda good, other: good + other.root.pem[:200] + other.root.pem, "not base64"),
    (lambda good, other: good + other.root.pem[:28 + 2 * 65] + other.root.pem, "not its END line"),
])
def test_a_damaged_block_refuses_the_whole_file(two_labs, tmp_path, damage, why):
    one, two = two_labs
    path = tmp_path / "roots.pem"
    path.write_bytes(damage(one.root.pem, two))
    with pytest.raises(ConfigError, match=f"{path}.*{why}"):
        load_anchors([str(path)])


def test_text_between_blocks_is_allowed(two_labs, tmp_path):
    # How CA bundles and `openssl x509 -subject` write: a title or subject line above each block.
    one, two = two_labs
    path = tmp_path / "roots.pem"
    path.write_bytes(b"# lab roots\n\nlab root 1001\n=============\n" + one.root.pem
                     + b"\nsubject=CN=two\n" + two.root.pem + b"\n\n")
    anchors, skipped = load_anchors([str(path)])
    assert _subjects(anchors) == _subjects([one.root.cert, two.root.cert]) and not skipped


def test_a_der_anchor_must_be_one_whole_element(two_labs, tmp_path):
    der = two_labs[0].root.cert.public_bytes(Encoding.DER)
    assert len(load_anchors([der])[0]) == 1
    for bad, why in ((der[:-1], "cut short"), (der + b"\0", "follow")):
        with pytest.raises(ConfigError, match=why):
            load_anchors([bad])


def test_a_cut_crl_signer_file_is_refused(two_labs, tmp_path, caplog):
    one, two = two_labs
    both = pki.make_crl_signer(one.root, now=NOW).pem + pki.make_crl_signer(two.root, now=NOW).pem
    path = tmp_path / "pa.pem"
    kw = dict(trust_anchors=[one.root.pem, two.root.pem], crl_signers=[str(path)])
    with caplog.at_level(logging.WARNING, logger="manverify"):
        assert _cut_anywhere(path, both, lambda: CertStore(**kw)._trust._crl_signers, caplog) == 2


def test_a_cut_crl_file_is_refused(two_labs, tmp_path, caplog):
    one = two_labs[0]  # two CRLs of two issuers, as a file of the MAN CRL and a CA's would hold
    both = pki.crl_pem(pki.make_crl(one.root, [], now=NOW)) + pki.crl_pem(pki.make_crl(one.intermediate, [], now=NOW))
    path = tmp_path / "all.crl"
    with caplog.at_level(logging.WARNING, logger="manverify"):
        fewer = _cut_anywhere(path, both, lambda: CertStore(trust_anchors=[one.root.pem], crls=[str(path)])
                              ._trust._local_crls.current(), caplog)
    assert fewer == 2


def test_a_cut_chain_at_an_x5u_is_unparsable_not_untrusted(two_labs):
    lab = two_labs[0]
    x5u = "https://certs.example.fr/cut.pem"
    chain = lab.signer.pem + lab.intermediate.pem[:-60]
    r = CertStore(trust_anchors=[lab.root.pem], certificates={x5u: chain}).credential(x5u, NOW)
    assert (r.code, r.reason) == (436, "unparsable") and "END line" in r.detail, r


def test_a_cut_manifest_is_refused_at_start_and_kept_on_reload(two_labs, tmp_path, caplog):
    one, two = two_labs
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "one.pem").write_bytes(one.chain_pem)
    (certs / "two.pem").write_bytes(two.chain_pem)
    manifest = json.dumps({one.x5u: "one.pem", two.x5u: "two.pem"}, indent=1).encode()
    path = certs / "x5u.json"
    roots = [one.root.pem, two.root.pem]
    for cut in list(_cuts(manifest))[:-1]:  # JSON cut anywhere short of its end never parses
        path.write_bytes(cut)
        with pytest.raises(ConfigError, match=str(path)):
            CertStore(trust_anchors=roots, certificates=str(certs), fetch=False)
    path.write_bytes(manifest)
    v = Verifier(trust_anchors=roots, certificates=str(certs), fetch=False, reload=True)
    call = Signer(two.signer.key_pem, two.x5u, clock=lambda: NOW).sign(ORIG, DEST)
    assert v.verify(call, **GOOD).ok
    store = v.store
    with caplog.at_level(logging.WARNING, logger="manverify.reload"):
        _rewrite(path, manifest[:len(manifest) // 2])
        assert not v._watch.check()
    assert v.store is store and v.verify(call, **GOOD).ok
    assert any(str(path) in r.getMessage() for r in caplog.records if r.name == "manverify.reload")


def test_one_certificate_the_parser_refuses_is_still_skipped_not_the_file(two_labs, tmp_path):
    # Well-formed DER that the X.509 parser refuses (an unknown version) is not a damaged file:
    # it is skipped, named and logged, as before (README, "Certificates").
    one, _ = two_labs
    bad = pki.with_version_number(pki.make_ca("bad version root"), 3)
    path = tmp_path / "roots.pem"
    path.write_bytes(_block(bad) + one.root.pem)
    anchors, skipped = load_anchors([str(path)])
    assert [s.name for s in skipped] == ["CN=bad version root,O=manverify lab,C=FR"] and len(anchors) == 1
