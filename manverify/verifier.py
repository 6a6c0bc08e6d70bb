"""The verification service: one call's Identity header(s) in, one Result out.

Per header, in order (cheap and local first, network next, the signature last):
  1. cut the header (identity.py) and apply the receiving profile's parameter rules
  2. decode the PASSporT (passport.py): strict base64url/JSON, header rules, mandatory claims
  3. freshness of iat (and of the SIP Date) against `now`
  4. orig against the calling number
  5. the signer's credential (certs/): trusted, in profile, not revoked, valid now
  6. the ES256 signature over the exact received bytes (es256.py)
Then across headers: a SHAKEN PASSporT whose dest is the called number, directly or through a
chain of div PASSporTs (RFC 8946).
"""
from __future__ import annotations

import email.utils
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping as _AnyMapping
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import es256, identity, tn
from .checks import header_text
from .certs import CertStore, Credential, CredentialError
from .errors import ConfigError, UsageError
from .passport import (
    SUPPORTED_PPT,
    Claims,
    Passport,
    PassportError,
    check_claims,
    check_header,
    decode,
    decode_shaken,
    decode_shaken_many,
    rebuild_compact,
)
from .result import HeaderResult, Result
from .reload import Watch, config_files
from .stats import Stats, track

PROFILES = ("man", "atis", "rfc")
MAN_PARAMS = frozenset(("info", "alg", "ppt"))
_new_tuple = tuple.__new__  # builds a NamedTuple from its fields in order, skipping its __new__
MAX_HEADERS = 10  # distinct Identity headers looked at per call; more is an attack, not a call
_CALL_KEYS = frozenset(("identity", "orig", "dest", "date", "now"))


class _Check:
    """One header's progress through the checks (mutable only inside one verify call)."""

    __slots__ = ("value", "code", "detail", "ppt", "claims", "passport", "credential", "x5u")

    def __init__(self, value: str):
        self.value = value
        self.code: Optional[int] = None
        self.detail = ""
        self.ppt: Optional[str] = None
        self.claims: Optional[Claims] = None
        self.passport: Optional[Passport] = None
        self.credential: Optional[Credential] = None
        self.x5u: Optional[str] = None

    def fail(self, code: int, detail: str) -> "_Check":
        self.code, self.detail = code, detail
        return self

    @property
    def pending_signature(self) -> bool:
        return self.code is None and self.credential is not None

    def result(self) -> HeaderResult:
        c = self.claims
        cred = self.credential
        # In field order, through tuple.__new__: the NamedTuple's own __new__ (a Python function)
        # costs as much again on the per-call path.
        if c is None:
            return _new_tuple(HeaderResult, (self.code is None, self.code, self.detail or "signature verified",
                                             self.ppt, None, None, (), (), None, None, self.x5u,
                                             cred.spc if cred else None))
        return _new_tuple(HeaderResult, (
            self.code is None,                  # ok
            self.code,                          # sip_code
            self.detail or "signature verified",  # detail
            self.ppt,                           # ppt
            c.attest,                           # attest
            c.orig_tn,                          # orig_tn
            c.dest_tns,                         # dest_tns
            c.div_tns,                          # div_tns
            c.iat,                              # iat
            c.origid,                           # origid
            self.x5u,                           # x5u
            cred.spc if cred else None,         # spc
        ))


class _Call(NamedTuple):
    orig: Optional[str]  # canonical, None when not a number
    dest: Optional[str]
    date: Optional[float]
    now: float
    date_error: str = ""


