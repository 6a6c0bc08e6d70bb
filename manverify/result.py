"""The verdict: one immutable Result per call, with one HeaderResult per Identity header.

Both are NamedTuples: immutable, cheap to build on the per-call path, and JSON-ready via to_dict().
"""
from __future__ import annotations

from types import MethodType
from typing import Any, Callable, NamedTuple, Optional, Tuple

from .errors import UsageError

# SIP response codes a verifier answers with (RFC 8224 §6.2.2, RFC 3261, MAN error table).
REASONS = {
    400: "Bad Request",
    403: "Stale Date",
    428: "Use Identity Header",
    436: "Bad Identity Info",
    437: "Unsupported Credential",
    438: "Invalid Identity Header",
}

PASSED = "TN-Validation-Passed"
FAILED = "TN-Validation-Failed"
NOT_VALIDATED = "No-TN-Validation"


class HeaderResult(NamedTuple):
    """The outcome for one Identity header field."""

    ok: bool
    sip_code: Optional[int]
    detail: str
    ppt: Optional[str] = None
    attest: Optional[str] = None
    orig_tn: Optional[str] = None
    dest_tns: Tuple[str, ...] = ()
    div_tns: Tuple[str, ...] = ()
    iat: Optional[int] = None
    origid: Optional[str] = None
    x5u: Optional[str] = None
    spc: Optional[str] = None

    @property
    def reason(self) -> str:
        return REASONS.get(self.sip_code, "") if self.sip_code else ""

    def to_dict(self) -> dict:
        d = self._asdict()
        d["dest_tns"] = list(self.dest_tns)
        d["div_tns"] = list(self.div_tns)
        d["reason"] = self.reason
        return d


class Result(NamedTuple):
    """What a proxy needs to act on a call: pass/fail, SIP code and reason, verstat, attestation."""

    ok: bool
    sip_code: Optional[int]
    detail: str
    attest: Optional[str] = None
    orig_tn: Optional[str] = None
    dest_tns: Tuple[str, ...] = ()
    spc: Optional[str] = None
    x5u: Optional[str] = None
    origid: Optional[str] = None
    iat: Optional[int] = None
    headers: Tuple[HeaderResult, ...] = ()

    @property
    def reason(self) -> str:
        """Reason phrase for sip_code ("" when ok)."""
        return REASONS.get(self.sip_code, "") if self.sip_code else ""

    @property
    def verstat(self) -> str:
        """3GPP TS 24.229 verstat for the P-Asserted-Identity/From sent onward."""
        if self.ok:
            return PASSED
        return NOT_VALIDATED if self.sip_code == 428 else FAILED

    def verstat_with_attest(self) -> str:
        """The suffixed form some carriers use, e.g. "TN-Validation-Passed-A"."""
        return f"{self.verstat}-{self.attest}" if self.ok and self.attest else self.verstat

    def reason_header(self, protocol: str = "SIP") -> str:
        """Value of a Reason header (RFC 3326; protocol="STIR" for the RFC 9410 form); "" when ok."""
        if protocol not in ("SIP", "STIR"):
            raise UsageError('protocol must be "SIP" or "STIR"')
        if self.ok or self.sip_code is None:
            return ""
        return f'{protocol};cause={self.sip_code};text="{self.reason}"'

    def to_dict(self) -> dict:
        """JSON-ready mapping of every field, plus reason and verstat."""
        d = self._asdict()
        d["dest_tns"] = list(self.dest_tns)
        d["headers"] = [h.to_dict() for h in self.headers]
        d["reason"] = self.reason
        d["verstat"] = self.verstat
        return d


def positional(cls: Any, *fields: str) -> Callable[[tuple], Any]:
    """A constructor for the NamedTuple `cls` from one tuple of values in `fields`' order, through
    tuple.__new__ (the NamedTuple's own __new__ is a Python function that costs as much again on
    the per-call path). The order is checked against cls._fields here, when the calling module is
    imported: adding or moving a field fails at import instead of silently shifting values."""
    if tuple(cls._fields) != fields:
        raise TypeError(f"{cls.__name__}'s fields are {cls._fields}; a positional builder assumed {fields}")
    return MethodType(tuple.__new__, cls)
