"""The verifier end to end in local mode: one case per row of STANDARDS.md's results table."""
import json
import re
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from manverify import Result, Signer, Verifier, pki
from manverify.errors import ConfigError, Error, UsageError

from .conftest import DEST, NOW, ORIG

GOOD = dict(orig=ORIG, dest=DEST, now=NOW)
C_ORIG, C_DEST = "33612345678", "33198765432"


def claims(**overrides):
    c = {"attest": "A", "dest": {"tn": [C_DEST]}, "iat": NOW, "orig": {"tn": C_ORIG},
         "origid": str(uuid.uuid4())}
    for k, v in overrides.items():
        if v is ...:
            c.pop(k)
        else:
            c[k] = v
    return c


def jose(url, **overrides):
    h = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": url}
    for k, v in overrides.items():
        if v is ...:
            h.pop(k)
        else:
            h[k] = v
    return h


def at(signer, when):
    """The same operator's Signer with its clock at `when` (for tokens of another time)."""
    return Signer(signer._key, signer.x5u, clock=lambda: when)


def replace_params(value: str, params: str) -> str:
    return value.split(";", 1)[0] + params


def test_valid_call_passes(verifier, signer):
    r = verifier.verify(signer.sign(ORIG, DEST, attest="B", iat=NOW), **GOOD)
    assert r.ok and r.sip_code is None and r.reason == ""
    assert (r.verstat, r.attest, r.spc) == ("TN-Validation-Passed", "B", "1001")
    assert r.orig_tn == C_ORIG and r.dest_tns == (C_DEST,)
    assert r.reason_header() == ""
    assert len(r.headers) == 1 and r.headers[0].ok


