"""Verdict counters: Verifier.stats(), the fixed reason slugs, the SPC cap, counting from threads."""
import sys
import threading

import pytest

from manverify import Result, Signer, Verifier, pki, stats

from .conftest import DEST, NOW, ORIG
from .test_verifier import GOOD, _rows

# One slug per row of test_verifier's results table: a reworded detail fails here, by name.
SLUGS = {
    "400 orig malformed": "bad-calling-number",
    "403 iat stale": "stale-iat",
    "403 iat future": "stale-iat",
    "403 Date stale": "stale-date",
    "400 Date unparseable": "bad-date",
    "428 no Identity": "no-identity",
    "428 empty list": "no-identity",
    "436 no info": "no-info",
    "436 x5u unknown": "certificate-unavailable",
    "436 header lacks x5u": "passport-header",
    "436 header lacks typ": "passport-header",
    "436 header lacks alg": "passport-header",
    "436 header lacks ppt": "passport-header",
    "436 x5u != info": "x5u-mismatch",
    "437 alg param missing": "unsupported-alg",
    "437 alg param RS256": "unsupported-alg",
    "437 header alg none": "unsupported-alg",
    "437 header alg HS256": "unsupported-alg",
    "437 alg HS256, 32-byte MAC": "unsupported-alg",
    "437 typ not passport": "passport-header",
    "438 extra param (MAN)": "bad-identity-header",
    "438 ppt param missing": "bad-identity-header",
    "438 ppt not shaken": "bad-identity-header",
    "438 ppt header/param mismatch": "passport-header",
    "438 attest D": "bad-claims",
    "438 iat is a string": "bad-claims",
    "438 origid missing": "bad-claims",
    "438 orig differs": "orig-mismatch",
    "438 dest differs": "dest-mismatch",
    "438 bad signature": "bad-signature",
    "438 DER signature": "bad-signature-encoding",
    "438 garbage": "bad-identity-header",
    "438 binary": "bad-identity-header",
    "438 oversized": "bad-identity-header",
}


def _call(build, signer):
    built = build(signer)
    call = dict(GOOD)
    if isinstance(built, tuple):
        built, overrides = built
        call.update(overrides)
    return dict(call, identity=built)


@pytest.mark.parametrize("label, build", [(r[0], r[1]) for r in _rows()], ids=[r[0] for r in _rows()])
def test_each_failure_of_the_results_table_has_its_slug(verifier, signer, label, build):
    r = verifier.verify(**_call(build, signer))
    slug = stats.reason(r)
    assert slug in stats.REASONS and not slug.startswith("other-"), r.detail
    assert slug == SLUGS.get(label, slug), r.detail  # a row added to the table later: any specific slug


def test_certificate_failures_have_their_slugs(lab, signer):
    rogue = pki.lab_pki(spc="6666", now=NOW)
    v = Verifier(trust_anchors=[lab.root.pem], certificates={rogue.x5u: rogue.chain_pem})
    r = v.verify(Signer(rogue.signer.key_pem, rogue.x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW), **GOOD)
    assert stats.reason(r) == "certificate-untrusted", r.detail
    young = pki.make_signer(lab.intermediate, not_before=NOW - 10, days=30)
    x5u = "https://certs.example.fr/young.pem"
    v = Verifier(trust_anchors=[lab.root.pem], certificates={x5u: young.pem + lab.intermediate.pem})
    r = v.verify(Signer(young.key_pem, x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW - 30), **GOOD)
    assert stats.reason(r) == "iat-outside-certificate", r.detail
    r = v.verify(Signer(young.key_pem, x5u, clock=lambda: NOW + 31 * 86400).sign(ORIG, DEST), **dict(GOOD, now=NOW + 31 * 86400))
    assert stats.reason(r) == "certificate-expired", r.detail


