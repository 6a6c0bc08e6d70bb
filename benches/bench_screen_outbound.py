#!/usr/bin/env python
"""What the originating side's check costs beside an inbound one and a verification, side by side
in one process (local counters; with --redis also on a redis-server of its own on loopback):

  Verifier.verify (cached cert)       the unit of the issue's target
  inbound check(), canvassing         a canvassing number calling people (lists and MAJNUM off)
  outbound check(), range number      a canvasser's call from its dedicated range
  outbound check(), 06 number         a canvasser's call from an 06 (the distinct-callee count too)
  authorise()                         what the signing service runs per signing
  inbound check(), ordinary           a subscriber's call on which no rule fires
  outbound check(), non-canvasser     a company's call from its own number (no rule fires)

Rounds interleave the candidates in rotating order; figures are medians over rounds.
Target (issue 18): an outbound check costs about an inbound one, <= 0.10x a verification.
"""
import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manverify.bench import DEST, ORIG, Setup  # noqa: E402
from manverify.screen.engine import Screen  # noqa: E402
from tests.redishelp import RedisServer  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
START = dt.datetime(2026, 12, 8, 11, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
CUSTOMERS = {"acme": {"canvasser": True, "numbers": ["0162000000-0162009999", "0612345678", "0163*"]},
             "bank": {"numbers": ["0140000000-0140009999"]}}


def people(n: int):
    return [f"06{i:08d}" for i in range(n)]


def candidates(screen: Screen, n: int, verify):
    dests = people(n)
    t = [START]

    def inbound(d):
        t[0] += 0.001
        screen.check("0162000001", d, now=t[0])

    def inbound_ordinary(d):
        t[0] += 0.001
        screen.check("0140000001", d, now=t[0])

    def out_ordinary(d):
        t[0] += 0.001
        screen.check("0140000001", d, now=t[0], direction="outbound", customer="bank")

    def out_range(d):
        t[0] += 0.001
        screen.check("0162000001", d, now=t[0], direction="outbound", customer="acme")

    def out_mobile(d):
        t[0] += 0.001
        screen.check("0612345678", d, now=t[0], direction="outbound", customer="acme")

    def authorise(d):
        t[0] += 0.001
        screen.authorise("acme", "0162000002", d, now=t[0])

    out = {"inbound check(), canvassing": inbound, "outbound check(), range number": out_range,
           "outbound check(), 06 number": out_mobile, "authorise()": authorise,
           "inbound check(), ordinary": inbound_ordinary, "outbound check(), non-canvasser": out_ordinary}
    if verify is not None:
        out["Verifier.verify (cached cert)"] = lambda d: verify()
    return out, dests


def measure(screen: Screen, rounds: int, n: int, verify, label: str) -> dict:
    cands, dests = candidates(screen, n, verify)
    for fn in cands.values():  # warm: connections, scripts, caches
        for d in dests[:50]:
            fn(d)
    names = list(cands)
    samples = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn = cands[name]
            t0 = time.perf_counter()
            for d in dests:
                fn(d)
            samples[name].append((time.perf_counter() - t0) / n)
    med = {name: statistics.median(v) for name, v in samples.items()}
    print(f"\n{label}: {rounds} rounds of {n} calls, medians")
    inbound = med["inbound check(), canvassing"]
    verify_t = med.get("Verifier.verify (cached cert)")
    for name, t in med.items():
        extra = f" {t / verify_t:6.3f} x verify" if verify_t else ""
        print(f"  {name:34s} {t * 1e6:8.2f} us/call {t / inbound:6.2f} x inbound canvassing{extra}")
    if screen.stats()["errors"]:
        print(f"warning: {screen.stats()['errors']} screening errors")
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--redis", action="store_true", help="also with the counters on a redis-server")
    a = ap.parse_args()
    setup = Setup(batch=1)
    verify = lambda: setup.verifier.verify(setup.header, orig=ORIG, dest=DEST, now=setup.now)  # noqa: E731
    local = Screen.from_dict({"customers": CUSTOMERS, "reload": False,
                              "counters": {"backend": "local", "key_secret": SECRET}})
    measure(local, a.rounds, a.calls, verify, "local counters")
    if a.redis:
        with tempfile.TemporaryDirectory() as tmp:
            server = RedisServer(Path(tmp) / "redis").start()
            try:
                shared = Screen.from_dict({"customers": CUSTOMERS, "reload": False, "counters": {
                    "backend": "redis", "url": server.url, "key_secret": SECRET, "budget_ms": 50}})
                measure(shared, a.rounds, a.calls // 4, verify, "redis-server on loopback")
                shared.close()
            finally:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
