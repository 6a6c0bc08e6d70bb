"""What the French-plan look-ups cost per call: plan.classify, Majnum.holder, canvass hours.

    PYTHONPATH=. python benches/bench_screen_plan.py [--ranges 150000]

Side by side in one process with two references the machine's speed cancels out of: a dict.get
of a slice (the floor for any table look-up in Python) and tn.canonical() of a national number
(what every screened call already pays). Figures are the best of several repeats, in ns.
"""
from __future__ import annotations

import argparse
import tempfile
import timeit
from pathlib import Path

from manverify.screen import hours, plan
from manverify.screen.majnum import HEADER, Majnum
from manverify.tn import canonical


def best_ns(fn, number: int = 20000, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e9


def majnum_file(path: Path, ranges: int) -> None:
    """A file the size of Arcep's, in its format: thousand-number blocks across 01-09."""
    lines = [";".join(HEADER)]
    for i in range(ranges):
        start = f"0{1 + i % 9}{i // 9:05d}000"[:10]
        lines.append(f"{start[:7]};{start};{start[:7]}999;OP{i % 700:03d};Métropole;01/01/2020")
    path.write_bytes("\r\n".join(lines).encode("cp1252"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranges", type=int, default=150_000)
    args = ap.parse_args()

    table = {"336123": 1}
    rows = [
        ("reference: dict.get(slice)", lambda: table.get("33612345678"[:6])),
        ("reference: tn.canonical('0612345678')", lambda: canonical("0612345678")),
    ]
    for number in ("33612345678", "33162001234", "590590123456", "33709301234", "441632960123", "3949"):
        rows.append((f"plan.classify({number})", lambda n=number: plan.classify(n)))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "MAJNUM.csv"
        majnum_file(path, args.ranges)
        t0 = timeit.default_timer()
        m = Majnum.load(path)
        load_s = timeit.default_timer() - t0
    hit, miss = "33512345500", "33999999999"
    assert m.holder(hit) and m.holder(miss) is None
    rows.append((f"Majnum.holder hit ({m.ranges} ranges)", lambda: m.holder(hit)))
    rows.append((f"Majnum.holder miss ({m.ranges} ranges)", lambda: m.holder(miss)))

    now = 1796720400.0  # a Tuesday, 10:00 in Paris
    hours.canvass_check(now, "Indian/Reunion", "reunion")  # holidays of the year computed once
    rows.append(("hours.canvass_allowed Paris", lambda: hours.canvass_allowed(now, "Europe/Paris", "metropole")))
    rows.append(("hours.canvass_allowed Réunion", lambda: hours.canvass_allowed(now, "Indian/Reunion", "reunion")))

    figures = [(name, best_ns(fn)) for name, fn in rows]
    floor = min(figures[0][1], best_ns(rows[0][1]))  # measured first and last: the quieter of the two
    print(f"{'operation':48} {'ns':>8} {'x dict.get':>11}")
    for name, ns in figures:
        print(f"{name:48} {ns:8.0f} {ns / floor:11.1f}")
    print(f"Majnum.load of {m.ranges} ranges: {load_s:.2f} s")


if __name__ == "__main__":
    main()
