"""Properties over random input: round trips verify, mutations never do, nothing raises."""
import email.utils
import json
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from manverify import tn

from .conftest import NOW

digits = st.text(alphabet=string.digits, min_size=9, max_size=9)
french = st.builds(lambda p, d: f"0{p}{d}", st.sampled_from("1234567 9".replace(" ", "")), digits)
attest = st.sampled_from("ABC")
iat_offset = st.integers(min_value=-60, max_value=60)

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fast
@given(orig=french, dest=french, attest=attest, offset=iat_offset)
def test_sign_verify_round_trip(verifier, signer, orig, dest, attest, offset):
    h = signer.sign(orig, dest, attest=attest, iat=NOW + offset)
    r = verifier.verify(h, orig=orig, dest=dest, now=NOW)
    assert r.ok, r.detail
    assert r.attest == attest and r.orig_tn == tn.canonical(orig)


@fast
@given(orig=french, dest=french, offset=st.integers(min_value=61, max_value=10**6), sign=st.sampled_from((-1, 1)))
def test_outside_the_window_is_stale(verifier, signer_at, orig, dest, offset, sign):
    h = signer_at(NOW + sign * offset).sign(orig, dest)
    assert verifier.verify(h, orig=orig, dest=dest, now=NOW).sip_code == 403


@fast
@given(data=st.data())
def test_mutated_tokens_never_verify(verifier, signer, data):
    h = signer.sign("0612345678", "0198765432", iat=NOW)
    token, params = h.split(";", 1)
    pos = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    alphabet = string.ascii_letters + string.digits + "-_.=+/ "
    ch = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[pos]))
    mutated = token[:pos] + ch + token[pos + 1:]
    r = verifier.verify(f"{mutated};{params}", orig="0612345678", dest="0198765432", now=NOW)
    assert not r.ok
    assert r.sip_code in (403, 436, 437, 438)


@fast
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600),
                 st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), max_size=5)))
def test_verify_never_raises_on_call_data(verifier, value):
    r = verifier.verify(value, orig="0612345678", dest="0198765432", now=NOW)
    assert not r.ok and r.sip_code in (400, 403, 428, 436, 437, 438)


@fast
@given(orig=st.text(max_size=40), dest=st.text(max_size=40), date=st.one_of(st.none(), st.text(max_size=40)))
def test_any_call_numbers_and_date(verifier, signer, orig, dest, date):
    h = signer.sign("0612345678", "0198765432", iat=NOW)
    r = verifier.verify(h, orig=orig, dest=dest, date=date, now=NOW)
    assert r.ok in (True, False) and (r.ok or r.sip_code in (400, 403, 438))


# ------------------------------------------------------------------ the common path is a shortcut
# Verifier.verify() answers the usual call shape in one pass (Verifier._common) and hands every
# other call to the general path. Over calls near that shape, both paths must give the same Result.
_CLAIM_EDITS = {
    "as signed": lambda c: c,
    "orig with +": lambda c: {**c, "orig": {"tn": "+" + c["orig"]["tn"]}},
    "two dests": lambda c: {**c, "dest": {"tn": ["33140000000", *c["dest"]["tn"]]}},
    "dest uri": lambda c: {**c, "dest": {"uri": ["sip:a@b"]}},
    "extra claim": lambda c: {**c, "rcd": {"nam": "x"}},
    "attest D": lambda c: {**c, "attest": "D"},
    "no origid": lambda c: {k: v for k, v in c.items() if k != "origid"},
    "iat string": lambda c: {**c, "iat": str(c["iat"])},
    "iat bool": lambda c: {**c, "iat": True},
    "orig list": lambda c: {**c, "orig": {"tn": [c["orig"]["tn"]]}},
}
_HEADER_EDITS = {
    "as signed": lambda h: h,
    "typ JWT": lambda h: {**h, "typ": "JWT"},
    "alg ES384": lambda h: {**h, "alg": "ES384"},
    "ppt div": lambda h: {**h, "ppt": "div"},
    "no ppt": lambda h: {k: v for k, v in h.items() if k != "ppt"},
    "crit": lambda h: {**h, "crit": ["x"]},
    "other x5u": lambda h: {**h, "x5u": "https://certs.example.fr/other.pem"},
}
_PARAMS = {
    "as signed": lambda info: f";info=<{info}>;alg=ES256;ppt=shaken",
    "reordered": lambda info: f";ppt=shaken;info=<{info}>;alg=ES256",
    "spaced": lambda info: f" ; info=<{info}> ; alg=ES256 ; ppt=shaken",
    "quoted ppt": lambda info: f';info=<{info}>;alg=ES256;ppt="shaken"',
    "unknown x5u": lambda info: ";info=<https://certs.example.fr/none.pem>;alg=ES256;ppt=shaken",
    "ppt div": lambda info: f";info=<{info}>;alg=ES256;ppt=div",
    "extra param": lambda info: f";info=<{info}>;alg=ES256;ppt=shaken;x=1",
}
_DATES = [email.utils.formatdate(NOW, usegmt=True), email.utils.formatdate(NOW - 61, usegmt=True),
          email.utils.formatdate(NOW + 61, usegmt=True), "Sun, 06 Nov 1994 08:49:37", "yesterday", "x" * 100]
