#!/usr/bin/env python
"""CI performance gate: ratios measured side by side in one process, never seconds.

Each limit is a *regression floor*: the ratio this code reaches on the project's 2-core machines
plus a noise margin taken from repeated runs (see docs/performance.md). The issue targets are
printed beside them; the gate fails only when a floor is crossed in every one of ATTEMPTS
measurements (the machines are shared: a neighbour's burst must not fail a build).

    python benches/gate.py [--allow-fallback]

It prints the signature backend first and refuses to run (exit 3) unless it is the native engine:
the limits are the engine's. --allow-fallback measures the `cryptography` fallback anyway (it
crosses the engine's limits: the gate then fails, as it should).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manverify import bench  # noqa: E402

# name: (limit, target, direction) — "max": the ratio must stay at or under the limit.
# Where the target is met, the limit is the target (for scaling, the target minus a noise
# margin); where it is not met yet, the limit is a regression floor: the worst of repeated runs
# plus a margin. 14 runs on the 2-vCPU dev box (shared with other work; load 0.4-0.7), 19:40-19:50 UTC:
#   native verify / cryptography          0.244-0.29  -> limit 0.40 (target): 0.11 above the worst
#       run, twice the spread; the portable field code (~1.5x slower) or losing the per-key table
#       (~1.0) fails it.
#   Verifier.verify / cryptography        0.505-0.74  -> target 0.50 not met (Python parsing and
#       checks ~20 us + native ~17 us); floor 0.95 = worst + the whole spread (0.21); a fallback
#       to OpenSSL (~1.2-1.3) fails it.
#     With the one-pass common path (22 Nov, 20:55-21:30 UTC, a busier box): 0.47-0.59 in 6
#       runs -> floor 0.75 = worst + 0.16; the general path on every call (~0.58) stays under
#       it, a lost native engine or per-key table does not.
#     With the native PASSporT scanner (1 Dec, a busy box: cryptography's verify at 96-123 us
#       instead of 82-86): 0.51-0.61 in 11 runs, 0.40-0.48 when the box was quiet; the floor
#       stays 0.75 (Python decoding instead of the scanner measures 0.54-0.63 side by side:
#       tests/test_scan.py, not this gate, guards that the scanner is used).
#   es256.verify_many 2/1 threads, per-round upper quartile  1.85-2.06 -> limit 1.70 = target
#       1.80 minus 0.10 (half the spread); a GIL held during native work gives ~1.0.
#   Verifier.verify_many 2/1 threads, upper quartile         1.26-1.85 -> target 1.80 not met
#       (per-call parsing holds the GIL); floor 1.10 = worst - 0.16, still above a fully
#       serialised batch (<= 1.05). With the scanner (1 Dec, busy box): 1.28-1.76 in 9 runs;
#       floor unchanged (the low readings come with a neighbour on the second core).
#   Screen.check / Verifier.verify (issue 17: plan, 100 k numbers + 10 k prefixes, local
#       counters; 7 Dec, a busy box)  0.81-0.96 in 3 runs (2.5 before the counters' rings and
#       the Keyer's precomputed pads) -> target 0.10 not met (docs/screening.md, Performance:
#       the call is ~40 dict/str operations of Python). With the look-up's 30-day series counted
#       in every check (issue 18, ~4 us): 0.99-1.19 in 3 runs -> floor 1.45 = worst + 0.26;
#       losing the rings (~+0.5) fails it.
# Per-call ratios are medians of interleaved rounds; another process on the second core only
# lowers a 2-thread rate, so scaling uses the upper quartile of back-to-back 1/2-thread pairs.
LIMITS = {
    "native verify / cryptography": (0.40, 0.40, "max"),
    "Verifier.verify / cryptography": (0.75, 0.50, "max"),
    "es256.verify_many 2 threads / 1": (1.70, 1.80, "min"),
    "Verifier.verify_many 2 threads / 1": (1.10, 1.80, "min"),
    "Screen.check / Verifier.verify": (1.45, 0.10, "max"),
}


ATTEMPTS = 3  # a crossed limit must stay crossed when measured again: one noisy neighbour is not a regression


def observe() -> dict:
    report = bench.measure(rounds=15)
    print(bench.render(report))
    ratios = report["ratios"]
    return {
        "native verify / cryptography": ratios[f"es256.verify ({report['backend']})"],
        "Verifier.verify / cryptography": ratios["Verifier.verify (cached cert)"],
        "es256.verify_many 2 threads / 1": report["sig_batch_scaling_q3"],
        "Verifier.verify_many 2 threads / 1": report["batch_scaling_q3"],
        "Screen.check / Verifier.verify": ratios[bench.SCREEN_CHECK] / ratios["Verifier.verify (cached cert)"],
    }


def crossed(name: str, value: float) -> bool:
    limit, _, direction = LIMITS[name]
    return value > limit if direction == "max" else value < limit


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(bench.ALLOW_FALLBACK, action="store_true", help="measure even without the native engine")
    args = p.parse_args(argv)
    if not bench.native_or_refuse("gate", bench.backend_line(), args.allow_fallback):
        return bench.EXIT_NOT_NATIVE
    best: dict = {}
    for attempt in range(1, ATTEMPTS + 1):
        if attempt > 1:
            print(f"\ngate: {', '.join(n for n in best if crossed(n, best[n]))} crossed its limit; "
                  f"measuring again ({attempt}/{ATTEMPTS})\n")
        for name, value in observe().items():
            better = min if LIMITS[name][2] == "max" else max
            best[name] = better(best.get(name, value), value)
        if not any(crossed(n, v) for n, v in best.items()):
            break
    print(f"\n{'gate (best of the attempts)':36s} {'observed':>9s} {'limit':>7s} {'target':>7s}")
    failed = False
    for name, (limit, target, _) in LIMITS.items():
        bad = crossed(name, best[name])
        failed |= bad
        print(f"{name:36s} {best[name]:9.2f} {limit:7.2f} {target:7.2f}  {'FAIL' if bad else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