# (label, build(signer, lab) -> identity (and optional call overrides), expected code, detail fragment)
def _rows():
    x = "https://certs.example.fr/op1001.pem"
    return [
        ("400 orig malformed", lambda s: (s.sign(ORIG, DEST, iat=NOW), {"orig": "anonymous"}), 400, "calling number"),
        ("403 iat stale", lambda s: at(s, NOW - 61).sign(ORIG, DEST), 403, "iat is 61 s in the past"),
        ("403 iat future", lambda s: at(s, NOW + 61).sign(ORIG, DEST), 403, "iat is 61 s in the future"),
        ("403 Date stale", lambda s: (s.sign(ORIG, DEST, iat=NOW), {"date": "Mon, 01 Jan 2024 00:00:00 GMT"}), 403, "Date header"),
        ("400 Date unparseable", lambda s: (s.sign(ORIG, DEST, iat=NOW), {"date": "yesterday"}), 400, "RFC 1123"),
        ("428 no Identity", lambda s: None, 428, "no Identity"),
        ("428 empty list", lambda s: [], 428, "no Identity"),
        ("436 no info", lambda s: replace_params(s.sign(ORIG, DEST, iat=NOW), ";alg=ES256;ppt=shaken"), 436, "no info"),
        ("436 x5u unknown", lambda s: Signer(s._key, "https://certs.example.fr/none.pem", clock=lambda: NOW).sign(
            ORIG, DEST, iat=NOW), 436, ""),
        ("436 header lacks x5u", lambda s: s.sign_claims(claims(), header=jose(x, x5u=...)), 436, "lacks x5u"),
        ("436 header lacks typ", lambda s: s.sign_claims(claims(), header=jose(x, typ=...)), 436, "lacks typ"),
        ("436 header lacks alg", lambda s: s.sign_claims(claims(), header=jose(x, alg=...)), 436, "lacks alg"),
        ("436 header lacks ppt", lambda s: s.sign_claims(claims(), header=jose(x, ppt=...)), 436, "lacks ppt"),
        ("436 x5u != info", lambda s: s.sign_claims(claims(), header=jose("https://other.example/x.pem")), 436, "differs"),
        ("437 alg param missing", lambda s: replace_params(s.sign(ORIG, DEST, iat=NOW), f";info=<{x}>;ppt=shaken"), 437, "no alg"),
        ("437 alg param RS256", lambda s: replace_params(s.sign(ORIG, DEST, iat=NOW), f";info=<{x}>;alg=RS256;ppt=shaken"), 437, "only ES256"),
        ("437 header alg none", lambda s: s.sign_claims(claims(), header=jose(x, alg="none")), 437, "only ES256"),
        ("437 header alg HS256", lambda s: s.sign_claims(claims(), header=jose(x, alg="HS256")), 437, "only ES256"),
        ("437 alg HS256, 32-byte MAC", lambda s: _mac_signature(s.sign_claims(claims(), header=jose(x, alg="HS256"))),
         437, "only ES256"),
        ("437 typ not passport", lambda s: s.sign_claims(claims(), header=jose(x, typ="JWT")), 437, "typ"),
        ("438 extra param (MAN)", lambda s: s.sign(ORIG, DEST, iat=NOW) + ";foo=bar", 438, "beyond info, alg, ppt"),
        ("438 ppt param missing", lambda s: replace_params(s.sign(ORIG, DEST, iat=NOW), f";info=<{x}>;alg=ES256"), 438, "no ppt"),
        ("438 ppt not shaken", lambda s: replace_params(s.sign(ORIG, DEST, iat=NOW), f";info=<{x}>;alg=ES256;ppt=rph"), 438, "not supported"),
        ("438 ppt header/param mismatch", lambda s: replace_params(s.sign(ORIG, DEST, iat=NOW), f";info=<{x}>;alg=ES256;ppt=div"), 438, "does not match"),
        ("438 attest D", lambda s: s.sign_claims(claims(attest="D")), 438, "A, B or C"),
        ("438 iat is a string", lambda s: s.sign_claims(claims(iat=str(NOW))), 438, "JSON integer"),
        ("438 origid missing", lambda s: s.sign_claims(claims(origid=...)), 438, "origid"),
        ("438 orig differs", lambda s: (s.sign(ORIG, DEST, iat=NOW), {"orig": "+33612345679"}), 438, "calling number"),
        ("438 dest differs", lambda s: (s.sign(ORIG, DEST, iat=NOW), {"dest": "0198765433"}), 438, "called number"),
        ("438 bad signature", lambda s: _flip_signature(s.sign(ORIG, DEST, iat=NOW)), 438, "signature does not verify"),
        ("438 DER signature", lambda s: _der_signature(s.sign(ORIG, DEST, iat=NOW)), 438, "64"),
        ("438 garbage", lambda s: "not an identity header at all", 438, "malformed"),
        ("438 binary", lambda s: b"\xff\xfe\x00garbage", 438, "not ASCII"),
        ("438 oversized", lambda s: s.sign(ORIG, DEST, iat=NOW) + ";x=" + "a" * 9000, 438, "limit"),
    ]


def _flip_signature(value: str) -> str:
    token, rest = value.split(";", 1)
    h, c, sig = token.split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    return f"{h}.{c}.{flipped};{rest}"


def _mac_signature(value: str) -> str:
    from manverify.passport import b64encode

    token, rest = value.split(";", 1)
    h, c, _ = token.split(".")
    return f"{h}.{c}.{b64encode(bytes(range(32)))};{rest}"