_NUMBERS = ["+33612345678", "0612345678", "tel:+33-6-12-34-56-78", "+33198765432", "01 98 76 54 32",
            "+3319999198765432", "+33612345679", "not a number", ""]


def _mostly(usual, others):
    """Half the time the usual value: calls stay near the common shape, one or two edits away."""
    return st.one_of(st.just(usual), st.sampled_from(sorted(others)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(claims_edit=_mostly("as signed", _CLAIM_EDITS), header_edit=_mostly("as signed", _HEADER_EDITS),
       params=_mostly("as signed", _PARAMS), orig=_mostly("+33612345678", _NUMBERS),
       dest=_mostly("+33198765432", _NUMBERS), offset=st.sampled_from((0, -60, 60, -61, 61, 10**6)),
       flip=st.booleans(), date=_mostly(None, _DATES), as_list=st.booleans())
def test_common_path_answers_as_the_general_path(lab, signer, claims_edit, header_edit, params, orig, dest,
                                                  offset, flip, date, as_list):
    from manverify.verifier import Verifier

    verifier = _no_fetch_verifier(lab)
    claims = {"attest": "A", "dest": {"tn": ["33198765432"]}, "iat": NOW + offset,
              "orig": {"tn": "33612345678"}, "origid": "4437c7eb-8f7a-4f8d-a6d2-0f3c1e8a5b0d"}
    header = _HEADER_EDITS[header_edit](signer._jose("shaken"))
    token = signer._token(header, _CLAIM_EDITS[claims_edit](claims))
    if flip:  # one bit of s: a signature that does not verify
        last = token[-2]
        token = token[:-2] + ("B" if last == "A" else "A") + token[-1]
    value = token + _PARAMS[params](lab.x5u)
    if as_list:  # what sip.check passes: the list of Identity headers, here one
        value = [value]
    fast_result = verifier.verify(value, orig=orig, dest=dest, date=date, now=NOW)
    assert fast_result == verifier._verify_general(value, orig, dest, date, NOW)
    assert Verifier.verify_many(verifier, [dict(identity=value, orig=orig, dest=dest, date=date, now=NOW)]) == [fast_result]


_verifiers: dict = {}


def _no_fetch_verifier(lab):
    from manverify.verifier import Verifier

    if "v" not in _verifiers:
        _verifiers["v"] = Verifier(trust_anchors=[lab.root.pem], certificates={lab.x5u: lab.chain_pem}, fetch=False)
    return _verifiers["v"]


def test_common_path_is_taken_for_the_usual_call(lab, signer, monkeypatch):
    """The shortcut must actually be used (or the property above compares the general path with itself)."""
    from manverify.verifier import Verifier

    verifier = _no_fetch_verifier(lab)
    value = signer.sign("+33612345678", "+33198765432", iat=NOW)

    def general(*args):
        raise LookupError("general path")

    monkeypatch.setattr(Verifier, "_verify_general", general)
    assert verifier.verify(value, orig="+33612345678", dest="+33198765432", now=NOW).ok
    # as sip.check calls it: a list of headers and the INVITE's Date
    date = email.utils.formatdate(NOW, usegmt=True)
    assert verifier.verify([value], orig="+33612345678", dest="+33198765432", date=date, now=NOW).ok
    with pytest.raises(LookupError):  # another called number: the general path says why
        verifier.verify(value, orig="+33612345678", dest="+33198765431", now=NOW)


# ------------------------------------------------------------------ hostile sizes stay cheap
# Worst shapes found for each stage, filled up to the Identity header's cap (8,192 bytes) and sent
# as up to ten distinct headers: every one must cost little (issue 10's target: under 5 ms a call
# within the caps; benches/ hold figures, this holds a loose bound on a shared, noisy machine).
def _hostile(signer, shape: str, n: int, i: int) -> str:
    base = {"attest": "A", "dest": {"tn": ["33198765432"]}, "iat": NOW - i, "orig": {"tn": "33612345678"},
            "origid": "x"}
    if shape == "odd-form dests":
        return signer.sign_claims({**base, "dest": {"tn": [f"tel:+33-1-{k:08d}" for k in range(n)]}})
    if shape == "dests and divs":
        return signer.sign_claims({**base, "dest": {"tn": [str(33100000000 + k) for k in range(n)]},
                                   "div": {"tn": [str(33200000000 + k) for k in range(n)]}}, ppt="div")
    if shape == "many members":
        return signer.sign_claims({**base, **{f"k{k}": 0 for k in range(n)}})
    if shape == "many containers":
        return signer.sign_claims({**base, "x": [[[[]]]] * n})
    if shape == "deep header":  # alg nested as deep as fits (the decoder and repr() recurse)
        alg = json.loads("[" * min(n, 900) + "]" * min(n, 900))
        return signer.sign_claims(base, header={"alg": alg, "ppt": "shaken", "typ": "passport", "x5u": signer.x5u})
    if shape == "escapes":
        return signer.sign_claims({**base, "x": ['\\"\\u0041' * 4] * n})
    raise AssertionError(shape)


ORIG_, DEST_ = "+33612345678", "+33198765432"
# (Identity header parameters are identity.py's, held by tests/test_identity.py.)
_HOSTILE = ("odd-form dests", "dests and divs", "many members", "many containers", "deep header", "escapes")
_filled: dict = {}


def _at_cap(signer, shape: str, i: int) -> str:
    """The shape with as much as fits in one Identity header (found once per shape)."""
    if shape not in _filled:
        lo, hi = 1, 8192
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if len(_hostile(signer, shape, mid, 0)) <= 8192 else (lo, mid)
        _filled[shape] = lo
    return _hostile(signer, shape, _filled[shape] - i, i)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.sampled_from(_HOSTILE), headers=st.integers(min_value=1, max_value=10))
def test_hostile_sizes_cost_little(verifier, signer, shape, headers):
    values = [_at_cap(signer, shape, i) for i in range(headers)]
    assert all(len(v) <= 8192 for v in values)
    best = float("inf")
    for _ in range(3):  # the best of three: a neighbour's burst is not the code's cost
        t0 = time.perf_counter()
        r = verifier.verify(values, orig=ORIG_, dest=DEST_, now=NOW)
        best = min(best, time.perf_counter() - t0)
    assert r.sip_code in (None, 403, 436, 437, 438)
    assert best < 0.015, f"{shape} x{headers}: {best * 1e3:.1f} ms"


# ------------------------------------------------------------------ numbers of any size and sign
# A claim's number as its JSON text: integers of any size (beyond 64 bits, beyond the decoder's
# 4,300-digit limit), fractions, exponents, negative zero, NaN/Infinity (not JSON), written by hand
# so that nothing on the way (json.dumps refuses some of them) shapes them first.
_JSON_NUMBER = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-2 ** 70, max_value=2 ** 70).map(str),
    st.sampled_from([2 ** 63 - 1, 2 ** 63, -2 ** 63, -2 ** 63 - 1, 2 ** 64 - 1, 2 ** 64, 10 ** 15 - 1, 10 ** 15,
                     10 ** 19, 0]).map(str),
    st.builds(lambda sign, k: sign + "9" * k, st.sampled_from(["", "-"]), st.integers(min_value=19, max_value=4400)),
    st.builds(lambda m, e: f"{m}e{e}", st.integers(-10 ** 6, 10 ** 6), st.integers(-500, 500)),
    st.sampled_from(["-0", "0.0", "1.5", "-1E5", "1e400", "-1e400", "NaN", "Infinity", "-Infinity"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(lambda off: str(NOW + off), st.integers(-61, 61)),  # near the clock: fresh or just stale
)
_NUMBER_AT = ("iat", "attest", "origid", "orig.tn", "dest.tn", "extra")


def _claims_text(where: str, number: str, iat: str) -> str:
    parts = {"attest": '"A"', "dest": '{"tn":["33198765432"]}', "iat": iat, "orig": '{"tn":"33612345678"}',
             "origid": '"4437c7eb"'}
    if where == "orig.tn":
        parts["orig"] = '{"tn":%s}' % number
    elif where == "dest.tn":
        parts["dest"] = '{"tn":[%s]}' % number
    elif where == "extra":
        parts["x"] = number
    else:
        parts[where] = number
    return "{" + ",".join(f'"{k}":{v}' for k, v in sorted(parts.items())) + "}"


def _signed(signer, claims_text: str) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    from manverify.passport import b64encode, canonical_json

    signing_input = b64encode(canonical_json(signer._jose("shaken"))) + "." + b64encode(claims_text.encode())
    r, s = decode_dss_signature(signer._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_NUMBER_AT), number=_JSON_NUMBER, iat_offset=st.integers(-61, 61))
