"""What the operator does with a verification Result: the MAN policy (STANDARDS.md §5-6).

One immutable Policy object holds every setting; Policy.decide() turns a Result plus the call's
context (where it entered, which number it presents, an outage token) into a Decision:

    policy = Policy(role="terminating")
    d = policy.decide(result, entry="international", calling="33198765432")
    if d.reject: reply(d.code, d.reason)
    else: relay with d.verstat on P-Asserted-Identity (and d.reason_header, d.mask)

The rules, in the order decide() applies them (the only place they live):
  1. transit role: presence and format only; the call continues, nothing is annotated
     (reject_malformed=True answers 428/438 instead).
  2. the call verified: continue with verstat TN-Validation-Passed.
  3. P-Identity-Bypass (MAN outage token) on a national-interconnect call, when accept_bypass is
     set and the token is acceptable: continue with No-TN-Validation. The token is a French
     operators' arrangement: it is reported but never honoured on the international gateway.
  4. international gateway, calling number French fixed (geographic 01-05 or 09, overseas
     included): reject with the verification code (428 when there was no Identity header).
  5. international gateway, calling number French mobile (06/07): continue, number masked
     (Arcep decision 2025-2215, from 1 January 2026), verstat and a Reason header.
  6. international gateway, any other number: continue with the failed verstat and a Reason
     header (foreign networks do not sign for MAN; those calls are not interrupted).
  7. no Identity header and require_identity is False: continue with No-TN-Validation.
  8. otherwise: reject with the verification code (interrupt on failure).
The monitoring role runs the same rules but never rejects and never masks: where rule 4 or 8
would reject, the call continues with verstat and a Reason header naming the failure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, FrozenSet, NamedTuple, Optional, Tuple

from .errors import ConfigError
from .result import FAILED, NOT_VALIDATED, PASSED, REASONS, Result

if TYPE_CHECKING:  # the screening package is imported only by those who screen
    from .screen.decision import ScreenDecision

ROLES = ("terminating", "monitoring", "transit")
ENTRIES = ("national", "international")

CONTINUE = "continue"
REJECT = "reject"

# Country codes of the French numbering plan after canonicalisation (tn.canonical maps the
# overseas departments to their own codes: 0590... -> 590590..., 0692... -> 262692...).
FRENCH_COUNTRY_CODES = ("33", "262", "590", "594", "596")
# By the first digit of the 9-digit national significant number (the digit after the trunk 0).
FIXED_PREFIXES = tuple(cc + d for cc in FRENCH_COUNTRY_CODES for d in "123459")
MOBILE_PREFIXES = tuple(cc + d for cc in FRENCH_COUNTRY_CODES for d in "67")

_CODES = frozenset((400, 403, 428, 436, 437, 438))


class Decision(NamedTuple):
    """What to do with the call. `reject` → answer `code`/`reason`; otherwise relay it with
    `verstat` on P-Asserted-Identity (None: leave identity headers alone), `reason_header` as a
    Reason header when not empty, and the calling number withheld when `mask` is set."""

    action: str  # "continue" | "reject"
    code: Optional[int]  # SIP response code when rejecting
    reason: str  # reason phrase when rejecting, "" otherwise
    verstat: Optional[str]
    reason_header: str = ""
    mask: bool = False
    rule: str = ""  # which policy rule decided, for logs and metrics
    detail: str = ""  # the verifier's human-readable detail
    bypass: Optional[str] = None  # P-Identity-Bypass token the call presented
    bypass_accepted: bool = False
    result: Optional[Result] = None
    # Header edits for the relayed request, filled by manverify.sip: names to remove, then
    # (name, value) pairs to add.
    remove_headers: Tuple[str, ...] = ()
    add_headers: Tuple[Tuple[str, str], ...] = ()
    # Screening (manverify.sip.check(..., screen=)) of a call the policy let continue: its
    # decision, and where a diverted call goes instead of its destination.
    screening: Optional["ScreenDecision"] = None
    divert_to: Optional[str] = None

    @property
    def reject(self) -> bool:
        return self.action == REJECT

    def to_dict(self) -> dict:
        d = self._asdict()
        d["result"] = self.result.to_dict() if self.result is not None else None
        d["remove_headers"] = list(self.remove_headers)
        d["add_headers"] = [list(h) for h in self.add_headers]
        d["screening"] = self.screening.to_dict() if self.screening is not None else None
        return d


@dataclass(frozen=True)
class Policy:
    """MAN call-handling settings; immutable, safe to share between threads and workers.

    role               "terminating" (interrupt on failure), "monitoring" (never reject; annotate),
                       "transit" (presence and format only)
    require_identity   terminating: a call with no Identity header is rejected with 428
    accept_bypass      honour P-Identity-Bypass on national-interconnect calls (MAN outage mode)
    bypass_tokens      when set, only these tokens are honoured (the authority's current token)
    reject_foreign_fixed  international gateway: French fixed/09 numbers without valid
                       authentication are rejected
    mask_foreign_mobile   international gateway: French 06/07 numbers without valid
                       authentication are delivered masked (Arcep 2025-2215)
    fixed_prefixes, mobile_prefixes  canonical prefixes of those two number classes
    reason_protocol    "SIP" (RFC 3326) or "STIR" (RFC 9410) for the Reason header
    verstat_attest     suffix the attestation: TN-Validation-Passed-A
    reject_malformed   transit: answer 428/438 to a missing or malformed Identity header
    """

    role: str = "terminating"
    require_identity: bool = True
    accept_bypass: bool = False
    bypass_tokens: Optional[FrozenSet[str]] = None
    reject_foreign_fixed: bool = True
    mask_foreign_mobile: bool = True
    fixed_prefixes: Tuple[str, ...] = FIXED_PREFIXES
    mobile_prefixes: Tuple[str, ...] = MOBILE_PREFIXES
    reason_protocol: str = "SIP"
    verstat_attest: bool = False
    reject_malformed: bool = False

    def __post_init__(self):
        if self.role not in ROLES:
            raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        if self.reason_protocol not in ("SIP", "STIR"):
            raise ConfigError(f'reason_protocol must be "SIP" or "STIR", not {self.reason_protocol!r}')
        for name in ("require_identity", "accept_bypass", "reject_foreign_fixed", "mask_foreign_mobile",
                     "verstat_attest", "reject_malformed"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, not {getattr(self, name)!r}")
        for name in ("fixed_prefixes", "mobile_prefixes"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(p, str) and p.isdigit() for p in value):
                raise ConfigError(f"{name} must be a sequence of digit strings, not {value!r}")
            object.__setattr__(self, name, tuple(value))
        if self.bypass_tokens is not None:
            tokens = self.bypass_tokens
            if isinstance(tokens, str) or not all(isinstance(t, str) and t for t in tokens):
                raise ConfigError("bypass_tokens must be a collection of non-empty strings")
            object.__setattr__(self, "bypass_tokens", frozenset(tokens))

    @classmethod
    def from_dict(cls, settings: dict) -> "Policy":
        """Build from a JSON-style mapping (e.g. a proxy's configuration file)."""
        if not isinstance(settings, dict):
            raise ConfigError(f"policy settings must be a mapping, not {type(settings).__name__}")
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = set(settings) - known
        if unknown:
            raise ConfigError(f"unknown policy setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**settings)

    # ------------------------------------------------------------------ classification
    def number_class(self, calling: Optional[str]) -> str:
        """"fixed", "mobile" or "other" for a canonical calling number (None → "other")."""
        if not calling:
            return "other"
        if calling.startswith(self.mobile_prefixes):
            return "mobile"
        if calling.startswith(self.fixed_prefixes):
            return "fixed"
        return "other"

    def bypass_acceptable(self, token: Optional[str]) -> bool:
        if not self.accept_bypass or not token:
            return False
        return self.bypass_tokens is None or token in self.bypass_tokens

    # ------------------------------------------------------------------ the decision
    def decide(
        self,
        result: Result,
        *,
        entry: str = "national",
        calling: Optional[str] = None,
        bypass: Optional[str] = None,
    ) -> Decision:
        """The Decision for one call. `calling` is the canonical calling number the call presents
        (PAI, else From), `bypass` the P-Identity-Bypass token, if any. Raises ConfigError only
        for a bad `entry` (a configuration mistake); call data never raises."""
        if entry not in ENTRIES:
            raise ConfigError(f"entry must be one of {', '.join(ENTRIES)}, not {entry!r}")
        if not isinstance(result, Result):
            raise ConfigError(f"decide() needs a manverify Result, not {type(result).__name__}")
        base = dict(detail=result.detail, bypass=bypass, result=result)

        if self.role == "transit":
            if self.reject_malformed and not result.ok and result.sip_code in (428, 438):
                return self._reject(result.sip_code, "transit-malformed", base)
            return Decision(CONTINUE, None, "", None, rule="transit", **base)

        if result.ok:
            verstat = f"{PASSED}-{result.attest}" if self.verstat_attest and result.attest else PASSED
            return Decision(CONTINUE, None, "", verstat, rule="verified", **base)

        code = result.sip_code if result.sip_code in _CODES else 438
        if entry == "national" and self.bypass_acceptable(bypass):
            return Decision(CONTINUE, None, "", NOT_VALIDATED, rule="bypass", bypass_accepted=True,
                            **base)
        if entry == "international":
            kind = self.number_class(calling)
            if kind == "fixed" and self.reject_foreign_fixed:
                return self._fail(code, result, "foreign-fixed", base)
            if kind == "mobile" and self.mask_foreign_mobile:
                mask = self.role != "monitoring"
                return Decision(CONTINUE, None, "", result.verstat, self.reason_header(code),
                                mask=mask, rule="foreign-mobile-masked", **base)
            return Decision(CONTINUE, None, "", result.verstat, self.reason_header(code),
                            rule="foreign-other", **base)
        if code == 428 and not self.require_identity:
            return Decision(CONTINUE, None, "", NOT_VALIDATED, rule="identity-optional", **base)
        return self._fail(code, result, "failed", base)

    # ------------------------------------------------------------------ helpers
    def _fail(self, code: int, result: Result, rule: str, base: dict) -> Decision:
        if self.role == "monitoring":
            verstat = NOT_VALIDATED if code == 428 else FAILED
            return Decision(CONTINUE, None, "", verstat, self.reason_header(code),
                            rule=f"monitor:{rule}", **base)
        return self._reject(code, rule, base)

    def _reject(self, code: int, rule: str, base: dict) -> Decision:
        return Decision(REJECT, code, REASONS.get(code, "Invalid Identity Header"), None, rule=rule, **base)

    def reason_header(self, code: int) -> str:
        """The Reason header value naming a failure's code, in `reason_protocol`: on a call that
        continues despite it (monitoring, international deliveries that are not interrupted),
        and on a redirect server's rejection (manverify.integrations.redirect)."""
        return f'{self.reason_protocol};cause={code};text="{REASONS.get(code, "")}"'