def _der_signature(value: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    from manverify.passport import b64decode, b64encode

    token, rest = value.split(";", 1)
    h, c, sig = token.split(".")
    raw = b64decode(sig, "sig")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return f"{h}.{c}.{b64encode(der)};{rest}"


@pytest.mark.parametrize("label, build, code, fragment", _rows(), ids=[r[0] for r in _rows()])
def test_results_table(verifier, signer, label, build, code, fragment):
    built = build(signer)
    call = dict(GOOD)
    if isinstance(built, tuple):
        built, overrides = built
        call.update(overrides)
    r = verifier.verify(built, **call)
    assert not r.ok
    assert r.sip_code == code, r.detail
    assert fragment in r.detail
    assert r.reason and r.reason_header() == f'SIP;cause={code};text="{r.reason}"'
    assert r.verstat == ("No-TN-Validation" if code == 428 else "TN-Validation-Failed")
    json.dumps(r.to_dict())


def test_untrusted_signer_is_437(lab, signer):
    rogue = pki.lab_pki(spc="6666", now=NOW)
    v = Verifier(trust_anchors=[lab.root.pem], certificates={rogue.x5u: rogue.chain_pem})
    r = v.verify(Signer(rogue.signer.key_pem, rogue.x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW), **GOOD)
    assert r.sip_code == 437, r.detail


def test_expired_signer_is_437(lab):
    old = pki.make_signer(lab.intermediate, not_before=NOW - 400 * 86400, not_after=NOW - 86400)
    x5u = "https://certs.example.fr/old.pem"
    v = Verifier(trust_anchors=[lab.root.pem], certificates={x5u: old.pem + lab.intermediate.pem})
    r = v.verify(Signer(old.key_pem, x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW), **GOOD)
    assert r.sip_code == 437, r.detail


def test_wrong_curve_signer_is_437(lab):
    p384 = pki.make_signer(lab.intermediate, curve=ec.SECP384R1(), now=NOW)
    x5u = "https://certs.example.fr/p384.pem"
    v = Verifier(trust_anchors=[lab.root.pem], certificates={x5u: p384.pem + lab.intermediate.pem})
    # Sign with a P-256 key we own: the certificate's key is what must be refused.
    other = Signer(ec.generate_private_key(ec.SECP256R1()), x5u, clock=lambda: NOW)
    r = v.verify(other.sign(ORIG, DEST, iat=NOW), **GOOD)
    assert r.sip_code == 437, r.detail


def test_iat_outside_certificate_validity_is_403(lab):
    young = pki.make_signer(lab.intermediate, not_before=NOW - 10, days=30)
    x5u = "https://certs.example.fr/young.pem"
    v = Verifier(trust_anchors=[lab.root.pem], certificates={x5u: young.pem + lab.intermediate.pem})
    # Signed 30 s ago, inside the freshness window, but before the certificate was valid.
    r = v.verify(Signer(young.key_pem, x5u, clock=lambda: NOW).sign(ORIG, DEST, iat=NOW - 30), **GOOD)
    assert r.sip_code == 403 and "validity" in r.detail


def test_stir_reason_form(verifier, signer):
    r = verifier.verify(at(signer, NOW - 3600).sign(ORIG, DEST), **GOOD)
    assert r.reason_header("STIR") == 'STIR;cause=403;text="Stale Date"'
    with pytest.raises(UsageError):
        r.reason_header("XYZ")


def test_several_headers_one_good(verifier, signer):
    good = signer.sign(ORIG, DEST, iat=NOW)
    stale = at(signer, NOW - 3600).sign(ORIG, DEST)
    r = verifier.verify([stale, "garbage", good], **GOOD)
    assert r.ok
    assert [h.sip_code for h in r.headers] == [403, 438, None]


def test_duplicate_headers_are_evaluated_once(verifier, signer):
    good = signer.sign(ORIG, DEST, iat=NOW)
    r = verifier.verify([good, good, good], **GOOD)
    assert r.ok and len(r.headers) == 1


def test_too_many_headers(verifier, signer):
    headers = [signer.sign(ORIG, DEST, iat=NOW - i) for i in range(11)]
    r = verifier.verify(headers, **GOOD)
    assert r.sip_code == 438 and "more than" in r.detail


def test_div_chain(verifier, signer):
    forwarded = "0611111111"
    shaken = signer.sign(ORIG, DEST, iat=NOW)
    div = signer.sign_div(ORIG, forwarded, div=DEST, iat=NOW)
    r = verifier.verify([shaken, div], orig=ORIG, dest=forwarded, now=NOW)
    assert r.ok and "div" in r.detail
    # two hops
    second = "0622222222"
    div2 = signer.sign_div(ORIG, second, div=forwarded, iat=NOW)
    assert verifier.verify([div2, shaken, div], orig=ORIG, dest=second, now=NOW).ok
    # a div that does not continue the chain
    stray = signer.sign_div(ORIG, second, div="0633333333", iat=NOW)
    r = verifier.verify([shaken, stray], orig=ORIG, dest=second, now=NOW)
    assert r.sip_code == 438 and "called number" in r.detail
    # div alone is not enough
    assert verifier.verify([div], orig=ORIG, dest=forwarded, now=NOW).sip_code == 438
    # policy switch
    no_div = Verifier(store=verifier.store, allow_div=False)
    assert no_div.verify([shaken, div], orig=ORIG, dest=forwarded, now=NOW).sip_code == 438


def test_number_forms_from_the_call(verifier, signer):
    h = signer.sign("0612345678", "+33198765432", iat=NOW)
    for orig, dest in [
        ("sip:+33612345678@ims.example.fr;user=phone", "tel:+33-1-98-76-54-32"),
        ("0033612345678", "01.98.76.54.32"),
        ('"Alice" <sip:+33612345678@h;user=phone>', "sip:0198765432@h"),
        ("+33612345678", "+33 12345 198765432"),  # portability routing prefix
    ]:
        r = verifier.verify(h, orig=orig, dest=dest, now=NOW)
        assert r.ok, (orig, dest, r.detail)


def test_verify_many_keeps_order_and_matches_verify(verifier, signer):
    calls = []
    early = at(signer, NOW - 3600)
    for i in range(300):
        calls.append(dict(identity=(early if i % 7 == 0 else signer).sign(ORIG, DEST), **GOOD))
    calls.append(dict(identity=None, **GOOD))
    out = verifier.verify_many(calls)
    assert out == [verifier.verify(**c) for c in calls]
    assert [r.sip_code for r in out[:8]] == [403, None, None, None, None, None, None, 403]


@pytest.mark.parametrize("now", [10 ** 400, float("nan"), float("inf"), -float("inf")])
def test_a_now_that_is_no_time_is_a_usage_error(verifier, signer, now):
    # 10**400 used to escape as OverflowError from float(); NaN made every freshness check false
    value = signer.sign(ORIG, DEST, iat=NOW)
    with pytest.raises(UsageError, match="now must be"):
        verifier.verify(value, orig=ORIG, dest=DEST, now=now)
    with pytest.raises(UsageError, match="now must be"):
        verifier.verify_many([dict(identity=value, orig=ORIG, dest=DEST, now=now)])


def test_a_date_header_longer_than_any_rfc1123_date_is_refused_unparsed(verifier, signer, monkeypatch):
    # email.utils spends milliseconds on a long value: it is not asked at all
    from manverify import checks

    asked = []
    monkeypatch.setattr(checks, "_parse_date", lambda v: asked.append(v))
    date = "Sat, 05 Dec 2026 12:00:00 GMT" + " " * 40 + "x" * 8000
    r = verifier.verify(signer.sign(ORIG, DEST, iat=NOW), date=date, **GOOD)
    assert (r.sip_code, asked) == (400, [])
    assert "is not an RFC 1123 date" in r.detail


def test_caller_mistakes_raise(verifier, signer):
    with pytest.raises(UsageError):
        verifier.verify(123, **GOOD)
    with pytest.raises(UsageError):
        verifier.verify([b"x", 5], **GOOD)
    with pytest.raises(UsageError):
        verifier.verify("x", orig=612345678, dest=DEST)
    with pytest.raises(UsageError):
        verifier.verify("x", orig=ORIG, dest=DEST, now="today")
    with pytest.raises(UsageError):
        verifier.verify_many([("x", ORIG, DEST)])
    with pytest.raises(UsageError):
        verifier.verify_many([{"identity": "x", "from": ORIG}])
    assert issubclass(UsageError, Error) and issubclass(ConfigError, Error)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "trust_anchors"),
        (dict(trust_anchors=[b"x"], profile="usa"), "profile"),
        (dict(trust_anchors=[b"x"], max_age=0), "max_age"),
        (dict(trust_anchors=[b"x"], max_age="60"), "max_age"),
        (dict(trust_anchors=[b"x"], threads=0), "threads"),
        (dict(trust_anchors=[b"x"], threads=True), "threads"),
        (dict(trust_anchors=[b"x"], threads="2"), "threads"),
        (dict(trust_anchors=[b"x"], max_age=float("nan")), "max_age"),
        (dict(trust_anchors=[b"x"], max_age=float("inf")), "max_age"),
        (dict(trust_anchors=[b"x"], allow_div="no"), "allow_div"),
        (dict(trust_anchors=[b"x"], max_div=True), "max_div"),
        (dict(trust_anchors=[b"x"], reload="yes"), "reload"),
        (dict(store="/etc/certs"), "store must be a CertStore"),
    ],
)
def test_config_mistakes_raise(kwargs, message):
    with pytest.raises(ConfigError, match=message) as e:
        Verifier(**kwargs)
    assert isinstance(e.value, ValueError) and isinstance(e.value, TypeError)