def test_claim_numbers_of_any_size_give_one_verdict_on_every_path(lab, signer, where, number, iat_offset):
    """Never an exception, and the same verdict from verify() (the native scanner's path when the
    engine is built), verify_many(), the general path, and the pure-Python decoder."""
    from manverify import passport, scan
    from manverify.verifier import Verifier

    verifier = _no_fetch_verifier(lab)
    token = _signed(signer, _claims_text(where, number, str(NOW + iat_offset)))
    value = f"{token};info=<{lab.x5u}>;alg=ES256;ppt=shaken"
    r = verifier.verify(value, orig="+33612345678", dest="+33198765432", now=NOW)
    assert r.sip_code in (None, 403, 438), (where, number[:40], r.detail)
    assert r == verifier._verify_general(value, "+33612345678", "+33198765432", None, NOW)
    call = dict(identity=value, orig="+33612345678", dest="+33198765432", now=NOW)
    assert Verifier.verify_many(verifier, [call]) == [r]
    python = passport._decode_shaken_python(token, lab.x5u)
    scanned = passport._from_scan(token, lab.x5u, scan.scan_one(token.encode())) if scan.AVAILABLE else None
    assert scanned is None or scanned == python  # the scanner: a strict subset of the Python decoder
    if python is not None:
        assert r.iat == python[0].iat and -2 ** 63 <= r.iat < 2 ** 63
    # beside a valid header, a hostile one changes nothing
    good = signer.sign("+33612345678", "+33198765432", iat=NOW)
    both = verifier.verify([value, good], orig="+33612345678", dest="+33198765432", now=NOW)
    assert both.ok and both.headers[1].ok


