"""Caller look-up and user reports: what the network knows of a number, and what people say of it.

    screen.lookup("+33162000001")   -> {"number", "class", "holder", "lists", "activity", "verified",
                                        "reports", "label", "score", "signals", "degraded", "versions"}
    screen.report("+33162000001", category="scam", reporter="opaque-id")   -> the same, updated,
                                        plus "counted" (False: this reporter already counted here)

`lists` holds the global list entries the number is on (a look-up comes from no partner);
`degraded` says the shared store was not used (this process's counts only); `versions` the
plan, MAJNUM and lists data used, as in a screening decision.

A look-up reads the counters check() and feedback() fill, without counting (add=0 ops), in one
exchange with the store: every series of a number is tagged with the number's key, so on Redis it
is one script, in one hash slot of a cluster. What is counted for it, all under keyed hashes:

  verified-A/-B/-C, failed, unsigned
              the number's calls by verification outcome when check() is given the Result, 30 days
  plain       its calls check() got without a Result, 30 days (so a call is one op, and its
              calls are the sum of the five)
  outcomes30, short30
              call outcomes fed back and the short or unanswered ones, 30 days (feedback())
  reports-<category>
              distinct reporters per category, 30 days
  reported    per (reporter, number): a reporter counts once per number per 30 days, the first
              category it gave wins
  reports-by  per reporter: reports sent in `lookup.report_window_s`; beyond
              `lookup.report_limit` report() raises ReportLimited (HTTP 429), and the refused
              reports still count, so a flood stays refused until it slows down

A reporter is only ever stored as Keyer.derive("reporter", id): the store holds no id in clear.

Label and score. Each signal that holds adds its weight (points per unit, at most `cap`); the
score is the sum, clamped to 0..100. The label is the strongest label among the signals whose value
reached their `label from` (fraud > suspected-spam > canvassing), else None. `list.allow`
overrides everything: score 0, no label. Pattern thresholds are the screening rules' own
(rules.pattern.burst.limit, ...), so a look-up and a call agree.

    signal              points  cap  label           from  unit
    list.dno                80   80  fraud              1  on the Do-Not-Originate list (a call showing it is spoofed)
    list.block              50   50  suspected-spam     1  on the operator's block list
    plan.invalid            60   60  suspected-spam     1  not a number of the French plan
    plan.unassigned         60   60  suspected-spam     1  in no MAJNUM range (with a MAJNUM file)
    plan.canvassing         20   20  canvassing         1  in the canvassing ranges (Arcep 2022-1583)
    reports.scam            20   80  fraud              3  per distinct reporter, 30 days
    reports.canvassing      10   40  canvassing         3  per distinct reporter, 30 days
    reports.silent          10   40  suspected-spam     3  per distinct reporter, 30 days
    reports.other            5   20  suspected-spam     5  per distinct reporter, 30 days
    pattern.burst           30   30  suspected-spam     1  calls in the burst window above rules.pattern.burst.limit
    pattern.fanout          30   30  suspected-spam     1  distinct callees above pattern.fanout's limit (its exempt classes aside)
    activity.short          30   30  suspected-spam     1  30 days' short share >= pattern.short's share, its min_outcomes reached
    verified.failed         20   20  suspected-spam     1  >= half of 10+ signed calls failed verification (spoofing)
    verified.attested      -20  -20  -                  1  >= 90% of 10+ calls with a result verified with attestation A
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .. import tn
from ..errors import ConfigError, ReportLimited, UsageError
from ..result import Result
from . import plan
from .counters import Op, Series
from .rules import hit_values

__all__ = ["CATEGORIES", "TABLE", "Lookup", "ReportLimited", "judge"]

DAY = 86400
MONTH = 30 * DAY
CATEGORIES = ("canvassing", "scam", "silent", "other")
LABELS = ("fraud", "suspected-spam", "canvassing")  # strongest first
CONFIG_KEYS = ("report_limit", "report_window_s")
MAX_REPORTER = 256
MIN_SIGNED = 10        # signed calls before verification shares mean anything
FAILED_SHARE = 0.5
ATTESTED_SHARE = 0.9


class Row(NamedTuple):
    points: int           # per unit of the signal
    cap: int              # the most (or, negative, the least) the signal adds
    label: Optional[str]
    label_from: int       # units from which the signal sets its label


# The rules of the module docstring's table, once (tests/test_screen_lookup.py checks they agree).
TABLE: Dict[str, Row] = {
    "list.dno": Row(80, 80, "fraud", 1),
    "list.block": Row(50, 50, "suspected-spam", 1),
    "plan.invalid": Row(60, 60, "suspected-spam", 1),
    "plan.unassigned": Row(60, 60, "suspected-spam", 1),
    "plan.canvassing": Row(20, 20, "canvassing", 1),
    "reports.scam": Row(20, 80, "fraud", 3),
    "reports.canvassing": Row(10, 40, "canvassing", 3),
    "reports.silent": Row(10, 40, "suspected-spam", 3),
    "reports.other": Row(5, 20, "suspected-spam", 5),
    "pattern.burst": Row(30, 30, "suspected-spam", 1),
    "pattern.fanout": Row(30, 30, "suspected-spam", 1),
    "activity.short": Row(30, 30, "suspected-spam", 1),
    "verified.failed": Row(20, 20, "suspected-spam", 1),
    "verified.attested": Row(-20, -20, None, 1),
}


def judge(found: Sequence[Tuple[str, Any, int]], allowed: bool = False) -> Tuple[Optional[str], int, List[dict]]:
    """(label, score, signals) from the signals that hold: (signal id, value shown, units)."""
    signals = []
    labels = set()
    score = 0
    for name, value, units in found:
        row = TABLE[name]
        weight = row.points * units
        weight = min(weight, row.cap) if row.cap >= 0 else max(weight, row.cap)
        score += weight
        if row.label is not None and units >= row.label_from:
            labels.add(row.label)
        signals.append({"signal": name, "value": value, "weight": weight})
    if allowed:  # the operator vouches for the number: nothing else counts
        signals.append({"signal": "list.allow", "value": True, "weight": -score})
        return None, 0, signals
    label = next((lab for lab in LABELS if lab in labels), None)
    return label, max(0, min(100, score)), signals


def _share(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 3) if whole else None


class Lookup:
    """The look-up and reports of one Screen (built by it; reads its counters, lists, MAJNUM and
    rule settings)."""

    def __init__(self, screen: Any, config: Any = None):
        config = {} if config is None else config
        if not isinstance(config, Mapping):
            raise ConfigError(f"screening.lookup must be a mapping, not {type(config).__name__}")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"screening.lookup: unknown key(s) {unknown}; known: {list(CONFIG_KEYS)}")
        self.limit = config.get("report_limit", 20)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= 1_000_000:
            raise ConfigError(f"screening.lookup.report_limit must be a whole number from 1, not {self.limit!r}")
        window = config.get("report_window_s", DAY)
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 60 <= window <= MONTH:
            raise ConfigError(f"screening.lookup.report_window_s must be seconds from 60 to {MONTH}, not {window!r}")
        self.window = window
        self.screen = screen
        self.plain = Series("plain", MONTH, slots=30)
        self.outcomes = Series("outcomes30", MONTH, slots=30)
        self.short = Series("short30", MONTH, slots=30)
        self.attested = {a: Series(f"verified-{a}", MONTH, slots=30) for a in "ABC"}
        self.failed = Series("failed", MONTH, slots=30)
        self.unsigned = Series("unsigned", MONTH, slots=30)
        self.reports = {c: Series(f"reports-{c}", MONTH, slots=30) for c in CATEGORIES}
        self.reported = Series("reported", MONTH, slots=30)
        self.sent = Series("reports-by", window, slots=24)

    # ------------------------------------------------------------------ what calls count
    def call_ops(self, orig_key: Optional[bytes], result: Optional[Result]) -> Tuple[Op, ...]:
        """The op check() adds to a call's counting (same round trip): one count of the calling
        number in the series of its verification outcome, `plain` without a Result."""
        if orig_key is None:
            return ()
        if result is None:
            series = self.plain
        elif result.ok:
            series = self.attested.get(result.attest, self.attested["C"])
        elif result.sip_code == 428:  # no Identity header: unsigned, not a failed signature
            series = self.unsigned
        else:
            series = self.failed
        return (Op(series, orig_key, orig_key),)

    def outcome_ops(self, orig_key: bytes, short: bool) -> Tuple[Op, ...]:
        """Ops feedback() adds to an outcome: the 30-day outcomes and short ones."""
        return Op(self.outcomes, orig_key, orig_key), Op(self.short, orig_key, orig_key, 1 if short else 0)

    # ------------------------------------------------------------------ the API
    def lookup(self, number: Any, now: Any = None) -> Dict[str, Any]:
        e164 = _number(number)
        return self._look(e164, self.screen.keyer.key(e164), _now(now), None)

    def report(self, number: Any, category: Any, reporter: Any, now: Any = None) -> Dict[str, Any]:
        e164 = _number(number)
        if category not in CATEGORIES:
            raise UsageError(f"category must be one of {', '.join(CATEGORIES)}, not {str(category)[:40]!r}")
        if not isinstance(reporter, str) or not 0 < len(reporter) <= MAX_REPORTER or not reporter.isprintable():
            raise UsageError(f"reporter must be a printable identifier of 1 to {MAX_REPORTER} characters")
        now = _now(now)
        keyer, counters = self.screen.keyer, self.screen.counters
        rkey = keyer.derive("reporter", reporter)
        (sent,), _ = counters.apply([Op(self.sent, rkey, rkey)], now)
        if sent > self.limit:
            raise ReportLimited(f"reporter over its limit: {sent} reports in {self.window:g} s "
                                f"(lookup.report_limit {self.limit})", self.sent.width - now % self.sent.width)
        nkey = keyer.key(e164)
        # The increment is atomic in the store: of concurrent reports, exactly one sees 1.
        (times,), _ = counters.apply([Op(self.reported, nkey, keyer.derive("reported", rkey, nkey))], now)
        out = self._look(e164, nkey, now, category if times == 1 else None)
        out["counted"] = times == 1
        return out

    # ------------------------------------------------------------------ the look-up
    def _look(self, e164: str, nkey: bytes, now: float, add: Optional[str]) -> Dict[str, Any]:
        screen = self.screen
        cs = screen.counters.series
        ops = [Op(cs.burst, nkey, nkey, 0), Op(cs.fanout, nkey, nkey, 0), Op(self.plain, nkey, nkey, 0),
               Op(self.outcomes, nkey, nkey, 0), Op(self.short, nkey, nkey, 0), Op(self.failed, nkey, nkey, 0),
               Op(self.unsigned, nkey, nkey, 0)]
        ops += [Op(s, nkey, nkey, 0) for s in self.attested.values()]
        ops += [Op(s, nkey, nkey, 1 if c == add else 0) for c, s in self.reports.items()]
        values, degraded = screen.counters.apply(ops, now)
        burst, fanout, plain, outcomes, short, failed, unsigned = values[:7]
        attested = dict(zip(self.attested, values[7:10]))
        calls = plain + sum(attested.values()) + failed + unsigned
        reports = dict(zip(CATEGORIES, values[10:]))

        nclass = plan.classify(e164)
        majnum = screen.majnum
        holder = majnum.holder(e164) if majnum is not None and plan.is_french(e164) else None
        hits = screen.lists.match(e164, None, now) if screen.lists is not None else None
        lists = {} if hits is None else {h.list: hit_values(h) for h in hits if h is not None}
        settings = screen.settings
        found: List[Tuple[str, Any, int]] = []
        for name in ("dno", "block"):
            if name in lists:
                found.append((f"list.{name}", lists[name]["entry"], 1))
        if nclass.kind == "invalid":
            found.append(("plan.invalid", nclass.source, 1))
        if (majnum is not None and holder is None
                and nclass.kind in settings["plan.unassigned"]["classes"]):
            found.append(("plan.unassigned", nclass.kind, 1))
        if nclass.kind == "canvassing":
            found.append(("plan.canvassing", nclass.kind, 1))
        for c in ("scam", "canvassing", "silent", "other"):
            if reports[c]:
                found.append((f"reports.{c}", reports[c], reports[c]))
        s = settings["pattern.burst"]
        if burst > s["limit"]:
            found.append(("pattern.burst", {"count": burst, "limit": s["limit"], "window": s["window"]}, 1))
        s = settings["pattern.fanout"]
        if fanout > s["limit"] and nclass.kind not in s["exempt"]:
            found.append(("pattern.fanout", {"distinct": fanout, "limit": s["limit"], "window": s["window"]}, 1))
        s = settings["pattern.short"]
        if outcomes >= s["min_outcomes"] and short >= s["share"] * outcomes:
            found.append(("activity.short", _share(short, outcomes), 1))
        verified = sum(attested.values())
        signed = verified + failed
        if signed >= MIN_SIGNED and failed >= FAILED_SHARE * signed:
            found.append(("verified.failed", _share(failed, signed), 1))
        results = signed + unsigned
        if results >= MIN_SIGNED and attested["A"] >= ATTESTED_SHARE * results:
            found.append(("verified.attested", _share(attested["A"], results), 1))
        label, score, signals = judge(found, allowed="allow" in lists)
        return {
            "number": "+" + e164,
            "class": nclass.kind,
            "holder": holder,
            "lists": lists,
            "activity": {
                "calls_30d": calls,
                "calls_recent": burst, "recent_window_s": settings["pattern.burst"]["window"],
                "callees_recent": fanout, "callees_window_s": settings["pattern.fanout"]["window"],
                "outcomes_30d": outcomes, "short_30d": short, "short_share": _share(short, outcomes),
            },
            "verified": {"calls": results, "verified": verified, "share": _share(verified, results),
                         "attestation": attested, "failed": failed, "unsigned": unsigned},
            "reports": dict(reports, total=sum(reports.values()), window_s=MONTH),
            "label": label,
            "score": score,
            "signals": signals,
            "degraded": degraded,
            "versions": dict(screen._current_versions()),
        }


def _number(number: Any) -> str:
    if not isinstance(number, str):
        raise UsageError(f"number must be a telephone number as text, not {type(number).__name__}")
    e164 = tn.try_canonical(number)
    if e164 is None:
        raise UsageError(f"number: {number[:40]!r} is not a telephone number")
    return e164


def _now(now: Any) -> float:
    if now is None:
        return time.time()
    if type(now) not in (int, float) or not 0 <= now < 95_617_584_000:
        raise UsageError("now must be epoch seconds (1970 to year 5000) or None")
    return now
