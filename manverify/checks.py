"""The checks of one call and the verdict across its Identity headers, each rule written once.

Per header, in order (cheap and local first, network next, the signature last):
  1. the value is acceptable (header_text) and cut (identity.py); the profile's parameter rules
  2. the PASSporT decoded (passport.py): strict base64url/JSON, header rules, the claims' meaning
  3. freshness of iat against `now` (stale)
  4. orig against the calling number (orig_fault)
  5. the signer's credential (certs/): trusted, in profile, not revoked, valid at iat
  6. the ES256 signature over the exact received bytes (es256.py, run by the Verifier)
Then across headers (verdict): a SHAKEN PASSporT whose dest is the called number (reaches),
directly or through a chain of div PASSporTs (RFC 8946).

Two paths use these functions. The common path (nearly every call: one full-form SHAKEN header as
signers write it, for the call's own numbers, its token cut by the native scanner) checks it in one
pass; at the first thing that differs it hands the call to the general path, which finds the
precise failure. Up to that point nothing has touched the certificate store or the signature, so
nothing that costs or counts is done twice. A fast path may skip work, never restate a rule:
freshness, number matching, header acceptability and the claims' meaning live here or in
passport.py once. sip.check_format (the transit role) judges a header by check_form, the part of
check_identity that needs neither clock, call nor certificate.
"""
from __future__ import annotations

import email.utils
import time
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import identity, tn
from .certs import CertStore, Credential, CredentialError
from .errors import InvalidNumber, UsageError
from .passport import SUPPORTED_PPT, Claims, Passport, PassportError, check_claims, check_header, decode, \
    rebuild_compact
from .result import HeaderResult, Result, positional

MAN_PARAMS = frozenset(("info", "alg", "ppt"))
MAX_HEADERS = 10  # distinct Identity headers looked at per call; more is an attack, not a call


class Rules(NamedTuple):
    """What a Verifier was configured with, as the checks read it."""

    profile: str
    max_age: float
    allow_div: bool
    max_div: int
    store: CertStore


class Call(NamedTuple):
    """The call's own data, read once: numbers canonical (None when not a number)."""

    orig: Optional[str]
    dest: Optional[str]
    date: Optional[float]
    now: float
    date_error: str = ""


# ---------------------------------------------------------------------- the rules, once each
def header_text(value: Union[str, bytes]) -> str:
    """An Identity header value fit to be parsed: text, ASCII, at most identity.MAX_HEADER_BYTES.
    Raises PassportError (438) for anything else."""
    if type(value) is not str:
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise PassportError(438, "Identity header is not ASCII") from None
    if len(value) > identity.MAX_HEADER_BYTES:
        raise PassportError(438, f"Identity header is {len(value)} bytes (limit {identity.MAX_HEADER_BYTES})")
    if not value.isascii():
        raise PassportError(438, "Identity header is not ASCII")
    return value


def stale(what: str, when: float, now: float, max_age: float) -> Optional[str]:
    """Why `what`, dated `when`, is not fresh at `now` (the 403 detail), or None. The window is
    ±max_age: a clock ahead of ours is as stale as one behind."""
    age = now - when
    if -max_age <= age <= max_age:
        return None
    ago = f"{age:.0f} s in the past" if age >= 0 else f"{-age:.0f} s in the future"
    return f"{what} is {ago} (window ±{max_age} s)"


# The call's calling number in canonical form (E.164, at most 15 digits), or None.
calling_number = tn.try_canonical


def called_number(value: str) -> Optional[str]:
    """The call's called number in canonical form, or None; up to 20 digits, since a French
    number-portability routing prefix may precede the number (tn.same_destination)."""
    try:
        return _canonical(value, max_digits=20)
    except InvalidNumber:
        return None


_canonical = tn.canonical


def orig_fault(claims: Claims, calling: Optional[str]) -> Optional[str]:
    """Why the PASSporT's orig is not the calling number (canonical; the 438 detail), or None."""
    if claims.orig_tn == calling:
        return None
    return f"PASSporT orig {claims.orig_tn} is not the calling number {calling}"


def reaches(called: Optional[str], dest_tns: Sequence[str]) -> bool:
    """Whether the called number (canonical) is one of the signed destinations."""
    return called is not None and (called in dest_tns or any(tn.same_destination(called, d) for d in dest_tns))