def test_misspelt_option_is_a_config_error_naming_it(lab):
    with pytest.raises(ConfigError, match="cache_dir_max_file"):
        Verifier(trust_anchors=[lab.root.pem], cache_dir_max_file=3)
    with pytest.raises(ConfigError, match="alow_div"):
        Verifier(trust_anchors=[lab.root.pem], alow_div=False)


def test_result_is_immutable(verifier, signer):
    r = verifier.verify(signer.sign(ORIG, DEST, iat=NOW), **GOOD)
    with pytest.raises(AttributeError):
        r.ok = False  # type: ignore[misc]
    assert isinstance(r, Result)
    d = r.to_dict()
    assert d["verstat"] == "TN-Validation-Passed" and d["headers"][0]["ok"] is True
    json.dumps(d)


def test_rfc_profile_compact_form(lab):
    from email.utils import formatdate

    s = Signer(lab.signer.key_pem, lab.x5u, clock=lambda: NOW)
    v = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem}, profile="rfc")
    # The compact form is the full form without header and claims, rebuilt from the request.
    full = s.sign_claims({"dest": {"tn": [C_DEST]}, "iat": NOW, "orig": {"tn": C_ORIG}}, ppt="",
                         header={"alg": "ES256", "typ": "passport", "x5u": lab.x5u})
    sig = full.split(";", 1)[0].split(".")[2]
    compact = f"..{sig};info=<{lab.x5u}>;alg=ES256"
    date = formatdate(NOW, usegmt=True)
    assert v.verify(compact, orig=ORIG, dest=DEST, date=date, now=NOW).ok
    assert v.verify(compact, orig=ORIG, dest="0198765433", date=date, now=NOW).sip_code == 438
    assert v.verify(compact, orig=ORIG, dest=DEST, now=NOW).sip_code == 438  # no Date
    man = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem})
    assert man.verify(compact + ";ppt=shaken", orig=ORIG, dest=DEST, date=date, now=NOW).sip_code == 438


