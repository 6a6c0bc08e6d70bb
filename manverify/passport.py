"""PASSporT (RFC 8225) with the SHAKEN (RFC 8588) and div (RFC 8946) extensions.

Decoding is strict: base64url without padding and with canonical trailing bits, UTF-8 JSON
objects, no duplicate keys (escaped spellings included, since they are compared after
unescaping), no NaN/Infinity. The signature is checked over the exact received bytes
`b64(header) "." b64(claims)`; nothing here re-serialises a received token.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from . import scan as _scan, tn as _tn

_B64URL = re.compile(r"[A-Za-z0-9_\-]*\Z")
SUPPORTED_PPT = ("shaken", "div", "div-o")
ATTEST = ("A", "B", "C")


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


def _json_object(raw: bytes, what: str) -> Dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PassportError(438, f"{what} is not UTF-8") from None
    try:
        # scan_once is decode() minus the whitespace skipping; most tokens have none.
        obj, end = _DECODER.scan_once(text, 0)
        if end != len(text):
            raise StopIteration
    except StopIteration:
        obj = None
    except (ValueError, RecursionError) as e:
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

    header: Dict[str, Any]
    claims: Dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def ppt(self) -> Optional[str]:
        return self.header.get("ppt")

    @property
    def x5u(self) -> Optional[str]:
        return self.header.get("x5u")


# Decoded headers repeat for every call a signer makes: memoise the pure decode of them.
_header_memo: Dict[str, Dict[str, Any]] = {}
_HEADER_MEMO_MAX = 4096


def decode_jws(token: str) -> Tuple[Dict[str, Any], bytes, bytes, bytes]:
    """The JWS compact layer: (JOSE header, payload bytes, signing input, raw 64-byte signature).

    Raises PassportError (438) on any encoding fault. The header is a memoised pure decode.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise PassportError(438, f"token has {len(parts)} parts, expected 3")
    h64, c64, s64 = parts
    header = _header(h64)
    payload = b64decode(c64, "PASSporT claims")
    sig = b64decode(s64, "signature")
    if len(sig) != 64:
        raise PassportError(
            438, f"signature is {len(sig)} bytes; ES256 needs raw r||s of 64 bytes (DER is not allowed)"
        )
    return header, payload, (h64 + "." + c64).encode("ascii"), sig


def _header(h64: str) -> Dict[str, Any]:
    """The decoded JOSE header segment, memoised (a pure decode); PassportError as decode()."""
    header = _header_memo.get(h64)
    if header is None:
        header = _json_object(b64decode(h64, "PASSporT header"), "PASSporT header")
        if len(_header_memo) >= _HEADER_MEMO_MAX:
            _header_memo.clear()
        _header_memo[h64] = header
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
    sig = b64decode(signature64, "signature")
    if len(sig) != 64:
        raise PassportError(438, f"signature is {len(sig)} bytes; ES256 needs raw r||s of 64 bytes")
    return Passport(header, claims, signing_input, sig)


def check_header(header: Dict[str, Any], *, info: Optional[str], ppt_param: Optional[str]) -> str:
    """The PASSporT JOSE header rules; returns the ppt ("" for a base PASSporT)."""
    missing = [k for k in ("alg", "typ", "x5u") if k not in header]
    if missing:
        raise PassportError(436, f"PASSporT header lacks {', '.join(missing)}")
    alg = header["alg"]
    if alg != "ES256":
        # Pinned before any cryptography: the token never chooses the primitive.
        raise PassportError(437, f"PASSporT alg {alg!r} is not supported; only ES256")
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
    canon = _tn.try_canonical(value, max_digits=20)
    if canon is None:
        raise PassportError(438, f"{what} {value[:40]!r} is not a telephone number")
    return canon


def _tn_object(obj: Any, what: str, many: bool) -> Tuple[str, ...]:
    if not isinstance(obj, dict) or not obj:
        raise PassportError(438, f"{what} claim is not a JSON object")
    unknown = set(obj) - {"tn", "uri"}
    if unknown:
        raise PassportError(438, f"{what} claim has unsupported member(s) {sorted(unknown)}")
    if not many:
        if len(obj) != 1:
            raise PassportError(438, f"{what} claim must have exactly one of tn or uri")
        value = obj.get("tn")
        if value is None:
            raise PassportError(438, f"{what} identity is a uri; a telephone number (tn) is required")
        return (_number(value, f"{what}.tn"),)
    tns = obj.get("tn")
    if tns is None:
        if not isinstance(obj.get("uri"), list) or not obj["uri"]:
            raise PassportError(438, f"{what}.uri is not a non-empty array")
        return ()
    if not isinstance(tns, list) or not tns:
        raise PassportError(438, f"{what}.tn is not a non-empty array of numbers")
    return tuple(_number(v, f"{what}.tn") for v in tns)