def numbers_to_check(identity_: Any, callings: Sequence[str],
                     calleds: Sequence[str]) -> Tuple[Optional[str], Optional[str]]:
    """The calling and the called value a call is verified against, out of those it presents,
    each list in order of preference (sip.py: every P-Asserted-Identity then From, To then the
    Request-URI; the service's dialects: from, to then dest). The first value that is a number,
    unless a PASSporT the call carries names a later one: a token signed for the second PAI or
    for the Request-URI verifies whichever way the call comes in (Kamailio, either HTTP dialect).
    With no number, the first value (the verifier says why it is none); None when there is none.
    Only a call that presents two different numbers on one side has its tokens looked at."""
    origs = _numbered(callings, calling_number) if len(callings) > 1 else None
    dests = _numbered(calleds, called_number) if len(calleds) > 1 else None
    if (origs and len(origs) > 1) or (dests and len(dests) > 1):
        named = _named_claims(identity_)
        if origs:
            origs = [o for o in origs if any(c.orig_tn == o[1] for c in named)] or origs
        if dests:
            dests = [d for d in dests if any(reaches(d[1], c.dest_tns) for c in named)] or dests
    orig = origs[0][0] if origs else (callings[0] if callings else None)
    dest = dests[0][0] if dests else (calleds[0] if calleds else None)
    return orig, dest


def _numbered(values: Sequence[str], canonical) -> List[Tuple[str, str]]:
    """(value, canonical number) of each value that is a number, each number once."""
    out: List[Tuple[str, str]] = []
    for i, v in enumerate(values):
        if type(v) is not str or v in values[:i]:  # the same text twice (To and R-URI alike): once
            continue
        n = canonical(v)
        if n is not None and all(n != m for _, m in out):
            out.append((v, n))
    return out


def _named_claims(identity_: Any) -> List[Claims]:
    """The claims of each header whose form passes (unverified: they only choose which of the
    call's own numbers to verify against)."""
    try:
        values = _identity_values(identity_)
    except UsageError:
        return []
    found = (check_form(v, "rfc") for v in values[:MAX_HEADERS])  # the least strict profile
    return [c.claims for c in found if c.claims is not None]


# ---------------------------------------------------------------------- one header
class Check:
    """One header's progress through the checks (mutable only inside one verify call). The class
    attributes are the starting values: a check sets only what it finds."""

    code: Optional[int] = None
    detail = ""
    ppt: Optional[str] = None
    claims: Optional[Claims] = None
    passport: Optional[Passport] = None
    credential: Optional[Credential] = None
    x5u: Optional[str] = None

    def fail(self, code: int, detail: str) -> "Check":
        self.code, self.detail = code, detail
        return self

    @property
    def pending_signature(self) -> bool:
        return self.code is None and self.credential is not None

    def signature_checked(self, good: bool) -> None:
        if not good:
            self.fail(438, "signature does not verify with the x5u certificate's key")

    def result(self) -> HeaderResult:
        c = self.claims
        spc = self.credential.spc if self.credential else None
        detail = self.detail or "signature verified"
        if c is None:
            return _header_result((self.code is None, self.code, detail, self.ppt, None, None, (), (), None,
                                   None, self.x5u, spc))
        return _header_result((self.code is None, self.code, detail, self.ppt, c.attest, c.orig_tn, c.dest_tns,
                               c.div_tns, c.iat, c.origid, self.x5u, spc))


# Built through tuple.__new__ (the NamedTuples' own __new__ is a Python function that costs as much
# again on the per-call path), in the field order named here and checked at import.
_header_result = positional(HeaderResult, "ok", "sip_code", "detail", "ppt", "attest", "orig_tn", "dest_tns",
                            "div_tns", "iat", "origid", "x5u", "spc")
_result = positional(Result, "ok", "sip_code", "detail", "attest", "orig_tn", "dest_tns", "spc", "x5u", "origid",
                     "iat", "headers")


