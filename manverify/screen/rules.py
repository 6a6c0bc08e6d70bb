"""The screening rules: one function per rule id, each with its legal or practical source.

A rule reads one screened call (`Call`: the canonical numbers, their plan classes, list hits,
counter values) and its own settings, and answers None (did not fire) or the values that made it
fire, which the decision reports as they are. Rules never act: what a fired rule does (allow,
tag, mask, divert, reject) and whether it only reports is configuration, applied by the engine.

The ids are part of the public contract (API.md, SCREENING.md); RULES below is the one table of
them, with each rule's default settings.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional

from ..policy import FIXED_PREFIXES, MOBILE_PREFIXES
from ..result import Result
from . import hours
from .counters import Counts
from .lists import ListHits
from .plan import NumberClass

DAY = 86400

# What each action does to a call, mildest first: the decision takes the strongest action among
# the rules that fired and act (list.allow, when it acts, overrides them all).
ACTIONS = ("allow", "tag", "mask", "divert", "reject")
SEVERITY = {a: i for i, a in enumerate(ACTIONS)}


class Call(NamedTuple):
    """One call as the rules see it. Numbers are canonical E.164 digits (tn.canonical), None when
    the call did not present a number there (anonymous, garbage)."""

    orig: Optional[str]
    dest: Optional[str]
    orig_class: NumberClass
    dest_class: NumberClass
    entry: str  # "national" | "international"
    partner: Optional[str]
    result: Optional[Result]  # the call's MAN verification, when the caller passed it
    now: float
    hits: ListHits
    holder: Optional[str]  # the calling number's range holder in MAJNUM ("" when no file loaded)
    counts: Counts
    outbound: Any = None  # outbound.Facts on the originating side (direction="outbound"), else None


Values = Optional[Dict[str, Any]]

# The class of a number a call does not present (anonymous, garbage): no rule's class.
ABSENT = NumberClass("absent", None, None, "the call presents no number here")


def is_time(now: Any) -> bool:
    """Epoch seconds from 1970 to year 5000: what a call's time can be (NaN, 1e300 cannot)."""
    return type(now) in (int, float) and 0 <= now < 95_617_584_000


# ---------------------------------------------------------------------------- numbering plan
def plan_invalid(call: Call, s: Mapping[str, Any]) -> Values:
    """plan.invalid — a number under a French-plan country code that the plan does not contain
    (wrong length, unknown prefix) cannot belong to a caller: it was made up.
    Source: Arcep, plan national de numérotation (décision 2018-0881 and its amendments)."""
    if call.orig is not None and call.orig_class.kind == "invalid":
        return {"number_class": "invalid"}
    return None


def plan_unassigned(call: Call, s: Mapping[str, Any]) -> Values:
    """plan.unassigned — a French number inside no range Arcep has assigned to an operator: no
    operator can have given it to a subscriber. Needs Arcep's MAJNUM file.
    Source: plan de numérotation §2.2.2 (a displayed number has an attributaire and an
    affectataire); FCC 25-15 lists unallocated numbers among those to block."""
    if call.holder is None and call.orig is not None and call.orig_class.kind in s["classes"]:
        return {"number_class": call.orig_class.kind}
    return None


def plan_canvassing(call: Call, s: Mapping[str, Any]) -> Values:
    """plan.canvassing — a number of the ranges dedicated to canvassing (0162 0163 0270 0271 0377
    0378 0424 0425 0568 0569 0948 0949, overseas 09475–09479): label it, and hold it to
    canvass.hours and the canvassing repeat limit.
    Source: Arcep décision 2022-1583 (from 1 January 2023)."""
    if call.orig_class.kind == "canvassing" and call.orig is not None:
        return {"number_class": "canvassing"}
    return None


def plan_platform(call: Call, s: Mapping[str, Any]) -> Values:
    """plan.platform — 0937–0939: technical platforms (deliveries, ride hailing, masked numbers)
    that legitimately call many people; reported, never counted as canvassing.
    Source: Arcep décision 2022-1583."""
    if call.orig_class.kind == "platform" and call.orig is not None:
        return {"number_class": "platform"}
    return None


# ---------------------------------------------------------------------------- international gateway
def _unauthenticated_from_abroad(call: Call) -> bool:
    return call.entry == "international" and call.result is not None and not call.result.ok