class Verifier:
    """Verifies calls against a fixed trust configuration. Build once per process, then share.

    See API.md for the contract. Extra keyword options:
      allow_div      follow RFC 8946 div PASSporTs to a retargeted destination (default True)
      max_div        longest div chain followed (MAN: 5)
      threads        worker threads for verify_many (default: the number of CPUs)
      store          a ready CertStore (then the certificate keywords must be left out)
      reload         re-read the trust anchors, CRL signers and the local copy's manifest when
                     their files change (looked at about once a second in the background; a bad
                     file keeps the store in use and logs why). See manverify.reload.
      **cert_options passed to CertStore (fetch timeouts, caches, CRL policy, ...)
    """

    def __init__(
        self,
        trust_anchors: Any = None,
        certificates: Any = None,
        crls: Any = None,
        cache_dir: Optional[str] = None,
        max_age: int = 60,
        allow_http: bool = False,
        profile: str = "man",
        *,
        allow_div: bool = True,
        max_div: int = 5,
        threads: Optional[int] = None,
        store: Optional[CertStore] = None,
        reload: bool = False,
        **cert_options: Any,
    ):
        if profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
        if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age <= 0:
            raise ConfigError(f"max_age must be a positive number of seconds, not {max_age!r}")
        if isinstance(max_div, bool) or not isinstance(max_div, int) or max_div < 0:
            raise ConfigError(f"max_div must be a non-negative int, not {max_div!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive int, not {threads!r}")
        if store is None:
            if trust_anchors is None:
                raise ConfigError("trust_anchors is required (no implicit system roots)")
            options = dict(trust_anchors=trust_anchors, certificates=certificates, crls=crls, cache_dir=cache_dir,
                           allow_http=allow_http, profile=profile, **cert_options)
            store = CertStore(**options)
        elif trust_anchors is not None or certificates is not None or crls is not None or cert_options:
            raise ConfigError("pass either store= or the certificate options, not both")
        elif reload:
            raise ConfigError("reload=True rebuilds the store from the certificate options: pass them, not store=")
        self.store = store
        self.profile = profile
        self.max_age = max_age
        self.allow_div = allow_div
        self.max_div = max_div
        self.threads = threads or os.cpu_count() or 1
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._stats = Stats()
        track(self)
        self._watch = None
        if reload:
            self._watch = Watch(config_files(trust_anchors, certificates, cert_options.get("crl_signers")),
                                lambda: CertStore(**options), self._use_store, "manverify trust configuration")

    def _use_store(self, store: CertStore) -> None:
        self.store = store  # one assignment: a call uses the old store or the new one

    # ------------------------------------------------------------------ the per-call path
    def verify(
        self,
        identity: Union[str, bytes, Sequence[Union[str, bytes]], None],
        orig: Optional[str] = None,
        dest: Optional[str] = None,
        date: Optional[str] = None,
        now: Optional[float] = None,
    ) -> Result:
        """Verify one call. Never raises for call data; raises UsageError for wrong argument types,
        and EngineError when the native engine refuses its own arguments (a fault in manverify or
        its build, never a verdict: answer 500 and log it)."""
        shape = self._common_shape(identity, orig, dest, date, now)
        if shape is not None:
            common = self._common_claims(shape, decode_shaken(shape[1], shape[2]))
            if common is not None:
                c, signing_input, signature = common
                if c.code is None:
                    self._check_signature(c, es256.verify(c.credential.key, signing_input, signature))
                return self._stats.record(_single(c))
        return self._stats.record(self._verify_general(identity, orig, dest, date, now))

    def _verify_general(self, identity, orig, dest, date, now) -> Result:
        call, checks, early = self._prepare(identity, orig, dest, date, now)
        if early is not None:
            return early
        for c in checks:
            if c.pending_signature:
                self._check_signature(c, es256.verify(c.credential.key, c.passport.signing_input,
                                                      c.passport.signature))
        return self._verdict(call, checks)

    def verify_many(self, calls: Iterable[Mapping[str, Any]]) -> List[Result]:
        """Verify a batch (mappings with verify()'s keywords); results in input order.

        Worker threads each take whole chunks: parse and check in Python, then one native call
        for the chunk's signatures, which releases the GIL — so one thread's C work overlaps the
        other's Python work, and the batch uses every core.

        Raises as verify() does. An EngineError in any chunk is raised from here, for the whole
        batch: no call gets a verdict the engine did not give.
        """
        calls = list(calls)
        for call in calls:
            # a dict's keys view compares as a set without building one: the usual call is cheap
            if type(call) is dict and call.keys() <= _CALL_KEYS:
                continue
            if not isinstance(call, _AnyMapping):
                raise UsageError(f"each call must be a mapping of verify() keywords, not {type(call).__name__}")
            unknown = set(call) - _CALL_KEYS
            if unknown:
                raise UsageError(f"unknown verify() keyword(s) {sorted(unknown)}")
        n = len(calls)
        if self.threads == 1 or n < 64:
            return self._stats.record_many(self._verify_chunk(calls))
        size = max(16, min(256, n // (self.threads * 4)))
        pool = self._executor()
        futures = [pool.submit(self._verify_chunk, calls[i:i + size]) for i in range(0, n, size)]
        out: List[Result] = []
        for f in futures:
            out.extend(f.result())
        return self._stats.record_many(out)

    def stats(self) -> dict:
        """Counters of this Verifier's verdicts since it was built (plain, JSON-ready), with the
        certificate store's under "certs"; per process. See manverify.stats."""
        out = self._stats.as_dict()
        out["certs"] = self.store.stats()
        return out

    def _verify_chunk(self, calls: List[Mapping[str, Any]]) -> List[Result]:
        # Each call goes down the common path (a check) or the general one (a preparation); the
        # common calls' tokens are decoded in one native scan, then one native batch checks every
        # signature still pending, and the verdicts follow. Both native calls release the GIL.
        args = [(call.get("identity"), call.get("orig"), call.get("dest"), call.get("date"), call.get("now"))
                for call in calls]
        shapes = [self._common_shape(*a) for a in args]
        decoded = iter(decode_shaken_many([(s[1], s[2]) for s in shapes if s is not None]))
        prepared: List[Tuple[Optional[_Check], Any]] = []
        pending: List[Tuple[Any, bytes, bytes, _Check]] = []  # key, signing input, r||s, check
        for a, shape in zip(args, shapes):
            common = None if shape is None else self._common_claims(shape, next(decoded))
            if common is not None:
                c, signing_input, signature = common
                prepared.append((c, None))
                if c.code is None:
                    pending.append((c.credential.key, signing_input, signature, c))
                continue
            general = self._prepare(*a)
            prepared.append((None, general))
            if general[2] is None:
                pending.extend((c.credential.key, c.passport.signing_input, c.passport.signature, c)
                               for c in general[1] if c.pending_signature)
        if pending:
            keys, messages, signatures, checks = zip(*pending)
            for c, good in zip(checks, es256.verify_many(keys, messages, signatures)):
                self._check_signature(c, good)
        out = []
        for c, general in prepared:
            if c is not None:
                out.append(_single(c))
            else:
                call_, checks, early = general
                out.append(early if early is not None else self._verdict(call_, checks))
        return out

    def _executor(self) -> ThreadPoolExecutor:
        # A pool made before fork() has no threads in the child: make a new one per process.
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="manverify")
                self._pool_pid = os.getpid()
            return self._pool

    # ------------------------------------------------------------------ steps
    def _prepare(self, identity, orig, dest, date, now) -> Tuple[_Call, List[_Check], Optional[Result]]:
        values = _identity_values(identity)
        call = self._call(orig, dest, date, now)
        if not values:
            return call, [], _failure(428, "no Identity header")
        if call.orig is None:
            return call, [], _failure(400, f"calling number {orig!r} is not a telephone number"[:200])
        if call.date_error:
            return call, [], _failure(400, call.date_error)
        if call.date is not None and abs(call.now - call.date) > self.max_age:
            return call, [], _failure(
                403, f"Date header is {_ago(call.now - call.date)} (window ±{self.max_age} s)")
        if len(values) == 1:
            return call, [self._check_header(values[0], call)], None
        seen = set()
        checks = []
        for v in values:
            if v in seen:  # a proxy added the same header twice
                continue
            seen.add(v)
            if len(checks) == MAX_HEADERS:
                return call, [], _failure(438, f"more than {MAX_HEADERS} distinct Identity headers")
            checks.append(self._check_header(v, call))
        return call, checks, None

    def _call(self, orig, dest, date, now) -> _Call:
        if not (type(orig) is str and type(dest) is str and date is None):
            for name, value in (("orig", orig), ("dest", dest), ("date", date)):
                if value is not None and not isinstance(value, str):
                    raise UsageError(f"{name} must be a str or None, not {type(value).__name__}")
        if now is None:
            now = time.time()
        elif isinstance(now, bool) or not isinstance(now, (int, float)):
            raise UsageError(f"now must be epoch seconds (int or float), not {type(now).__name__}")
        when, error = None, ""
        if date is not None:
            when = _parse_date_memo(date)
            if when is None:
                error = f"Date header {date[:60]!r} is not an RFC 1123 date"
        return _Call(
            orig=tn.try_canonical(orig) if orig is not None else None,
            dest=tn.try_canonical(dest, max_digits=20) if dest is not None else None,
            date=when,
            now=float(now),
            date_error=error,
        )

    def _check_header(self, value: Union[str, bytes], call: _Call) -> _Check:
        try:
            value = header_text(value)
        except PassportError as e:
            return _Check(repr(value[:40])).fail(e.code, e.detail)
        c = _Check(value)
        try:
            h = identity.parse(value)
        except identity.HeaderSyntaxError as e:
            return c.fail(438, f"malformed Identity header: {e}")
        c.ppt, c.x5u = h.ppt, h.info
        if h.info is None:
            return c.fail(436, "Identity header has no info parameter")
        if self.profile == "man":
            extra = [k for k, _ in h.params if k not in MAN_PARAMS]
            if extra:
                return c.fail(438, f"Identity header has parameter(s) {extra} beyond info, alg, ppt (MAN)")
        if h.alg is None and self.profile != "rfc":
            return c.fail(437, "Identity header has no alg parameter")
        if h.alg is not None and h.alg != "ES256":
            return c.fail(437, f"Identity alg {h.alg!r} is not supported; only ES256")
        if self.profile != "rfc" and h.ppt is None:
            return c.fail(438, "Identity header has no ppt parameter; SHAKEN needs ppt=shaken")
        if h.ppt is not None and h.ppt not in SUPPORTED_PPT:
            return c.fail(438, f"ppt {h.ppt!r} is not supported (shaken, div, div-o)")
        try:
            if h.compact:
                pp = self._rebuild_compact(h, call)
            else:
                pp = decode(h.token)
            c.passport = pp
            ppt = check_header(pp.header, info=h.info, ppt_param=h.ppt)
            c.claims = claims = check_claims(pp.claims, ppt)
        except PassportError as e:
            return c.fail(e.code, e.detail)
        age = call.now - claims.iat
        if abs(age) > self.max_age:
            return c.fail(403, f"iat is {_ago(age)} (window ±{self.max_age} s)")
        if claims.orig_tn != call.orig:
            return c.fail(438, f"PASSporT orig {claims.orig_tn} is not the calling number {call.orig}")
        return self._check_credential(c, call.now)

    def _check_credential(self, c: _Check, now: float) -> _Check:
        """The signer's credential for a header whose claims passed: trusted, valid at iat, and
        authorised for the calling number."""
        claims = c.claims
        outcome = self.store.credential(c.x5u, now)
        if isinstance(outcome, CredentialError):
            return c.fail(outcome.code, outcome.detail)
        c.credential = outcome
        if not outcome.not_before <= claims.iat <= outcome.not_after:
            return c.fail(403, "iat is outside the signer certificate's validity period")
        if (outcome.tn_ranges or outcome.tn_ones) and not self.store.authorizes(outcome, claims.orig_tn):
            return c.fail(437, f"certificate does not authorise calling number {claims.orig_tn}")
        return c

    def _common_shape(self, value, orig, dest, date, now):
        """The common path (nearly every call): one full-form SHAKEN header as signers write it,
        whose orig and dest are the call's numbers and whose Date (if any) is fresh, checked in
        one pass up to the signature. None at any step sends the call down the general path,
        which finds the precise failure: up to that point nothing has touched the certificate
        store or the signature, so nothing is done twice that costs or counts.

        This first step is everything before the token is decoded: (value, token, info, orig,
        dest, now), or None."""
        if type(value) is not str:
            if type(value) not in (list, tuple) or len(value) != 1 or type(value[0]) is not str:
                return None
            value = value[0]
        if type(orig) is not str or type(dest) is not str:
            return None
        if now is None:
            now = time.time()
        elif type(now) is not int and type(now) is not float:
            return None
        if date is not None:
            when = _parse_date_memo(date) if type(date) is str else None
            if when is None or abs(now - when) > self.max_age:
                return None
        try:
            value = header_text(value)
        except PassportError:
            return None
        common = identity.common_form(value)
        if common is None or common[2] != "shaken":
            return None
        return value, common[0], common[1], orig, dest, now

    def _common_claims(self, shape, decoded) -> Optional[Tuple[_Check, bytes, bytes]]:
        """The common path's checks once the token is decoded (decode_shaken's answer)."""
        if decoded is None:
            return None
        value, _, info, orig, dest, now = shape
        claims, signing_input, signature = decoded
        if abs(now - claims.iat) > self.max_age or tn.try_canonical(orig) != claims.orig_tn:
            return None
        called = tn.try_canonical(dest, max_digits=20)
        if called is None or not (called in claims.dest_tns
                                  or any(tn.same_destination(called, d) for d in claims.dest_tns)):
            return None
        c = _Check(value)
        c.ppt, c.x5u, c.claims = "shaken", info, claims
        return self._check_credential(c, float(now)), signing_input, signature

    def _rebuild_compact(self, h: identity.IdentityHeader, call: _Call) -> Passport:
        if self.profile != "rfc":
            raise PassportError(438, "compact form cannot carry SHAKEN claims; the full form is required")
        if call.date is None:
            raise PassportError(438, "compact form needs the SIP Date header to rebuild iat")
        if call.dest is None:
            raise PassportError(438, "compact form needs the called number to rebuild dest")
        return rebuild_compact(h.token[2:], info=h.info, ppt=h.ppt, orig=call.orig,
                               dest=call.dest, iat=int(call.date))

    @staticmethod
    def _check_signature(c: _Check, good: bool) -> None:
        if not good:
            c.fail(438, "signature does not verify with the x5u certificate's key")

    def _verdict(self, call: _Call, checks: List[_Check]) -> Result:
        if len(checks) == 1:
            c = checks[0]
            if c.code is None and c.ppt == "shaken" and call.dest is not None and (
                    call.dest in c.claims.dest_tns
                    or any(tn.same_destination(call.dest, d) for d in c.claims.dest_tns)):
                return _passed(c, (c.result(),), "verified")
        headers = tuple(c.result() for c in checks)
        shaken = [c for c in checks if c.ppt == "shaken" or (self.profile == "rfc" and not c.ppt)]
        good = [c for c in shaken if c.code is None]
        for c in good:
            if call.dest is not None and any(tn.same_destination(call.dest, d) for d in c.claims.dest_tns):
                return _passed(c, headers, "verified")
        if good and self.allow_div and call.dest is not None:
            divs = [c for c in checks if c.ppt in ("div", "div-o") and c.code is None]
            for c in good:
                hops = _div_chain(c, divs, call.dest, self.max_div)
                if hops:
                    return _passed(c, headers, f"verified through {hops} div PASSporT(s)")
        if good and call.dest is None:
            return _failure(438, "the called number is missing or not a telephone number", headers, good[0])
        if good:
            c = good[0]
            return _failure(438, f"called number {call.dest} is not in the PASSporT dest "
                                 f"{list(c.claims.dest_tns)}", headers, c)
        if shaken:
            c = shaken[0]
            return _failure(c.code, c.detail, headers, c)
        c = checks[0]
        if c.code is not None:
            return _failure(c.code, c.detail, headers, c)
        return _failure(438, f"no SHAKEN PASSporT among {len(checks)} Identity header(s)", headers)


def _div_chain(start: _Check, divs: List[_Check], dest: str, max_div: int) -> int:
    """Number of div hops from `start` to `dest`, 0 when there is no such chain."""
    frontier = [start]
    used = set()
    for hop in range(1, max_div + 1):
        nxt = []
        for prev in frontier:
            for d in divs:
                if id(d) in used or d.claims.orig_tn != start.claims.orig_tn:
                    continue
                if any(x in prev.claims.dest_tns for x in d.claims.div_tns):
                    if any(tn.same_destination(dest, x) for x in d.claims.dest_tns):
                        return hop
                    used.add(id(d))
                    nxt.append(d)
        if not nxt:
            return 0
        frontier = nxt
    return 0


def _passed(c: _Check, headers, detail: str) -> Result:
    cl = c.claims
    # In field order (ok, sip_code, detail, attest, orig_tn, dest_tns, spc, x5u, origid, iat,
    # headers), through tuple.__new__ as in _Check.result().
    return _new_tuple(Result, (True, None, detail, cl.attest, cl.orig_tn, cl.dest_tns, c.credential.spc,
                               c.x5u, cl.origid, cl.iat, headers))


def _single(c: _Check) -> Result:
    """The verdict for a call whose only header is a SHAKEN PASSporT for the called number."""
    if c.code is None:
        return _passed(c, (c.result(),), "verified")
    return _failure(c.code, c.detail, (c.result(),), c)


def _failure(code: int, detail: str, headers=(), c: Optional[_Check] = None) -> Result:
    cl = c.claims if c else None
    cred = c.credential if c else None
    return Result(ok=False, sip_code=code, detail=detail,
                  attest=cl.attest if cl else None, orig_tn=cl.orig_tn if cl else None,
                  dest_tns=cl.dest_tns if cl else (), spc=cred.spc if cred else None,
                  x5u=c.x5u if c else None, origid=cl.origid if cl else None,
                  iat=cl.iat if cl else None, headers=headers)


def _identity_values(identity) -> List[Union[str, bytes]]:
    if type(identity) is str:  # the common case: one header value
        return [identity] if identity.strip() else []
    if identity is None:
        return []
    if isinstance(identity, (str, bytes)):
        identity = [identity]
    elif not isinstance(identity, (list, tuple)):
        raise UsageError(f"identity must be a str or a list of str, not {type(identity).__name__}")
    out = []
    for v in identity:
        if not isinstance(v, (str, bytes)):
            raise UsageError(f"identity values must be str, not {type(v).__name__}")
        if v.strip():
            out.append(v)
    return out


def _ago(seconds: float) -> str:
    if seconds >= 0:
        return f"{seconds:.0f} s in the past"
    return f"{-seconds:.0f} s in the future"


_dates: dict = {}  # Date header value -> epoch (or None): every call in the same second shares one


def _parse_date_memo(value: str) -> Optional[float]:
    if len(value) > 64:  # an RFC 1123 date is 29 characters: junk is parsed, not remembered
        return _parse_date(value)
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
