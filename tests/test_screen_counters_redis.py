"""screen.counters on real Redis: a redis-server and a 3-master Redis Cluster started on loopback.

Same counts as the local backend, one count across proxies, keys spread over the cluster's
slots, TTLs bounded by the windows, outages (killed, paused) that never hold a call past its
budget, and no number in clear anywhere in the store or the logs."""
from __future__ import annotations

import logging
import os
import random
import time

import redis

from manverify.screen.counters import LocalCounters, Windows, counters_from_config
from manverify.screen.keys import Keyer
from .redishelp import RedisServer, dump_store, free_port, needs_redis, redis_cluster, redis_server  # noqa: F401 - fixtures

SECRET = "k" * 32
WINDOWS = Windows(burst=60, fanout=3600, repeat=30 * 86400, flood=60, short=3600)
NUMBERS = [f"+3361234{i:04d}" for i in range(40)]


def make(url, **extra):
    config = {"backend": "redis", "url": url, "key_secret": SECRET, "budget_ms": 500, "probe_interval_s": 0.05}
    config.update(extra)
    return counters_from_config(config, WINDOWS)


def traffic(seed, n=300, start=None):
    rng = random.Random(seed)
    t = time.time() if start is None else start
    keyer = Keyer(SECRET)
    calls = []
    for _ in range(n):
        t += rng.choice([0.0, 0.2, 2.0, 15.0, 90.0])
        o, d = keyer.key(rng.choice(NUMBERS[:6])), keyer.key(rng.choice(NUMBERS))
        calls.append((o, d, keyer.pair(o, d), t, rng.random() < 0.3))
    return calls


def assert_same(redis_counts, local_counts):
    assert redis_counts._replace(fanout=0) == local_counts._replace(fanout=0)
    assert abs(redis_counts.fanout - local_counts.fanout) <= 1 + local_counts.fanout * 0.03


def run_both(store, calls, local=None):
    local = local or LocalCounters(WINDOWS, Keyer(SECRET))
    for o, d, p, now, short in calls:
        assert_same(store.observe(o, d, p, now), local.observe(o, d, p, now))
        if short:
            store.outcome(o, True, now)
            local.outcome(o, True, now)
    return local


def test_redis_counts_match_local(redis_server):
    with make(redis_server.url) as store:
        run_both(store, traffic(1))
        st = store.stats()
        assert st["store_calls"] > 0 and st["local_calls"] == 0 and st["errors"] == 0


def test_a_batch_counts_like_one_by_one(redis_server):
    calls = traffic(2)
    local = LocalCounters(WINDOWS, Keyer(SECRET))
    with make(redis_server.url) as store:
        got = store.observe_many([c[:4] for c in calls])
    for g, c in zip(got, calls):
        assert not g.degraded
        assert_same(g, local.observe(*c[:4]))


def test_two_proxies_see_one_count(redis_server):
    keyer = Keyer(SECRET)
    o, d = keyer.key(NUMBERS[0]), keyer.key(NUMBERS[1])
    now = time.time()
    with make(redis_server.url) as a, make(redis_server.url) as b:
        seen = [(a if i % 2 else b).observe(o, d, keyer.pair(o, d), now).burst for i in range(20)]
        seen += [c.burst for c in a.observe_many([(o, d, None, now)] * 5)]
    assert seen == list(range(1, 26))


def test_fanout_is_a_hyperloglog_close_to_the_truth(redis_server):
    keyer = Keyer(SECRET)
    o = keyer.key(NUMBERS[0])
    now = time.time()
    with make(redis_server.url) as store:
        counts = store.observe_many([(o, keyer.key(f"+331{i:08d}"), None, now) for i in range(2000)])
    assert abs(counts[-1].fanout - 2000) <= 2000 * 0.03
    assert redis.Redis.from_url(redis_server.url).execute_command("PFDEBUG", "ENCODING", _keys(redis_server, "fanout")[0])


def _keys(server, part=""):
    r = redis.Redis.from_url(server.url)
    return sorted(k for k in r.scan_iter(count=1000) if part.encode() in k)


def test_cluster_counts_match_local_with_keys_on_every_master(redis_cluster):
    calls = traffic(3, n=200)
    keyer = Keyer(SECRET)
    calls += [(keyer.key(n), keyer.key(NUMBERS[0]), None, calls[-1][3], False) for n in NUMBERS]  # many tags
    with make(redis_cluster.url) as store:
        assert store.stats()["masters"] == 3
        local = run_both(store, calls)
        more = traffic(4, n=100, start=calls[-1][3])
        for g, c in zip(store.observe_many([c[:4] for c in more]), more):
            assert not g.degraded
            assert_same(g, local.observe(*c[:4]))
        assert store.stats()["errors"] == 0
    sizes = [int(n.cli("DBSIZE")) for n in redis_cluster.nodes]
    assert all(s > 0 for s in sizes), sizes


