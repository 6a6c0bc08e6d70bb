"""Caller look-ups over HTTP at a fixed rate: `manverify serve` (2 workers) with its counters in a
redis-server on loopback, driven by wrk as benches/serve_load.py does.

    python benches/lookup_load.py [--rate 500] [--seconds 20] [--numbers 2000] [--allow-fallback] [--check]

The store is filled first (calls with verification results, outcomes and user reports for
`--numbers` numbers, through a Screen with the service's configuration), then wrk sends
GET /numbers/v1/{tn} over those numbers (a Lua request() walks them) at about `--rate` look-ups/s
(32 connections, each paced by delay()) and reports p50/p99; every answer is checked to be a 200
that used the store ("degraded": false). Also printed: the server's CPU per look-up, Redis's own
time per look-up script (INFO commandstats), and the saturation rate for scale. Target: p99 <= 5 ms
at 500/s (`--check` exits 1 when missed). It prints the signature backend first and, like
serve_load.py, refuses (exit 3) to run on the `cryptography` fallback unless --allow-fallback.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches"))

import redis  # noqa: E402

from manverify import bench  # noqa: E402
from manverify.result import Result  # noqa: E402
from manverify.screen.engine import Screen  # noqa: E402
from serve_load import Lab, free_port, run_wrk, server_env, start, stop, tree_cpu, wrk, wrk_figures  # noqa: E402
from tests.redishelp import RedisServer  # noqa: E402

SECRET = "bench-lookup-secret-0123456789"
CONNECTIONS = 8   # at saturation
PACED = 32        # at the fixed rate: each waits ~64 ms between look-ups, so their latency moves the rate little
T0 = time.time()


def number(i: int) -> str:
    return f"+336{10000000 + i:08d}"


def fill(config: dict, numbers: int) -> None:
    """Calls (half with a verification Result), outcomes and reports for every number."""
    screen = Screen.from_dict(config, reload=False)
    passed, failed = Result(True, None, "", attest="A"), Result(False, 438, "bad signature")
    try:
        calls = [{"orig": number(i), "dest": number((i * 31 + k) % numbers), "now": T0 - 60 * k,
                  "result": (passed if k % 3 else failed) if k % 2 else None}
                 for i in range(numbers) for k in range(10)]
        for start_at in range(0, len(calls), 2000):
            screen.check_many(calls[start_at:start_at + 2000])
        for i in range(0, numbers, 3):
            screen.feedback(number(i), answered=bool(i % 2), duration=3.0, now=T0)
            screen.report(number(i), ("scam", "canvassing", "silent", "other")[i % 4], f"user-{i}", now=T0)
    finally:
        screen.close()


def script(key: str, numbers: int, delay_ms: float = None) -> str:
    lines = [
        'wrk.method = "GET"',
        f'wrk.headers["Authorization"] = "Bearer {key}"',
        "local n, threads = 0, {}",
        "function setup(thread) table.insert(threads, thread) end",
        "function init(args) degraded = 0 end",
        "function request()",
        "  n = n + 1",
        f'  return wrk.format(nil, string.format("/numbers/v1/+336%08d", 10000000 + (n * 7919) % {numbers}))',
        "end",
        "function response(status, headers, body)",
        '  if string.find(body, \'"degraded":true\', 1, true) then degraded = degraded + 1 end',
        "end",
        "function done(summary, latency, requests)",
        "  local d = 0",
        '  for _, t in ipairs(threads) do d = d + t:get("degraded") end',
        '  io.write(string.format("degraded answers: %d\\n", d))',
        "end",
    ]
    if delay_ms is not None:
        lines.append(f"function delay() return {delay_ms:.3f} end")
    return "\n".join(lines) + "\n"


def measure(name: str, pid: int, url: str, lua: str, seconds: float, connections: int = CONNECTIONS) -> dict:
    """serve_load.measure's figures, plus the answers that did not use the store."""
    before = tree_cpu(pid)
    out = wrk(url, lua, seconds, connections)
    cpu = tree_cpu(pid) - before
    w = wrk_figures(out)
    r = {"name": name, "requests": w["requests"], "rate": w["rate"], "p50_ms": w["p50_ms"], "p99_ms": w["p99_ms"],
         "cpu_us_per_request": round(cpu / max(w["requests"], 1) * 1e6, 1),
         "degraded": int(re.search(r"degraded answers: (\d+)", out).group(1))}
    if w["non_2xx"] or w["socket_errors"] or r["degraded"]:
        raise RuntimeError(f"{name}: {w['non_2xx']} non-2xx answers, socket errors {w['socket_errors']!r}, "
                           f"{r['degraded']} answers without the store")
    return r


