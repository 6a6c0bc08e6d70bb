"""Verdict counters: what a Verifier decided, counted cheaply on the per-call path.

One Stats per Verifier. record() adds a finished Result to a per-thread dict keyed by
(code, attest, spc[, reason]) — a few hundred ns, no lock; everything an operator reads (calls,
pass/fail, per code, reason, attestation, signer SPC) is derived on read from those keys. The
SPCs are capped when a key is first written (MAX_SPCS by name, the rest "other"), so the dicts
stay small whatever signs the calls.

A failure's reason is a fixed slug (REASONS' keys), never the free-text detail, so counters and
alerts keep a bounded, stable set of names. The slug is read from the failure's detail by
anchored patterns (REASON_PATTERNS): the details are the verifier's wording, the patterns only
sort them, and tests/test_stats.py holds one call per slug so a reworded detail shows up there
rather than as a silent "other-<code>".
"""
from __future__ import annotations

import operator
import re
import threading
import weakref
from typing import Dict, Iterator, List, Tuple

from .result import Result

MAX_SPCS = 64  # distinct signer SPCs counted by name; the rest are "other" (the operator set is small)
OTHER = "other"
NONE = "none"  # label for "no code" (a pass), "no attestation", "no known signer"

# (code, pattern, slug): the first whose code matches and whose pattern matches the detail wins.
# Patterns are anchored on the verifier's fixed wording, never on a part the call chose (an x5u or
# a number inside the detail cannot steer a call into another slug).
REASON_PATTERNS: Tuple[Tuple[int, str, str], ...] = (
    (428, r"no Identity header$", "no-identity"),
    (400, r"calling number .* is not a telephone number$", "bad-calling-number"),
    (400, r"Date header .* is not an RFC 1123 date$", "bad-date"),
    (403, r"Date header is \d+ s in the (past|future) \(window", "stale-date"),
    (403, r"iat is \d+ s in the (past|future) \(window", "stale-iat"),
    (403, r"iat is outside the signer certificate's validity period$", "iat-outside-certificate"),
    (436, r"Identity header has no info parameter$", "no-info"),
    (436, r"PASSporT header lacks ", "passport-header"),
    (436, r"PASSporT x5u ", "x5u-mismatch"),
    (437, r"Identity header has no alg parameter$", "unsupported-alg"),
    (437, r"Identity alg .* is not supported; only ES256$", "unsupported-alg"),
    (437, r"PASSporT alg .* is not supported; only ES256$", "unsupported-alg"),
    (437, r"PASSporT typ .* is not 'passport'$", "passport-header"),
    (437, r"certificate does not authorise calling number \d+$", "number-not-authorised"),
    (437, r"signer certificate serial [0-9a-f]+ is revoked$", "certificate-revoked"),
    (437, r"revocation status unknown \(.*\); crl_policy is fail-closed$", "crl-unavailable"),
    (437, r"certificate chain for .* expired at [\d: -]+Z$", "certificate-expired"),
    (437, r"certificate chain for .* is not valid before [\d: -]+Z$", "certificate-not-yet-valid"),
    (437, r"signer certificate .* is not trusted: ", "certificate-untrusted"),
    (437, r"", "certificate-rejected"),  # the store's other refusals (profile, key, SPC allow-list)
    (436, r"", "certificate-unavailable"),  # the store could not obtain or read the chain
    (438, r"signature does not verify with the x5u certificate's key$", "bad-signature"),
    (438, r"signature is \d+ bytes; ES256 needs raw r\|\|s of 64 bytes", "bad-signature-encoding"),
    (438, r"PASSporT orig \d+ is not the calling number \d+$", "orig-mismatch"),
    (438, r"called number \d+ is not in the PASSporT dest \[", "dest-mismatch"),
    (438, r"the called number is missing or not a telephone number$", "dest-mismatch"),
    (438, r"no SHAKEN PASSporT among \d+ Identity header\(s\)$", "no-shaken"),
    (438, r"more than \d+ distinct Identity headers$", "too-many-headers"),
    (438, r"(Identity header |malformed Identity header: |ppt .* is not supported \(shaken)", "bad-identity-header"),
    (438, r"compact form ", "compact-form"),
    (438, r"(token has \d+ parts|(PASSporT header|PASSporT claims|signature) (is not unpadded base64url$"
          r"|has non-zero trailing bits|is not UTF-8$|is not valid JSON: |is not a JSON object$))", "bad-encoding"),
    (438, r"(PASSporT header has a crit|PASSporT ppt is not a string$|Identity ppt parameter .* does not"
          r" match the PASSporT ppt)", "passport-header"),
    (438, r"", "bad-claims"),  # PASSporT claims: mandatory, types, numbers, attest, origid
)
REASONS = frozenset(slug for _, _, slug in REASON_PATTERNS) | {f"{OTHER}-{c}" for c in (400, 403, 428, 436, 437, 438)}

