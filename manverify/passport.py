"""PASSporT (RFC 8225) with the SHAKEN (RFC 8588) and div (RFC 8946) extensions.

Decoding is strict: base64url without padding and with canonical trailing bits, UTF-8 JSON
objects, no duplicate keys (escaped spellings included, since they are compared after
unescaping), no NaN/Infinity, at most MAX_JSON_BYTES and MAX_JSON_DEPTH levels of nesting (refused
before the decoder recurses). Decoded JOSE headers are read-only: one is shared by every call that
carries the same header segment. The signature is checked over the exact received bytes
`b64(header) "." b64(claims)`; nothing here re-serialises a received token.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from typing import Any, Dict, Hashable, List, Mapping, NamedTuple, Optional, Tuple

from . import scan as _scan, tn as _tn
from .errors import InvalidNumber
from .result import positional

_B64URL = re.compile(r"[A-Za-z0-9_\-]*\Z")
SUPPORTED_PPT = ("shaken", "div", "div-o")
ATTEST = ("A", "B", "C")
# A header or claims segment's JSON: an Identity header (8,192 bytes) cannot carry more, and
# nothing any PASSporT extension defines nests deeper than a few levels (rcd's jcd: 4).
MAX_JSON_BYTES = 8192
MAX_JSON_DEPTH = 32
MAX_JSON_CONTAINERS = 256  # arrays and objects in one segment (decoding thousands costs milliseconds)
# Telephone numbers in one PASSporT's dest and div claims. Signers put one (a forked call a few);
# each costs up to ~10 us to canonicalise, and ten headers of hundreds would cost tens of ms a call.
MAX_CLAIM_NUMBERS = 32
# iat, the claims' one number: a 64-bit signed integer, as every peer stores a NumericDate. Beyond
# it, arithmetic on it overflows (a float `now` minus 10**400) and serialisers refuse it.
MIN_IAT, MAX_IAT = -2 ** 63, 2 ** 63 - 1


class PassportError(Exception):
    """A token or claim is wrong; `code` is the SIP response code it earns."""

    def __init__(self, code: int, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_TO_STD = bytes.maketrans(b"-_", b"+/")
_PAD = ("", None, "==", "=")
# A final character that leaves no stray bits: 2 or 4 spare bits must be zero (RFC 4648 §3.5).
_CLEAN_LAST = (None, None, frozenset("AQgw"), frozenset("AEIMQUYcgkosw048"))


if sys.version_info >= (3, 11):
    # strict_mode refuses anything outside the standard alphabet; the three characters that
    # are in it but not in base64url's are refused first.
    def _alphabet_ok(text: str) -> bool:
        return "+" not in text and "/" not in text and "=" not in text

    def _a2b(data: bytes) -> bytes:
        return binascii.a2b_base64(data, strict_mode=True)
else:  # pragma: no cover - older Pythons
    def _alphabet_ok(text: str) -> bool:
        return _B64URL.match(text) is not None

    _a2b = binascii.a2b_base64


def b64decode(text: str, what: str) -> bytes:
    """Strict base64url: alphabet [A-Za-z0-9_-], no padding, canonical trailing bits."""
    rem = len(text) % 4
    if rem == 1 or not _alphabet_ok(text):
        raise PassportError(438, f"{what} is not unpadded base64url")
    if rem and text[-1] not in _CLEAN_LAST[rem]:
        raise PassportError(438, f"{what} has non-zero trailing bits (non-canonical base64url)")
    try:
        return _a2b((text + _PAD[rem]).encode("ascii").translate(_TO_STD))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise PassportError(438, f"{what} is not unpadded base64url") from None


def canonical_json(obj: Any) -> bytes:
    """RFC 8225 §9: keys sorted at every level, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _no_duplicates(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return d


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
# A JSON string (closed, or running to the end: the decoder refuses that later). Each character is
# consumed once, so removing them all is linear whatever the text.
_STRING = re.compile(r'"(?:[^"\\]|\\.?)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


def _nesting_fault(text: str, what: str) -> Optional[str]:
    """Why the arrays and objects of a JSON text are too many or nest too deep (brackets inside
    strings do not count), or None; found without recursing: each round removes the innermost
    pairs, one level of every branch."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:  # every real token: no scan at all
        return None
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) > 2 * MAX_JSON_CONTAINERS:
        return f"{what} has more than {MAX_JSON_CONTAINERS} arrays and objects"
    for _ in range(MAX_JSON_DEPTH + 1):
        if not brackets:
            return None
        inner_removed = _EMPTY_PAIR.sub("", brackets)
        if len(inner_removed) == len(brackets):  # unbalanced: not JSON, the decoder says why
            return None
        brackets = inner_removed
    return f"{what} is nested deeper than {MAX_JSON_DEPTH} levels"


def _json_object(raw: bytes, what: str) -> Dict[str, Any]:
    if len(raw) > MAX_JSON_BYTES:
        raise PassportError(438, f"{what} is {len(raw)} bytes of JSON (limit {MAX_JSON_BYTES})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PassportError(438, f"{what} is not UTF-8") from None
    # The decoder recurses once per level, and so would anything formatting a value later
    # (repr in an error detail) from a caller's deeper stack: refuse deep nesting first.
    fault = _nesting_fault(text, what)
    if fault:
        raise PassportError(438, fault)
    try:
        # scan_once is decode() minus the whitespace skipping; most tokens have none.
        obj, end = _DECODER.scan_once(text, 0)
        if end != len(text):
            raise StopIteration
    except StopIteration:
        obj = None
    except (ValueError, RecursionError) as e:  # a caller's own stack may be nearly spent
        raise PassportError(438, f"{what} is not valid JSON: {e}") from None
    if obj is None:
        try:
            obj = _DECODER.decode(text)
        except (ValueError, RecursionError) as e:
            raise PassportError(438, f"{what} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise PassportError(438, f"{what} is not a JSON object")
    return obj


class Passport(NamedTuple):
    """A decoded PASSporT with its signing input and raw r||s signature; claims not yet trusted."""

    header: Mapping[str, Any]  # read-only (a FrozenObject, arrays as tuples)
    claims: Dict[str, Any]
    signing_input: bytes
    signature: bytes


class FrozenObject(dict):
    """A decoded JSON object that cannot be changed: a JOSE header is shared by every call that
    carries the same segment, so no caller may alter what the next one is judged on."""

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("a decoded PASSporT header is read-only (copy it with dict())")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def copy(self) -> Dict[str, Any]:
        return dict(self)

    def __reduce__(self):
        return FrozenObject, (dict(self),)


def _frozen(value: Any) -> Any:
    """value with every object read-only and every array a tuple (nesting is bounded already)."""
    if type(value) is dict:
        return FrozenObject({k: _frozen(v) for k, v in value.items()})
    if type(value) is list:
        return tuple(_frozen(v) for v in value)
    return value


class _Memo:
    """A memo bounded by the text of what it holds (its keys' length): emptied when full. Junk
    arrives as fast as real calls, so it must cost a bounded amount of memory, not a number of
    entries (4,096 junk headers of 8 KB once held half a gigabyte)."""

    __slots__ = ("entries", "size", "limit", "largest")

    def __init__(self, limit: int, largest: int):
        self.entries: Dict[Hashable, Any] = {}
        self.size, self.limit, self.largest = 0, limit, largest

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if size > self.largest:  # no signer writes such a thing: not worth remembering
            return
        if self.size + size > self.limit:
            self.entries.clear()
            self.size = 0
        self.entries[key] = value
        self.size += size


# Decoded headers repeat for every call a signer makes: memoise the pure decode of them. A real
# SHAKEN header segment is 150-400 characters with string members only; a nested one is not
# remembered (decoded objects can be tens of times larger than their text).
_headers = _Memo(limit=512 * 1024, largest=1024)


def decode_jws(token: str) -> Tuple[Mapping[str, Any], bytes, bytes, bytes]:
    """The JWS compact layer: (JOSE header, payload bytes, signing input, raw 64-byte signature).

    Raises PassportError (438) on any encoding fault. The header is a memoised pure decode.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise PassportError(438, f"token has {len(parts)} parts, expected 3")
    h64, c64, s64 = parts
    header = _header(h64)
    payload = b64decode(c64, "PASSporT claims")
    return header, payload, (h64 + "." + c64).encode("ascii"), _signature(s64, header)


def _signature(s64: str, header: Mapping[str, Any]) -> bytes:
    """The raw r||s of an ES256 signature segment. The algorithm is pinned before the signature's
    shape is judged: an HS256 token's 32-byte MAC is an unsupported credential (437), not a
    malformed ES256 signature."""
    sig = b64decode(s64, "signature")
    if len(sig) != 64:
        _pin_alg(header)
        raise PassportError(
            438, f"signature is {len(sig)} bytes; ES256 needs raw r||s of 64 bytes (DER is not allowed)"
        )
    return sig


def _header(h64: str) -> Mapping[str, Any]:
    """The decoded JOSE header segment, read-only and memoised (a pure decode); PassportError as
    decode()."""
    header = _headers.entries.get(h64)
    if header is None:
        header = _frozen(_json_object(b64decode(h64, "PASSporT header"), "PASSporT header"))
        if all(type(v) is str for v in header.values()):
            _headers.put(h64, header, len(h64))
    return header


def decode(token: str) -> Passport:
    """Split and decode a full-form token; raise PassportError (438) on any encoding fault."""
    header, payload, signing_input, sig = decode_jws(token)
    return Passport(header, _json_object(payload, "PASSporT claims"), signing_input, sig)


def rebuild_compact(
    signature64: str, *, info: str, ppt: Optional[str], orig: str, dest: str, iat: int
) -> Passport:
    """Compact form (RFC 8224 §5.2.1): header and claims are rebuilt from the SIP request."""
    header = {"alg": "ES256", "typ": "passport", "x5u": info}
    if ppt:
        header["ppt"] = ppt
    claims = {"dest": {"tn": [dest]}, "iat": iat, "orig": {"tn": orig}}
    signing_input = (b64encode(canonical_json(header)) + "." + b64encode(canonical_json(claims))).encode()
    return Passport(header, claims, signing_input, _signature(signature64, header))


def _pin_alg(header: Mapping[str, Any]) -> None:
    """Before any cryptography and before the signature is looked at: the token never chooses
    the primitive."""
    if "alg" not in header:
        raise PassportError(436, "PASSporT header lacks alg")
    if header["alg"] != "ES256":
        raise PassportError(437, f"PASSporT alg {header['alg']!r} is not supported; only ES256")


def check_header(header: Mapping[str, Any], *, info: Optional[str], ppt_param: Optional[str]) -> str:
    """The PASSporT JOSE header rules; returns the ppt ("" for a base PASSporT)."""
    # MAN's table: no alg/ppt/typ/x5u in the PASSporT header is 436. ppt is required when the
    # Identity header names one (RFC 8225 §8.1: they must be equal); a base PASSporT has none.
    missing = [k for k in ("alg", "ppt", "typ", "x5u") if k not in header and (k != "ppt" or ppt_param)]
    if missing:
        raise PassportError(436, f"PASSporT header lacks {', '.join(missing)}")
    _pin_alg(header)
    if header["typ"] != "passport":
        raise PassportError(437, f"PASSporT typ {header['typ']!r} is not 'passport'")
    if "crit" in header:
        raise PassportError(438, "PASSporT header has a crit parameter (no critical extension is supported)")
    ppt = header.get("ppt", "")
    if not isinstance(ppt, str):
        raise PassportError(438, "PASSporT ppt is not a string")
    if (ppt_param or "") != ppt:
        raise PassportError(
            438, f"Identity ppt parameter {ppt_param!r} does not match the PASSporT ppt {ppt or None!r}"
        )
    x5u = header["x5u"]
    if not isinstance(x5u, str) or not x5u:
        raise PassportError(436, "PASSporT x5u is not a URL string")
    if info is not None and x5u != info:
        raise PassportError(436, f"PASSporT x5u {x5u!r} differs from the Identity info URL {info!r}")
    return ppt


class Claims(NamedTuple):
    """The claims a verifier compares with the call, canonicalised."""

    orig_tn: str
    dest_tns: Tuple[str, ...]
    iat: int
    attest: Optional[str] = None
    origid: Optional[str] = None
    div_tns: Tuple[str, ...] = ()


def _number(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise PassportError(438, f"{what} is not a string")
    try:
        return _canonical(value, max_digits=20)
    except InvalidNumber:
        raise PassportError(438, f"{what} {value[:40]!r} is not a telephone number") from None


_canonical = _tn.canonical


def _tn_values(obj: Any, what: str, many: bool) -> list:
    """The numbers an orig/dest/div claim object carries, as sent (none for a dest of uris)."""
    if not isinstance(obj, dict) or not obj:
        raise PassportError(438, f"{what} claim is not a JSON object")
    unknown = set(obj) - {"tn", "uri"}
    if unknown:
        raise PassportError(438, f"{what} claim has unsupported member(s) {sorted(unknown)[:10]}"[:200])
    if not many:
        if len(obj) != 1:
            raise PassportError(438, f"{what} claim must have exactly one of tn or uri")
        value = obj.get("tn")
        if value is None:
            raise PassportError(438, f"{what} identity is a uri; a telephone number (tn) is required")
        return [value]
    tns = obj.get("tn")
    if tns is None:
        if not isinstance(obj.get("uri"), list) or not obj["uri"]:
            raise PassportError(438, f"{what}.uri is not a non-empty array")
        return []
    if not isinstance(tns, list) or not tns:
        raise PassportError(438, f"{what}.tn is not a non-empty array of numbers")
    return tns


def _div(obj: Any) -> list:
    # RFC 8946 §3 spells the original destination as one string ({"tn":"12155551213"}); some
    # signers send an array as for dest. Both carry the same meaning.
    if isinstance(obj, dict) and isinstance(obj.get("tn"), str):
        obj = dict(obj, tn=[obj["tn"]])
    return _tn_values(obj, "div", many=True)


def _meaning(ppt: str, iat: Any, orig: Any, dests: Any, attest: Any = None, origid: Any = None,
             divs: Any = ()) -> Claims:
    """What the claim values mean, judged once for every decoder: the general one (check_claims),
    the usual shape's (_usual_claims) and the native scanner's (claims_from_scan). attest and
    origid are judged for ppt "shaken" only. PassportError (438) names the first wrong value."""
    if type(iat) is not int:  # bool is an int subclass; floats and strings are not NumericDate ints
        raise PassportError(438, f"iat must be a JSON integer, not {type(iat).__name__} {iat!r}"[:120])
    if not MIN_IAT <= iat <= MAX_IAT:  # the value is not shown: thousands of digits say nothing
        raise PassportError(438, f"iat does not fit a 64-bit signed integer ({iat.bit_length()} bits)")
    if len(dests) + len(divs) > MAX_CLAIM_NUMBERS:
        raise PassportError(438, f"PASSporT dest and div carry {len(dests) + len(divs)} numbers "
                                 f"(limit {MAX_CLAIM_NUMBERS})")
    orig_tn = _number(orig, "orig.tn")
    # one dest is what signers send: a tuple of one, without a comprehension's frame
    dest_tns = (_number(dests[0], "dest.tn"),) if len(dests) == 1 else tuple([_number(v, "dest.tn") for v in dests])
    if ppt == "shaken":
        if attest not in ATTEST:
            raise PassportError(438, f"attest {attest!r} is not A, B or C"[:120])
        if not isinstance(origid, str) or not origid:
            raise PassportError(438, "origid is not a non-empty string")
    else:
        attest = origid = None
    div_tns = tuple([_number(v, "div.tn") for v in divs]) if divs else ()
    return _claims((orig_tn, dest_tns, iat, attest, origid, div_tns))


_claims = positional(Claims, "orig_tn", "dest_tns", "iat", "attest", "origid", "div_tns")


def _usual_claims(claims: Dict[str, Any]) -> Optional[Claims]:
    """The claims of the shape every SHAKEN signer emits, read without the general machinery;
    None when they need the general path (which then gives the precise error, if any)."""
    orig, dest = claims.get("orig"), claims.get("dest")
    if type(orig) is not dict or len(orig) != 1 or type(dest) is not dict or len(dest) != 1:
        return None
    dests = dest.get("tn")
    if type(dests) is not list or not dests or "attest" not in claims or "origid" not in claims:
        return None
    try:
        return _meaning("shaken", claims.get("iat"), orig.get("tn"), dests, claims["attest"], claims["origid"])
    except PassportError:
        return None


def claims_from_scan(fields: List[str], iat: int) -> Optional[Claims]:
    """The claims the native scanner cut out (scan.py: attest, orig, origid, then each dest), or
    None for the general path."""
    if len(fields) < 4:
        return None
    try:
        return _meaning("shaken", iat, fields[1], fields[3:], fields[0], fields[2])
    except PassportError:
        return None


# (header segment, info URL) pairs whose header passed check_header for ppt "shaken".
_shaken_headers = _Memo(limit=512 * 1024, largest=2048)
_shaken_known = _shaken_headers.entries  # the same dict for good (emptied, never replaced): one lookup less


def _shaken_header(h64: str, info: str) -> bool:
    if (h64, info) in _shaken_known:
        return True
    try:
        if check_header(_header(h64), info=info, ppt_param="shaken") != "shaken":
            return False
    except PassportError:
        return False
    _shaken_headers.put((h64, info), True, len(h64) + len(info))
    return True


def decode_shaken(token: str, info: str) -> Optional[Tuple[Claims, bytes, bytes]]:
    """(claims, signing input, r||s) for the common case: a full-form token whose header passes
    check_header for ppt "shaken" and x5u = info, with claims in the shape every SHAKEN signer
    emits. None when anything differs; decode(), check_header() and check_claims() then give
    the precise error. Pure, like decode()."""
    if not _scan.AVAILABLE:  # not built, or MANVERIFY_BACKEND=cryptography
        return _decode_shaken_python(token, info)
    return _from_scan(token, info, _scan.scan_one(token.encode("ascii", "replace")))  # non-ASCII: not base64url


def decode_shaken_many(calls) -> List[Optional[Tuple[Claims, bytes, bytes]]]:
    """decode_shaken() for each (ASCII token, info URL): one native scan for them all when the
    engine is built (scan.py), passport.py's own decoding otherwise."""
    if _scan.AVAILABLE:
        scanned = _scan.scan([t.encode("ascii", "replace") for t, _ in calls])  # non-ASCII: not base64url
        return [_from_scan(t, i, got) for (t, i), got in zip(calls, scanned)]
    return [_decode_shaken_python(t, i) for t, i in calls]


def _from_scan(token: str, info: str, got) -> Optional[Tuple[Claims, bytes, bytes]]:
    """decode_shaken's answer from what the scanner made of the token (None: not the shape)."""
    if got is None or not _shaken_header(token.partition(".")[0], info):
        return None
    claims = claims_from_scan(got[0], got[1])
    return None if claims is None else (claims, got[2], got[3])


def _decode_shaken_python(token: str, info: str) -> Optional[Tuple[Claims, bytes, bytes]]:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    h64, c64, s64 = parts
    if not _shaken_header(h64, info):
        return None
    try:
        claims = _usual_claims(_json_object(b64decode(c64, "PASSporT claims"), "PASSporT claims"))
        sig = b64decode(s64, "signature")
    except PassportError:
        return None
    if claims is None or len(sig) != 64:
        return None
    return claims, (h64 + "." + c64).encode("ascii"), sig


def check_claims(claims: Dict[str, Any], ppt: str) -> Claims:
    """Mandatory claims and their types for the given ppt (RFC 8225 §5, RFC 8588, RFC 8946)."""
    if ppt == "shaken":
        usual = _usual_claims(claims)
        if usual is not None:
            return usual
    required = ["dest", "iat", "orig"]
    if ppt == "shaken":
        required += ["attest", "origid"]
    elif ppt in ("div", "div-o"):
        required.append("div")
    missing = [k for k in required if k not in claims]
    if missing:
        raise PassportError(438, f"PASSporT lacks mandatory claim(s): {', '.join(missing)}")
    orig = _tn_values(claims["orig"], "orig", many=False)[0]
    dests = _tn_values(claims["dest"], "dest", many=True)
    divs = _div(claims["div"]) if ppt in ("div", "div-o") else ()
    return _meaning(ppt, claims["iat"], orig, dests, claims.get("attest"), claims.get("origid"), divs)