def test_windows_expire_and_every_key_has_a_ttl_within_its_window(redis_server):
    keyer = Keyer(SECRET)
    o, d = keyer.key(NUMBERS[0]), keyer.key(NUMBERS[1])
    now = time.time()
    with make(redis_server.url) as store:
        for _ in range(3):
            store.observe(o, d, keyer.pair(o, d), now)
        store.outcome(o, True, now)
        later = store.observe(o, d, keyer.pair(o, d), now + 60 + 10 + 1)  # past burst and flood + one slot
        assert (later.burst, later.flood, later.repeat, later.short) == (1, 1, 4, 1)
        month = store.observe(o, d, keyer.pair(o, d), now + 31 * 86400 + 1)
        assert (month.repeat, month.fanout, month.short, month.outcomes) == (1, 1, 0, 0)
    r = redis.Redis.from_url(redis_server.url)
    for key in _keys(redis_server):
        pttl = r.pttl(key)
        series = key.split(b"}:")[1].split(b":")
        window, slots = float(series[1]), int(series[2])
        # keys written at `now + 31 days` carry that far-future expiry; the others one window + slot
        ceiling = (31 * 86400 + 1 + window + 2 * window / slots) * 1000
        assert 0 < pttl <= ceiling, (key, pttl)
    burst = _keys(redis_server, "burst")
    assert len(burst) == 1 and r.pttl(burst[0]) > 0


