#!/usr/bin/env python
"""Scrubbing a call file at national scale: `manverify scrub` against a plain Python set, side by
side in the same run.

Run: python benches/scrub_bench.py [--opposition 10000000] [--contacts 1000000] [--rounds 3]

Writes (numpy, a few seconds) into a temporary directory an opposition file of plain numbers one a
line, as Bloctel extracts are (national form, a tenth +33...), and a `;` CSV of contacts whose
numbers are in four forms (0612345678, 06 12 34 56 78, +33612345678, +33 6 12 34 56 78), half
of them on the list and 1 % repeated. Then, in alternating rounds, runs in a subprocess each:
  - scrub: `python -m manverify scrub contacts.csv --opposition opp.txt -o out.csv`;
  - set: the same job with the standard library alone: each opposition line through
    tn.canonical into a set of strings, then the contacts through csv and tn.canonical, rows
    whose number is in the set (or seen before) dropped, the rest written with csv.writer.
Wall time, CPU time (user + system: what a shared machine's load inflates least) and peak
resident set (os.wait4's ru_maxrss of that child) are reported as medians,
with the ratio set / scrub, and both runs must write the same number of rows. The files are made
in a child process too: a child's ru_maxrss counts its parent's resident pages until exec, so
the parent stays small (no numpy array of its own).
Budget (issue 18): <= 10 s and <= 200 MB for scrub, and >= 2x faster than the set.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from importlib.metadata import version

ROOT = Path(__file__).resolve().parents[1]

_SET_JOB = r"""
import csv, sys
from manverify import tn
opp, contacts, out = sys.argv[1:4]
blocked = set()
with open(opp, encoding="utf-8") as f:
    for line in f:
        line = line.split("#", 1)[0].strip()
        if line:
            blocked.add(tn.canonical(line))
with open(contacts, encoding="utf-8", newline="") as f, open(out, "w", encoding="utf-8", newline="") as o:
    reader = csv.reader(f, delimiter=";")
    writer = csv.writer(o, delimiter=";", lineterminator="\n")
    header = next(reader)
    col = header.index("telephone")
    writer.writerow(header)
    seen = set()
    for row in reader:
        try:
            number = tn.canonical(row[col])
        except (ValueError, IndexError):
            continue
        if number in blocked or number in seen:
            continue
        seen.add(number)
        writer.writerow(row)
