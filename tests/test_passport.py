import json

import pytest
from hypothesis import given, strategies as st

from manverify import es256, passport
from manverify.passport import PassportError, b64encode, canonical_json

from .conftest import wycheproof


def _token(header: bytes, claims: bytes, sig: bytes = b"\x01" * 64) -> str:
    return f"{b64encode(header)}.{b64encode(claims)}.{b64encode(sig)}"


HDR = b'{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://c.example/a.pem"}'
CLAIMS = (b'{"attest":"A","dest":{"tn":["33198765432"]},"iat":1700000000,'
          b'"orig":{"tn":"33612345678"},"origid":"8f2a6c4e-0000-4000-8000-000000000000"}')


def test_canonical_json_rfc8225_example():
    # RFC 8225 §9: the canonical JSON serialisation of the example header and claims.
    header = {"typ": "passport", "x5u": "https://cert.example.org/passport.cer", "alg": "ES256"}
    claims = {"orig": {"tn": "12155551212"}, "iat": 1443208345, "dest": {"uri": ["sip:alice@example.com"]}}
    assert canonical_json(header) == b'{"alg":"ES256","typ":"passport","x5u":"https://cert.example.org/passport.cer"}'
    assert canonical_json(claims) == (
        b'{"dest":{"uri":["sip:alice@example.com"]},"iat":1443208345,"orig":{"tn":"12155551212"}}'
    )


def test_decode_keeps_the_exact_received_bytes():
    spaced = b'{ "origid":"x", "orig":{"tn":"33612345678"}, "iat":1700000000, "dest":{"tn":["33198765432"]}, "attest":"A", "ext":1 }'
    tok = _token(HDR, spaced)
    p = passport.decode(tok)
    assert p.signing_input == tok.rsplit(".", 1)[0].encode()
    assert p.claims["ext"] == 1  # extension claims are allowed


@pytest.mark.parametrize(
    "text, message",
    [
        ("eyJh=", "base64url"),
        ("eyJh+A", "base64url"),
        ("eyJh/A", "base64url"),
        ("eyJhA", "base64url"),  # length % 4 == 1
        ("eyJhbGc", "base64url"),  # fine alphabet, but check trailing bits below
    ],
)
def test_strict_base64url(text, message):
    if text == "eyJhbGc":
        assert passport.b64decode(text, "x") == b'{"alg'
        with pytest.raises(PassportError, match="trailing bits"):
            passport.b64decode("eyJhbGd", "x")
        return
    with pytest.raises(PassportError, match=message):
        passport.b64decode(text, "x")


