#!/usr/bin/env python
"""CI performance gate: ratios measured side by side in one process, never seconds.

Each limit is a *regression floor*: the ratio this code reaches on the project's 2-core machines
plus a noise margin taken from repeated runs (see README, "Performance"). The issue targets are
printed beside them; the gate fails only when a floor is crossed.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manverify import bench, es256  # noqa: E402

# name: (limit, target, direction) — "max": ratio must stay at or under the limit.
# Five gate runs on a 2-core machine gave native 0.36-0.40 (one earlier outlier 0.58), full
# verify 0.74-0.94 (0.98 once), 2-thread scaling 0.96-1.26; each limit is the worst seen plus
# a margin of about a third of the spread, so noise alone does not fail CI but a real regression
# (e.g. the native path silently falling back to OpenSSL, ~1.0) does.
LIMITS = {
    "native verify / cryptography": (0.65, 0.40, "max"),
    "Verifier.verify / cryptography": (1.30, 0.50, "max"),
    "verify_many 2 threads / 1 thread": (0.85, 1.80, "min"),
}


def main() -> int:
    if es256.backend() != "native":
        print("gate: the native backend is not active; build the extension first", file=sys.stderr)
        return 1
    report = bench.measure(rounds=15)
    print(bench.render(report))
    ratios = report["ratios"]
    observed = {
        "native verify / cryptography": ratios["es256.verify (native)"],
        "Verifier.verify / cryptography": ratios["Verifier.verify (cached cert)"],
        "verify_many 2 threads / 1 thread": report["batch_scaling"],
    }
    print(f"\n{'gate':36s} {'observed':>9s} {'limit':>7s} {'target':>7s}")
    failed = False
    for name, (limit, target, direction) in LIMITS.items():
        value = observed[name]
        ok = value <= limit if direction == "max" else value >= limit
        failed |= not ok
        print(f"{name:36s} {value:9.2f} {limit:7.2f} {target:7.2f}  {'ok' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