def evalsha_usec(url: str) -> tuple:
    stats = redis.Redis.from_url(url).info("commandstats").get("cmdstat_evalsha", {})
    return stats.get("calls", 0), stats.get("usec", 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=500, help="look-ups per second offered (default 500)")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--numbers", type=int, default=2000, help="distinct numbers looked up (default 2000)")
    p.add_argument("--check", action="store_true", help="exit 1 unless p99 <= 5 ms at the offered rate")
    p.add_argument(bench.ALLOW_FALLBACK, action="store_true", help="measure even without the native engine")
    args = p.parse_args(argv)
    if not bench.native_or_refuse("lookup_load", bench.backend_of(env=server_env()), args.allow_fallback):
        return bench.EXIT_NOT_NATIVE
    missing = [t for t in ("wrk", "redis-server") if shutil.which(t) is None]
    if missing:
        print(f"{', '.join(missing)} not installed (apt-get install {' '.join(missing)})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        store = RedisServer(Path(tmp) / "redis").start()
        try:
            port = free_port()
            lb = Lab(Path(tmp), port)
            config = json.loads(lb.path.read_text())
            # a budget far above the look-up's round trip: a slow answer shows as latency, not as a
            # local (degraded) answer
            config["screening"] = {"counters": {"backend": "redis", "url": store.url, "key_secret": SECRET,
                                                "budget_ms": 100}}
            lb.path.write_text(json.dumps(config))
            fill(config["screening"], args.numbers)
            proc = start([sys.executable, "-m", "manverify", "serve", "--config", str(lb.path)],
                         {"MANVERIFY_SERVE_CONFIG": str(lb.path)}, port)
            url = f"http://127.0.0.1:{port}/numbers/v1/"
            try:
                run_wrk(url, script(lb.key, args.numbers), 2, CONNECTIONS)  # warm-up
                saturation = measure("saturation", proc.pid, url, script(lb.key, args.numbers), 5)
                # each connection waits delay() after its answer: PACED / (delay + latency) = rate
                delay = max(0.0, PACED * 1000 / args.rate - 1.0)
                calls0, usec0 = evalsha_usec(store.url)
                paced = measure(f"offered {args.rate:.0f}/s", proc.pid, url,
                                script(lb.key, args.numbers, delay), args.seconds, PACED)
                calls1, usec1 = evalsha_usec(store.url)
                # the floor under the same load: a request the service answers without the store
                floor = measure(f"GET /healthz, offered {args.rate:.0f}/s", proc.pid,
                                f"http://127.0.0.1:{port}/healthz", script(lb.key, args.numbers, delay).replace(
                                    'string.format("/numbers/v1/+336%08d", 10000000 + (n * 7919) % '
                                    f'{args.numbers})', '"/healthz"'), args.seconds, PACED)
            finally:
                stop(proc)
        finally:
            store.stop()
    paced["redis_us_per_lookup"] = round((usec1 - usec0) / max(1, calls1 - calls0), 1)
    paced["scripts_per_lookup"] = round((calls1 - calls0) / max(1, paced["requests"]), 3)
    for r in (saturation, paced, floor):
        print(json.dumps(r))
    print(f"look-ups at {paced['rate']:.0f}/s (offered {args.rate:.0f}/s): p50 {paced['p50_ms']} ms, "
          f"p99 {paced['p99_ms']} ms; server CPU {paced['cpu_us_per_request']} us a look-up, Redis "
          f"{paced['redis_us_per_lookup']} us a look-up in {paced['scripts_per_lookup']} script(s); "
          f"saturation {saturation['rate']:.0f}/s; GET /healthz at the same rate: p50 {floor['p50_ms']} ms, "
          f"p99 {floor['p99_ms']} ms, {floor['cpu_us_per_request']} us")
    if args.check and not (paced["p99_ms"] is not None and paced["p99_ms"] <= 5):
        print("below target (p99 <= 5 ms)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
