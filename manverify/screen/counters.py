"""Call-pattern counters for the screening rules: one interface, a local and a Redis backend.

What is counted is declared, not coded: a `Series` says a window, how many slots cut it, and
whether it counts events or distinct members. A call is a handful of `Op`s (series, subject key,
add or just read); both backends run any list of ops, so a new series (the look-up's reports, the
originating side's repeats and refusals) is one `Series(...)` line and the ops that use it:

    refused = Series("refused", 60 * 86400, slots=60)          # refusals remembered 60 days
    subject = keyer.derive("customer-dest", customer, dest_key)
    counters.apply([Op(refused, dest_key, subject)], now)       # count one (add=0: only read)
    reporters = Series("reporters", 30 * 86400, slots=30, distinct=True)
    counters.apply([Op(reporters, n_key, n_key, 1, keyer.derive("reporter", rid))], now)

`apply()` answers (one value per op, degraded); `apply_many()` takes many calls in one exchange.

Windows slide by slots: a window of W seconds in k slots counts the events of the current slot and
of the k slots before it, i.e. the last W seconds plus at most W/k more (a limit fires up to one
slot early, never late). Both backends compute the same slots from the caller's `now`, so they
give the same counts on the same sequence, except distinct counts, which Redis estimates with
HyperLogLog (0.81% standard error) and the local backend counts exactly. (Out-of-order calls, a
`now` older than one already seen, may differ by the slots in between.)

Keys are the keyed hashes of keys.py, never numbers. Data lives until the last moment it can be
counted ((slot + k + 1) * W / k): retention is the window plus one slot.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ..errors import ConfigError, UsageError
from .keys import Keyer
from .rings import TOP, Distinct, count, distinct, head_of, start

Key = Optional[bytes]


class Windows(NamedTuple):
    """Window lengths in seconds (the engine passes the rules' configured values)."""
    burst: float = 60
    fanout: float = 3600
    repeat: float = 30 * 86400
    flood: float = 60
    short: float = 3600


class Counts(NamedTuple):
    """What one call saw, this call included. `fanout` is approximate (HyperLogLog) on Redis;
    `degraded` says the shared store was not used: the counts are this process's only."""
    burst: int = 0      # calls from orig in its window
    fanout: int = 0     # distinct callees of orig in its window
    repeat: int = 0     # calls orig -> dest in its window
    flood: int = 0      # calls to dest in its window
    short: int = 0      # short or unanswered outcomes of orig in its window
    outcomes: int = 0   # outcomes of orig in its window
    degraded: bool = False


class Series:
    """One counted quantity (immutable). `name` is part of the store's keys, with the window and
    slots, so a changed window starts a new series instead of misreading the old slots."""

    __slots__ = ("name", "window", "slots", "distinct", "width", "code")

    def __init__(self, name: str, window: float, slots: int = 6, distinct: bool = False):
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ConfigError(f"series name {name!r}: letters, digits, - _ .")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise ConfigError(f"series {name}: window in seconds, more than 0")
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 100:
            raise ConfigError(f"series {name}: slots from 1 to 100")
        w = int(window) if float(window).is_integer() else float(window)
        for attr, value in (("name", name), ("window", window), ("slots", slots), ("distinct", bool(distinct)),
                            ("width", window / slots), ("code", f"{name}:{w}:{slots}")):
            object.__setattr__(self, attr, value)

    def __setattr__(self, name, value):
        raise AttributeError("Series is immutable")

    def __eq__(self, other):
        return isinstance(other, Series) and (self.code, self.distinct) == (other.code, other.distinct)

    def __hash__(self):
        return hash(self.code)

    def __repr__(self):
        return f"Series({self.name!r}, {self.window!r}, slots={self.slots}, distinct={self.distinct})"


class Op(NamedTuple):
    """Add `add` (0: only read) to `series` for `subject`; a distinct series adds `member`.
    `tag` is the key whose hash slot holds the op in Redis Cluster: ops of one call that share a
    tag run in one script; use the subject's owner (the calling number for a pair)."""
    series: Series
    tag: bytes
    subject: bytes
    add: int = 1
    member: Optional[bytes] = None


class ScreenSeries(NamedTuple):
    burst: Series
    fanout: Series
    repeat: Series
    flood: Series
    short: Series
    outcomes: Series


def screen_series(windows: Windows) -> ScreenSeries:
    for name, value in windows._asdict().items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 366 * 86400:
            raise ConfigError(f"windows.{name}: seconds, more than 0 and at most a year")
    return ScreenSeries(
        burst=Series("burst", windows.burst),
        fanout=Series("fanout", windows.fanout, distinct=True),
        repeat=Series("repeat", windows.repeat, slots=30),  # a day per slot on 30 days
        flood=Series("flood", windows.flood),
        short=Series("short", windows.short),
        outcomes=Series("outcomes", windows.short),
    )


class Counters:
    """The interface the engine calls. Subclasses implement `apply_many`."""

    backend = "?"

    def __init__(self, windows: Windows, keyer: Keyer):
        self.windows = windows
        self.series = screen_series(windows)
        self.keyer = keyer

    # -- generic: any declared series --------------------------------------------------------
    def apply(self, ops: Sequence[Op], now: float) -> Tuple[Tuple[int, ...], bool]:
        """Run `ops` for one call at `now`: (one value per op, degraded)."""
        return self.apply_many(((ops, now),))[0]

    def apply_many(self, calls: Sequence[Tuple[Sequence[Op], float]]) -> List[Tuple[Tuple[int, ...], bool]]:
        raise NotImplementedError

    # -- the screening rules' counts -----------------------------------------------------------
    def _call_ops(self, orig: Key, dest: Key, pair: Key) -> Tuple[List[Op], Tuple[int, ...]]:
        s = self.series
        ops: List[Op] = []
        fields: List[int] = []  # Counts index of each op's value
        if orig is not None:
            ops.append(Op(s.burst, orig, orig))
            ops.append(Op(s.fanout, orig, orig, 1 if dest is not None else 0, dest))
            ops.append(Op(s.short, orig, orig, 0))
            ops.append(Op(s.outcomes, orig, orig, 0))
            fields += (0, 1, 4, 5)
        if pair is not None:
            ops.append(Op(s.repeat, orig if orig is not None else pair, pair))
            fields.append(2)
        if dest is not None:
            ops.append(Op(s.flood, dest, dest))
            fields.append(3)
        return ops, tuple(fields)

    @staticmethod
    def _counts(fields: Tuple[int, ...], values: Sequence[int], degraded: bool) -> Counts:
        out = [0, 0, 0, 0, 0, 0, degraded]
        for i, v in zip(fields, values):
            out[i] = v
        return Counts(*out)

    def observe(self, orig_key: Key, dest_key: Key, pair_key: Key, now: float, extra: Sequence[Op] = ()) -> Counts:
        """Count this call once and return its counts (a None key: that side is not counted).
        `extra`: more ops run in the same exchange (the look-up's series), their values unused."""
        _check(orig_key, dest_key, pair_key, now)
        ops, fields = self._call_ops(orig_key, dest_key, pair_key)
        values, degraded = self.apply_many(((ops + list(extra), now),))[0]
        return self._counts(fields, values, degraded)

    def observe_many(self, calls: Sequence[Tuple]) -> List[Counts]:
        """observe() for each call in order, in one exchange with the store: tuples of
        (orig_key, dest_key, pair_key, now[, extra ops])."""
        for c in calls:
            _check(*c[:4])
        built = [self._call_ops(*c[:3]) for c in calls]
        answers = self.apply_many([(ops + list(c[4]) if len(c) > 4 else ops, c[3])
                                   for (ops, _), c in zip(built, calls)])
        return [self._counts(fields, values, degraded) for (_, fields), (values, degraded) in zip(built, answers)]

    def outcome(self, orig_key: Key, short: bool, now: float, extra: Sequence[Op] = ()) -> None:
        """A call's outcome (from feedback): counted for `pattern.short` (and `extra` ops)."""
        _check(orig_key, None, None, now)
        if orig_key is None:
            return
        s = self.series
        self.apply([Op(s.outcomes, orig_key, orig_key), Op(s.short, orig_key, orig_key, 1 if short else 0),
                    *extra], now)

    def stats(self) -> Dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check(orig: Key, dest: Key, pair: Key, now: float) -> None:
    """The engine's mistakes, not call data: keys come from Keyer, times from its clock."""
    for name, k in (("orig_key", orig), ("dest_key", dest), ("pair_key", pair)):
        if k is not None and type(k) is not bytes:
            raise UsageError(f"{name}: bytes from Keyer or None, not {type(k).__name__}")
    if type(now) not in (float, int) or not -1e12 < now < 1e12:  # also NaN
        raise UsageError("now: seconds since the epoch (a finite float)")


class _Group:
    """The subjects of some series and their states, least recently extended first. The screening
    series of one number share an entry, `[expires, state of series 0, of series 1, ...]` (None
    until written), so a call looks each number up once; a group of one counted series (the
    callee's, the pair's: the most subjects) holds the state itself (`bare`), an int for most."""

    __slots__ = ("table", "series", "bare", "shape", "sweep")

    def __init__(self, series: Sequence[Series]):
        self.table: "OrderedDict[bytes, Any]" = OrderedDict()
        self.series = tuple(series)
        self.bare = len(series) == 1 and not series[0].distinct
        self.shape = (series[0].slots, series[0].width)
        self.sweep = float("-inf")  # no need to look at the front before then (see _trim)

    def expires(self, entry) -> float:
        if self.bare:
            k, width = self.shape
            return (head_of(entry) + k + 1) * width
        return entry[0]


class LocalCounters(Counters):
    """In-process and exact, for one proxy, tests, the demo, and the Redis backend's fallback.

    Each subject holds its series as rings of slot counts (rings.py), the series of a number in
    one entry: a screened call is three look-ups (calling number, callee, pair) and a few
    additions. Thread-safe (one lock per call, so a call's counts are consistent). Memory is
    bounded: an entry goes once none of its series counts anything (looked at as new entries
    arrive, the least recently extended first), each kind of subject keeps at most `max_keys`
    entries (the least recently extended evicted first), and a distinct series at most
    `max_members` members per subject (beyond, the count stays at the cap: far above any limit)."""

    backend = "local"

    def __init__(self, windows: Windows = Windows(), keyer: Optional[Keyer] = None,
                 max_keys: int = 200_000, max_members: int = 65_536):
        super().__init__(windows, keyer if keyer is not None else Keyer.random())
        self.max_keys = max_keys
        self.max_members = max_members
        s = self.series
        self._orig = _Group((s.burst, s.fanout, s.short, s.outcomes))
        self._dest = _Group((s.flood,))
        self._pair = _Group((s.repeat,))
        self._where: Dict[str, Tuple[_Group, int]] = {}  # series code -> its group, its index in entries
        for g in (self._orig, self._dest, self._pair):
            for i, x in enumerate(g.series):
                self._where[x.code] = (g, i + 1)
        self._orig_shape = (s.burst.slots, s.burst.width, s.fanout.slots, s.fanout.width,
                            s.short.slots, s.short.width, s.outcomes.slots, s.outcomes.width)
        self._lock = threading.Lock()
        self.evicted = 0
        self.expired = 0

    def apply_many(self, calls):
        hit = self._hit
        with self._lock:
            return [(tuple([hit(o.series, o.subject, o.add, o.member, now) for o in ops]), False) for ops, now in calls]

    def observe(self, orig_key: Key, dest_key: Key, pair_key: Key, now: float, extra: Sequence[Op] = ()) -> Counts:
        # What _hit does for Counters._call_ops's ops, without building them: the proxy's per-call
        # path, so the common cases (a new subject, one more event in the slot held) are inline
        # and the rest goes to count() (test_observe_is_the_call_ops_applied holds them together).
        if not (type(now) is float and -1e12 < now < 1e12 and (orig_key is None or type(orig_key) is bytes)
                and (dest_key is None or type(dest_key) is bytes) and (pair_key is None or type(pair_key) is bytes)):
            _check(orig_key, dest_key, pair_key, now)
        burst = fanout = repeat = flood = short = outcomes = 0
        with self._lock:
            if orig_key is not None:
                burst, fanout, short, outcomes = self._orig_counts(orig_key, dest_key, now)
            if pair_key is not None:
                g = self._pair
                table = g.table
                cur = int(now // g.shape[1])
                st = table.get(pair_key)
                if st is None:
                    table[pair_key] = (cur << 32) + 1
                    repeat = 1
                    if now >= g.sweep or len(table) > self.max_keys:
                        self._trim(g, now)
                elif st.__class__ is int and st >> 32 == cur and st & TOP < TOP:
                    table[pair_key] = st = st + 1
                    repeat = st & TOP
                else:
                    repeat = self._count_one(g, pair_key, st, cur)
            if dest_key is not None:
                g = self._dest
                table = g.table
                cur = int(now // g.shape[1])
                st = table.get(dest_key)
                if st is None:
                    table[dest_key] = (cur << 32) + 1
                    flood = 1
                    if now >= g.sweep or len(table) > self.max_keys:
                        self._trim(g, now)
                elif st.__class__ is int and st >> 32 == cur and st & TOP < TOP:
                    table[dest_key] = st = st + 1
                    flood = st & TOP
                else:
                    flood = self._count_one(g, dest_key, st, cur)
            for o in extra:  # the look-up's series (lookup.py), values unused
                self._hit(o.series, o.subject, o.add, o.member, now)
        return _new_counts(Counts, (burst, fanout, repeat, flood, short, outcomes, False))

    def observe_many(self, calls: Sequence[Tuple]) -> List[Counts]:
        for c in calls:  # every mistake before any count, as in Counters.observe_many
            _check(*c[:4])
        observe = self.observe
        return [observe(*c) for c in calls]

    def _orig_counts(self, o: bytes, d: Key, now: float) -> Tuple[int, int, int, int]:
        """One call from `o`: burst +1, fanout + `d`, short and outcomes read, on o's one entry."""
        kb, wb, kf, wf, ks, ws, ko, wo = self._orig_shape
        g = self._orig
        table = g.table
        cb = int(now // wb)
        e = table.get(o)
        if e is None:
            expires = (cb + kb + 1) * wb
            fan, fanout = None, 0
            if d is not None:
                cf = int(now // wf)
                fan = Distinct(cf, kf)
                fanout = distinct(fan, cf, d, kf, self.max_members)
                if (cf + kf + 1) * wf > expires:  # not max(): it parses keywords on every call
                    expires = (cf + kf + 1) * wf
            table[o] = [expires, (cb << 32) + 1, fan, None, None]
            if now >= g.sweep or len(table) > self.max_keys:
                self._trim(g, now)
            return 1, fanout, 0, 0
        extended = False  # a series' newest slot moved: the entry's expiry may have
        st = e[1]
        if st.__class__ is int and st >> 32 == cb and st & TOP < TOP:
            e[1] = st = st + 1
            burst = st & TOP
        elif st is None:
            e[1], burst, extended = (cb << 32) + 1, 1, True
        else:
            extended = cb > head_of(st)
            e[1], burst = count(st, cb, 1, kb)
        fan = e[2]
        if d is not None:
            cf = int(now // wf)
            if fan is None:
                fan = e[2] = Distinct(cf, kf)
                extended = True
            elif cf > fan.head:
                extended = True
            elif cf == fan.head and fan.last.get(d) == cf:  # seen in this slot already: nothing moves
                fanout = len(fan.last)
                d = None
            if d is not None:
                fanout = distinct(fan, cf, d, kf, self.max_members)
        else:
            fanout = 0 if fan is None else distinct(fan, int(now // wf), None, kf, self.max_members)
        st = e[3]
        short = 0 if st is None else count(st, int(now // ws), 0, ks)[1]
        st = e[4]
        outcomes = 0 if st is None else count(st, int(now // wo), 0, ko)[1]
        if extended:
            expires = (cb + kb + 1) * wb
            if fan is not None and (fan.head + kf + 1) * wf > expires:
                expires = (fan.head + kf + 1) * wf
            if expires > e[0]:
                e[0] = expires
                table.move_to_end(o)
        return burst, fanout, short, outcomes

    def _count_one(self, g: _Group, subject: bytes, st, cur: int) -> int:
        """One event at slot `cur` for `subject`, whose state is `st`, in a bare group."""
        head = head_of(st)
        g.table[subject], value = count(st, cur, 1, g.shape[0])
        if cur > head:
            g.table.move_to_end(subject)
        return value

    def _hit(self, s: Series, subject: bytes, add: int, member: Optional[bytes], now: float) -> int:
        where = self._where.get(s.code)
        if where is None:
            where = self._where[s.code] = (_Group((s,)), 1)
        g, i = where
        if g.series[i - 1].distinct != s.distinct:
            raise UsageError(f"series {s.name}: the name, window and slots of another series, counted otherwise")
        if s.distinct and member is None:
            add = 0
        k, width = s.slots, s.width
        cur = int(now // width)
        table = g.table
        e = table.get(subject)
        if g.bare:
            if e is None:
                if not add:
                    return 0
                table[subject] = start(cur, add, k)
                self._trim(g, now)
                return add
            head = head_of(e)
            table[subject], value = count(e, cur, add, k)
            if add and cur > head:
                table.move_to_end(subject)
            return value
        if e is None:
            if not add:
                return 0
            e = table[subject] = [(cur + k + 1) * width] + [None] * len(g.series)
            self._trim(g, now)
        st = e[i]
        if s.distinct:
            if st is None:
                if not add:
                    return 0
                st = e[i] = Distinct(cur, k)
            value = distinct(st, cur, member if add else None, k, self.max_members)
        elif st is None:
            if not add:
                return 0
            e[i], value = start(cur, add, k), add
        else:
            e[i], value = count(st, cur, add, k)
        if add:
            expires = (cur + k + 1) * width
            if expires > e[0]:
                e[0] = expires
                table.move_to_end(subject)
        return value

    def _trim(self, g: _Group, now: float) -> None:
        # least recently extended first: roughly expiry order; a few per insert keeps the cost
        # constant (an OrderedDict finds its front in O(1), a dict after deletions does not).
        # Until the front's expiry, inserts need not look (g.sweep).
        table = g.table
        for _ in range(4):
            if len(table) < 2:
                g.sweep = float("-inf")
                break
            key = next(iter(table))
            expires = g.expires(table[key])
            if expires > now:
                g.sweep = expires
                break
            del table[key]
            self.expired += 1
        while len(table) > self.max_keys:
            table.popitem(last=False)
            self.evicted += 1

    def stats(self) -> Dict[str, Any]:
        """`keys`: the subjects held for each series (the series of one subject share its entry)."""
        with self._lock:
            groups = {id(g): g for g, _ in self._where.values()}.values()
            return {"backend": self.backend, "degraded": False,
                    "keys": {s.name: len(g.table) for g in groups for s in g.series},
                    "evicted": self.evicted, "expired": self.expired}


_new_counts = tuple.__new__  # Counts(...) without the generated __new__'s Python frame


CONFIG_KEYS = ("backend", "url", "cluster", "key_secret", "budget_ms", "prefix", "probe_interval_s",
               "log_interval_s", "max_keys")


def counters_from_config(config: Mapping, windows: Windows) -> Counters:
    """{"backend": "local"} or {"backend": "redis", "url": ..., "key_secret": ...}; see
    RedisCounters for the Redis keys. A `redis+cluster://` URL is the same as "cluster": true."""
    if not isinstance(config, Mapping):
        raise ConfigError("counters: an object")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"counters.{unknown[0]}: unknown key (known: {', '.join(CONFIG_KEYS)})")
    backend = config.get("backend", "local")
    max_keys = config.get("max_keys", 200_000)
    if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
        raise ConfigError("counters.max_keys: a positive integer")
    secret = config.get("key_secret")
    if backend == "local":
        extra = sorted(set(config) - {"backend", "key_secret", "max_keys"})
        if extra:
            raise ConfigError(f"counters.{extra[0]}: only for the redis backend")
        keyer = Keyer.random() if secret is None else _keyer(secret)
        return LocalCounters(windows, keyer, max_keys=max_keys)
    if backend == "redis":
        if secret is None:
            raise ConfigError("counters.key_secret: required with the redis backend (every proxy "
                              "sharing the store needs the same secret)")
        from .redisstore import RedisCounters
        return RedisCounters.from_config(config, windows, _keyer(secret))
    raise ConfigError(f"counters.backend: 'local' or 'redis', not {backend!r}")


def _keyer(secret: Any) -> Keyer:
    try:
        return Keyer(secret)
    except ConfigError as e:
        raise ConfigError(f"counters.{e}") from None