_BY_CODE: Dict[int, List[Tuple["re.Pattern[str]", str]]] = {}
for _code, _pattern, _slug in REASON_PATTERNS:
    _BY_CODE.setdefault(_code, []).append((re.compile(_pattern), _slug))


def reason(result: Result) -> str:
    """The fixed slug naming why a call failed ("" for a pass)."""
    if result.ok:
        return ""
    detail = result.detail
    for pattern, slug in _BY_CODE.get(result.sip_code, ()):
        if pattern.match(detail):
            return slug
    return f"{OTHER}-{result.sip_code}"


Key = Tuple  # (code, attest, spc) for a pass, (code, attest, spc, reason) for a failure
_fields = operator.itemgetter(*(Result._fields.index(f) for f in ("sip_code", "attest", "spc")))


class Stats:
    """Counters of one Verifier's verdicts. Exact when many threads record at once.

    Each thread counts into its own dict (no lock on the per-call path: only its owner writes
    it); a read sums them. A dict copy is one C call under the GIL, so a read never sees a
    half-made update; a finished thread's counts are folded into `_retired` on the next read.
    """

    def __init__(self, max_spcs: int = MAX_SPCS):
        self._max_spcs = max_spcs
        self._spcs: set = set()  # SPCs counted by name: the first MAX_SPCS seen, for good
        self._local = threading.local()
        self._threads: List[Tuple[threading.Thread, Dict[Key, int]]] = []
        self._retired: Dict[Key, int] = {}
        self._lock = threading.Lock()  # guards _spcs, _threads and _retired, never a count

    def record(self, r: Result) -> Result:
        """Count one verdict; returns it, so a verifier can count where it returns."""
        try:
            counts = self._local.counts
        except AttributeError:
            counts = self._new_thread()
        key = _fields(r)
        if key[0] is not None:
            key += (reason(r),)
        n = counts.get(key)
        if n is None:  # a key new to this thread: an SPC past the cap is counted as "other" now,
            key = self._capped(key)  # so that memory stays bounded however many SPCs sign calls
            n = counts.get(key, 0)
        counts[key] = n + 1
        return r

    def record_many(self, results: List[Result]) -> List[Result]:
        """Count a batch's verdicts; returns them."""
        record = self.record
        for r in results:
            record(r)
        return results

    def _new_thread(self) -> Dict[Key, int]:
        counts: Dict[Key, int] = {}
        self._local.counts = counts
        with self._lock:
            self._threads.append((threading.current_thread(), counts))
        return counts

    def _capped(self, key: Key) -> Key:
        """`key`, or the same with OTHER for its SPC once MAX_SPCS others are counted by name (an
        SPC is admitted for good: its counts never move to "other" later)."""
        spc = key[2]
        if spc is None or spc in self._spcs:
            return key
        if len(self._spcs) < self._max_spcs:  # the set only grows: once full, no lock is needed
            with self._lock:
                if len(self._spcs) < self._max_spcs:
                    self._spcs.add(spc)
            if spc in self._spcs:
                return key
        return key[:2] + (OTHER,) + key[3:]

    def counts(self) -> Dict[Key, int]:
        """Every thread's counts summed: {key: calls} (SPCs beyond the cap were counted as "other")."""
        with self._lock:
            live = []
            for thread, counts in self._threads:
                if thread.is_alive():
                    live.append((thread, counts))
                else:  # it can no longer write: fold it in once
                    _add(self._retired, counts)
            self._threads = live
            out = dict(self._retired)
            for _, counts in live:
                _add(out, dict(counts))
        return out

    def as_dict(self) -> dict:
        """The plain summary Verifier.stats() returns (without "certs")."""
        calls = passed = 0
        by_code: Dict[str, int] = {}
        by_reason: Dict[str, int] = {}
        by_attest: Dict[str, int] = {}
        by_spc: Dict[str, Dict[str, int]] = {}
        for key, n in self.counts().items():
            code, attest, spc = key[:3]
            calls += n
            a = attest or NONE
            by_attest[a] = by_attest.get(a, 0) + n
            s = by_spc.setdefault(spc or NONE, {"calls": 0, "failed": 0})
            s["calls"] += n
            if code is None:
                passed += n
                continue
            s["failed"] += n
            by_code[str(code)] = by_code.get(str(code), 0) + n
            by_reason[key[3]] = by_reason.get(key[3], 0) + n
        return {"calls": calls, "passed": passed, "failed": calls - passed, "by_code": by_code,
                "by_reason": by_reason, "by_attest": by_attest, "by_spc": by_spc}


def _add(into: Dict[Key, int], counts: Dict[Key, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


# Every Verifier of the process, for manverify.metrics to export (weakly: an export never keeps
# a Verifier alive).
_verifiers: "weakref.WeakSet" = weakref.WeakSet()


def track(verifier) -> None:
    _verifiers.add(verifier)


def verifiers() -> Iterator:
    return iter(list(_verifiers))
