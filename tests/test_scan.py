"""The native PASSporT scanner (native/passport_impl.h) against passport.py's own decoder.

The scanner may decline anything (the Python decoder then takes the token), but whatever it
accepts must decode exactly as passport.py decodes it; and it must accept what signers write,
or the verifier's fast path silently disappears.
"""
import base64
import json
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from manverify import es256, passport, scan
from manverify.passport import b64encode, canonical_json

from .conftest import NOW

if os.environ.get("MANVERIFY_BACKEND") == "cryptography":
    # The scanner is off with the fallback backend; these tests are about the scanner itself.
    pytestmark = pytest.mark.skip(reason="MANVERIFY_BACKEND=cryptography turns the native scanner off")

X5U = "https://certs.example.fr/op1001.pem"
H64 = b64encode(canonical_json({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": X5U}))
SIG = bytes(range(1, 65))
USUAL = {"attest": "A", "dest": {"tn": ["33198765432"]}, "iat": NOW, "orig": {"tn": "33612345678"},
         "origid": "4437c7eb-8f7a-4f8d-a6d2-0f3c1e8a5b0d"}


def _token(claims_text, sig=SIG, h64=H64):
    raw = claims_text.encode("utf-8", "surrogatepass") if isinstance(claims_text, str) else claims_text
    return f"{h64}.{b64encode(raw)}.{b64encode(sig)}"


def _both(token, info=X5U):
    """(scanner path, Python path) of decode_shaken for one token."""
    return passport.decode_shaken(token, info), passport._decode_shaken_python(token, info)


def test_the_scanner_is_built_with_the_native_engine():
    assert scan.AVAILABLE == (es256.backend() == "native")
    assert scan.AVAILABLE, "the native scanner is not built (the CI build must include it)"


def test_what_signers_write_is_recognised(signer):
    for dest in ("0198765432", ["0198765432", "0612345679", "+1 212 555 0100"]):
        for attest in "ABC":
            token = signer.passport("0612345678", dest, attest=attest, iat=NOW)
            native, python = _both(token, signer.x5u)
            assert native is not None and native == python
            assert scan.scan_one(token.encode()) is not None


@pytest.mark.parametrize("claims", [
    USUAL,
    dict(USUAL, iat=0),
    dict(USUAL, iat=10**15 - 1),
    dict(USUAL, dest={"tn": [str(33100000000 + i) for i in range(8)]}),
    dict(USUAL, origid="x"),
    dict(USUAL, origid=" !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~"),
])
def test_accepted_shapes_decode_as_python_does(claims):
    for text in (json.dumps(claims, separators=(",", ":")),
                 json.dumps(dict(reversed(list(claims.items()))), separators=(",", ":"))):
        native, python = _both(_token(text))
        assert native is not None and native == python


DECLINED = {
    "whitespace": json.dumps(USUAL),
    "escape": json.dumps(dict(USUAL, origid="a\\u0062c"), separators=(",", ":")).replace("\\\\", "\\"),
    "escaped key": json.dumps(USUAL, separators=(",", ":")).replace('"iat"', '"i\\u0061t"'),
    "extra claim": json.dumps(dict(USUAL, rcd={"nam": "x"}), separators=(",", ":")),
    "missing origid": json.dumps({k: v for k, v in USUAL.items() if k != "origid"}, separators=(",", ":")),
    "duplicate iat": json.dumps(USUAL, separators=(",", ":"))[:-1] + ',"iat":1}',
    "iat 16 digits": json.dumps(dict(USUAL, iat=10**15), separators=(",", ":")),
    "iat negative": json.dumps(dict(USUAL, iat=-1), separators=(",", ":")),
    "iat float": json.dumps(dict(USUAL, iat=1.5), separators=(",", ":")),
    "iat exponent": json.dumps(USUAL, separators=(",", ":")).replace(f'"iat":{NOW}', '"iat":1e9'),
    "iat leading zero": json.dumps(USUAL, separators=(",", ":")).replace(f'"iat":{NOW}', '"iat":0123'),
    "iat string": json.dumps(dict(USUAL, iat=str(NOW)), separators=(",", ":")),
    "nine dests": json.dumps(dict(USUAL, dest={"tn": [str(33100000000 + i) for i in range(9)]}), separators=(",", ":")),
    "empty dest": json.dumps(dict(USUAL, dest={"tn": []}), separators=(",", ":")),
    "dest uri too": json.dumps(dict(USUAL, dest={"tn": ["33198765432"], "uri": ["sip:a@b"]}), separators=(",", ":")),
    "orig array": json.dumps(dict(USUAL, orig={"tn": ["33612345678"]}), separators=(",", ":")),
    "non-ASCII": json.dumps(dict(USUAL, origid="é"), separators=(",", ":"), ensure_ascii=False),
    "control char": json.dumps(dict(USUAL, origid="a"), separators=(",", ":")).replace('"a"', '"a\tb"'),
    "trailing byte": json.dumps(USUAL, separators=(",", ":")) + " ",
    "array": "[" + json.dumps(USUAL, separators=(",", ":")) + "]",
    "truncated": json.dumps(USUAL, separators=(",", ":"))[:-1],
    "empty": "",
}


_FINE_JSON = ("whitespace", "escape", "escaped key", "extra claim", "dest uri too", "non-ASCII", "trailing byte")


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_declined_shapes_are_left_to_python(name, lab, signer, verifier):
    token = _token(DECLINED[name])
    assert scan.scan_one(token.encode()) is None
    assert passport.decode_shaken(token, X5U) is None
    # signed for real, the call gets the general path's verdict (which may well be a pass)
    raw = DECLINED[name].encode("utf-8")
    h64 = b64encode(canonical_json(signer._jose("shaken")))
    signing_input = f"{h64}.{b64encode(raw)}"
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s_ = decode_dss_signature(signer._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    value = f"{signing_input}.{b64encode(r.to_bytes(32, 'big') + s_.to_bytes(32, 'big'))};info=<{signer.x5u}>;alg=ES256;ppt=shaken"
    got = verifier.verify(value, orig="+33612345678", dest="+33198765432", now=NOW)
    assert got == verifier._verify_general(value, "+33612345678", "+33198765432", None, NOW)
    # claims that are fine, only not spelled the usual way, still pass
    assert got.ok == (name in _FINE_JSON), got.detail


@pytest.mark.parametrize("token", [
    H64 + "." + b64encode(canonical_json(USUAL)),                                   # two segments
    _token(canonical_json(USUAL)) + ".",                                           # four
    _token(canonical_json(USUAL), sig=SIG[:63]),                                   # 63-byte signature
    _token(canonical_json(USUAL), sig=SIG + b"\0"),                                # 65-byte signature
    _token(canonical_json(USUAL)) + "=",                                           # padding
    _token(canonical_json(USUAL))[:-1] + "B",                                      # stray bits in s
    _token(canonical_json(USUAL)).replace("-", "+").replace("_", "/"),             # base64, not base64url
    H64 + "." + b64encode(canonical_json(USUAL)) + "=." + b64encode(SIG),          # padded claims
    H64 + "." + b64encode(canonical_json(USUAL))[:-1] + "." + b64encode(SIG),      # claims cut short
    H64 + "." + b64encode(b"{" + b" " * 5000 + b"}") + "." + b64encode(SIG),       # over the 4 KiB buffer
    "..", ".", "", "a.b.c",
])
def test_malformed_tokens_are_declined(token):
    assert scan.scan_one(token.encode()) is None
    assert passport.decode_shaken(token, X5U) is None


def test_trailing_bits_rule_matches_rfc4648():
    """Claims whose base64url length leaves 2 or 4 spare bits: only the zero-bit spelling passes."""
    for pad in range(3):
        text = canonical_json(dict(USUAL, origid="x" * (1 + pad)))
        good = b64encode(text)
        assert len(good) % 4 in (2, 3, 0)
        assert scan.scan_one(f"{H64}.{good}.{b64encode(SIG)}".encode()) is not None
        if len(good) % 4:
            last = good[-1]
            for other in string.ascii_letters + string.digits + "-_":
                if other == last:
                    continue
                token = f"{H64}.{good[:-1]}{other}.{b64encode(SIG)}"
                assert scan.scan_one(token.encode()) is None  # another spelling of the same bytes
                assert passport._decode_shaken_python(token, X5U) is None


def test_batch_is_scan_one_per_token(signer):
    tokens = [signer.passport("0612345678", "0198765432", iat=NOW + i).encode() for i in range(5)]
    tokens[1] = b"not.a.token"
    tokens[3] = b""
    batch = scan.scan(tokens)
    assert batch == [scan.scan_one(t) for t in tokens]
    assert [b is None for b in batch] == [False, True, False, True, False]
    assert batch[0][2] == tokens[0].rsplit(b".", 1)[0]  # the signing input: the exact received bytes


def test_a_large_batch_uses_one_off_buffers(signer):
    token = signer.passport("0612345678", "0198765432", iat=NOW).encode()
    n = es256._KEEP_BYTES // len(token) + 1
    kept = es256._scan_buffers(1, 1)
    got = scan.scan([token] * n)
    assert len(got) == n and got[0] == got[-1] == scan.scan_one(token)
    assert es256._scan_buffers(1, 1) is kept  # the thread's small buffers were not replaced


# -- differential: random and mutated claims ------------------------------------------------------

_plain = st.builds(str.__add__, st.sampled_from(["33", "1", "590", "44"]),
                   st.text(alphabet=string.digits, min_size=6, max_size=11))
_number = st.one_of(_plain, _plain, _plain, st.text(alphabet=string.digits, min_size=0, max_size=17),
                    st.sampled_from(["+33612345678", "0612345678", "٣٣٦١٢", "3361234567 ", ""]))
_string = st.one_of(st.sampled_from(["A", "B", "C", "D", "a", ""]), st.text(max_size=12),
                    st.text(alphabet=string.printable, max_size=12))
_value = st.one_of(_string, st.integers(min_value=-2, max_value=10**17), st.floats(allow_nan=False),
                   st.booleans(), st.none(), st.lists(_number, max_size=3), st.dictionaries(st.sampled_from(["tn", "uri"]), _number))
_usual_values = {
    "attest": st.sampled_from("ABC"),
    "dest": st.builds(lambda t: {"tn": t}, st.one_of(st.lists(_plain, min_size=1, max_size=3),
                                                      st.lists(_number, min_size=1, max_size=9))),
    "iat": st.integers(min_value=0, max_value=2 * 10**15),
    "orig": st.builds(lambda t: {"tn": t}, _number),
    "origid": st.one_of(st.uuids().map(str), st.text(alphabet=string.printable, min_size=1, max_size=12)),
}


@st.composite
def _claims(draw):
    """The five SHAKEN claims with plausible values, then up to two edits: a value of another
    type, a claim dropped, one added (most examples stay near what the scanner accepts)."""
    claims = {k: draw(v) for k, v in _usual_values.items()}
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        edit = draw(st.sampled_from(["value", "drop", "add", "none"]))
        key = draw(st.sampled_from(sorted(claims) or ["iat"]))
        if edit == "value":
            claims[key] = draw(_value)
        elif edit == "drop":
            claims.pop(key, None)
        elif edit == "add":
            claims[draw(st.sampled_from(["rcd", "crn", "div", "x"]))] = draw(_value)
    return claims


def _serialise(claims, data):
    items = list(claims.items())
    if data.draw(st.booleans()):
        items = data.draw(st.permutations(items))
    seps = data.draw(st.sampled_from([(",", ":"), (", ", ": "), (",", ":"), (",", ":")]))
    text = json.dumps(dict(items), separators=seps, ensure_ascii=data.draw(st.booleans()))
    edit = data.draw(st.sampled_from(["none", "none", "none", "insert", "delete", "replace", "duplicate"]))
    if edit != "none" and text:
        at = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        ch = data.draw(st.sampled_from(list('{}[]",:0 \\\t.-eE\x00\x7f') + ["é"]))
        if edit == "insert":
            text = text[:at] + ch + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + 1:]
        elif edit == "replace":
            text = text[:at] + ch + text[at + 1:]
        else:
            text = text[:-1] + "," + text[1:]  # every member twice
    return text


diff = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@diff
@given(claims=_claims(), data=st.data())
def test_scanner_agrees_with_python_on_random_claims(claims, data):
    text = _serialise(claims, data)
    native, python = _both(_token(text))
    if native is not None:
        assert native == python
    # What a signer would write (canonical JSON, the five claims, no escapes needed) must not
    # fall off the fast path when Python accepts it.
    canonical = canonical_json(claims).decode("utf-8", "replace")
    if python is not None and text == canonical and set(claims) == set(USUAL) and "\\" not in text \
            and text.isascii() and len(claims["dest"]["tn"]) <= 8 and 0 <= claims["iat"] < 10**15:
        assert native is not None


@diff
@given(raw=st.binary(max_size=400), sig=st.binary(min_size=60, max_size=68))
def test_scanner_agrees_with_python_on_random_bytes(raw, sig):
    native, python = _both(_token(raw, sig=sig))
    assert native is None or native == python


@diff
@given(token=st.text(alphabet=string.ascii_letters + string.digits + "-_.=+/ \x00é", max_size=300))
def test_scanner_never_misreads_arbitrary_tokens(token):
    native, python = _both(token)
    if native is not None:
        assert native == python
    got = scan.scan([token.encode("utf-8"), b"", token.encode("utf-8")])
    assert got[0] == got[2] == scan.scan_one(token.encode("utf-8"))


# -- the ABI: misuse is refused without writing ---------------------------------------------------

@pytest.fixture
def abi():
    from manverify._native import ffi, lib

    return ffi, lib


def test_abi_refuses_bad_arguments(abi):
    ffi, lib = abi
    tok = _token(canonical_json(USUAL)).encode()
    rec = lib.MV_SCAN_RECORD
    offsets = ffi.new("size_t[]", [0, len(tok)])
    out = ffi.new("unsigned char[]", rec + len(tok) + 1)
    used = ffi.new("size_t *")
    assert lib.mv_shaken_scan(tok, len(tok), offsets, 1, out, len(out), used) == 0
    assert used[0] > rec + 1 and bytes(out[rec:used[0]]).endswith(b"\n")

    def refused(*args):
        used[0] = 12345
        before = bytes(out)
        assert lib.mv_shaken_scan(*args) == -1
        assert bytes(out) == before and used[0] == 0

    refused(tok, len(tok), offsets, 1, out, len(out) - 1, used)            # out one byte short
    refused(tok, len(tok) - 1, offsets, 1, out, len(out), used)            # token past toks_len
    refused(tok, len(tok), ffi.new("size_t[]", [5, 4]), 1, out, len(out), used)  # decreasing offsets
    refused(ffi.NULL, len(tok), offsets, 1, out, len(out), used)
    refused(tok, len(tok), ffi.NULL, 1, out, len(out), used)
    refused(tok, len(tok), offsets, 1, ffi.NULL, len(out), used)
    refused(tok, len(tok), offsets, 2**62, out, len(out), used)            # sizes that would wrap
    refused(tok, 2**63, offsets, 1, out, len(out), used)
    assert lib.mv_shaken_scan(tok, len(tok), offsets, 1, out, len(out), ffi.NULL) == -1
    assert lib.mv_shaken_scan(ffi.NULL, 0, ffi.NULL, 0, ffi.NULL, 0, used) == 0 and used[0] == 0


def test_declined_record_is_zeroed(abi):
    ffi, lib = abi
    tok = b"x" * 10
    rec = lib.MV_SCAN_RECORD
    offsets = ffi.new("size_t[]", [0, len(tok)])
    out = ffi.new("unsigned char[]", [0xAA] * (rec + len(tok) + 1))
    used = ffi.new("size_t *")
    assert lib.mv_shaken_scan(tok, len(tok), offsets, 1, out, len(out), used) == 0
    assert bytes(out[0:rec]) == bytes(rec) and used[0] == rec + 1 and out[rec] == ord("\n")


def test_signing_input_and_signature_are_the_tokens(signer):
    token = signer.passport("0612345678", "0198765432", iat=NOW)
    fields, iat, signing_input, sig = scan.scan_one(token.encode())
    h, c, s = token.split(".")
    assert signing_input == f"{h}.{c}".encode() and sig == base64.urlsafe_b64decode(s + "==")
    assert iat == NOW and fields[0] == "A" and fields[1] == "33612345678" and fields[3:] == ["33198765432"]
