#!/usr/bin/env python
"""What the verdict counters cost: Verifier.verify with counters on and off, side by side.

The same token, key and certificate store; the two Verifiers differ only in their counters
("off": record() replaced by a builtin that does nothing useful, so what remains is the bare
call). Rounds interleave the three candidates in rotating order; the cost is the median over
rounds of (on - off) / cryptography within a round, in the units of gate.py's
"Verifier.verify / cryptography" ratio.
Budget (issue 12): counting moves that ratio by no more than 0.02.

    python benches/counters.py [--allow-fallback]

The ratio's units are the native engine's: without it (exit 3) unless --allow-fallback.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manverify import bench  # noqa: E402
from manverify.stats import Stats  # noqa: E402
from manverify.verifier import Verifier  # noqa: E402

BUDGET = 0.02


class _Off:
    record = record_many = id  # a C builtin: the cheapest call that counts nothing


def _per_call(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main(argv=None, rounds: int = 31, n: int = 400) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(bench.ALLOW_FALLBACK, action="store_true", help="measure even without the native engine")
    if not bench.native_or_refuse("counters", bench.backend_line(), p.parse_args(argv).allow_fallback):
        return bench.EXIT_NOT_NATIVE
    setup = bench.Setup(batch=16)
    on = setup.verifier
    off = Verifier(store=on.store, threads=1)
    off._stats = _Off()
    header, now = setup.header, setup.now
    crypto = setup.candidates()["cryptography verify"]
    cands = [
        ("cryptography verify", crypto),
        ("Verifier.verify, counters on", lambda: on.verify(header, orig=bench.ORIG, dest=bench.DEST, now=now)),
        ("Verifier.verify, counters off", lambda: off.verify(header, orig=bench.ORIG, dest=bench.DEST, now=now)),
    ]
    samples = {name: [] for name, _ in cands}
    deltas = []
    for i in range(rounds):  # rotate the order; the cost is the on-off difference within a round
        t = {}
        for name, fn in cands[i % 3:] + cands[:i % 3]:
            t[name] = _per_call(fn, n)
            samples[name].append(t[name])
        deltas.append((t["Verifier.verify, counters on"] - t["Verifier.verify, counters off"]) / t["cryptography verify"])
    base = statistics.median(samples["cryptography verify"])
    for name, values in samples.items():
        med = statistics.median(values)
        print(f"{name:32s} {med * 1e6:7.2f} us  {med / base:5.3f} x cryptography")
    delta = statistics.median(deltas)
    q1, q3 = sorted(deltas)[len(deltas) // 4], sorted(deltas)[(3 * len(deltas)) // 4]
    print(f"{'counters cost (ratio points)':32s} {delta:+.4f} median of {rounds} paired rounds "
          f"(quartiles {q1:+.4f} .. {q3:+.4f}; budget {BUDGET})")
    st, r = Stats(), on.verify(header, orig=bench.ORIG, dest=bench.DEST, now=now)
    print(f"{'Stats.record alone':32s} {_per_call(lambda: st.record(r), 100000) * 1e9:7.0f} ns "
          f"(with the lambda calling it)")
    return 0 if delta <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
