#!/usr/bin/env python
"""Screening lists at national scale: load time, resident bytes per entry and look-up cost, with
10 M entries and with 1 k, side by side.

Run: python benches/bench_screen_lists.py [--entries 10000000]

The parent writes a block list of each size with numpy (numbers in national, +33 and canonical
form, plus 1 % written with spaces, prefixes and ranges). Each size is loaded in a fresh process
(Lists.from_config): load time, resident-set growth once the load's temporaries are gone
(/proc/self/statm), and the load's peak (ru_maxrss). A third process loads both lists and times,
in alternating rounds (medians of 41 rounds of 2,000 calls, in CPU time: the machine may be
shared), Lists.match() for numbers on the list (hit), on no list (miss: the usual call) and
under a prefix; NumberTable.find alone on the misses; and tn.canonical as an anchor measured the
same way. The 10 M list also holds 33 k prefixes and 33 k ranges (the 1 k list 3 of each), so
match() bisects bigger segment tables there; table_find_ns compares the number table alone. It
also times a batch look-up of 1 M numbers (NumberTable.find_many, what scrubbing a file does).
Budgets (issue 17): 10 M entries load in <= 10 s with <= 16 bytes per entry; a look-up costs the
same at 10 M as at 1 k.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _lines(nat9: np.ndarray, head: bytes) -> bytes:
    """Lines `head` + the 9 digits of each value, as one bytes object (no Python loop)."""
    width = len(head) + 10
    m = np.empty((len(nat9), width), dtype=np.uint8)
    m[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    v = nat9.copy()
    for c in range(width - 2, len(head) - 1, -1):
        m[:, c] = 48 + v % 10
        v //= 10
    m[:, -1] = 10
    return m.tobytes()


def write_list(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    """n entries; returns the 9 national digits of the plain numbers written (on the list)."""
    odd = max(3, n // 100)
    plain = n - odd
    # 9 digits after the trunk 0: mobile, 06/07, but none of the overseas 0639, 069x (whose
    # national form is not 33 + the digits), so that each number reads "33" + its 9 digits.
    lead = np.array([61, 62, 64, 65, 66, 67, 68, 73, 74, 75, 76, 77, 78], dtype=np.int64)
    nat9 = lead[rng.integers(0, len(lead), plain)] * 10 ** 7 + rng.integers(0, 10 ** 7, plain)
    third = plain // 3
    with open(path, "wb") as f:
        f.write(_lines(nat9[:third], b"0"))  # 0612345678
        f.write(_lines(nat9[third:2 * third], b"+33"))  # +33612345678
        f.write(_lines(nat9[2 * third:], b"33"))  # 33612345678
        k = odd // 3
        for x in rng.integers(10 ** 8, 2 * 10 ** 8, k).tolist():  # written by hand: slow path
            s = f"0{x}"
            f.write(f"+33 {s[1]} {s[2:4]} {s[4:6]} {s[6:8]} {s[8:10]}\n".encode())
        for x in prefixes(n, k):  # 0 + 5 digits: 081234*
            f.write(f"0{x}*\n".encode())
        for x in rng.integers(90000, 10 ** 5, odd - 2 * k).tolist():  # 09...
            f.write(f"0{x}0000-0{x}9999\n".encode())
    return nat9


def prefixes(n: int, k: int) -> list:
    """The list's first k prefixes (the same for the file and for the samples)."""
    return np.random.default_rng(n + 1).integers(80000, 90000, k).tolist()  # 08...: no number of the list is there


def load(path: Path) -> dict:
    """Load `path` in this fresh process and measure: the file was written by the parent, so
    ru_maxrss (the process's lifetime peak) is the load's."""
    import gc

    from manverify.screen.lists import Lists

    gc.collect()
    before = _rss()
    t0 = time.perf_counter()
    lists = Lists.from_config({"block": [str(path)]})
    load_s = time.perf_counter() - t0
    gc.collect()
    n = int(path.name.split(".")[0])
    return {"entries": n, "file_mb": path.stat().st_size / 1e6, "load_s": load_s,
            "resident_b_per_entry": (_rss() - before) / n,
            "peak_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / 1e6,
            "table_b_per_entry": lists.stats()["bytes"] / n}