def _at_depth(frames: int, fn):
    """fn() called with about `frames` more Python frames on the stack."""
    return fn() if frames <= 0 else _at_depth(frames - 1, fn)


def test_nested_header_never_raises_from_a_deep_stack(verifier, signer):
    # A JOSE header whose alg is nested ~900 levels deep: seen once from a shallow stack, then
    # from a deep one (a proxy's own frames), it must stay a verdict, never a RecursionError.
    import sys

    from manverify.passport import b64encode

    x = "https://certs.example.fr/op1001.pem"
    deep = '{"alg":' + "[" * 900 + "]" * 900 + f',"ppt":"shaken","typ":"passport","x5u":"{x}"}}'
    good = signer.sign(ORIG, DEST, iat=NOW)
    token, rest = good.split(";", 1)
    value = b64encode(deep.encode()) + "." + token.split(".", 1)[1] + ";" + rest
    first = verifier.verify(value, **GOOD)
    assert first.sip_code == 438
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    again = _at_depth(sys.getrecursionlimit() - depth - 120, lambda: verifier.verify(value, **GOOD))
    assert again == first


@pytest.mark.parametrize("value, fragment", [
    (b"\xff" * 10, "not ASCII"),
    ("é" * 10, "not ASCII"),
    ("a" * 8193, "8193 bytes (limit 8192)"),
    (b"a" * 8193, "8193 bytes (limit 8192)"),
])
def test_header_acceptability_is_one_rule(verifier, value, fragment):
    from manverify.checks import header_text
    from manverify.passport import PassportError

    with pytest.raises(PassportError, match=re.escape(fragment)) as e:
        header_text(value)
    assert e.value.code == 438
    r = verifier.verify(value, **GOOD)
    assert r.sip_code == 438 and fragment in r.detail
    assert header_text(b"a" * 8192) == "a" * 8192