def intl_fr_fixed(call: Call, s: Mapping[str, Any]) -> Values:
    """intl.fr-fixed — a call from abroad without valid authentication showing a French fixed or
    09 number: interrupted (the MAN Policy's rule 4, reported here under its screening id).
    Source: Arcep décision 2018-0881 (from 1 August 2019), MAN."""
    if _unauthenticated_from_abroad(call) and call.orig and call.orig.startswith(FIXED_PREFIXES):
        return {"verification": call.result.sip_code}
    return None


def intl_fr_mobile(call: Call, s: Mapping[str, Any]) -> Values:
    """intl.fr-mobile — a call from abroad without valid authentication showing a French 06/07
    number: delivered with the number masked (the MAN Policy's rule 5).
    Source: Arcep decision of 2 December 2025 (from 1 January 2026)."""
    if _unauthenticated_from_abroad(call) and call.orig and call.orig.startswith(MOBILE_PREFIXES):
        return {"verification": call.result.sip_code}
    return None


# ---------------------------------------------------------------------------- operator lists
def hit_values(hit) -> Values:
    """A list hit as the values a rule reports (and the look-up shows)."""
    return None if hit is None else {"scope": hit.scope, "source": hit.source, "entry": hit.entry}


def list_block(call: Call, s: Mapping[str, Any]) -> Values:
    """list.block — the calling number is on the operator's block list (a number, a prefix or a
    range, global or for the partner the call came from). Source: operators' lists; users ask
    for prefix and range blocking (Kamailio userblacklist, ClearIP)."""
    return hit_values(call.hits.block)


def list_allow(call: Call, s: Mapping[str, Any]) -> Values:
    """list.allow — the calling number is on the allow list: it overrides every other screening
    rule (a bank's or an administration's outbound numbers, emergency call-backs).
    Source: operators' practice (ClearIP, Kamailio userblacklist's whitelist)."""
    return hit_values(call.hits.allow)


def list_dno(call: Call, s: Mapping[str, Any]) -> Values:
    """list.dno — the calling number is on the Do-Not-Originate list: inbound-only numbers (banks,
    administrations) that never call out, so a call showing one is spoofed.
    Source: FCC 25-15 (reasonable DNO list), US Industry Traceback Group's DNO registry."""
    return hit_values(call.hits.dno)


# ---------------------------------------------------------------------------- call patterns
def pattern_burst(call: Call, s: Mapping[str, Any]) -> Values:
    """pattern.burst — more calls from one number within the window than a person or a PBX line
    makes: robocalling. Source: ClearIP "robocalling" trigger, OpenSIPS fraud_detection (calls
    per minute)."""
    if call.orig is not None and call.counts.burst > s["limit"]:
        return {"count": call.counts.burst, "limit": s["limit"], "window": s["window"]}
    return None


def pattern_fanout(call: Call, s: Mapping[str, Any]) -> Values:
    """pattern.fanout — one number calling many distinct people within the window: automated
    calling. From a number outside the canvassing ranges (an 06/07 used by a call centre) this is
    forbidden since 1 January 2023; canvassing and platform ranges are exempt by default.
    Source: Arcep décision 2022-1583 (06/07 for person-to-person calls only)."""
    if call.orig is not None and call.orig_class.kind not in s["exempt"] and call.counts.fanout > s["limit"]:
        return {"distinct": call.counts.fanout, "limit": s["limit"], "window": s["window"]}
    return None


def pattern_repeat(call: Call, s: Mapping[str, Any]) -> Values:
    """pattern.repeat — one number calling the same person too often within 30 days: harassment
    beyond `limit`, and for canvassing numbers beyond the legal cap `canvass_limit` (4 calls in
    30 days by one professional to one person).
    Source: décret 2022-1313, Code de la consommation art. D223-9."""
    if call.orig is None or call.dest is None:
        return None
    count = call.counts.repeat
    limit = s["canvass_limit"] if call.orig_class.kind == "canvassing" else s["limit"]
    if count > limit:
        return {"count": count, "limit": limit, "window": s["window"]}
    return None


def pattern_flood(call: Call, s: Mapping[str, Any]) -> Values:
    """pattern.flood — more calls to one number within the window than a person receives: TDoS,
    wangiri call-back waves, harassment from many numbers. Source: ClearIP."""
    if call.dest is not None and call.counts.flood > s["limit"]:
        return {"count": call.counts.flood, "limit": s["limit"], "window": s["window"]}
    return None


