#!/usr/bin/env python3
"""SIP load benchmark: Kamailio + manverify (KEMI) against Kamailio + secsipid, one run, one machine.

    python benches/load_sip.py [--rates 100,200,400,...] [--seconds 6] [--workers 2] [--json out.json]

For each proxy (and a relay-only Kamailio as the baseline), SIPp sends signed INVITEs (full call:
INVITE/100/200/ACK/BYE/200 through the proxy to a SIPp UAS) at rising call rates. Reported per
step: Kamailio CPU seconds per 1,000 calls (utime+stime of every kamailio process, from
/proc/<pid>/stat), failed calls and retransmissions; per proxy: the highest rate with zero failed
calls and zero retransmissions. Calls are signed (our Signer) right before each step, so they are
fresh in the 60 s MAN window. Everything runs on 127.0.0.1 and is stopped by PID at the end.
Needs kamailio, kamailio-python3-modules, kamailio-secsipid-modules, sip-tester, python3-venv.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manverify import pki  # noqa: E402
from manverify.demo import serve  # noqa: E402
from manverify.signer import Signer  # noqa: E402
from tests.e2e import stack  # noqa: E402

ORIG, DEST = "+33612345678", "+33198765432"


def rows(signer: Signer, n: int = 500):
    date = stack.sip_date()
    return [["load", "Identity", signer.passport(ORIG, DEST), signer.x5u, ORIG, DEST, date] for _ in range(n)]


def run_proxy(name, work: Path, start_kamailio, signer, rates, seconds):
    uas_port = stack.free_udp_port()
    steps = []
    with stack.SippUAS(work, uas_port, name=f"{name}-uas", logs=False):
        with start_kamailio(uas_port) as kam:
            # Warm-up: certificate fetch/cache, Python imports, first-call paths.
            csv = stack.write_csv(work / f"{name}-warm.csv", rows(signer, 50))
            stack.run_uac(work, kam.port, csv, calls=50, rate=50, timeout=20, name=f"{name}-warm", logs=False)
            for rate in rates:
                calls = int(rate * seconds)
                csv = stack.write_csv(work / f"{name}-{rate}.csv", rows(signer))
                pids = kam.pids()
                cpu0, t0 = stack.cpu_seconds(pids), time.monotonic()
                res = stack.run_uac(work, kam.port, csv, calls=calls, rate=rate, timeout=seconds * 3 + 20,
                                    name=f"{name}-{rate}", logs=False, extra=["-rp", "1000", "-l", str(rate * 4)])
                wall = time.monotonic() - t0
                cpu = stack.cpu_seconds(kam.pids()) - cpu0
                st = stack.uac_stats(work, f"{name}-{rate}")
                ok = int(st.get("SuccessfulCall(C)", 0) or 0)
                failed = int(st.get("FailedCall(C)", 0) or 0)
                retrans = int(st.get("Retransmissions(C)", 0) or 0)
                done = ok + failed
                step = {
                    "rate": rate, "calls": calls, "successful": ok, "failed": failed, "retransmissions": retrans,
                    "kamailio_cpu_s": round(cpu, 3), "wall_s": round(wall, 2), "sipp_exit": res.returncode,
                    "cpu_s_per_1000_calls": round(cpu / done * 1000, 4) if done else None,
                    "clean": failed == 0 and retrans == 0 and ok == calls,
                }
                steps.append(step)
                print(f"{name:16s} {rate:6d} cps  calls={calls:6d} ok={ok:6d} failed={failed:5d} "
                      f"retrans={retrans:5d} cpu/1000={step['cpu_s_per_1000_calls']}", flush=True)
                if not step["clean"]:
                    break
    clean = [s["rate"] for s in steps if s["clean"]]
    return {"steps": steps, "highest_clean_rate": max(clean) if clean else 0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="100,200,300,400,500,600,800,1000,1200,1500")
    ap.add_argument("--seconds", type=float, default=6.0, help="duration of each rate step")
    ap.add_argument("--workers", type=int, default=2, help="Kamailio SIP worker processes")
    ap.add_argument("--venv", help="a ready /usr/bin/python3 venv with manverify (default: build one)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--only", help="comma list of: manverify,manverify-native,secsipid,relay")
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
                      "workers": args.workers, "backend": None}
            try:
                import manverify
                report["backend"] = manverify.backend()
            except Exception:  # noqa: BLE001 — informational only
                pass
            proxies = [("relay", lambda p: secsipid_proxy(p, True)), ("secsipid", secsipid_proxy),
                       ("manverify", manverify_proxy), ("manverify-native", lambda p: manverify_proxy(p, True))]
            for name, start in proxies:
                if name in only:
                    report[name] = run_proxy(name, work, start, signer, rates, args.seconds)
    summarise(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def summarise(report) -> None:
    def cpu_at(name, rate):
        for s in report.get(name, {}).get("steps", []):
            if s["rate"] == rate and s["clean"]:
                return s["cpu_s_per_1000_calls"]
        return None

    print("\n== summary")
    for name in ("relay", "secsipid", "manverify", "manverify-native"):
        if name in report:
            print(f"{name:16s} highest clean rate: {report[name]['highest_clean_rate']} calls/s")
    for mvname in ("manverify", "manverify-native"):
        if "secsipid" not in report or mvname not in report:
            continue
        print(f"-- {mvname} (KEMI routing)" if mvname == "manverify" else f"-- {mvname} (native routing, python_exec on INVITE)")
        common = [s["rate"] for s in report[mvname]["steps"] if s["clean"]
                  if cpu_at("secsipid", s["rate"]) is not None]
        ratios = []
        for rate in common:
            mv, ss = cpu_at(mvname, rate), cpu_at("secsipid", rate)
            base = cpu_at("relay", rate)
            line = f"  {rate:5d} cps: CPU s/1000 calls manverify {mv:.3f}, secsipid {ss:.3f}, ratio {mv / ss:.2f}"
            if base is not None and ss - base > 0:
                line += (f"; relay-only {base:.3f} → verification alone {mv - base:.3f} vs {ss - base:.3f}"
                         f" (ratio {(mv - base) / (ss - base):.2f})")
            print(line)
            ratios.append(mv / ss)
        if ratios:
            key = f"cpu_ratio_{mvname}_over_secsipid"
            report[key] = round(sorted(ratios)[len(ratios) // 2], 3)
            print(f"median CPU-per-call ratio {mvname}/secsipid: {report[key]}")


if __name__ == "__main__":
    sys.exit(main())
