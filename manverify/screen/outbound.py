"""The originating side: an operator's customers (call centres, companies calling out), the numbers
each may show, their opposition lists, and what the outbound rules read about one call.

    screen = Screen.from_dict({"customers": {"acme": {
        "canvasser": True,                                       # calls people to sell: D223-9 applies
        "numbers": ["0162000000-0162000999", "0612345678", "0163*"],   # list-file entries, inline
        "number_files": ["acme-numbers.txt"],                    # and/or list files
        "opposition": ["bloctel-extract.txt", "acme-red-list.txt"]}}})
    d = screen.check("0162000001", "0612345678", direction="outbound", customer="acme")
    screen.feedback("0162000001", "0612345678", refused=True, customer="acme")
    a = screen.authorise("acme", "0162000001", "0612345678")   # a.attest: "A", "B" or None (refuse)
    screen.outbound_status("acme", "0612345678")               # for scrubbing: no call counted

Entries use the list-file syntax (manverify.screen.listfile): numbers in any common form, `0163*`
prefixes, `0162000000-0162000999` ranges, `expires=` dates. Opposition files are list files of
numbers (Bloctel's extracts, the customer's red list). Customers naming the same opposition files
share one table (a national extract is 10 M numbers). Files are reloaded when they change; a bad
new file keeps the tables in use.

Counters (keyed hashes only, as everywhere in screening: Keyer.derive of the customer and the
number's key, never a number):
  out-repeat   calls by the customer to one person, `canvass.repeat.window` (30 days)
  out-refused  refusals by one person of the customer's calls, `canvass.refused.window` (60 days)
  out-callees  distinct people called from one number of the customer, `outbound.canvass-range.window`
Every outbound check of a known customer is a call attempt: a refused attempt is counted too, so
a blocked campaign stays blocked instead of being let through on its next try.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import tn
from ..errors import ConfigError, UsageError
from . import listfile, numtable, plan
from .counters import Counts, Op, Series
from .lists import NO_HITS, Hit, Lists, _File, _release_freed_memory
from .rules import ABSENT, Call, is_time

log = logging.getLogger("manverify.screen")

CUSTOMER_KEYS = ("canvasser", "numbers", "number_files", "opposition")
_BLOCK, _ALLOW = 0, 1  # Lists' groups (global scope): opposition numbers, numbers the customer may show
UNAUTHORISED = ("refuse", "sign-b")  # what authorise() does for a number the customer may not show


class Facts(NamedTuple):
    """What the outbound rules read about one call (Call.outbound)."""

    customer: str
    known: bool  # False: no such customer in the configuration
    canvasser: bool
    shown: Optional[Hit]  # the customer's entry that lets it show the calling number; None: it may not
    opposition: Optional[Hit]  # the opposition entry holding the called number
    repeat: int  # calls by the customer to the called person in canvass.repeat's window, this one included
    refused: int  # refusals fed back for the customer and the called person in canvass.refused's window
    callees: int  # distinct people called from this number by the customer (counted for canvassers
    #               calling from outside the canvassing ranges only; 0 otherwise)


class OutboundStatus(NamedTuple):
    """What a contact's next call would meet (Screen.outbound_status): for scrubbing files."""

    opposition: bool  # on the customer's opposition or red lists
    refused: int  # refusals in canvass.refused's window (> 0: do not call)
    repeat: int  # calls in canvass.repeat's window (>= canvass.repeat.limit: the next one is over)


class Customer(NamedTuple):
    id: str
    canvasser: bool
    numbers: Lists  # the allow group: numbers it may show
    opposition: Optional[Lists]  # the block group: numbers it must not call


class Series3(NamedTuple):
    repeat: Series
    refused: Series
    callees: Series


def series(settings: Mapping[str, Mapping[str, Any]]) -> Series3:
    """The outbound counters' series for the rules' configured windows (slots of a day)."""
    return Series3(
        repeat=Series("out-repeat", settings["canvass.repeat"]["window"], slots=30),
        refused=Series("out-refused", settings["canvass.refused"]["window"], slots=60),
        callees=Series("out-callees", settings["outbound.canvass-range"]["window"], slots=30, distinct=True),
    )