def check_identity(value: Union[str, bytes], call: Call, rules: Rules) -> Check:
    """The general path for one header value: every check up to the signature."""
    c = check_form(value, rules.profile, call)
    if c.code is not None:
        return c
    claims = c.claims
    fault = stale("iat", claims.iat, call.now, rules.max_age)
    if fault:
        return c.fail(403, fault)
    fault = orig_fault(claims, call.orig)
    if fault:
        return c.fail(438, fault)
    return check_credential(c, call.now, rules)


def check_form(value: Union[str, bytes], profile: str, call: Optional[Call] = None) -> Check:
    """One header value's form, what needs no clock, no call number and no certificate: the value
    acceptable and cut, its parameters by the profile, the PASSporT decoded, its header and claims
    given their meaning. The transit role (sip.check_format) judges headers by this alone; without
    the call (call None) a compact form is judged up to its rebuilding, which needs the call's
    Date and called number (c.claims stays None)."""
    c = Check()
    try:
        h = identity.parse(header_text(value))
    except PassportError as e:
        return c.fail(e.code, e.detail)
    except identity.HeaderSyntaxError as e:
        return c.fail(438, f"malformed Identity header: {e}")
    c.ppt, c.x5u = h.ppt, h.info
    if h.info is None:
        return c.fail(436, "Identity header has no info parameter")
    if profile == "man":
        extra = [k for k, _ in h.params if k not in MAN_PARAMS]
        if extra:
            return c.fail(438, f"Identity header has parameter(s) {extra} beyond info, alg, ppt (MAN)")
    if h.alg is None and profile != "rfc":
        return c.fail(437, "Identity header has no alg parameter")
    if h.alg is not None and h.alg != "ES256":
        return c.fail(437, f"Identity alg {h.alg!r} is not supported; only ES256")
    if profile != "rfc" and h.ppt is None:
        return c.fail(438, "Identity header has no ppt parameter; SHAKEN needs ppt=shaken")
    if h.ppt is not None and h.ppt not in SUPPORTED_PPT:
        return c.fail(438, f"ppt {h.ppt!r} is not supported (shaken, div, div-o)")
    try:
        if h.compact:
            if profile != "rfc":
                raise PassportError(438, "compact form cannot carry SHAKEN claims; the full form is required")
            if call is None:
                return c
            c.passport = pp = _rebuild_compact(h, call)
        else:
            c.passport = pp = decode(h.token)
        c.claims = check_claims(pp.claims, check_header(pp.header, info=h.info, ppt_param=h.ppt))
    except PassportError as e:
        return c.fail(e.code, e.detail)
    return c


def check_credential(c: Check, now: float, rules: Rules) -> Check:
    """The signer's credential for a header whose claims passed: trusted, valid at iat, and
    authorised for the calling number."""
    claims = c.claims
    store = rules.store
    outcome = store.credential(c.x5u, now)
    if isinstance(outcome, CredentialError):
        return c.fail(outcome.code, outcome.detail)
    c.credential = outcome
    if not outcome.not_before <= claims.iat <= outcome.not_after:
        return c.fail(403, "iat is outside the signer certificate's validity period")
    if (outcome.tn_ranges or outcome.tn_ones) and not store.authorizes(outcome, claims.orig_tn):
        return c.fail(437, f"certificate does not authorise calling number {claims.orig_tn}")
    return c


def _rebuild_compact(h: identity.IdentityHeader, call: Call) -> Passport:
    if call.date is None:
        raise PassportError(438, "compact form needs the SIP Date header to rebuild iat")
    if call.dest is None:
        raise PassportError(438, "compact form needs the called number to rebuild dest")
    return rebuild_compact(h.token[2:], info=h.info, ppt=h.ppt, orig=call.orig, dest=call.dest, iat=int(call.date))


# ---------------------------------------------------------------------- the common path
class Shape(NamedTuple):
    """What the common path knows of a call before its token is decoded."""

    token: str
    info: str
    orig: str
    dest: str
    now: float