def pattern_short(call: Call, s: Mapping[str, Any]) -> Values:
    """pattern.short — most calls from one number unanswered or shorter than `min_duration`
    seconds (wangiri's one ring, robocalls hung up on), from outcomes fed back with feedback().
    Source: softswitch practice (answer-seizure ratio, average call duration, short-call ratio)."""
    c = call.counts
    if call.orig is not None and c.outcomes >= s["min_outcomes"] and c.short >= s["share"] * c.outcomes:
        return {"short": c.short, "outcomes": c.outcomes, "share": round(c.short / c.outcomes, 3),
                "limit": s["share"], "window": s["window"]}
    return None


# ---------------------------------------------------------------------------- canvassing
def canvass_hours(call: Call, s: Mapping[str, Any]) -> Values:
    """canvass.hours — a call from the canvassing ranges (or, on the originating side, by a
    customer configured as a canvasser, whatever number it shows) outside Monday–Friday
    10:00–13:00 and 14:00–20:00 in the called person's time zone (overseas included), or on a
    French public holiday. Source: Code de la consommation art. D223-9 (from 1 March 2023), Code du
    travail L3133-1 (public holidays)."""
    if not _canvassing(call):
        return None
    tz, territory = call.dest_class.tz, call.dest_class.territory
    if tz is None:  # a foreign, short or absent called number: judged on metropolitan time
        tz, territory = "Europe/Paris", "metropole"
    if hours.canvass_allowed(call.now, tz, territory):
        return None
    when = hours.canvass_check(call.now, tz, territory)
    return {"local_time": when.local, "why": when.reason, "tz": tz}


# ---------------------------------------------------------------------------- originating side
# Rules of Screen.check(..., direction="outbound", customer=ID): call.outbound holds the facts
# (manverify.screen.outbound.Facts); inbound calls have none and these rules never fire on them.
def _canvassing(call: Call) -> bool:
    """A canvassing call: from the canvassing ranges, or by a customer that canvasses."""
    out = call.outbound
    return (call.orig is not None and call.orig_class.kind == "canvassing") or (
        out is not None and out.known and out.canvasser)


def outbound_unauthorised_number(call: Call, s: Mapping[str, Any]) -> Values:
    """outbound.unauthorised-number — the customer shows a number it may not show (not among its
    configured numbers, none at all, or a customer the configuration does not know): its operator
    must not vouch for it, and must restrict it technically.
    Source: Arcep décision 2022-1583 (originating operators check and restrict the numbers their
    customers show); ATIS-1000074 §5.2.3 (attestation A only for a number the customer may use)."""
    out = call.outbound
    if out is None:
        return None
    if not out.known:
        return {"customer": out.customer, "why": "unknown customer"}
    if out.shown is None:
        return {"customer": out.customer, "number_class": call.orig_class.kind}
    return None


def outbound_canvass_range(call: Call, s: Mapping[str, Any]) -> Values:
    """outbound.canvass-range — a canvasser calling from a number outside the ranges dedicated to
    canvassing, beyond Arcep's exemption (a number that calls at most `limit` distinct people in
    `window` seconds is not automated calling).
    Source: Arcep décision 2022-1583 art. 2 and its exemption (5 distinct numbers in 30 days)."""
    out = call.outbound
    if out is None or not out.known or not out.canvasser or call.orig is None:
        return None
    if call.orig_class.kind != "canvassing" and out.callees > s["limit"]:
        return {"distinct": out.callees, "limit": s["limit"], "window": s["window"],
                "number_class": call.orig_class.kind}
    return None


def canvass_repeat(call: Call, s: Mapping[str, Any]) -> Values:
    """canvass.repeat — a canvassing call to the same person by the same customer beyond `limit`
    calls in `window` seconds (the 5th call in 30 days), whatever numbers the calls showed.
    Source: décret 2022-1313, Code de la consommation art. D223-9 (at most 4 calls in 30 days)."""
    out = call.outbound
    if out is None or not out.known or call.dest is None or not _canvassing(call):
        return None
    if out.repeat > s["limit"]:
        return {"count": out.repeat, "limit": s["limit"], "window": s["window"]}
    return None


