#!/usr/bin/env python
"""What the verdict counters cost: Verifier.verify with counters on and off, side by side.

The same token, key and certificate store; the two Verifiers differ only in their counters
("off": record() replaced by a builtin that does nothing useful, so what remains is the bare
call). Interleaved rounds, medians, each as gate.py's "Verifier.verify / cryptography" ratio.
Budget (issue 12): counting moves that ratio by no more than 0.02.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manverify import bench  # noqa: E402
from manverify.verifier import Verifier  # noqa: E402

BUDGET = 0.02


class _Off:
    record = record_many = id  # a C builtin: the cheapest call that counts nothing


def main(rounds: int = 21) -> int:
    setup = bench.Setup(batch=16)
    on = setup.verifier
    off = Verifier(store=on.store, threads=1)
    off._stats = _Off()
    header, now = setup.header, setup.now
    cands = setup.candidates()
    cands = {
        "cryptography verify": cands["cryptography verify"],
        "Verifier.verify, counters on": lambda: on.verify(header, orig=bench.ORIG, dest=bench.DEST, now=now),
        "Verifier.verify, counters off": lambda: off.verify(header, orig=bench.ORIG, dest=bench.DEST, now=now),
    }
    times = bench.interleaved(cands, rounds, 0.05)
    base = times["cryptography verify"]
    for name, t in times.items():
        print(f"{name:32s} {t * 1e6:7.2f} us  {t / base:5.3f} x cryptography")
    delta = (times["Verifier.verify, counters on"] - times["Verifier.verify, counters off"]) / base
    print(f"{'counters cost (ratio points)':32s} {delta:+.3f} (budget {BUDGET})")
    return 0 if delta <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