"""


def _fill(template: bytes, values):
    """Rows of `template` with its '9' bytes replaced by the digits of each value, last first."""
    import numpy as np

    t = np.frombuffer(template, dtype=np.uint8)
    m = np.repeat(t[None, :], len(values), axis=0)
    v = values.astype(np.int64).copy()
    for c in np.flatnonzero(t == ord("9"))[::-1]:
        m[:, c] = 48 + v % 10
        v //= 10
    return m


def make_files(d: Path, n_opp: int, n_contacts: int, seed: int = 18) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    # 9 digits after the trunk 0 on French mobiles, none of the overseas 0639/069x (other codes)
    lead = np.array([61, 62, 64, 65, 66, 67, 68, 73, 74, 75, 76, 77, 78], dtype=np.int64)
    listed = lead[rng.integers(0, len(lead), n_opp)] * 10 ** 7 + rng.integers(0, 10 ** 7, n_opp)
    tenth = n_opp // 10
    with open(d / "opp.txt", "wb") as f:
        f.write(_fill(b"0999999999\n", listed[tenth:]).tobytes())
        f.write(_fill(b"+33999999999\n", listed[:tenth]).tobytes())
    half = n_contacts // 2
    nat9 = np.concatenate([listed[rng.integers(0, n_opp, half)],
                           lead[rng.integers(0, len(lead), n_contacts - half)] * 10 ** 7
                           + rng.integers(0, 10 ** 7, n_contacts - half)])
    rng.shuffle(nat9)
    again = rng.integers(0, n_contacts, n_contacts // 100)
    nat9[again[: len(again) // 2]] = nat9[again[len(again) // 2:]]
    forms = [b"9999999;Nom;0999999999;Ville\n", b"9999999;Nom;09 99 99 99 99;Ville\n",
             b"9999999;Nom;+33999999999;Ville\n", b"9999999;Nom;+33 9 99 99 99 99;Ville\n"]
    ids = np.arange(1, n_contacts + 1)
    cut = np.linspace(0, n_contacts, len(forms) + 1).astype(int)
    with open(d / "contacts.csv", "wb") as f:
        f.write(b"id;nom;telephone;ville\n")
        for form, a, b in zip(forms, cut[:-1], cut[1:]):
            m = _fill(form, nat9[a:b])
            m[:, :7] = _fill(b"9999999", ids[a:b])
            f.write(m.tobytes())


def _run(cmd, env) -> dict:
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode not in (0,):
        raise SystemExit(f"{cmd[2:4]} failed ({p.returncode}): {err}")
    return {"seconds": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opposition", type=int, default=10_000_000)
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--make", metavar="DIR", help=argparse.SUPPRESS)  # the child that writes the files
    a = ap.parse_args(argv)
    if a.make:
        make_files(Path(a.make), a.opposition, a.contacts)
        return 0
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory(prefix="scrub-bench-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--make", tmp, "--opposition", str(a.opposition),
                        "--contacts", str(a.contacts)], check=True)
        made = time.perf_counter() - t
        scrub_cmd = [sys.executable, "-m", "manverify", "scrub", str(d / "contacts.csv"),
                     "--opposition", str(d / "opp.txt"), "-o", str(d / "out.csv"), "--summary", str(d / "s.json")]
        set_cmd = [sys.executable, "-c", _SET_JOB, str(d / "opp.txt"), str(d / "contacts.csv"), str(d / "set.csv")]
        runs = {"scrub": [], "set": []}
        for _ in range(a.rounds):
            runs["scrub"].append(_run(scrub_cmd, env))
            runs["set"].append(_run(set_cmd, env))
        with open(d / "out.csv", "rb") as f:
            written = sum(1 for _ in f) - 1
        with open(d / "set.csv", "rb") as f:
            written_set = sum(1 for _ in f) - 1
        summary = json.loads((d / "s.json").read_text())
    if written != written_set:
        raise SystemExit(f"scrub wrote {written} rows, the set {written_set}: they disagree")
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("seconds", "cpu", "peak_mb")} for k, v in runs.items()}
    out = {
        "opposition": a.opposition, "contacts": a.contacts, "rounds": a.rounds, "files_made_s": round(made, 2),
        "backend": f"numpy {version('numpy')}: sorted uint64 keys per opposition file, np.searchsorted per chunk",
        "scrub_s": round(med["scrub"]["seconds"], 2), "scrub_peak_mb": round(med["scrub"]["peak_mb"], 1),
        "scrub_cpu_s": round(med["scrub"]["cpu"], 2), "set_cpu_s": round(med["set"]["cpu"], 2),
        "set_s": round(med["set"]["seconds"], 2), "set_peak_mb": round(med["set"]["peak_mb"], 1),
        "speedup": round(med["set"]["seconds"] / med["scrub"]["seconds"], 2),
        "written": written, "removed": summary["removed"],
        "all_scrub_s": [round(r["seconds"], 2) for r in runs["scrub"]],
        "all_set_s": [round(r["seconds"], 2) for r in runs["set"]],
    }
    budget = out["scrub_s"] <= 10 and out["scrub_peak_mb"] <= 200 and out["speedup"] >= 2
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{a.opposition:,} opposition numbers, {a.contacts:,} contacts ({out['backend']})")
        print(f"  scrub  {out['scrub_s']:6.2f} s ({out['scrub_cpu_s']:.2f} s CPU)  {out['scrub_peak_mb']:4.0f} MB peak"
              f"   runs {out['all_scrub_s']}")
        print(f"  set    {out['set_s']:6.2f} s ({out['set_cpu_s']:.2f} s CPU)  {out['set_peak_mb']:4.0f} MB peak"
              f"   runs {out['all_set_s']}")
        print(f"  set / scrub: {out['speedup']:.2f}x; {written:,} rows written; removed {out['removed']}")
        print(f"  budget (<= 10 s, <= 200 MB, >= 2x): {'met' if budget else 'NOT met'}")
    return 0 if budget else 1


if __name__ == "__main__":
    sys.exit(main())