def lookups(paths: list) -> dict:
    """Both lists in one process, timed in alternating rounds: the sizes see the same machine."""
    from manverify.screen.lists import LBASE, Lists
    from manverify.tn import canonical

    calls = {}  # (size, measure) -> (function, arguments)
    for path in paths:
        n = int(path.name.split(".")[0])
        lists = Lists.from_config({"block": [str(path)]})
        present, absent, under = json.loads(path.with_suffix(".json").read_text())
        assert all(lists.match(s, None, 0).block.entry == "number" for s in present)
        assert all(lists.match(s, None, 0) == (None, None, None) for s in absent)
        under = [s for s in under if lists.match(s, None, 0).block is not None]  # the 1 k list has a few prefixes
        assert under and all(lists.match(s, None, 0).block.entry == "prefix" for s in under)
        match, find = lists.match, lists._numbers.find
        calls[n, "hit_ns"] = (lambda xs, m=match: [m(x, None, 1.8e9) for x in xs], present)
        calls[n, "miss_ns"] = (lambda xs, m=match: [m(x, None, 1.8e9) for x in xs], absent)
        calls[n, "prefix_ns"] = (lambda xs, m=match: [m(x, None, 1.8e9) for x in xs], (under * 2000)[:2000])
        # The number table alone (the part that holds the 10 M), on the same misses.
        calls[n, "table_find_ns"] = (lambda xs, f=find: [f(x) for x in xs], [LBASE[11] + int(x) for x in absent])
        # An anchor measured the same way: what reading a number costs.
        calls[n, "tn_canonical_ns"] = (lambda xs: [canonical(x) for x in xs], ["0" + x[2:] for x in absent])
        if n > 10 ** 5:
            keys = np.array([LBASE[11] + int(x) for x in (present + absent) * 250], dtype=np.uint64)
            t = time.perf_counter()
            lists._numbers.find_many(keys)
            calls[n, "batch_1m_s"] = time.perf_counter() - t
    times: dict = {k: [] for k, v in calls.items() if isinstance(v, tuple)}
    for _ in range(41):
        for k in times:
            f, xs = calls[k]
            t = time.thread_time()  # CPU time: a shared machine's other processes do not count
            f(xs)
            times[k].append((time.thread_time() - t) / len(xs) * 1e9)
    out: dict = {}
    for (n, name), v in times.items():
        out.setdefault(n, {})[name] = statistics.median(v)
    for (n, name), v in calls.items():
        if not isinstance(v, tuple):
            out[n][name] = v
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--lookups", nargs="+", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.load:
        print(json.dumps(load(a.load)))
        return 0
    if a.lookups:
        print(json.dumps(lookups(a.lookups)))
        return 0

    def run(*args) -> dict:
        out = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        return json.loads(out.stdout)

    rows, paths = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, a.entries):
            rng = np.random.default_rng(n)
            path = Path(tmp) / f"{n}.txt"
            nat9 = write_list(path, n, rng)
            present = ["33" + str(x) for x in rng.choice(nat9, 2000).tolist()]
            absent = ["33" + str(x) for x in rng.integers(5 * 10 ** 8, 6 * 10 ** 8, 2000).tolist()]  # 05...: never on it
            under = ["33%d%04d" % (x, i) for i, x in enumerate(prefixes(n, min(2000, max(3, n // 100) // 3)))]
            path.with_suffix(".json").write_text(json.dumps([present, absent, under]))
            del nat9
            rows.append(run("--load", path))
            paths.append(path)
        timed = run("--lookups", *paths)
    for row in rows:
        row.update(timed[str(row["entries"])])
    small, big = rows
    label = "%d M" % (big["entries"] // 10 ** 6)
    print(f"{'':24}{'1 k':>10}{label:>10}  {'ratio':>7}"
          f"  {'1 k':>6}{label:>6}  ratio in units of tn.canonical (the same process, rounds alternating)")
    for name, fmt in [("file_mb", "%.1f"), ("load_s", "%.3f"), ("resident_b_per_entry", "%.1f"),
                      ("table_b_per_entry", "%.1f"), ("peak_mb", "%.0f"), ("hit_ns", "%.0f"), ("miss_ns", "%.0f"),
                      ("prefix_ns", "%.0f"), ("table_find_ns", "%.0f"), ("tn_canonical_ns", "%.0f"),
                      ]:
        line = f"{name:24}{fmt % small[name]:>10}{fmt % big[name]:>10}"
        if name.endswith("_ns"):
            a, b = small[name] / small["tn_canonical_ns"], big[name] / big["tn_canonical_ns"]
            line += f"  {big[name] / small[name]:>6.2f}x  {a:>6.2f}{b:>6.2f}  {b / a:.2f}x"
        print(line)
    print(f"{'batch_1m_s':24}{'':>10}{big['batch_1m_s']:>10.3f}  (NumberTable.find_many: 1 M numbers against the table)")
    if big["entries"] < 10_000_000:
        print("budget: set for 10 M entries (fixed costs weigh more per entry below)")
        return 0
    ok = big["load_s"] <= 10 and big["resident_b_per_entry"] <= 16
    print("budget (10 M: load <= 10 s, <= 16 B/entry):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