def common_shape(value: Any, orig: Any, dest: Any, date: Any, now: Any, rules: Rules) -> Optional[Shape]:
    """The common path's first step, everything before the token is decoded: a Shape, or None for
    the general path."""
    if type(value) is not str:
        if type(value) not in (list, tuple) or len(value) != 1 or type(value[0]) is not str:
            return None
        value = value[0]
    if type(orig) is not str or type(dest) is not str:
        return None
    if now is None:
        now = time.time()
    elif type(now) is float:
        if now - now != 0.0:  # inf or NaN: the general path says why
            return None
    elif type(now) is not int or not -_MAX_NOW < now < _MAX_NOW:
        return None
    if date is not None:
        when = parse_date(date) if type(date) is str else None
        if when is None or stale("Date header", when, now, rules.max_age):
            return None
    try:
        common = identity.common_form(header_text(value))
    except PassportError:
        return None
    if common is None or common[2] != "shaken":
        return None
    return _shape((common[0], common[1], orig, dest, float(now)))


_MAX_NOW = 2 ** 63  # an int `now` the common path takes as it is; beyond, the general path says why
_shape = positional(Shape, "token", "info", "orig", "dest", "now")


def common_check(shape: Shape, decoded: Optional[Tuple[Claims, bytes, bytes]],
                 rules: Rules) -> Optional[Tuple[Check, bytes, bytes]]:
    """The common path's checks once the token is decoded (passport.decode_shaken's answer):
    (check, signing input, r||s) with the credential looked up, or None for the general path."""
    if decoded is None:
        return None
    claims, signing_input, signature = decoded
    _, info, orig, dest, now = shape
    if (stale("iat", claims.iat, now, rules.max_age) or orig_fault(claims, calling_number(orig))
            or not reaches(called_number(dest), claims.dest_tns)):
        return None
    c = Check()
    c.ppt, c.x5u, c.claims = "shaken", info, claims
    return check_credential(c, now, rules), signing_input, signature


def common_result(c: Check) -> Result:
    """The verdict for a call whose only header is a SHAKEN PASSporT for the called number."""
    if c.code is None:
        return _passed(c, (c.result(),), "verified")
    return _failure(c.code, c.detail, (c.result(),), c)


# ---------------------------------------------------------------------- the general path
def prepare(identity_: Any, orig: Any, dest: Any, date: Any, now: Any,
            rules: Rules) -> Tuple[Call, List[Check], Optional[Result]]:
    """The call read and every header checked up to its signature: (call, checks, early verdict).
    Raises UsageError for arguments of the wrong type."""
    values = _identity_values(identity_)
    call = read_call(orig, dest, date, now)
    if not values:
        return call, [], _failure(428, "no Identity header")
    if call.orig is None:
        return call, [], _failure(400, f"calling number {orig!r} is not a telephone number"[:200])
    if call.date_error:
        return call, [], _failure(400, call.date_error)
    if call.date is not None:
        fault = stale("Date header", call.date, call.now, rules.max_age)
        if fault:
            return call, [], _failure(403, fault)
    if len(values) == 1:
        return call, [check_identity(values[0], call, rules)], None
    seen = set()
    checks = []
    for v in values:
        if v in seen:  # a proxy added the same header twice
            continue
        seen.add(v)
        if len(checks) == MAX_HEADERS:
            return call, [], _failure(438, f"more than {MAX_HEADERS} distinct Identity headers")
        checks.append(check_identity(v, call, rules))
    return call, checks, None


def read_call(orig: Any, dest: Any, date: Any, now: Any) -> Call:
    if not (type(orig) is str and type(dest) is str and date is None):
        for name, value in (("orig", orig), ("dest", dest), ("date", date)):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{name} must be a str or None, not {type(value).__name__}")
    if now is None:
        now = time.time()
    elif isinstance(now, bool) or not isinstance(now, (int, float)):
        raise UsageError(f"now must be epoch seconds (int or float), not {type(now).__name__}")
    else:
        try:
            now = float(now)
        except OverflowError:
            now = float("inf")
        if now - now != 0.0:  # inf or NaN: every freshness check would pass or fail at random
            raise UsageError(f"now must be a finite number of epoch seconds, not {now!r}")
    when, error = None, ""
    if date is not None:
        when = parse_date(date)
        if when is None:
            error = f"Date header {date[:60]!r} is not an RFC 1123 date"
    return Call(
        orig=calling_number(orig) if orig is not None else None,
        dest=called_number(dest) if dest is not None else None,
        date=when,
        now=now,
        date_error=error,
    )