# ---------------------------------------------------------------------------- configuration
def _inline(entries: Any, where: str) -> listfile.ListFile:
    """The `numbers` entries of a customer as the ListFile a file of those lines would give."""
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ConfigError(f"{where} must be a list of numbers, prefixes (0163*) or ranges, not {entries!r}")
    keys: List[int] = []
    lines: List[int] = []
    expiry: List[int] = []
    prefixes, ranges = [], []
    for i, text in enumerate(entries):
        if not isinstance(text, str):
            raise ConfigError(f"{where}[{i}] must be a text, not {text!r}")
        try:
            e = listfile.parse_line(text)
        except listfile.BadLine as err:
            raise ConfigError(f"{where}[{i}]: {err}") from None
        if e is None:
            raise ConfigError(f"{where}[{i}] is empty")
        line = i + 1
        if e.kind == "number":
            keys.append(numtable.key(e.digits[0]))
            lines.append(line)
            expiry.append(0 if e.expiry == numtable.NEVER else e.expiry)
        elif e.kind == "prefix":
            prefixes.append((line, e.digits, e.expiry))
        else:
            ranges.append((line, e.digits[0], e.digits[1], e.expiry))
    digest = hashlib.blake2b("\n".join(entries).encode(), digest_size=16).digest()
    return listfile.ListFile(
        path=Path(where), keys=np.array(keys, dtype=np.uint64), lines=np.array(lines, dtype=np.uint32),
        expiry=np.array(expiry, dtype=np.uint32) if any(expiry) else None, prefixes=prefixes, ranges=ranges,
        errors=[], error_count=0, line_count=len(entries), digest=digest)


def _files(value: Any, where: str, base: Path) -> Tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of file names, not {value!r}")
    return tuple(base / v for v in value)


def _read(paths: Sequence[Path], where: str) -> List[listfile.ListFile]:
    out = []
    for p in paths:
        try:
            lf = listfile.read(p)
        except OSError as e:
            raise ConfigError(f"{where}: cannot read {p}: {e.strerror or e}") from None
        if lf.error_count:
            line, why = lf.errors[0]
            more = f" (and {lf.error_count - 1} more bad lines)" if lf.error_count > 1 else ""
            raise ConfigError(f"{where}: {p}:{line}: {why}{more}")
        out.append(lf)
    return out


class Tables(NamedTuple):
    """Every customer's tables, built at once; a reload builds another and swaps it in."""

    customers: Mapping[str, Customer]
    files: Tuple[Path, ...]


def spec(config: Any) -> Mapping[str, Mapping[str, Any]]:
    """The `customers` mapping, checked for its shape (ConfigError naming the key)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"customers must map customer ids to their settings, not {type(config).__name__}")
    for cid, c in config.items():
        if not isinstance(cid, str) or not cid or not cid.isprintable() or len(cid) > 128:
            raise ConfigError(f"customers: a customer id is a short printable text, not {cid!r}")
        where = f"customers.{cid}"
        if not isinstance(c, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings, not {type(c).__name__}")
        unknown = sorted(set(c) - set(CUSTOMER_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {list(CUSTOMER_KEYS)}")
        if not isinstance(c.get("canvasser", False), bool):
            raise ConfigError(f"{where}.canvasser must be true or false, not {c['canvasser']!r}")
    return config


def build(config: Any, base: Path) -> Tables:
    """Read every customer's entries and files (ConfigError naming the key and file:line)."""
    config = spec(config)
    customers: Dict[str, Customer] = {}
    shared: Dict[Tuple[Path, ...], Lists] = {}  # opposition tables by their files
    watched: List[Path] = []
    for cid, c in config.items():
        where = f"customers.{cid}"
        inline = _inline(c.get("numbers", []), f"{where}.numbers")
        number_files = _files(c.get("number_files"), f"{where}.number_files", base)
        read = [inline] + _read(number_files, f"{where}.number_files")
        files = [_File(f"{where}.numbers", inline.path, _ALLOW)] + [
            _File(f"{where}.number_files", p, _ALLOW) for p in number_files]
        numbers = Lists((), files, read)
        opp_paths = _files(c.get("opposition"), f"{where}.opposition", base)
        opposition = None
        if opp_paths:
            opposition = shared.get(opp_paths)
            if opposition is None:
                opposition = shared[opp_paths] = Lists(
                    (), [_File(f"{where}.opposition", p, _BLOCK) for p in opp_paths],
                    _read(opp_paths, f"{where}.opposition"))
        watched += number_files + opp_paths
        customers[cid] = Customer(cid, bool(c.get("canvasser", False)), numbers, opposition)
    if shared:
        _release_freed_memory()
    return Tables(customers, tuple(dict.fromkeys(watched)))


