"""The screening engine: Screen.from_dict(config) once, screen.check(...) per call.

    screen = Screen.from_dict({"rules": {"pattern.burst": {"limit": 20}}})
    d = screen.check(orig="+33162000001", dest="0612345678", entry="national")
    if d.reject: reply(d.code, d.reason) with Reason: d.reason_header()

check() canonicalises the call's numbers, classifies them against the French plan, looks the
calling number up in MAJNUM and the lists, counts the call once in the counters (one round trip
to a shared store), runs every enabled rule (rules.py) and turns the fired rules into one
decision by their configured actions. It never raises for what came with the call: garbage
numbers, times or partners give a decision, and a fault of its own gives "allow" with the
`screen.error` rule (screening fails open: it must never stop calls by its own fault).

Configuration mistakes raise ConfigError naming the key, at construction only.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .. import reload as reload_mod
from .. import tn
from ..errors import ConfigError, UsageError
from ..policy import ENTRIES
from ..result import Result
from . import outbound as outbound_mod
from . import plan
from .counters import Counts, Keyer, Windows, counters_from_config
from .decision import PHRASES, ScreenDecision
from .lists import NO_HITS, Lists
from .lookup import Lookup
from .majnum import MajnumSource
from .rules import ABSENT, ACTIONS, ORDER, OUTBOUND, RULES, SEVERITY, Call, is_time

log = logging.getLogger("manverify.screen")

MODES = ("enforce", "report-only")
_TOP_KEYS = ("mode", "reject_code", "tag_header", "divert_to", "plan", "lists", "counters", "rules", "reload",
             "customers")
_TOP_KEYS += ("lookup",)  # caller look-up and user reports (lookup.py)
DIRECTIONS = ("inbound", "outbound")
_NO_HITS = NO_HITS  # lists.match answers this very object when nothing matched
_ZERO = Counts(0, 0, 0, 0, 0, 0, False)
_EMPTY: Mapping[str, Any] = MappingProxyType({})
ERROR_RULE = "screen.error"


class _Tally:
    """Per-thread counters of decisions: no lock on the per-call path, summed on read."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: List[Dict[Tuple[str, ...], int]] = []
        self._lock = threading.Lock()

    def add(self, key: Tuple[str, ...]) -> None:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = {}
            with self._lock:
                self._all.append(d)
        d[key] = d.get(key, 0) + 1

    def totals(self) -> Dict[Tuple[str, ...], int]:
        out: Dict[Tuple[str, ...], int] = {}
        with self._lock:
            dicts = list(self._all)
        for d in dicts:
            for k, v in list(d.items()):
                out[k] = out.get(k, 0) + v
        return out


def _setting(rule_id: str, name: str, value: Any, default: Any) -> Any:
    where = f"rules.{rule_id}.{name}"
    if name == "action":
        if value not in ACTIONS:
            raise ConfigError(f"{where} must be one of {', '.join(ACTIONS)}, not {value!r}")
        return value
    if name == "label":
        if value is not None and (not isinstance(value, str) or not value.isprintable() or len(value) > 64):
            raise ConfigError(f"{where} must be a short printable text, not {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of texts, not {value!r}")
        return tuple(value)
    if isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok or (isinstance(default, int) and not isinstance(value, int)):
            kind = "a positive whole number" if isinstance(default, int) else "a positive number"
            raise ConfigError(f"{where} must be {kind}, not {value!r}")
        if name == "share" and value > 1:
            raise ConfigError(f"{where} is a share: a number in (0, 1], not {value!r}")
        return value
    raise ConfigError(f"{where}: cannot be set")  # pragma: no cover - every default has a kind above


def _rule_settings(config: Any) -> Dict[str, Mapping[str, Any]]:
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"rules must be a mapping of rule id to settings, not {type(config).__name__}")
    unknown = sorted(set(config) - set(RULES))
    if unknown:
        raise ConfigError(f"rules: unknown rule id(s) {unknown}; known: {sorted(RULES)}")
    out = {}
    for rule_id, rule in RULES.items():
        given = config.get(rule_id) or {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"rules.{rule_id} must be a mapping of settings, not {type(given).__name__}")
        known = set(rule.defaults) | {"report_only", "enabled"}
        bad = sorted(set(given) - known)
        if bad:
            raise ConfigError(f"rules.{rule_id}: unknown setting(s) {bad}; known: {sorted(known)}")
        s = dict(rule.defaults, report_only=False, enabled=True)
        for name, value in given.items():
            s[name] = _setting(rule_id, name, value, s[name])
        out[rule_id] = MappingProxyType(s)
    return out


