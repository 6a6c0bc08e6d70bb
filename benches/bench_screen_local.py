#!/usr/bin/env python
"""The local counters and the keyed hashes of one screened call, side by side in one run:

  hmac.digest               one HMAC-SHA256 as the standard library computes it (the anchor)
  Keyer.key, new number     a number not in the Keyer's cache
  Keyer.key, cached         a number seen recently
  Keyer.pair                the pair's key
  LocalCounters.observe     one call's counters, on the traffic of screen.lab (20 k callers,
                            200 k callees: most callees and pairs new, tables of ~10^5 subjects)
  LocalCounters.observe, one subject  the same call again and again (the floor of the per-call path)

Run: python benches/bench_screen_local.py [--rounds 21]
Rounds alternate the candidates in rotating order; figures are medians of CPU time per call (the
machine may be shared), with each one's ratio to hmac.digest.
"""
import argparse
import hmac
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manverify.screen.counters import LocalCounters, Windows  # noqa: E402
from manverify.screen.keys import Keyer  # noqa: E402

SECRET = b"bench-secret-0123456789abcdef"
N = 2000  # calls per candidate per round


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    a = ap.parse_args()
    rng = random.Random(17)
    callers = [f"+336{rng.randrange(10**8):08d}" for _ in range(20_000)]
    callees = [f"+331{rng.randrange(10**8):08d}" for _ in range(200_000)]
    numbers = [rng.choice(callees) for _ in range(N * a.rounds)]
    keyer = Keyer(SECRET)
    calls = []
    for _ in range(N * a.rounds):
        o, d = keyer.key(rng.choice(callers)), keyer.key(rng.choice(callees))
        calls.append((o, d, keyer.pair(o, d)))
    counters = LocalCounters(Windows(), keyer)
    one = LocalCounters(Windows(), keyer)
    now = 1_700_000_000.0
    clock = [now]

    def digest(r):
        for n in numbers[r * N:(r + 1) * N]:
            hmac.digest(SECRET, b"n\0" + n.encode(), "sha256")

    def new_number(r):
        cold = Keyer(SECRET)  # an empty cache
        for n in numbers[r * N:(r + 1) * N]:
            cold.key(n)

    def cached(r):
        key, n = keyer.key, callers[r]
        for _ in range(N):
            key(n)

    def pair(r):
        p = keyer.pair
        for o, d, _ in calls[r * N:(r + 1) * N]:
            p(o, d)

    def observe(r):
        f, t = counters.observe, clock[0]
        for i, (o, d, p) in enumerate(calls[r * N:(r + 1) * N]):
            f(o, d, p, t + i * 0.001)
        clock[0] = t + N * 0.001

    def observe_one(r):
        f, (o, d, p) = one.observe, calls[0]
        for _ in range(N):
            f(o, d, p, now)

    cands = [("hmac.digest", digest), ("Keyer.key, new number", new_number), ("Keyer.key, cached", cached),
             ("Keyer.pair", pair), ("LocalCounters.observe", observe),
             ("LocalCounters.observe, one subject", observe_one)]
    samples = {name: [] for name, _ in cands}
    for r in range(a.rounds):
        for name, fn in cands[r % len(cands):] + cands[:r % len(cands)]:
            t0 = time.thread_time()
            fn(r)
            samples[name].append((time.thread_time() - t0) / N)
    med = {name: statistics.median(v) for name, v in samples.items()}
    unit = med["hmac.digest"]
    print(f"medians of {a.rounds} rounds of {N} calls, CPU time")
    for name, t in med.items():
        print(f"  {name:36s} {t * 1e6:7.2f} us/call {t / unit:6.2f} x hmac.digest")
    st = counters.stats()
    print(f"  subjects held: {st['keys']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