# ---------------------------------------------------------------------------- per call
def ops(s: Series3, keyer, customer: Customer, orig_key: Optional[bytes], dest_key: Optional[bytes],
        canvassing: bool, count_callees: bool, add: int = 1) -> Tuple[List[Op], Tuple[int, ...]]:
    """The counters' ops of one outbound call, and the Facts field (5 repeat, 6 refused, 7 callees)
    each op's value goes to. Subjects are keyed hashes of (customer, number key); each op is tagged
    with its own subject, so in a Redis Cluster a subject's slots stay in one hash slot."""
    out: List[Op] = []
    fields: List[int] = []
    if dest_key is not None:
        cd = keyer.derive("customer-dest", customer.id, dest_key)
        if canvassing:
            out.append(Op(s.repeat, cd, cd, add))
            fields.append(5)
        out.append(Op(s.refused, cd, cd, 0))
        fields.append(6)
    if count_callees and orig_key is not None:
        cn = keyer.derive("customer-number", customer.id, orig_key)
        out.append(Op(s.callees, cn, cn, 1 if add and dest_key is not None else 0, dest_key))
        fields.append(7)
    return out, tuple(fields)


def refusal(s: Series3, keyer, customer: str, dest_key: bytes) -> Op:
    """The op that records one refusal of the customer's call by the called person."""
    cd = keyer.derive("customer-dest", customer, dest_key)
    return Op(s.refused, cd, cd, 1)


def unknown(customer: Any) -> Facts:
    name = customer if isinstance(customer, str) else repr(customer)
    return Facts(name[:128], False, False, None, None, 0, 0, 0)


# ---------------------------------------------------------------------------- the Screen's side
_UNAUTH = "outbound.unauthorised-number"
_ZERO, _DEGRADED = Counts(), Counts(degraded=True)


class Authorisation(NamedTuple):
    """What a signing service (STI-AS) may do for one call a customer places (Screen.authorise).

    attest   "A" (the customer may show the number), "B" (the customer is known, the number is
             not verified: unauthorised="sign-b"), or None: refuse, do not sign
    rules    the outbound rules that refuse it (acting, not report-only), in RULES order
    error    why it is refused, "" when it is not
    decision the outbound ScreenDecision it comes from
    """

    attest: Optional[str]
    rules: Tuple[str, ...]
    error: str
    decision: Any