def _div(obj: Any) -> Tuple[str, ...]:
    # RFC 8946 §3 spells the original destination as one string ({"tn":"12155551213"}); some
    # signers send an array as for dest. Both carry the same meaning.
    if isinstance(obj, dict) and isinstance(obj.get("tn"), str):
        obj = dict(obj, tn=[obj["tn"]])
    return _tn_object(obj, "div", many=True)


def _plain_tn(value: Any) -> Optional[str]:
    """value when it is already a canonical number ("33612345678"), else None (general path)."""
    if type(value) is str and 0 < len(value) <= 15 and value.isdigit() and value.isascii() and value[0] != "0":
        return value
    return None


def _fast_shaken(claims: Dict[str, Any]) -> Optional[Claims]:
    """The shape every SHAKEN signer emits, checked without the general machinery; None when the
    claims need the general path (which then gives the precise error, if any)."""
    orig, dest, iat = claims.get("orig"), claims.get("dest"), claims.get("iat")
    if (type(iat) is not int or type(orig) is not dict or len(orig) != 1 or type(dest) is not dict
            or len(dest) != 1 or type(dest.get("tn")) is not list):
        return None
    return _shaken_claims(claims.get("attest"), orig.get("tn"), claims.get("origid"), dest["tn"], iat)


def claims_from_scan(fields, iat: int) -> Optional[Claims]:
    """_fast_shaken's judgement of what the native scanner cut out (scan.py): fields are attest,
    orig, origid, then each dest. The same claims, or None for the general path."""
    return _shaken_claims(fields[0], fields[1], fields[2], fields[3:], iat)


def _shaken_claims(attest: Any, orig: Any, origid: Any, dests: list, iat: int) -> Optional[Claims]:
    """The claim values of the usual shape, as both fast decoders judge them: attest A/B/C, a
    non-empty origid, plain canonical numbers for orig and one or more dests."""
    if attest not in ATTEST or type(origid) is not str or not origid or _plain_tn(orig) is None or not dests:
        return None
    for d in dests:
        if _plain_tn(d) is None:
            return None
    return _new_tuple(Claims, (orig, tuple(dests), iat, attest, origid, ()))  # Claims(...) at half the cost


_new_tuple = tuple.__new__


# (header segment, info URL) pairs whose header passed check_header for ppt "shaken".
_shaken_headers: Dict[Tuple[str, str], bool] = {}


def _shaken_header(h64: str, info: str) -> bool:
    if (h64, info) in _shaken_headers:
        return True
    try:
        if check_header(_header(h64), info=info, ppt_param="shaken") != "shaken":
            return False
    except PassportError:
        return False
    if len(_shaken_headers) >= _HEADER_MEMO_MAX:
        _shaken_headers.clear()
    _shaken_headers[(h64, info)] = True
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
        claims = _fast_shaken(_json_object(b64decode(c64, "PASSporT claims"), "PASSporT claims"))
        sig = b64decode(s64, "signature")
    except PassportError:
        return None
    if claims is None or len(sig) != 64:
        return None
    return claims, (h64 + "." + c64).encode("ascii"), sig


def check_claims(claims: Dict[str, Any], ppt: str) -> Claims:
    """Mandatory claims and their types for the given ppt (RFC 8225 §5, RFC 8588, RFC 8946)."""
    if ppt == "shaken":
        fast = _fast_shaken(claims)
        if fast is not None:
            return fast
    required = ["dest", "iat", "orig"]
    if ppt == "shaken":
        required += ["attest", "origid"]
    elif ppt in ("div", "div-o"):
        required.append("div")
    missing = [k for k in required if k not in claims]
    if missing:
        raise PassportError(438, f"PASSporT lacks mandatory claim(s): {', '.join(missing)}")
    iat = claims["iat"]
    if type(iat) is not int:  # bool is an int subclass; floats and strings are not NumericDate ints
        raise PassportError(438, f"iat must be a JSON integer, not {type(iat).__name__} {iat!r}"[:120])
    orig = _tn_object(claims["orig"], "orig", many=False)[0]
    dest = _tn_object(claims["dest"], "dest", many=True)
    attest = origid = None
    div: Tuple[str, ...] = ()
    if ppt == "shaken":
        attest = claims["attest"]
        if attest not in ATTEST:
            raise PassportError(438, f"attest {attest!r} is not A, B or C"[:120])
        origid = claims["origid"]
        if not isinstance(origid, str) or not origid:
            raise PassportError(438, "origid is not a non-empty string")
    elif ppt in ("div", "div-o"):
        div = _div(claims["div"])
    return Claims(orig, dest, iat, attest, origid, div)