def canvass_refused(call: Call, s: Mapping[str, Any]) -> Values:
    """canvass.refused — a call by a customer to a person who refused one of its calls within
    `window` seconds (60 days), as fed back by feedback(..., refused=True, customer=ID).
    Source: Code de la consommation art. D223-9 (no new call within 60 days of a refusal)."""
    out = call.outbound
    if out is None or not out.known or out.refused <= 0:
        return None
    return {"refusals": out.refused, "window": s["window"]}


def canvass_opposition(call: Call, s: Mapping[str, Any]) -> Values:
    """canvass.opposition — the called number is on the customer's opposition lists (Bloctel's
    extract, its own red list of people who asked not to be called).
    Source: Code de la consommation art. L223-1 (Bloctel), D223-9; RGPD art. 21 (objection)."""
    out = call.outbound
    if out is None or out.opposition is None:
        return None
    return hit_values(out.opposition)


# The originating side's own rules: never run on an inbound call (canvass.hours runs on both).
OUTBOUND_ONLY = ("outbound.unauthorised-number", "outbound.canvass-range", "canvass.repeat", "canvass.refused",
                 "canvass.opposition")
OUTBOUND = OUTBOUND_ONLY[:2] + ("canvass.hours",) + OUTBOUND_ONLY[2:]


class Rule(NamedTuple):
    check: Callable[[Call, Mapping[str, Any]], Values]
    defaults: Mapping[str, Any]  # every setting the rule takes, "action" and "label" included
    # A condition without which the rule cannot fire, so the engine skips it cheaply: "always",
    # "lists" (a list matched), "intl" (unauthenticated, from abroad), "unassigned" (MAJNUM
    # knows no holder), the calling number's plan class, or "outbound" (the originating side's
    # own rules: never opened by an inbound call, run by Screen.check(direction="outbound")).
    # tests/test_screen_engine.py holds the gated engine to running every rule on every call.
    gate: str


def _rule(check, action: str, label: Optional[str] = None, gate: str = "always", **settings) -> Rule:
    return Rule(check, {"action": action, "label": label, **settings}, gate)


# The order is the order rules are reported in a decision.
RULES: Dict[str, Rule] = {
    "list.allow": _rule(list_allow, "allow", gate="lists"),
    "list.block": _rule(list_block, "reject", gate="lists"),
    "list.dno": _rule(list_dno, "reject", gate="lists"),
    "plan.invalid": _rule(plan_invalid, "reject", gate="invalid"),
    "plan.unassigned": _rule(plan_unassigned, "reject", gate="unassigned",
                             classes=("geographic", "mobile", "voip", "canvassing", "platform", "m2m")),
    "plan.canvassing": _rule(plan_canvassing, "tag", "canvassing", gate="canvassing"),
    "plan.platform": _rule(plan_platform, "allow", gate="platform"),
    "intl.fr-fixed": _rule(intl_fr_fixed, "reject", gate="intl"),
    "intl.fr-mobile": _rule(intl_fr_mobile, "mask", gate="intl"),
    "canvass.hours": _rule(canvass_hours, "tag", "canvassing-out-of-hours", gate="canvassing"),
    "pattern.burst": _rule(pattern_burst, "reject", "suspected-spam", limit=30, window=60),
    "pattern.fanout": _rule(pattern_fanout, "tag", "suspected-spam", limit=50, window=3600,
                            exempt=("canvassing", "platform")),
    "pattern.repeat": _rule(pattern_repeat, "reject", "suspected-spam", limit=30, canvass_limit=4,
                            window=30 * DAY),
    "pattern.flood": _rule(pattern_flood, "reject", "suspected-spam", limit=20, window=60),
    "pattern.short": _rule(pattern_short, "tag", "suspected-spam", share=0.8, min_outcomes=20,
                           min_duration=6.0, window=3600),
    "outbound.unauthorised-number": _rule(outbound_unauthorised_number, "reject", gate="outbound"),
    "outbound.canvass-range": _rule(outbound_canvass_range, "reject", gate="outbound", limit=5, window=30 * DAY),
    "canvass.repeat": _rule(canvass_repeat, "reject", gate="outbound", limit=4, window=30 * DAY),
    "canvass.refused": _rule(canvass_refused, "reject", gate="outbound", window=60 * DAY),
    "canvass.opposition": _rule(canvass_opposition, "reject", gate="outbound"),
}
ORDER = {rule_id: i for i, rule_id in enumerate(RULES)}