@fast
@given(info=st.one_of(st.text(max_size=60), st.text(st.characters(max_codepoint=127), max_size=60),
                     st.builds("https://x/{}".format, st.text(st.sampled_from("\x00\x07\x1b\x7f[]0;m\\\t"), max_size=8))),
       quoted=st.booleans(), extra=st.text(st.characters(max_codepoint=127), max_size=20))
def test_no_control_character_leaves_as_an_x5u(verifier, signer, info, quoted, extra):
    """Whatever an info parameter holds, the x5u a Result names (and batch records carry into
    reports) is printable ASCII or None."""
    token = signer.sign("0612345678", "0198765432", iat=NOW).split(";", 1)[0]
    value = f'{token};info="<{info}>";alg=ES256;ppt=shaken' if quoted else f"{token};info=<{info}>;alg=ES256;ppt={extra}"
    for r in (verifier.verify(value, orig="0612345678", dest="0198765432", now=NOW),
              verifier.verify([value, value + ";x"], orig="0612345678", dest="0198765432", now=NOW)):
        for x5u in (r.x5u, *(h.x5u for h in r.headers)):
            assert x5u is None or (x5u.isascii() and x5u.isprintable() and " " not in x5u), repr(x5u)


@fast
@given(st.text())
def test_report_shows_only_printable_text(text):
    from manverify.report import shown

    assert shown(text).isprintable()
    assert shown(text) == text or not text.isprintable()