def _identity_values(value: Any) -> List[Union[str, bytes]]:
    if type(value) is str:  # the common case: one header value
        return [value] if value.strip() else []
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    elif not isinstance(value, (list, tuple)):
        raise UsageError(f"identity must be a str or a list of str, not {type(value).__name__}")
    out = []
    for v in value:
        if not isinstance(v, (str, bytes)):
            raise UsageError(f"identity values must be str, not {type(v).__name__}")
        if v.strip():
            out.append(v)
    return out


def verdict(call: Call, checks: List[Check], rules: Rules) -> Result:
    """The call's verdict once every header's signature is checked."""
    if len(checks) == 1:
        c = checks[0]
        if c.code is None and c.ppt == "shaken" and reaches(call.dest, c.claims.dest_tns):
            return _passed(c, (c.result(),), "verified")
    headers = tuple(c.result() for c in checks)
    shaken = [c for c in checks if c.ppt == "shaken" or (rules.profile == "rfc" and not c.ppt)]
    good = [c for c in shaken if c.code is None]
    for c in good:
        if reaches(call.dest, c.claims.dest_tns):
            return _passed(c, headers, "verified")
    if good and rules.allow_div and call.dest is not None:
        divs = [c for c in checks if c.ppt in ("div", "div-o") and c.code is None]
        for c in good:
            hops = _div_chain(c, divs, call.dest, rules.max_div)
            if hops:
                return _passed(c, headers, f"verified through {hops} div PASSporT(s)")
    if good and call.dest is None:
        return _failure(438, "the called number is missing or not a telephone number", headers, good[0])
    if good:
        c = good[0]
        return _failure(438, f"called number {call.dest} is not in the PASSporT dest "
                             f"{list(c.claims.dest_tns)[:10]}", headers, c)
    if shaken:
        c = shaken[0]
        return _failure(c.code, c.detail, headers, c)
    c = checks[0]
    if c.code is not None:
        return _failure(c.code, c.detail, headers, c)
    return _failure(438, f"no SHAKEN PASSporT among {len(checks)} Identity header(s)", headers)


def _div_chain(start: Check, divs: List[Check], dest: str, max_div: int) -> int:
    """Number of div hops from `start` to `dest`, 0 when there is no such chain. Each div is
    followed once, and each hop compares sets: linear in the numbers the headers carry."""
    frontier = [start]
    used = set()
    for hop in range(1, max_div + 1):
        reached = set()
        for prev in frontier:
            reached.update(prev.claims.dest_tns)
        nxt = []
        for d in divs:
            if id(d) in used or d.claims.orig_tn != start.claims.orig_tn or reached.isdisjoint(d.claims.div_tns):
                continue
            if reaches(dest, d.claims.dest_tns):
                return hop
            used.add(id(d))
            nxt.append(d)
        if not nxt:
            return 0
        frontier = nxt
    return 0


def _passed(c: Check, headers: Tuple[HeaderResult, ...], detail: str) -> Result:
    cl = c.claims
    return _result((True, None, detail, cl.attest, cl.orig_tn, cl.dest_tns, c.credential.spc, c.x5u, cl.origid,
                    cl.iat, headers))


def _failure(code: int, detail: str, headers: Tuple[HeaderResult, ...] = (), c: Optional[Check] = None) -> Result:
    cl = c.claims if c else None
    cred = c.credential if c else None
    return Result(ok=False, sip_code=code, detail=detail,
                  attest=cl.attest if cl else None, orig_tn=cl.orig_tn if cl else None,
                  dest_tns=cl.dest_tns if cl else (), spc=cred.spc if cred else None,
                  x5u=c.x5u if c else None, origid=cl.origid if cl else None,
                  iat=cl.iat if cl else None, headers=headers)


# ---------------------------------------------------------------------- the SIP Date header
_dates: dict = {}  # Date header value -> epoch (or None): every call in the same second shares one


def parse_date(value: str) -> Optional[float]:
    """Epoch seconds of an RFC 1123 Date header value, or None (memoised: calls share the second)."""
    if len(value) > 64:  # an RFC 1123 date is 29 characters; email.utils costs ms on a long value
        return None
    when = _dates.get(value, _dates)
    if when is _dates:
        when = _parse_date(value)
        if len(_dates) >= 256:
            _dates.clear()
        _dates[value] = when
    return when


def _parse_date(value: str) -> Optional[float]:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