def test_a_short_window_key_expires_in_the_store(redis_server):
    keyer = Keyer(SECRET)
    o = keyer.key(NUMBERS[0])
    store = counters_from_config({"backend": "redis", "url": redis_server.url, "key_secret": SECRET,
                                  "budget_ms": 500}, Windows(burst=1, fanout=1, repeat=1, flood=1, short=1))
    with store:
        store.observe(o, None, None, time.time())
        r = redis.Redis.from_url(redis_server.url)
        assert 0 < r.pttl(_keys(redis_server, "burst")[0]) <= 1400
        end = time.monotonic() + 5
        while _keys(redis_server) and time.monotonic() < end:
            time.sleep(0.1)
        assert _keys(redis_server) == []


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _wait_until(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _observed(store, n, *call):
    """n observe() of one call: the Counts, and the longest any of them took."""
    timed = [_timed(store.observe, *call) for _ in range(n)]
    return [c for c, _ in timed], max(took for _, took in timed)


def test_a_killed_store_never_holds_a_call_and_is_used_again_after_restart(redis_server, caplog):
    keyer = Keyer(SECRET)
    o, d = keyer.key(NUMBERS[0]), keyer.key(NUMBERS[1])
    budget = 0.05
    caplog.set_level(logging.WARNING, logger="manverify.screen")
    with make(redis_server.url, budget_ms=budget * 1000, log_interval_s=60) as store:
        now = time.time()
        assert [store.observe(o, d, None, now).burst for _ in range(3)] == [1, 2, 3]
        redis_server.kill()
        seen, worst = _observed(store, 50, o, d, None, now)
        assert all(c.degraded for c in seen) and worst < 10 * budget, worst
        batch, took = _timed(store.observe_many, [(o, d, None, now)] * 10)
        assert all(c.degraded for c in batch) and took < 10 * budget
        st = store.stats()
        assert st["degraded"] and st["breaker_opens"] == 1 and st["local_calls"] == 60 and st["errors"] >= 1
        redis_server.start()
        assert _wait_until(lambda: not store.stats()["degraded"])
        back = store.observe(o, d, None, now)
        assert not back.degraded and back.burst == 1  # a new, empty store: outage counts stayed local
        assert _keys(redis_server, "burst")
    lines = [r.getMessage() for r in caplog.records if r.name == "manverify.screen"]
    assert sum("unusable" in m for m in lines) == 1, lines
    assert sum("back after" in m for m in lines) == 1, lines


@needs_redis  # it starts its own server, late
def test_a_store_down_at_start_is_an_outage_not_an_error(tmp_path):
    port = free_port()
    keyer = Keyer(SECRET)
    store, took = _timed(lambda: make(f"redis://127.0.0.1:{port}/0", budget_ms=50))
    assert took < 0.5  # one attempt, no retries with back-off
    with store:
        c, took = _timed(store.observe, keyer.key(NUMBERS[0]), None, None, time.time())
        assert c.degraded and c.burst == 1 and took < 0.5
        server = RedisServer(tmp_path / "late", port).start()
        try:
            assert _wait_until(lambda: not store.stats()["degraded"])
            assert not store.observe(keyer.key(NUMBERS[0]), None, None, time.time()).degraded
        finally:
            server.stop()


def test_a_slow_store_costs_a_call_at_most_its_budget(redis_server):
    keyer = Keyer(SECRET)
    o = keyer.key(NUMBERS[0])
    budget = 0.05
    with make(redis_server.url, budget_ms=budget * 1000) as store:
        now = time.time()
        assert not store.observe(o, None, None, now).degraded
        assert redis_server.cli("CLIENT", "PAUSE", "1500", "ALL").strip() == "OK"
        seen, worst = _observed(store, 30, o, None, None, now)
        assert all(c.degraded for c in seen) and worst < 10 * budget, worst
        assert store.stats()["breaker_opens"] == 1
        assert _wait_until(lambda: not store.stats()["degraded"])  # the pause ends, a probe closes it
        assert not store.observe(o, None, None, now).degraded


def test_a_flushed_script_cache_is_reloaded_without_losing_the_call(redis_server):
    keyer = Keyer(SECRET)
    o = keyer.key(NUMBERS[0])
    with make(redis_server.url) as store:
        now = time.time()
        store.observe(o, None, None, now)
        redis_server.cli("SCRIPT", "FLUSH")
        c = store.observe(o, None, None, now)
        assert (c.burst, c.degraded) == (2, False) and store.stats()["errors"] == 0


def test_no_number_in_clear_in_the_store_or_the_logs(redis_server, caplog):
    caplog.set_level(logging.DEBUG)
    used = NUMBERS + ["+33198765432"]
    keyer = Keyer(SECRET)
    with make(redis_server.url) as store:
        now = time.time()
        for i, n in enumerate(used):
            o, d = keyer.key(n), keyer.key(used[(i + 1) % len(used)])
            store.observe(o, d, keyer.pair(o, d), now)
            store.outcome(o, i % 2 == 0, now)
        store.observe_many([(keyer.key(n), keyer.key(used[0]), None, now) for n in used])
        redis_server.kill()  # an outage, so that the logs have something to say
        store.observe(keyer.key(used[0]), None, None, now)
    dumped = dump_store(redis_server.url) if redis_server.proc and redis_server.proc.poll() is None else None
    assert dumped is None  # killed: the dump below comes from a second run on a live store
    redis_server.start()
    with make(redis_server.url) as store:
        for i, n in enumerate(used):
            o, d = keyer.key(n), keyer.key(used[(i + 1) % len(used)])
            store.observe(o, d, keyer.pair(o, d), now)
            store.outcome(o, True, now)
    dumped = dump_store(redis_server.url)
    assert len(dumped) > 3 * len(used)
    forms = set()
    for n in used:
        forms |= {n.encode(), n[1:].encode(), ("0" + n[3:]).encode(), n[3:].encode()}
    blob = b"\n".join(dumped)
    assert not [f for f in forms if f in blob]
    logs = caplog.text
    assert "unusable" in logs and not [f for f in forms if f.decode() in logs]


@needs_redis  # it starts its own server, late
def test_a_worker_forked_during_an_outage_probes_for_itself(tmp_path):
    port = free_port()
    keyer = Keyer(SECRET)
    store = make(f"redis://127.0.0.1:{port}/0", budget_ms=50)
    assert store.stats()["degraded"]
    pid = os.fork()
    if pid == 0:  # the worker: the store comes back after the fork; only its own probe can see it
        code = 1
        try:
            store.observe(keyer.key(NUMBERS[0]), None, None, time.time())
            if _wait_until(lambda: not store.stats()["degraded"], timeout=10):
                code = 0 if not store.observe(keyer.key(NUMBERS[0]), None, None, time.time()).degraded else 2
        finally:
            os._exit(code)
    server = RedisServer(tmp_path / "late", port).start()
    try:
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        store.close()
        server.stop()


def test_a_script_error_is_an_outage_for_the_call_not_an_exception(redis_server):
    keyer = Keyer(SECRET)
    o = keyer.key(NUMBERS[0])
    with make(redis_server.url) as store:
        store.observe(o, None, None, time.time())
        (burst,) = _keys(redis_server, "burst")
        redis.Redis.from_url(redis_server.url).set(burst, "not a hash")  # WRONGTYPE in the script
        c = store.observe(o, None, None, time.time())
        assert c.degraded and c.burst == 1 and store.stats()["last_error"] == "ResponseError"
