#!/usr/bin/env python
"""What the screening counters cost, side by side in one run, against a redis-server of its own on
loopback (and a 3-master cluster with --cluster):

  redis-py PING                one round trip, the unit of the issue's targets
  observe(), one by one        one screened call's counters (one EVALSHA)
  observe_many(), batches      calls per second when a batch is pipelined
  local observe()              the in-process backend

Rounds interleave the candidates in rotating order; figures are medians over rounds.
Targets (issue 17): one call <= 2x a PING; a batch >= 5x the calls/s of one by one.
"""
import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from manverify.screen.counters import LocalCounters, Windows, counters_from_config  # noqa: E402
from manverify.screen.keys import Keyer  # noqa: E402
from tests.redishelp import RedisCluster, RedisServer  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"


def traffic(n: int, seed: int = 1):
    rng = random.Random(seed)
    keyer = Keyer(SECRET)
    origs = [keyer.key(f"+3316{i:07d}") for i in range(1000)]
    dests = [keyer.key(f"+3361{i:07d}") for i in range(20000)]
    now = time.time()
    calls = []
    for i in range(n):
        o, d = rng.choice(origs), rng.choice(dests)
        calls.append((o, d, keyer.pair(o, d), now + i * 0.001))
    return calls


def per_call(fn, items) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(*item)
    return (time.perf_counter() - t0) / len(items)


def per_call_batched(fn, items, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        fn(items[i:i + batch])
    return (time.perf_counter() - t0) / len(items)


def measure(url: str, rounds: int, n: int, batch: int, label: str) -> dict:
    ping_client = redis.Redis.from_url(url.replace("redis+cluster", "redis"))
    store = counters_from_config({"backend": "redis", "url": url, "key_secret": SECRET, "budget_ms": 50},
                                 Windows())
    local = LocalCounters(Windows(), Keyer(SECRET))
    calls = traffic(n * 4)
    store.observe_many(calls[:200])  # connections open, script loaded
    cands = [
        ("redis-py PING", lambda part: per_call(ping_client.ping, [()] * len(part))),
        ("observe(), one by one", lambda part: per_call(store.observe, part)),
        (f"observe_many(), batches of {batch}", lambda part: per_call_batched(store.observe_many, part, batch)),
        ("local observe()", lambda part: per_call(local.observe, part)),
    ]
    samples = {name: [] for name, _ in cands}
    for r in range(rounds):
        part = calls[(r % 4) * n:(r % 4 + 1) * n]
        for name, fn in cands[r % 4:] + cands[:r % 4]:
            samples[name].append(fn(part))
    st = store.stats()
    store.close()
    ping_client.close()
    if st["errors"] or st["local_calls"]:
        print(f"warning: {st['errors']} store errors, {st['local_calls']} calls screened locally "
              "(the box is busy: raise budget_ms)")
    med = {name: statistics.median(v) for name, v in samples.items()}
    ping = med["redis-py PING"]
    print(f"\n{label} ({url.split('//')[0]}//…, {rounds} rounds of {n} calls)")
    for name, t in med.items():
        print(f"  {name:34s} {t * 1e6:8.2f} us/call {1 / t:10.0f} calls/s {t / ping:6.2f} x PING")
    one = med["observe(), one by one"]
    batched = med[f"observe_many(), batches of {batch}"]
    print(f"  one screened call / PING           {one / ping:6.2f}   (target <= 2)")
    print(f"  batch calls/s / one by one         {one / batched:6.2f}   (target >= 5)")
    return {"call_vs_ping": one / ping, "batch_vs_one": one / batched}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--cluster", action="store_true", help="also a 3-master Redis Cluster")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "single").start()
        try:
            measure(server.url, a.rounds, a.calls, a.batch, "redis-server")
        finally:
            server.stop()
        if a.cluster:
            cluster = RedisCluster(Path(tmp) / "cluster").start()
            try:
                measure(cluster.url, a.rounds, a.calls, a.batch, "Redis Cluster, 3 masters")
            finally:
                cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
