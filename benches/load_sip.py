#!/usr/bin/env python3
"""SIP load benchmark: Kamailio + manverify (KEMI) against Kamailio + secsipid, one run, one machine.

    python benches/load_sip.py [--rates 100,200,400,...] [--seconds 6] [--rounds 3] [--workers 2] [--json out.json] [--allow-fallback]

Every proxy (and a relay-only Kamailio as the baseline) runs at once, each in front of its own
SIPp UAS; SIPp sends signed INVITEs (full call: INVITE/100/200/ACK/BYE/200 through the proxy to
the UAS) at rising call rates. At each rate the proxies take turns, step after step, for
--rounds rounds with the order rotated each round, so a drift of the shared machine's speed
falls on all of them alike; ratios are taken within a round and reported as medians. Per step:
Kamailio CPU seconds per 1,000 calls (utime+stime of every kamailio process of that proxy, from
/proc/<pid>/stat), failed calls and retransmissions; per proxy: the highest rate at which every
step had zero failed calls and zero retransmissions. Calls are signed (our Signer) right before
each step, so they are fresh in the 60 s MAN window. Everything runs on 127.0.0.1 and is stopped
by PID at the end.
Needs kamailio, kamailio-python3-modules, kamailio-secsipid-modules, sip-tester, python3-venv.

Before measuring it prints the signature backend of the venv Kamailio embeds (what its
`python -m manverify --version` says) and refuses to run (exit 3) unless it is the native engine:
a venv whose build skipped the engine would measure the `cryptography` fallback. Pass
--allow-fallback to measure the fallback on purpose.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manverify import bench, pki  # noqa: E402
from manverify.demo import serve  # noqa: E402
from manverify.signer import Signer  # noqa: E402
from tests.e2e import stack  # noqa: E402

ORIG, DEST = "+33612345678", "+33198765432"


def rows(signer: Signer, n: int = 500):
    date = stack.sip_date()
    return [["load", "Identity", signer.passport(ORIG, DEST), signer.x5u, ORIG, DEST, date] for _ in range(n)]


def step(name, work: Path, kam, signer, rate, seconds, tag):
    """One SIPp run of rate × seconds calls against a running proxy: its CPU and outcome."""
    calls = int(rate * seconds)
    label = f"{name}-{rate}-{tag}"
    csv = stack.write_csv(work / f"{label}.csv", rows(signer))
    cpu0, t0 = stack.cpu_seconds(kam.pids()), time.monotonic()
    res = stack.run_uac(work, kam.port, csv, calls=calls, rate=rate, timeout=seconds * 3 + 20,
                        name=label, logs=False, extra=["-rp", "1000", "-l", str(rate * 4)])
    wall = time.monotonic() - t0
    cpu = stack.cpu_seconds(kam.pids()) - cpu0
    st = stack.uac_stats(work, label)
    ok = int(st.get("SuccessfulCall(C)", 0) or 0)
    failed = int(st.get("FailedCall(C)", 0) or 0)
    retrans = int(st.get("Retransmissions(C)", 0) or 0)
    done = ok + failed
    out = {
        "rate": rate, "round": tag, "calls": calls, "successful": ok, "failed": failed,
        "retransmissions": retrans, "kamailio_cpu_s": round(cpu, 3), "wall_s": round(wall, 2),
        "sipp_exit": res.returncode, "cpu_s_per_1000_calls": round(cpu / done * 1000, 4) if done else None,
        "clean": failed == 0 and retrans == 0 and ok == calls,
    }
    print(f"{name:16s} {rate:6d} cps  round {tag}  calls={calls:6d} ok={ok:6d} failed={failed:5d} "
          f"retrans={retrans:5d} cpu/1000={out['cpu_s_per_1000_calls']}", flush=True)
    return out


def run_all(proxies, work: Path, signer, rates, seconds, rounds):
    """Start every proxy, warm each up, then alternate them step by step (see the module doc)."""
    report = {name: {"steps": []} for name, _ in proxies}
    with contextlib.ExitStack() as stack_:
        running = {}
        for name, start in proxies:
            uas_port = stack.free_udp_port()
            stack_.enter_context(stack.SippUAS(work, uas_port, name=f"{name}-uas", logs=False))
            running[name] = stack_.enter_context(start(uas_port))
        for name, kam in running.items():  # warm-up: certificate fetch/cache, imports, first-call paths
            csv = stack.write_csv(work / f"{name}-warm.csv", rows(signer, 50))
            stack.run_uac(work, kam.port, csv, calls=50, rate=50, timeout=20, name=f"{name}-warm", logs=False)
        live = list(running)
        for rate in rates:
            for r in range(rounds):
                order = live[r % len(live):] + live[:r % len(live)] if live else []
                for name in order:
                    report[name]["steps"].append(step(name, work, running[name], signer, rate, seconds, r))
            # a proxy that failed a call or retransmitted at this rate goes no higher
            live = [n for n in live if all(s["clean"] for s in report[n]["steps"] if s["rate"] == rate)]
            if not live:
                break
    for name in report:
        steps = report[name]["steps"]
        clean = sorted({s["rate"] for s in steps} - {s["rate"] for s in steps if not s["clean"]})
        report[name]["highest_clean_rate"] = max(clean) if clean else 0
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="100,200,300,400,500,600,800,1000,1200,1500")
    ap.add_argument("--seconds", type=float, default=6.0, help="duration of each rate step")
    ap.add_argument("--rounds", type=int, default=3, help="turns each proxy takes at each rate")
    ap.add_argument("--workers", type=int, default=2, help="Kamailio SIP worker processes")
    ap.add_argument("--venv", help="a ready /usr/bin/python3 venv with manverify (default: build one)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--only", help="comma list of: manverify,manverify-native,secsipid,relay")
    ap.add_argument(bench.ALLOW_FALLBACK, action="store_true", help="measure even without the native engine")
    args = ap.parse_args(argv)
    missing = stack.missing_tools()
    if missing:
        print(f"needs {', '.join(missing)}", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    only = set(args.only.split(",")) if args.only else {"manverify", "manverify-native", "secsipid", "relay"}
    with tempfile.TemporaryDirectory(prefix="manverify-load-") as tmp:
        work = Path(tmp)
        venv = Path(args.venv) if args.venv else stack.build_venv(work / "venv")
        backend = None
        if only & {"manverify", "manverify-native"}:
            backend = bench.backend_of(str(venv / "bin" / "python"), stack.python_env())
            if not bench.native_or_refuse("load_sip", backend, args.allow_fallback):
                return bench.EXIT_NOT_NATIVE
        lab = pki.lab_pki(spc="1001")
        (work / "root.pem").write_bytes(lab.root.pem)
        files = {"/op1001.pem": lab.chain_pem}
        with serve(files) as base:
            signer = Signer(lab.signer.key_pem, f"{base}/op1001.pem")
            wk = str(args.workers)

            def manverify_proxy(uas_port, native=False):
                config = stack.write_manverify_config(
                    work / "mv.json", venv=venv, root_pem=work / "root.pem", cache_dir=work / "mv-cache",
                    next_hop=f"sip:127.0.0.1:{uas_port}", policy={"role": "terminating"}, log_decisions=False)
                env = dict(stack.python_env(), MANVERIFY_KAMAILIO_CONFIG=str(config))
                defines = {"KEMI_SCRIPT": f'"{stack.EXAMPLES / "manverify_kemi.py"}"', "WORKERS": wk}
                cfg = "kamailio.cfg"
                if native:
                    cfg = "kamailio-native.cfg"
                    defines["NEXT_HOP"] = f'"sip:127.0.0.1:{uas_port}"'
                return stack.Kamailio(work, stack.EXAMPLES / cfg, stack.free_udp_port(), defines,
                                      env=env, name="manverify-native" if native else "manverify")

            def secsipid_proxy(uas_port, relay_only=False):
                cache = work / "secsipid-cache"
                cache.mkdir(exist_ok=True)
                defines = {"NEXT_HOP": f'"sip:127.0.0.1:{uas_port}"', "CACHE_DIR": f'"{cache}"', "WORKERS": wk}
                if relay_only:
                    defines["NO_VERIFY"] = "1"
                return stack.Kamailio(work, stack.EXAMPLES / "secsipid.cfg", stack.free_udp_port(), defines,
                                      name="relay" if relay_only else "secsipid")

            report = {"machine": {"cpus": __import__("os").cpu_count()}, "seconds_per_step": args.seconds,
                      "rounds": args.rounds, "workers": args.workers, "backend": backend}
            proxies = [("relay", lambda p: secsipid_proxy(p, True)), ("secsipid", secsipid_proxy),
                       ("manverify", manverify_proxy), ("manverify-native", lambda p: manverify_proxy(p, True))]
            report.update(run_all([(n, s) for n, s in proxies if n in only], work, signer, rates,
                                  args.seconds, args.rounds))
    summarise(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def summarise(report) -> None:
    def cpu(name, rate, rnd):
        for s in report.get(name, {}).get("steps", []):
            if s["rate"] == rate and s["round"] == rnd and s["clean"]:
                return s["cpu_s_per_1000_calls"]
        return None

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    print("\n== summary (medians over rounds; ratios taken within a round)")
    for name in ("relay", "secsipid", "manverify", "manverify-native"):
        if name in report:
            print(f"{name:16s} highest clean rate: {report[name]['highest_clean_rate']} calls/s")
    rounds = report.get("rounds", 1)
    for mvname in ("manverify", "manverify-native"):
        if "secsipid" not in report or mvname not in report:
            continue
        print(f"-- {mvname} (KEMI routing)" if mvname == "manverify" else f"-- {mvname} (native routing, python_exec on INVITE)")
        totals, alone = [], []
        for rate in sorted({s["rate"] for s in report[mvname]["steps"]}):
            t, v, cells = [], [], []
            for rnd in range(rounds):
                mv, ss, base = cpu(mvname, rate, rnd), cpu("secsipid", rate, rnd), cpu("relay", rate, rnd)
                if mv is None or ss is None:
                    continue
                t.append(mv / ss)
                cells.append((mv, ss, base))
                if base is not None and ss - base > 0:
                    v.append((mv - base) / (ss - base))
            if not t:
                continue
            totals += t
            alone += v
            mv, ss = median(c[0] for c in cells), median(c[1] for c in cells)
            bases = [c[2] for c in cells if c[2] is not None]
            line = f"  {rate:5d} cps: CPU s/1000 calls manverify {mv:.3f}, secsipid {ss:.3f}, ratio {median(t):.2f}"
            if bases and v:
                line += (f"; relay-only {median(bases):.3f} → verification alone ratio {median(v):.2f}"
                         f" ({min(v):.2f}–{max(v):.2f})")
            print(line)
        if totals:
            report[f"cpu_ratio_{mvname}_over_secsipid"] = round(median(totals), 3)
            print(f"median CPU-per-call ratio {mvname}/secsipid: {median(totals):.3f} ({min(totals):.2f}–{max(totals):.2f})")
        if alone:
            report[f"verification_cpu_ratio_{mvname}_over_secsipid"] = round(median(alone), 3)
            print(f"median verification-alone ratio {mvname}/secsipid: {median(alone):.3f} "
                  f"({min(alone):.2f}–{max(alone):.2f})")


if __name__ == "__main__":
    sys.exit(main())