@pytest.mark.parametrize("code, detail, slug", [
    # a call chooses its x5u, which the store's details quote: it must not choose the slug
    (437, "signer certificate https://e.fr/serial 1 is revoked$.pem: no policy", "certificate-rejected"),
    (437, "signer certificate https://e.fr/ is revoked.pem is not trusted: x", "certificate-untrusted"),
    (436, "cannot obtain x5u https://e.fr/no Identity header: timeout", "certificate-unavailable"),
    (438, "PASSporT claims is not a JSON object", "bad-encoding"),
    (438, "orig claim is not a JSON object", "bad-claims"),
    (400, "something new", "other-400"),
])
def test_slugs_follow_the_fixed_wording_not_the_call(code, detail, slug):
    assert stats.reason(Result(False, code, detail)) == slug
    assert slug in stats.REASONS


def test_verifier_stats(verifier, signer, lab):
    v = Verifier(store=verifier.store)
    assert v.stats()["calls"] == 0
    good = signer.sign(ORIG, DEST, attest="B", iat=NOW)
    for _ in range(3):
        assert v.verify(good, **GOOD).ok
    v.verify(good, **dict(GOOD, dest="0198765433"))  # 438, signer known
    v.verify(None, **GOOD)  # 428
    v.verify_many([dict(GOOD, identity=good)] * 70 + [dict(GOOD, identity="junk")])  # threaded path
    s = v.stats()
    assert (s["calls"], s["passed"], s["failed"]) == (76, 73, 3)
    assert s["by_code"] == {"438": 2, "428": 1}
    assert s["by_reason"] == {"dest-mismatch": 1, "no-identity": 1, "bad-identity-header": 1}
    assert s["by_attest"] == {"B": 74, "none": 2}
    assert s["by_spc"] == {"1001": {"calls": 74, "failed": 1}, "none": {"calls": 2, "failed": 2}}
    assert s["certs"]["hits"] >= 1 and "crl_age" in s["certs"]


def test_spc_cardinality_is_capped():
    st = stats.Stats(max_spcs=2)
    for spc in ("1", "2", "3", "4", "1"):
        st.record(Result(True, None, "verified", attest="A", spc=spc))
    assert st.as_dict()["by_spc"] == {"1": {"calls": 2, "failed": 0}, "2": {"calls": 1, "failed": 0},
                                      "other": {"calls": 2, "failed": 0}}


def test_spc_cap_bounds_the_memory_when_counts_are_written():
    # Counts are kept per thread until read: capped only at read, a stream of distinct SPCs
    # grows every thread's dict without bound between two scrapes.
    st = stats.Stats(max_spcs=2)
    for i in range(1000):
        st.record(Result(True, None, "verified", attest="A", spc=str(i)))
        st.record(Result(False, 438, "junk", attest="A", spc=str(i)))
    (_, written), = st._threads  # this thread's dict, as record() left it
    assert len(written) == 2 * 3  # SPCs "0", "1" and "other", each passed and failed
    assert st.as_dict()["by_spc"] == {"0": {"calls": 2, "failed": 1}, "1": {"calls": 2, "failed": 1},
                                      "other": {"calls": 1996, "failed": 998}}


def test_counting_from_many_threads_loses_nothing(verifier, signer):
    # A tiny switch interval makes an unlocked read-modify-write lose updates within a few
    # thousand calls; the counters must still add up exactly.
    v = Verifier(store=verifier.store, threads=2)
    good = dict(GOOD, identity=signer.sign(ORIG, DEST, iat=NOW))
    bad = dict(GOOD, identity=None)
    st = stats.Stats()
    results = [Result(True, None, "verified", attest="A", spc="1001"), Result(False, 438, "junk")]

    def work():
        for i in range(4000):
            st.record(results[i & 1])
        for _ in range(3):
            v.verify(**good)
            v.verify_many([good] * 70 + [bad])

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert st.as_dict()["calls"] == 16000
    s = v.stats()
    assert (s["calls"], s["failed"]) == (4 * 3 * 72, 4 * 3)


def test_a_sip_request_without_identity_is_counted(verifier):
    from manverify import sip

    v = Verifier(store=verifier.store)
    request = ("INVITE sip:+33198765432@example.fr SIP/2.0\r\nFrom: <sip:+33612345678@example.fr>;tag=1\r\n"
               "To: <sip:+33198765432@example.fr>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n")
    assert sip.check(request, v).code == 428
    assert v.stats()["by_reason"] == {"no-identity": 1}
