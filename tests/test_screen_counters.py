"""screen.counters, local backend and configuration: exact counts against a brute-force model of the
slotted windows, expiry, bounded memory, threads, keyed hashes, configuration errors."""
from __future__ import annotations

import hmac
import random
import threading

import pytest

from manverify.errors import ConfigError, UsageError
from manverify.screen.counters import (Counters, Counts, LocalCounters, Op, Series, Windows,
                                       counters_from_config, screen_series)
from manverify.screen.keys import Keyer, mask

SECRET = "s" * 32
NUMBERS = [f"+3361234{i:04d}" for i in range(12)]


def model_counts(events, outcomes, orig, dest, now, windows):
    """What Counts should be, from every event so far, by the documented rule: an event counts when
    its slot is at most `slots` slots before the current one."""
    s = screen_series(windows)

    def within(series, t):
        return int(t // series.width) >= int(now // series.width) - series.slots

    return Counts(
        burst=sum(1 for o, d, t in events if o == orig and within(s.burst, t)),
        fanout=len({d for o, d, t in events if o == orig and within(s.fanout, t)}),
        repeat=sum(1 for o, d, t in events if o == orig and d == dest and within(s.repeat, t)),
        flood=sum(1 for o, d, t in events if d == dest and within(s.flood, t)),
        short=sum(1 for o, sh, t in outcomes if o == orig and sh and within(s.short, t)),
        outcomes=sum(1 for o, sh, t in outcomes if o == orig and within(s.outcomes, t)),
    )


def random_traffic(seed, n=400, start=1_700_000_000.0):
    rng = random.Random(seed)
    t = start
    for _ in range(n):
        t += rng.choice([0.0, 0.5, 3.0, 20.0, 70.0, 400.0, 5000.0])
        yield rng.choice(NUMBERS[:5]), rng.choice(NUMBERS), t, rng.random() < 0.3, rng.random() < 0.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_local_counts_are_exact_against_the_model(seed):
    windows = Windows(burst=60, fanout=3600, repeat=86400, flood=120, short=3600)
    c = LocalCounters(windows, Keyer(SECRET))
    k = c.keyer
    events, outcomes = [], []
    for orig, dest, now, fed, short in random_traffic(seed):
        events.append((orig, dest, now))
        ok, dk = k.key(orig), k.key(dest)
        got = c.observe(ok, dk, k.pair(ok, dk), now)
        assert got == model_counts(events, outcomes, orig, dest, now, windows)
        if fed:
            outcomes.append((orig, short, now))
            c.outcome(ok, short, now)


def test_observe_many_is_observe_in_order():
    one, many = LocalCounters(keyer=Keyer(SECRET)), LocalCounters(keyer=Keyer(SECRET))
    k = one.keyer
    calls = []
    for orig, dest, now, _, _ in random_traffic(7, n=200):
        ok, dk = k.key(orig), k.key(dest)
        calls.append((ok, dk, k.pair(ok, dk), now))
    assert [one.observe(*c) for c in calls] == many.observe_many(calls)


def test_observe_is_the_call_ops_applied():
    """observe()'s inline paths against the generic ones (Counters.observe builds the ops and runs
    apply_many), on traffic out of order too, with outcomes in between."""
    windows = Windows(burst=60, fanout=3600, repeat=86400, flood=120, short=3600)
    fast, generic = LocalCounters(windows, Keyer(SECRET)), LocalCounters(windows, Keyer(SECRET))
    k = fast.keyer
    rng = random.Random(5)
    now = 1_700_000_000.0
    for _ in range(3000):
        now += rng.choice([0.0, 0.5, 3.0, 20.0, 70.0, 400.0, 5000.0, -15.0, -200.0, -9000.0])
        orig, dest = rng.choice(NUMBERS[:5] + [None]), rng.choice(NUMBERS + [None])
        o = k.key(orig) if orig else None
        d = k.key(dest) if dest else None
        p = k.pair(o, d) if o and d else None
        assert fast.observe(o, d, p, now) == Counters.observe(generic, o, d, p, now)
        if o and rng.random() < 0.3:
            short = rng.random() < 0.5
            fast.outcome(o, short, now)
            generic.outcome(o, short, now)
    assert fast.stats() == generic.stats()


def test_an_entry_stays_while_any_of_its_series_counts():
    """A calling number's series share one entry: its burst window passing must not take its
    fanout (an hour) with it, however many entries come and go."""
    c = LocalCounters(Windows(burst=60, fanout=3600, flood=60), Keyer(SECRET))
    k = c.keyer
    o = k.key(NUMBERS[0])
    assert c.observe(o, k.key(NUMBERS[1]), None, 1000.0).fanout == 1
    for i in range(300):  # other callers, after o's burst window
        c.observe(k.key(f"+3310000{i:04d}"), k.key(f"+3320000{i:04d}"), None, 1200.0 + i)
    assert c.observe(o, k.key(NUMBERS[2]), None, 1600.0) == Counts(burst=1, fanout=2, flood=1)
    for i in range(300):  # after every window: o's entry goes with the others
        c.observe(k.key(f"+3330000{i:04d}"), k.key(f"+3340000{i:04d}"), None, 9000.0 + 20 * i)
    st = c.stats()  # what is left: the callers of the last hour (one slot more), callees of the last 70 s
    assert st["keys"]["burst"] == st["keys"]["fanout"] <= 3600 / 20 + 40 and st["keys"]["flood"] <= 5
    assert st["expired"] >= 300 + 300 + 1


def test_every_kind_of_subject_is_capped():
    c = LocalCounters(Windows(), Keyer(SECRET), max_keys=50)
    k = c.keyer
    for i in range(400):
        o, d = k.key(f"+3310000{i:04d}"), k.key(f"+3320000{i:04d}")
        c.observe(o, d, k.pair(o, d), 1000.0)
    refused = Series("refused", 86400, slots=10)
    for i in range(400):
        c.apply([Op(refused, b"t", k.derive("x", str(i)))], 1000.0)
    st = c.stats()
    assert set(st["keys"].values()) == {50} and set(st["keys"]) == {"burst", "fanout", "short", "outcomes",
                                                                   "flood", "repeat", "refused"}
    assert st["evicted"] == 4 * 350


@pytest.mark.parametrize("side", ["orig", "dest", "pair"])
def test_the_least_recently_extended_subject_is_evicted_first(side):
    c = LocalCounters(Windows(burst=60, flood=60, fanout=60), Keyer(SECRET), max_keys=3)
    a, b, x, y = (c.keyer.key(n) for n in NUMBERS[:4])

    def call(key, now):
        return c.observe(*{"orig": (key, None, None), "dest": (None, key, None), "pair": (None, None, key)}[side],
                         now)

    later = 1000.0 + (86400 if side == "pair" else 10)  # the next slot
    call(a, 1000.0)
    call(b, 1001.0)
    call(x, 1002.0)
    call(a, later)  # a newer slot: a moves behind b and x
    call(y, later)  # one too many: b goes
    field = {"orig": "burst", "dest": "flood", "pair": "repeat"}[side]
    assert getattr(call(a, later), field) == 3 and getattr(call(b, later), field) == 1


def test_a_series_counted_otherwise_under_the_same_code_is_a_usage_error():
    c = LocalCounters(Windows(burst=60), Keyer(SECRET))
    o = c.keyer.key(NUMBERS[0])
    with pytest.raises(UsageError, match="burst"):
        c.apply([Op(Series("burst", 60, distinct=True), o, o, 1, o)], 1.0)


def test_keyer_is_rfc_2104_hmac_sha256_for_any_secret():
    """The HMAC is computed from precomputed pads: the same bytes as hmac.digest, so proxies of
    any version share keys; a secret longer than SHA-256's block is hashed first."""
    for secret in (b"k" * 16, b"k" * 64, b"k" * 65, bytes(range(256)) * 2, "é" * 20):
        raw = secret.encode() if isinstance(secret, str) else secret
        keyer = Keyer(secret)
        n = "+33612345678"
        want = hmac.digest(raw, b"n\0" + n.encode(), "sha256")[:16]
        assert keyer.key(n) == want and keyer.key(n) == want  # the second from the cache
        assert keyer.pair(want, want) == hmac.digest(raw, b"p\0" + want + want, "sha256")[:16]
        msg = b"d\0" + b"".join(len(x).to_bytes(4, "big") + x for x in (b"lbl", b"ab"))
        assert keyer.derive("lbl", "ab") == hmac.digest(raw, msg, "sha256")[:16]


def test_keyer_cache_is_bounded_and_changes_no_key():
    cached, fresh = Keyer(SECRET, cache=8), Keyer(SECRET, cache=0)
    numbers = [f"+3361000{i:04d}" for i in range(50)]
    for n in numbers * 3:
        assert cached.key(n) == fresh.key(n)
        assert len(cached._cache) <= 8


def test_a_window_slides_by_slots_and_forgets():
    c = LocalCounters(Windows(burst=60), Keyer(SECRET))
    o = c.keyer.key(NUMBERS[0])
    t0 = 6000.0  # the start of a 10 s slot
    assert c.observe(o, None, None, t0).burst == 1
    assert c.observe(o, None, None, t0 + 59).burst == 2   # within the window: always counted
    assert c.observe(o, None, None, t0 + 69.9).burst == 3  # window + one slot: still counted (early, never late)
    assert c.observe(o, None, None, t0 + 70).burst == 3    # the first call's slot has left: 2 of 3 remain + this
    assert c.observe(o, None, None, t0 + 500).burst == 1


def test_none_keys_are_not_counted():
    c = LocalCounters(keyer=Keyer(SECRET))
    d = c.keyer.key(NUMBERS[1])
    assert c.observe(None, d, None, 100.0) == Counts(flood=1)
    assert c.observe(None, None, None, 100.0) == Counts()
    c.outcome(None, True, 100.0)
    o = c.keyer.key(NUMBERS[0])
    assert c.observe(o, None, None, 100.0) == Counts(burst=1)  # no callee: fanout not counted


def test_memory_is_bounded_by_expiry_and_a_cap():
    c = LocalCounters(Windows(burst=60), Keyer(SECRET), max_keys=100)
    for i in range(1000):
        c.observe(c.keyer.key(f"+3310000{i:04d}"), None, None, 1000.0)
    st = c.stats()
    assert st["keys"]["burst"] == 100 and st["evicted"] >= 900
    for i in range(50):  # much later: the old entries expire as new ones come
        c.observe(c.keyer.key(f"+3320000{i:04d}"), None, None, 1_000_000.0)
    assert c.stats()["expired"] > 0
    assert c.stats()["keys"]["burst"] <= 100


def test_distinct_members_are_capped():
    c = LocalCounters(keyer=Keyer(SECRET), max_members=50)
    k = c.keyer
    o = k.key(NUMBERS[0])
    counts = [c.observe(o, k.key(f"+3310000{i:04d}"), None, 100.0).fanout for i in range(80)]
    assert counts[:50] == list(range(1, 51)) and set(counts[50:]) == {50}


def test_threads_count_every_call_once():
    c = LocalCounters(Windows(burst=3600), Keyer(SECRET))
    o = c.keyer.key(NUMBERS[0])

    def run():
        for _ in range(2000):
            c.observe(o, None, None, 500.0)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.observe(o, None, None, 500.0).burst == 8001


def test_a_new_series_is_a_declaration():
    """What issue 18 needs: refusals remembered 60 days, reporters counted once per number."""
    c = LocalCounters(keyer=Keyer(SECRET))
    k = c.keyer
    refused = Series("refused", 60 * 86400, slots=60)
    reporters = Series("reporters", 30 * 86400, slots=30, distinct=True)
    subject = k.derive("customer-dest", "acme", k.key(NUMBERS[1]))
    assert c.apply([Op(refused, subject, subject, 0)], 0.0) == ((0,), False)
    c.apply([Op(refused, subject, subject)], 0.0)
    assert c.apply([Op(refused, subject, subject, 0)], 59 * 86400.0) == ((1,), False)
    assert c.apply([Op(refused, subject, subject, 0)], 62 * 86400.0) == ((0,), False)
    n = k.key(NUMBERS[2])
    for reporter in ("a", "b", "a", "a"):
        values, _ = c.apply([Op(reporters, n, n, 1, k.derive("reporter", reporter))], 10.0)
    assert values == (2,)


def test_keyer_is_keyed_separated_and_hides_the_number():
    a, b = Keyer(SECRET), Keyer("t" * 32)
    n = NUMBERS[0]
    assert a.key(n) == Keyer(SECRET).key(n) and a.key(n) != b.key(n) and len(a.key(n)) == 16
    assert a.pair(a.key(n), a.key(NUMBERS[1])) != a.pair(a.key(NUMBERS[1]), a.key(n))
    assert a.derive("x", "ab", "c") != a.derive("x", "a", "bc")
    assert n[1:].encode() not in a.key(n) and SECRET not in repr(a)
    assert mask("+33612345678") == "+336******78" and "2345" not in mask("+33612345678")


@pytest.mark.parametrize("config, key", [
    ({"backend": "memcached"}, "counters.backend"),
    ({"backend": "local", "colour": 1}, "counters.colour"),
    ({"backend": "local", "url": "redis://x"}, "counters.url"),
    ({"backend": "local", "key_secret": "short"}, "counters.key_secret"),
    ({"backend": "local", "max_keys": 0}, "counters.max_keys"),
    ({"backend": "redis", "url": "redis://127.0.0.1:1/0"}, "counters.key_secret"),
    ({"backend": "redis", "key_secret": SECRET, "budget_ms": 0}, "counters.budget_ms"),
    ({"backend": "redis", "key_secret": SECRET, "budget_ms": "5"}, "counters.budget_ms"),
    ({"backend": "redis", "key_secret": SECRET, "url": "http://127.0.0.1"}, "counters.url"),
    ({"backend": "redis", "key_secret": SECRET, "url": "redis+cluster://127.0.0.1:1/2"}, "counters.url"),
    ({"backend": "redis", "key_secret": SECRET, "cluster": "yes"}, "counters.cluster"),
    ({"backend": "redis", "key_secret": SECRET, "prefix": "{x}"}, "counters.prefix"),
    ({"backend": "redis", "key_secret": SECRET, "probe_interval_s": -1}, "counters.probe_interval_s"),
    ("local", "counters"),
])
def test_configuration_mistakes_name_the_key(config, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        counters_from_config(config, Windows())


def test_windows_are_checked():
    with pytest.raises(ConfigError, match=r"windows\.flood"):
        counters_from_config({"backend": "local"}, Windows(flood=0))


def test_local_backend_from_config():
    c = counters_from_config({"backend": "local", "key_secret": SECRET, "max_keys": 10}, Windows(burst=30))
    assert isinstance(c, LocalCounters) and c.max_keys == 10 and c.windows.burst == 30
    assert c.keyer.key(NUMBERS[0]) == Keyer(SECRET).key(NUMBERS[0])
    assert counters_from_config({}, Windows()).backend == "local"


@pytest.mark.parametrize("args, name", [
    (("+33612345678", None, None, 1.0), "orig_key"),
    ((None, bytearray(16), None, 1.0), "dest_key"),
    ((None, None, 7, 1.0), "pair_key"),
    ((None, None, None, float("nan")), "now"),
    ((None, None, None, None), "now"),
])
def test_engine_mistakes_raise_usage_errors(args, name):
    c = LocalCounters(keyer=Keyer(SECRET))
    with pytest.raises(UsageError, match=name):
        c.observe(*args)
    with pytest.raises(UsageError, match=name):
        c.observe_many([args])
    if name in ("orig_key", "now"):
        with pytest.raises(UsageError, match=name):
            c.outcome(args[0], True, args[3])