class Screen(outbound_mod.OutboundSide):
    """Screening of calls that MAN lets continue. Build with Screen.from_dict(config); safe to
    share between threads. See the module docstring and SCREENING.md for the rules."""

    def __init__(self, config: Mapping[str, Any], base: "str | Path" = ".", *, reload: Optional[bool] = None):
        if not isinstance(config, Mapping):
            raise ConfigError(f"screening configuration must be a mapping, not {type(config).__name__}")
        unknown = sorted(set(config) - set(_TOP_KEYS))
        if unknown:
            raise ConfigError(f"screening: unknown key(s) {unknown}; known: {sorted(_TOP_KEYS)}")
        base = Path(base)
        self.mode = config.get("mode", "enforce")
        if self.mode not in MODES:
            raise ConfigError(f"screening.mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        self.reject_code = config.get("reject_code", 608)
        if self.reject_code not in PHRASES or isinstance(self.reject_code, bool):
            raise ConfigError(f"screening.reject_code must be 608 or 603, not {self.reject_code!r}")
        self.tag_header = config.get("tag_header", "X-Call-Label")
        if not isinstance(self.tag_header, str) or not self.tag_header.replace("-", "").isalnum():
            raise ConfigError(f"screening.tag_header must be a header name, not {self.tag_header!r}")
        self.divert_to = config.get("divert_to")
        self.settings = _rule_settings(config.get("rules"))
        if self.divert_to is not None and (not isinstance(self.divert_to, str) or not self.divert_to.isprintable()):
            raise ConfigError(f"screening.divert_to must be a URI, not {self.divert_to!r}")
        if self.divert_to is None:
            diverting = [r for r, s in self.settings.items() if s["action"] == "divert" and s["enabled"]]
            if diverting:
                raise ConfigError(f"screening.divert_to is needed: rule(s) {diverting} divert calls")
        # The enabled rules with their settings, grouped by the gate without which they cannot
        # fire: a call runs the "always" group and only the groups its features open.
        self._gated: Dict[str, Tuple[Tuple[str, Any, Mapping[str, Any]], ...]] = {}
        for rule_id, s in self.settings.items():
            if s["enabled"]:
                rule = RULES[rule_id]
                self._gated[rule.gate] = self._gated.get(rule.gate, ()) + ((rule_id, rule.check, s),)
        self._always = self._gated.pop("always", ())
        self._allowed: Dict[Tuple[bool, int], ScreenDecision] = {}  # the usual decision, made once
        # the originating side's rules (gate "outbound", never opened by an inbound call) run as one list
        self._out_active = tuple((rule_id, RULES[rule_id].check, s) for rule_id, s in self.settings.items()
                                 if s["enabled"] and rule_id in OUTBOUND)
        self._acting = self.mode == "enforce"
        self.windows = Windows(
            burst=self.settings["pattern.burst"]["window"], fanout=self.settings["pattern.fanout"]["window"],
            repeat=self.settings["pattern.repeat"]["window"], flood=self.settings["pattern.flood"]["window"],
            short=self.settings["pattern.short"]["window"])
        self._min_duration = self.settings["pattern.short"]["min_duration"]

        watching = config.get("reload", True) if reload is None else reload
        if not isinstance(watching, bool):
            raise ConfigError(f"screening.reload must be true or false, not {watching!r}")
        self._watches: List[reload_mod.Watch] = []
        self.majnum: Optional[MajnumSource] = None
        self._load_plan(config.get("plan"), base, watching)
        self.lists = self._load_lists(config.get("lists"), base, watching)
        self._tables: tuple = ()
        self._versions = self._current_versions()

        counters = config.get("counters") or {"backend": "local"}
        if not isinstance(counters, Mapping):
            raise ConfigError(f"screening.counters must be a mapping, not {type(counters).__name__}")
        self.counters = counters_from_config(counters, self.windows)
        self.keyer: Keyer = self.counters.keyer
        self._tally = _Tally()
        self._init_outbound(config.get("customers"), base, watching)
        self._lookup = Lookup(self, config.get("lookup"))

    @classmethod
    def from_dict(cls, config: Mapping[str, Any], base: "str | Path" = ".", *, reload: Optional[bool] = None) -> "Screen":
        """The engine for a configuration mapping (the `screening` object of the JSON configs);
        relative file names are read from `base`."""
        return cls(config, base, reload=reload)

    # ------------------------------------------------------------------ data
    def _load_plan(self, config: Any, base: Path, watching: bool) -> None:
        if config is None:
            return
        if not isinstance(config, Mapping) or set(config) - {"majnum"}:
            raise ConfigError(f'screening.plan must be {{"majnum": "MAJNUM.csv"}}, not {config!r}')
        if config.get("majnum") is not None:
            # A new file is put in use only when it is plausible beside the one in use: a
            # truncated download must never make every number "unassigned".
            self.majnum = MajnumSource(base / config["majnum"], background=watching)

    def _load_lists(self, config: Any, base: Path, watching: bool) -> Optional[Lists]:
        if not config:
            return None
        lists = Lists.from_config(config, base)
        if watching and lists.files:
            self._watches.append(reload_mod.Watch(lists.files, lambda: Lists.from_config(config, base),
                                                  self._use_lists, what="screening lists"))
        return lists

    def look(self) -> bool:
        """Look at every data file now (lists, customers' tables, MAJNUM) and reload what changed:
        the ticker does it about once a second; a host whose background threads seldom run (a
        Kamailio worker holding the GIL between callbacks) calls this on its own thread. True when
        something new is in use."""
        changed = False
        for watch in self._watches:
            changed = watch.check() or changed
        if self.majnum is not None:
            changed = self.majnum.check() or changed
        return changed

    def _use_lists(self, new: Lists) -> None:
        self.lists = new

    def _current_versions(self) -> Mapping[str, Any]:
        # Rebuilt only when a reload swapped a table in: the per-call path compares two references.
        tables = (self.majnum.table if self.majnum is not None else None, self.lists)
        if tables != self._tables:
            self._tables, self._versions = tables, self.versions()
        return self._versions

    def versions(self) -> Mapping[str, Any]:
        v = {"plan": plan.PLAN}
        if self.majnum is not None:
            v["majnum"] = self.majnum.table.version
        if self.lists is not None:
            v["lists"] = self.lists.version
        return MappingProxyType(v)

    # ------------------------------------------------------------------ per call
    def check(self, orig: Any, dest: Any, now: Any = None, entry: Any = "national", partner: Any = None,
              result: Optional[Result] = None, direction: str = "inbound", customer: Any = None) -> ScreenDecision:
        """The decision for one call that MAN lets continue: numbers in any common form (garbage
        gives a decision too), `now` in epoch seconds (default: the clock), `entry` "national" or
        "international", `partner` the interconnect partner (selects its lists), `result` the
        call's verification Result (for the intl.* rules).

        direction="outbound", customer=ID: the originating side's rules instead (see outbound.py),
        for a call the customer places; an unknown customer is a rejection, never an exception."""
        if direction != "inbound":
            if direction != "outbound":
                raise UsageError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
            return self._check_outbound(orig, dest, now, customer)
        if customer is not None:
            raise UsageError('customer: only with direction="outbound"')
        try:
            call = self._call(orig, dest, now, entry, partner, result)
            return self._decide(call)
        except Exception:  # noqa: BLE001 — fail open: screening must never stop calls by its own fault
            return self._error()

    def check_many(self, calls: Iterable[Mapping[str, Any]]) -> List[ScreenDecision]:
        """check() for a batch of mappings with check()'s keywords, counted in one pipelined round
        trip to the shared store; decisions in input order. Inbound calls only (UsageError for a
        mapping with an outbound direction or a customer: those go through check())."""
        prepared: List[Optional[Call]] = []
        for c in calls:
            if c.get("direction", "inbound") != "inbound" or c.get("customer") is not None:
                raise UsageError('check_many: inbound calls only; use check(direction="outbound", customer=ID)')
            try:
                prepared.append(self._call(c.get("orig"), c.get("dest"), c.get("now"), c.get("entry", "national"),
                                           c.get("partner"), c.get("result"), count=False))
            except Exception:  # noqa: BLE001
                prepared.append(None)
        try:
            keyed = [(c, self._keys(c.orig, c.dest)) for c in prepared if c is not None]
            counts = self.counters.observe_many([k + (c.now, self._lookup.call_ops(k[0], c.result)) for c, k in keyed])
        except Exception:  # noqa: BLE001
            return [self._error() for _ in prepared]
        out, it = [], iter(counts)
        for c in prepared:
            if c is None:
                out.append(self._error())
                continue
            try:
                out.append(self._decide(c._replace(counts=next(it))))
            except Exception:  # noqa: BLE001
                out.append(self._error())
        return out

    def _keys(self, orig: Optional[str], dest: Optional[str]) -> Tuple[Optional[bytes], Optional[bytes], Optional[bytes]]:
        """The counter keys of a call's numbers: the calling, the called, and their pair."""
        k = self.keyer
        o = k.key(orig) if orig else None
        d = k.key(dest) if dest else None
        return o, d, (k.pair(o, d) if o is not None and d is not None else None)

    def _call(self, orig, dest, now, entry, partner, result, count: bool = True) -> Call:
        o = tn.try_canonical(orig) if type(orig) is str else None
        d = tn.try_canonical(dest) if type(dest) is str else None
        if not is_time(now):
            now = time.time()  # a time that is no time is not the call's to choose
        if entry not in ENTRIES:
            entry = "national"
        if type(partner) is not str:
            partner = None
        if not isinstance(result, Result):
            result = None
        oc = plan.classify(o) if o else ABSENT
        dc = plan.classify(d) if d else ABSENT
        hits = self.lists.match(o, partner, now) if self.lists is not None and o else _NO_HITS
        majnum = self.majnum
        holder = "" if majnum is None or not o or not plan.is_french(o) else majnum.holder(o)
        counts = _ZERO
        if count and (o or d):
            keys = self._keys(o, d)
            counts = self.counters.observe(*keys, now, self._lookup.call_ops(keys[0], result))
        return Call(o, d, oc, dc, entry, partner, result, now, hits, holder, counts)

    def _rules_for(self, call: Call):
        """The enabled rules that can fire on this call (see rules.Rule.gate)."""
        g = self._gated
        if not g:
            return self._always
        out = g.get(call.orig_class.kind, ())
        if call.hits is not _NO_HITS:
            out += g.get("lists", ())
        if call.holder is None:
            out += g.get("unassigned", ())
        if call.entry == "international" and call.result is not None and not call.result.ok:
            out += g.get("intl", ())
        return out + self._always if out else self._always

    def _fire(self, call: Call, rules) -> Tuple[List[str], Dict[str, Mapping[str, Any]]]:
        fired: List[str] = []
        values: Dict[str, Mapping[str, Any]] = {}
        for rule_id, check, s in rules:
            v = check(call, s)
            if v is not None:
                fired.append(rule_id)
                values[rule_id] = v
        if len(fired) > 1:
            fired.sort(key=ORDER.__getitem__)
        return fired, values

    def _decide(self, call: Call, rules: Optional[tuple] = None) -> ScreenDecision:
        fired, values = self._fire(call, self._rules_for(call) if rules is None else rules)
        degraded = call.counts.degraded
        if not fired:  # the usual call: one immutable decision, made once per data version
            versions = self._current_versions()
            key = (degraded, id(versions))
            decision = self._allowed.get(key)
            if decision is None or decision.versions is not versions:
                decision = self._allowed[key] = ScreenDecision(
                    "allow", (), None, "", None, _EMPTY, degraded=degraded, versions=versions)
            self._tally.add(("action", "allow"))
            if degraded:
                self._tally.add(("degraded",))
            return decision
        settings = self.settings
        reported = [r for r in fired if settings[r]["report_only"] or not self._acting]
        acting = [r for r in fired if r not in reported] if reported else fired
        if "list.allow" in acting and settings["list.allow"]["action"] == "allow":
            action, acted = "allow", ("list.allow",)  # the allow list overrides every other rule
        elif acting:
            action = max((settings[r]["action"] for r in acting), key=SEVERITY.__getitem__)
            acted = tuple(r for r in acting if settings[r]["action"] == action)
        else:
            action, acted = "allow", ()
        label = next((settings[r]["label"] for r in acted if settings[r]["label"]), None) if action == "tag" else None
        code = self.reject_code if action == "reject" else None
        decision = ScreenDecision(
            action=action, rules=tuple(fired), code=code, reason=PHRASES[code] if code else "", label=label,
            values=MappingProxyType(values), acted=acted, reported=tuple(reported),
            divert_to=self.divert_to if action == "divert" else None, degraded=degraded,
            versions=self._current_versions())
        tally = self._tally
        tally.add(("action", action))
        for rule_id in fired:
            tally.add(("rule", rule_id, "reported" if rule_id in reported else settings[rule_id]["action"]))
        if degraded:
            tally.add(("degraded",))
        return decision

    def _error(self) -> ScreenDecision:
        log.exception("screening failed on a call; it continues unscreened")
        self._tally.add(("error",))
        self._tally.add(("action", "allow"))
        return ScreenDecision("allow", (ERROR_RULE,), None, "", None, _EMPTY, versions=self._current_versions())

    # ------------------------------------------------------------------ outcomes and state
    def feedback(self, orig: Any, dest: Any = None, answered: bool = True, duration: Any = 0.0,
                 now: Any = None, refused: bool = False, customer: Any = None) -> None:
        """A call's outcome, for pattern.short: unanswered, or answered for less than
        rules.pattern.short.min_duration seconds, counts as short. Never raises for call data.

        With customer=ID (the originating side): refused=True records that the called person
        refused the customer's call (canvass.refused); nothing else is counted."""
        if customer is not None:
            self._feedback_outbound(dest, refused, customer, now)
            return
        try:
            o = tn.try_canonical(orig) if isinstance(orig, str) else None
            if o is None:
                return
            if not is_time(now):
                now = time.time()
            seconds = duration if isinstance(duration, (int, float)) and math.isfinite(duration) else 0.0
            short = not answered or seconds < self._min_duration
            key = self.keyer.key(o)
            self.counters.outcome(key, short, now, self._lookup.outcome_ops(key, short))
        except Exception:  # noqa: BLE001
            log.exception("screening feedback failed; the outcome is not counted")

    def stats(self) -> dict:
        """Plain counters: decisions by action, rules by what they did, errors, and the state of
        the counters, lists and MAJNUM."""
        totals = self._tally.totals()
        by_action = {a: 0 for a in ACTIONS}
        by_rule: Dict[str, Dict[str, int]] = {}
        for key, n in totals.items():
            if key[0] == "action":
                by_action[key[1]] += n
            elif key[0] == "rule":
                by_rule.setdefault(key[1], {})[key[2]] = n
        out = {
            "calls": sum(by_action.values()), "by_action": by_action, "by_rule": by_rule,
            "errors": totals.get(("error",), 0), "degraded": totals.get(("degraded",), 0),
            "mode": self.mode, "counters": self.counters.stats(), "versions": dict(self.versions()),
            "reloads": {w.what: {"reloads": w.reloads, "failures": w.failures, "error": w.error}
                        for w in self._watches},
        }
        if self.majnum is not None:
            out["majnum"] = self.majnum.stats()
        if self.lists is not None:
            out["lists"] = self.lists.stats()
        return out

    # ------------------------------------------------------------------ caller look-up (lookup.py)
    def lookup(self, number: Any, now: Any = None) -> Dict[str, Any]:
        """What is known of a number: plan class, MAJNUM holder, lists, recent activity, the share
        of its calls that verified, user reports of 30 days, a label and a 0-100 score with the
        signals that made them (the table in manverify.screen.lookup). One exchange with the
        counter store, nothing counted. UsageError for a number that is none."""
        return self._lookup.lookup(number, now)

    def report(self, number: Any, category: Any, reporter: Any, now: Any = None) -> Dict[str, Any]:
        """A user's report of a number (category canvassing, scam, silent or other); a reporter
        counts once per number per 30 days. The look-up after it, with "counted". UsageError for
        garbage, lookup.ReportLimited when the reporter sent too many reports."""
        return self._lookup.report(number, category, reporter, now)

    def close(self) -> None:
        self.counters.close()