class OutboundSide:
    """The originating side of Screen (mixed into it): customers, the outbound check, refusals,
    authorisations for signing, and the read-only status used to scrub contact files."""

    def _init_outbound(self, config: Any, base: Path, watching: bool) -> None:
        from .. import reload as reload_mod

        self._out_series = series(self.settings)
        self._out_tables = build(config, base)
        if watching and self._out_tables.files:
            self._watches.append(reload_mod.Watch(self._out_tables.files, lambda: build(config, base),
                                                  self._use_out_tables, what="customers' numbers and opposition"))

    def _use_out_tables(self, new: Tables) -> None:
        self._out_tables = new

    @property
    def customers(self) -> Tuple[str, ...]:
        """The customer ids the configuration knows."""
        return tuple(self._out_tables.customers)

    def _outbound_call(self, orig: Any, dest: Any, now: Any, customer: Any, add: int = 1):
        o = tn.try_canonical(orig) if isinstance(orig, str) else None
        d = tn.try_canonical(dest) if isinstance(dest, str) else None
        if not is_time(now):
            now = time.time()
        oc = plan.classify(o) if o else ABSENT
        dc = plan.classify(d) if d else ABSENT
        c = self._out_tables.customers.get(customer) if isinstance(customer, str) else None
        counts = _ZERO
        if c is None:
            facts = unknown(customer)
        else:
            shown = c.numbers.match(o, None, now).allow if o else None
            opposition = c.opposition.match(d, None, now).block if d and c.opposition is not None else None
            canvassing = c.canvasser or (o is not None and oc.kind == "canvassing")
            count_callees = c.canvasser and o is not None and oc.kind != "canvassing"
            k = self.keyer
            todo, fields = ops(self._out_series, k, c, k.key(o) if count_callees else None,
                               k.key(d) if d else None, canvassing, count_callees, add)
            values: list = [c.id, True, c.canvasser, shown, opposition, 0, 0, 0]
            if todo:
                got, degraded = self.counters.apply(todo, now)
                for f, v in zip(fields, got):
                    values[f] = v
                if degraded:
                    counts = _DEGRADED
            facts = Facts(*values)
        return Call(o, d, oc, dc, "national", None, None, now, NO_HITS, "", counts, facts)

    def _check_outbound(self, orig: Any, dest: Any, now: Any, customer: Any):
        try:
            return self._decide(self._outbound_call(orig, dest, now, customer), self._out_active)
        except Exception:  # noqa: BLE001 — fail open, as inbound: see authorise() for signing
            return self._error()

    def _feedback_outbound(self, dest: Any, refused: Any, customer: Any, now: Any) -> None:
        try:
            if refused is not True:
                return
            c = self._out_tables.customers.get(customer) if isinstance(customer, str) else None
            d = tn.try_canonical(dest) if isinstance(dest, str) else None
            if c is None or d is None:
                log.warning(
                    "refusal fed back for %s; not counted", "an unknown customer" if c is None else "no called number")
                return
            if not is_time(now):
                now = time.time()
            self.counters.apply([refusal(self._out_series, self.keyer, c.id, self.keyer.key(d))], now)
        except Exception:  # noqa: BLE001
            log.exception("screening feedback failed; the refusal is not counted")

    def authorise(self, customer: Any, orig: Any, dest: Any, now: Any = None,
                  unauthorised: str = "refuse") -> Authorisation:
        """The attestation a signing service may give a call the customer places, from the outbound
        check (which counts the call): "A" for a number the customer may show; for any other
        number None (refuse) or, with unauthorised="sign-b", "B" (ATIS-1000074: customer known,
        number not verified); None whenever another outbound rule acts (report-only rules do not
        refuse). An unknown customer is always refused. A fault of screening's own gives "B":
        the call is not stopped, and no number is vouched for."""
        if unauthorised not in UNAUTHORISED:
            raise ConfigError(f"unauthorised must be one of {', '.join(UNAUTHORISED)}, not {unauthorised!r}")
        d = self.check(orig, dest, now, direction="outbound", customer=customer)
        if not isinstance(customer, str) or customer not in self._out_tables.customers:
            return Authorisation(None, (_UNAUTH,), "unknown customer", d)
        if d.rules and d.rules[0] == "screen.error":
            return Authorisation("B", (), "", d)
        settings = self.settings
        refusing = tuple(r for r in d.rules if r not in d.reported and settings[r]["action"] != "allow"
                         and (r != _UNAUTH or unauthorised == "refuse"))
        if refusing:
            return Authorisation(None, refusing, "the call breaks outbound rule(s): " + ", ".join(refusing), d)
        return Authorisation("B" if _UNAUTH in d.rules else "A", (), "", d)

    def outbound_status(self, customer: str, dest: str, now: Any = None) -> OutboundStatus:
        """What the customer's next call to `dest` would meet, read without counting anything:
        on an opposition list, refusals within canvass.refused's window, calls within
        canvass.repeat's window. For scrubbing files (manverify scrub --customer). UsageError for
        an unknown customer or a `dest` that is no telephone number."""
        out = self.outbound_status_many(customer, [dest], now)[0]
        if out is None:
            raise UsageError(f"dest: not a telephone number: {str(dest)[:64]!r}")
        return out

    def outbound_status_many(self, customer: str, dests: Sequence[Any],
                             now: Any = None) -> List[Optional[OutboundStatus]]:
        """outbound_status() for many numbers, in one exchange with the counters' store; None
        for an entry that is no telephone number (the caller reports it with its line)."""
        c = self._out_tables.customers.get(customer) if isinstance(customer, str) else None
        if c is None:
            raise UsageError(f"customer: {str(customer)[:64]!r} is not in the configuration's customers "
                             f"(known: {sorted(self._out_tables.customers)[:10]})")
        if not is_time(now):
            now = time.time()
        k, s = self.keyer, self._out_series
        numbers = [tn.try_canonical(x) if isinstance(x, str) else None for x in dests]
        batch = [ops(s, k, c, None, k.key(d), True, False, add=0)[0] for d in numbers if d]
        answers = iter(self.counters.apply_many([(b, now) for b in batch]) if batch else ())
        out: List[Optional[OutboundStatus]] = []
        for d in numbers:
            if not d:
                out.append(None)
                continue
            (repeat, refused), _ = next(answers)
            opposed = c.opposition is not None and c.opposition.match(d, None, now).block is not None
            out.append(OutboundStatus(opposed, refused, repeat))
        return out