@pytest.mark.parametrize(
    "claims, message",
    [
        (b'{"iat":1,"iat":2}', "duplicate key"),
        (b'{"iat":1,"i\\u0061t":2}', "duplicate key"),  # escaped spelling of the same key
        (b'{"a":{"b":1,"b":2}}', "duplicate key"),
        (b'{"iat":NaN}', "not JSON"),
        (b'{"iat":Infinity}', "not JSON"),
        (b'{"iat":-Infinity}', "not JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[1,2]", "not a JSON object"),
        (b'{"a":1} x', "valid JSON"),
        (b"", "valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "JSON"),
    ],
)
def test_strict_json(claims, message):
    with pytest.raises(PassportError, match=message) as e:
        passport.decode(_token(HDR, claims))
    assert e.value.code == 438


def test_leading_whitespace_json_is_still_json():
    p = passport.decode(_token(HDR, b" \n" + CLAIMS))
    assert p.claims["attest"] == "A"


@pytest.mark.parametrize("size", [0, 63, 65, 70, 72])
def test_signature_must_be_raw_64_bytes(size):
    with pytest.raises(PassportError, match="64"):
        passport.decode(_token(HDR, CLAIMS, b"\x01" * size))


@pytest.mark.parametrize(
    "header, code, message",
    [
        ({"ppt": "shaken", "typ": "passport", "x5u": "u"}, 436, "lacks alg"),
        ({"alg": "ES256", "ppt": "shaken", "x5u": "u"}, 436, "lacks typ"),
        ({"alg": "ES256", "ppt": "shaken", "typ": "passport"}, 436, "lacks x5u"),
        ({"alg": "none", "ppt": "shaken", "typ": "passport", "x5u": "u"}, 437, "only ES256"),
        ({"alg": "HS256", "ppt": "shaken", "typ": "passport", "x5u": "u"}, 437, "only ES256"),
        ({"alg": "RS256", "ppt": "shaken", "typ": "passport", "x5u": "u"}, 437, "only ES256"),
        ({"alg": "ES256", "ppt": "shaken", "typ": "JWT", "x5u": "u"}, 437, "typ"),
        ({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": "u", "crit": ["x"]}, 438, "crit"),
        ({"alg": "ES256", "ppt": "div", "typ": "passport", "x5u": "u"}, 438, "does not match"),
        ({"alg": "ES256", "typ": "passport", "x5u": "u"}, 436, "lacks ppt"),  # MAN: no ppt is 436
        ({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": "v"}, 436, "differs"),
        ({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": 5}, 436, "not a URL"),
    ],
)
def test_header_rules(header, code, message):
    with pytest.raises(PassportError, match=message) as e:
        passport.check_header(header, info="u", ppt_param="shaken")
    assert e.value.code == code


def _claims(**overrides):
    c = json.loads(CLAIMS)
    for k, v in overrides.items():
        if v is ...:
            del c[k]
        else:
            c[k] = v
    return c


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"attest": ...}, "attest"),
        ({"origid": ...}, "origid"),
        ({"iat": ...}, "iat"),
        ({"orig": ...}, "orig"),
        ({"dest": ...}, "dest"),
        ({"attest": "D"}, "not A, B or C"),
        ({"attest": "a"}, "not A, B or C"),
        ({"attest": ["A"]}, "not A, B or C"),
        ({"iat": "1700000000"}, "JSON integer"),
        ({"iat": True}, "JSON integer"),
        ({"iat": 1700000000.0}, "JSON integer"),
        ({"iat": None}, "JSON integer"),
        ({"orig": {"tn": "33612345678", "uri": "sip:a@b"}}, "exactly one"),
        ({"orig": {"uri": "sip:a@b"}}, "uri"),
        ({"orig": {"tn": ["33612345678"]}}, "not a string"),
        ({"orig": {"tn": "abc"}}, "not a telephone number"),
        ({"orig": "33612345678"}, "not a JSON object"),
        ({"dest": {"tn": "33198765432"}}, "array"),
        ({"dest": {"tn": []}}, "array"),
        ({"dest": {"tn": [1]}}, "not a string"),
        ({"dest": {"xyz": ["1"]}}, "unsupported"),
        ({"dest": {}}, "not a JSON object"),
        ({"origid": ""}, "origid"),
        ({"origid": 7}, "origid"),
    ],
)
def test_claim_rules(overrides, message):
    with pytest.raises(PassportError, match=message) as e:
        passport.check_claims(_claims(**overrides), "shaken")
    assert e.value.code == 438


def test_claims_are_canonicalised():
    c = passport.check_claims(_claims(orig={"tn": "+33 6 12 34 56 78"}), "shaken")
    assert c.orig_tn == "33612345678" and c.dest_tns == ("33198765432",) and c.attest == "A"


def test_div_claim_string_or_array():
    base = {"dest": {"tn": ["33611111111"]}, "iat": 1, "orig": {"tn": "33612345678"}}
    assert passport.check_claims(dict(base, div={"tn": "33198765432"}), "div").div_tns == ("33198765432",)
    assert passport.check_claims(dict(base, div={"tn": ["33198765432"]}), "div").div_tns == ("33198765432",)
    with pytest.raises(PassportError, match="div"):
        passport.check_claims(base, "div")


# Project Wycheproof's JWS vectors, ES256 (P-256) groups: the JWS layer of a PASSporT with the
# algorithm pinned to ES256 and the signature checked through the es256 boundary.
def _jws_cases():
    data = wycheproof("json_web_signature_test.json")
    cases = []
    for group in data["testGroups"]:
        jwk = group.get("public") or {}
        if jwk.get("crv") != "P-256":
            continue
        for t in group["tests"]:
            if isinstance(t["jws"], str):
                cases.append(pytest.param(jwk, t, id=f"tc{t['tcId']}-{t['comment']}"))
    return cases


def _jws_verify(jwk: dict, token: str) -> bool:
    # A JWK restricted to other uses or algorithms must not verify an ES256 signature.
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "ES256") != "ES256":
        return False
    if "key_ops" in jwk and "verify" not in jwk["key_ops"]:
        return False
    try:
        header, _payload, signing_input, sig = passport.decode_jws(token)
    except PassportError:
        return False
    if header.get("alg") != "ES256" or "jwk" in header or "crit" in header:
        return False
    point = b"\x04" + passport.b64decode(jwk["x"], "x") + passport.b64decode(jwk["y"], "y")
    return es256.verify(es256.load_key(point), signing_input, sig)


@pytest.mark.parametrize("jwk, case", _jws_cases())
def test_wycheproof_jws_es256(jwk, case):
    assert _jws_verify(jwk, case["jws"]) is (case["result"] == "valid"), case["comment"]


def test_wycheproof_jws_cases_were_found():
    assert len(_jws_cases()) >= 20


@given(st.binary(max_size=200), st.binary(max_size=200), st.binary(max_size=80))
def test_decode_raises_only_passport_error(h, c, s):
    try:
        passport.decode(_token(h, c, s))
    except PassportError as e:
        assert e.code in (436, 437, 438)


@given(st.text(max_size=300))
def test_decode_of_arbitrary_text(text):
    try:
        passport.decode(text)
    except PassportError:
        pass


# RFC 8225 Appendix A: its claims carry iat as a string ("1443208345"), so it is a negative
# vector for a strict verifier; its encoding is still exact base64url of canonical JSON.
RFC8225_TOKEN = (
    "eyJhbGciOiJFUzI1NiIsInR5cCI6InBhc3Nwb3J0IiwieDV1IjoiaHR0cHM6Ly9jZXJ0LmV4YW1wbGUub3JnL3Bhc3Nwb3J0LmNlciJ9"
    ".eyJkZXN0Ijp7InVyaSI6WyJzaXA6YWxpY2VAZXhhbXBsZS5jb20iXX0sImlhdCI6IjE0NDMyMDgzNDUiLCJvcmlnIjp7InRuIjoiMTIxNTU1NTEyMTIifX0"
    ".rq3pjT1hoRwakEGjHCnWSwUnshd0-zJ6F1VOgFWSjHBr8Qjpjlk-cpFYpFYsojNCpTzO3QfPOlckGaS6hEck7w"
)


def test_rfc8225_appendix_a_is_a_negative_vector():
    p = passport.decode(RFC8225_TOKEN)
    assert canonical_json(p.header) == b'{"alg":"ES256","typ":"passport","x5u":"https://cert.example.org/passport.cer"}'
    assert canonical_json(p.claims) == (
        b'{"dest":{"uri":["sip:alice@example.com"]},"iat":"1443208345","orig":{"tn":"12155551212"}}'
    )
    assert passport.check_header(p.header, info="https://cert.example.org/passport.cer", ppt_param=None) == ""
    with pytest.raises(PassportError, match="JSON integer") as e:
        passport.check_claims(p.claims, "")
    assert e.value.code == 438
    with pytest.raises(PassportError, match="differs") as e:
        passport.check_header(p.header, info="https://other.example.org/x.cer", ppt_param=None)
    assert e.value.code == 436


# ------------------------------------------------------------------ hostile JOSE headers (issue 10)
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("where", ["header", "claims"])
@pytest.mark.parametrize("depth, message", [(33, "nested deeper than 32"), (200, "nested deeper than 32"),
                                            (900, "more than 256 arrays and objects")])
def test_deep_nesting_is_refused_before_anything_recurses(where, depth, message):
    deep = b'{"alg":' + _nested(depth) + b',"ppt":"shaken","typ":"passport","x5u":"u"}'
    header, claims = (deep, CLAIMS) if where == "header" else (HDR, b'{"rcd":' + _nested(depth) + b"}")
    with pytest.raises(PassportError, match=message) as e:
        passport.decode(_token(header, claims))
    assert e.value.code == 438


def test_nesting_within_the_limit_still_decodes():
    p = passport.decode(_token(HDR, b'{"rcd":' + _nested(passport.MAX_JSON_DEPTH - 1) + b"}"))
    assert p.claims["rcd"]
    p = passport.decode(_token(HDR, b'{"a":' + _nested(31) + b',"b":' + _nested(31) + b"}"))  # siblings
    assert p.claims["a"] == p.claims["b"]
    # brackets inside strings are not nesting
    p = passport.decode(_token(HDR, b'{"x":"' + b"[" * 500 + b'"}'))
    assert p.claims["x"] == "[" * 500


def test_oversized_json_is_refused():
    big = b'{"x":"' + b"a" * passport.MAX_JSON_BYTES + b'"}'
    with pytest.raises(PassportError, match="limit") as e:
        passport.decode(_token(HDR, big))
    assert e.value.code == 438


def test_decoded_header_is_immutable():
    tok = _token(HDR, CLAIMS)
    header = passport.decode(tok).header
    with pytest.raises(TypeError):
        header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(TypeError):
        header.pop("alg")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        header.update(alg="none")  # type: ignore[attr-defined]
    nested = passport.decode(_token(b'{"alg":"ES256","crit":["x"],"typ":"passport","x5u":"u"}', CLAIMS)).header
    with pytest.raises((TypeError, AttributeError)):
        nested["crit"].append("y")
    assert passport.decode(tok).header["alg"] == "ES256"
    assert canonical_json(passport.decode(tok).header) == HDR


def test_header_memo_is_bounded_in_bytes():
    import tracemalloc

    # 2,000 distinct junk headers, each near the Identity header's cap, of a shape that costs much
    # memory per byte when decoded (hundreds of distinct member names).
    junk = [b"{" + b",".join(b'"m%d":%d' % (k, i) for k in range(600)) + b"}" for i in range(2000)]
    tokens = [_token(h, CLAIMS) for h in junk]
    passport.decode(tokens[0])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t in tokens:
            passport.decode(t)
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 8 * 2**20, f"{retained / 2**20:.0f} MiB retained by 2,000 junk headers"


@pytest.mark.parametrize(
    "header, code, message",
    [
        ({"alg": "HS256", "ppt": "shaken", "typ": "passport", "x5u": "u"}, 437, "only ES256"),
        ({"alg": "none", "ppt": "shaken", "typ": "passport", "x5u": "u"}, 437, "only ES256"),
        ({"ppt": "shaken", "typ": "passport", "x5u": "u"}, 436, "lacks alg"),
        ({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": "u"}, 438, "64 bytes"),
    ],
)
def test_alg_is_pinned_before_the_signature_shape(header, code, message):
    with pytest.raises(PassportError, match=message) as e:
        passport.decode(_token(canonical_json(header), CLAIMS, b"\x01" * 32))
    assert e.value.code == code


def test_too_many_numbers_in_a_passport_are_refused():
    many = _claims(dest={"tn": [str(33100000000 + i) for i in range(passport.MAX_CLAIM_NUMBERS + 1)]})
    with pytest.raises(PassportError, match="limit 32") as e:
        passport.check_claims(many, "shaken")
    assert e.value.code == 438
    base = {"dest": {"tn": ["33611111111"] * 16}, "iat": 1, "orig": {"tn": "33612345678"}}
    with pytest.raises(PassportError, match="33 numbers"):
        passport.check_claims(dict(base, div={"tn": ["33198765432"] * 17}), "div")
    assert len(passport.check_claims(dict(base, div={"tn": ["33198765432"] * 16}), "div").div_tns) == 16


def test_too_many_arrays_and_objects_are_refused():
    wide = b'{"x":[' + b",".join([b"[]"] * passport.MAX_JSON_CONTAINERS) + b"]}"
    with pytest.raises(PassportError, match="more than 256 arrays and objects") as e:
        passport.decode(_token(HDR, wide))
    assert e.value.code == 438
    fits = b'{"x":[' + b",".join([b"[]"] * (passport.MAX_JSON_CONTAINERS - 2)) + b"]}"
    assert len(passport.decode(_token(HDR, fits)).claims["x"]) == passport.MAX_JSON_CONTAINERS - 2
