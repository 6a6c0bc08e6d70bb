"""HTTP load on `manverify serve`, driven by wrk (Debian package) with a Lua body, side by side.

    python benches/serve_load.py servers [--seconds 10] [--allow-fallback]   # the HTTP server choice: uvicorn vs granian
    python benches/serve_load.py secsipidx [--seconds 10] [--allow-fallback] # manverify serve vs secsipidx -H (same calls)

Each server runs 2 worker processes (secsipidx: one Go process, GOMAXPROCS=2) on 127.0.0.1 and
gets the same verification request: a fresh SHAKEN Identity header from a lab PKI, its chain in
the local copy, so no run measures a network fetch. Measured per server, in one run:
  saturation   wrk -c 16 for the duration: requests/s (every answer checked to be a 200)
  cpu/request  the server's CPU time (utime+stime of its whole process tree, from /proc) divided
               by the requests answered: verifications per CPU-second is its inverse
  fixed rate   wrk with a per-connection delay (Lua delay()) offering about half of manverify's
               saturation rate: p50/p99 latency and CPU per request at that load
The load generator runs on the same 2-core machine: ratios, not absolute rates, are the result.

It first prints the signature backend the servers will use (what `python -m manverify --version`
says in their environment) and refuses to run (exit 3) unless it is the native engine: from a
source tree without the built engine it would measure the `cryptography` fallback. Pass
--allow-fallback to measure the fallback on purpose.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manverify import Signer, bench  # noqa: E402
from manverify.serve import lab  # noqa: E402

ORIG, DEST = "+33612345678", "0198765432"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def tree_cpu(root: int) -> float:
    """CPU seconds (user+system) of `root` and its live descendants."""
    parents: Dict[int, int] = {}
    times: Dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / TICK
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(p for p, pp in parents.items() if pp == pid)
    return total


def lua(body: str, headers: Dict[str, str], delay_ms: Optional[float] = None) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = [[{body}]]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    # A non-200 answer counts as an error in wrk's summary ("Non-2xx or 3xx responses").
    if delay_ms is not None:
        lines.append(f"function delay() return {delay_ms} end")
    return "\n".join(lines) + "\n"


def run_wrk(url: str, script: str, seconds: float, connections: int) -> dict:
    return wrk_figures(wrk(url, script, seconds, connections))


def wrk(url: str, script: str, seconds: float, connections: int) -> str:
    """wrk's report of one run: one thread, `connections` connections, the Lua `script`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        return subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                               "--latency", "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)


def wrk_figures(out: str) -> dict:
    """Requests, rate, non-2xx answers, socket errors, p50/p99 (ms) of a wrk report."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    return {"requests": requests, "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else "",
            "p50_ms": lat.get("50") and round(lat["50"], 3), "p99_ms": lat.get("99") and round(lat["99"], 3)}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def measure(name: str, pid: int, url: str, script: str, seconds: float, connections: int) -> dict:
    before = tree_cpu(pid)
    r = run_wrk(url, script, seconds, connections)
    cpu = tree_cpu(pid) - before
    r.update(name=name, cpu_s=round(cpu, 2), cpu_us_per_request=round(cpu / max(r["requests"], 1) * 1e6, 1),
             per_cpu_second=round(r["requests"] / cpu) if cpu else None)
    if r["non_2xx"] or r["socket_errors"]:
        raise RuntimeError(f"{name}: {r['non_2xx']} non-2xx answers, socket errors {r['socket_errors']!r}")
    return r


class Lab:
    """A lab configuration for manverify serve, and one fresh call in both servers' request shapes."""

    def __init__(self, directory: Path, port: int, workers: int = 2):
        self.dir = directory
        self.port = port
        self.path = lab.write(directory, listen=f"127.0.0.1:{port}", workers=workers)
        config = json.loads(self.path.read_text())
        config["max_age"] = 3600  # the same header is sent for the whole run
        config["server"]["limits"] = {"connections": 4096}
        self.path.write_text(json.dumps(config))
        self.key = config["server"]["api_keys"][0]
        self.signer = Signer((directory / "signer.key").read_bytes(), lab.LAB_X5U)
        self.identity = self.signer.sign(ORIG, DEST, attest="A")

    def atis_body(self) -> str:
        return json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                                    "identity": self.identity}}, separators=(",", ":"))

    def headers(self) -> Dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}


def server_env(env: Optional[dict] = None) -> dict:
    """The environment the servers run in: this checkout first on the path."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}


def start(cmd: List[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=server_env(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    wait_port(port, proc)
    time.sleep(1.0)  # workers past start-up (local copy warmed)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def servers(seconds: float) -> List[dict]:
    """The HTTP server choice: the same App under uvicorn (httptools, uvloop) and under granian."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        lb = Lab(Path(tmp), port)
        script = lua(lb.atis_body(), lb.headers())
        url = f"http://127.0.0.1:{port}/stir/v1/verification"
        env = {"MANVERIFY_SERVE_CONFIG": str(lb.path), "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=tmp)}
        candidates = {
            "uvicorn+httptools+uvloop": [sys.executable, "-m", "manverify", "serve", "--config", str(lb.path)],
            "granian (asgi, uvloop)": ["granian", "--interface", "asgi", "--factory", "--workers", "2", "--loop",
                                       "uvloop", "--host", "127.0.0.1", "--port", str(port), "--no-ws",
                                       "--log-level", "warning", "manverify.serve.app:from_environment"],
        }
        for name, cmd in candidates.items():
            proc = start(cmd, env, port)
            try:
                run_wrk(url, script, 2, 16)  # warm-up
                out.append(measure(name, proc.pid, url, script, seconds, 16))
            finally:
                stop(proc)
    return out


def secsipidx(seconds: float) -> List[dict]:
    """manverify serve against secsipidx's HTTP server mode, the same Identity header to both.

    secsipidx -H answers POST /v1/check (the Identity value as the body) with 200 "OK" or 500
    "FAILED". It is given the signer's public key (-p): it checks the token and its signature but
    no certificate chain and no call numbers, less work than manverify does (chain trusted from
    the local copy, policy, orig and dest against the call), so the ratio is a conservative one."""
    from cryptography.hazmat.primitives import serialization

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        port, sport = free_port(), free_port()
        lb = Lab(Path(tmp), port)
        key = serialization.load_pem_private_key((lb.dir / "signer.key").read_bytes(), None)
        pub = lb.dir / "signer.pub"
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        ours = (f"http://127.0.0.1:{port}/stir/v1/verification", lua(lb.atis_body(), lb.headers()))
        theirs = (f"http://127.0.0.1:{sport}/v1/check", lua(lb.identity, {"Content-Type": "text/plain"}))
        env = {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=tmp), "GOMAXPROCS": "2"}
        commands = {
            "manverify serve": ([sys.executable, "-m", "manverify", "serve", "--config", str(lb.path)], port, ours),
            "secsipidx -H": (["secsipidx", "-H", f"127.0.0.1:{sport}", "-p", str(pub), "-expire", "3600"], sport,
                             theirs),
        }
        procs = {name: start(cmd, env, p) for name, (cmd, p, _) in commands.items()}
        try:
            for name, (_, _, (url, script)) in commands.items():
                run_wrk(url, script, 2, 16)  # warm-up
                out.append(dict(measure(name, procs[name].pid, url, script, seconds, 16), load="saturation"))
            half = out[0]["rate"] / 2  # half of manverify's saturation rate, offered to both
            for name, (_, _, (url, script)) in commands.items():
                connections = 8
                paced = script + f"function delay() return {max(0.0, connections * 1000 / half - 0.3):.3f} end\n"
                out.append(dict(measure(name, procs[name].pid, url, paced, seconds, connections),
                                load=f"offered ~{half:.0f}/s"))
        finally:
            for proc in procs.values():
                stop(proc)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("servers", "secsipidx"))
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--check", action="store_true",
                   help="secsipidx: exit 1 unless manverify answers >= 1.5x the verifications per CPU-second "
                        "at the same offered rate and its p99 there is <= 5 ms")
    p.add_argument(bench.ALLOW_FALLBACK, action="store_true", help="measure even without the native engine")
    args = p.parse_args(argv)
    if not bench.native_or_refuse("serve_load", bench.backend_of(env=server_env()), args.allow_fallback):
        return bench.EXIT_NOT_NATIVE
    missing = [t for t in ("wrk", "secsipidx" if args.what == "secsipidx" else "wrk") if shutil.which(t) is None]
    if missing:
        print(f"{', '.join(missing)} not installed (apt-get install {' '.join(missing)})", file=sys.stderr)
        return 2
    results = servers(args.seconds) if args.what == "servers" else secsipidx(args.seconds)
    for r in results:
        print(json.dumps(r))
    if args.what == "secsipidx":
        (ms, sx), (ms_half, sx_half) = results[:2], results[2:]
        ratio_sat = ms["per_cpu_second"] / sx["per_cpu_second"]
        ratio_half = ms_half["per_cpu_second"] / sx_half["per_cpu_second"]
        print(f"verifications per CPU-second, manverify / secsipidx: {ratio_sat:.2f} at saturation, "
              f"{ratio_half:.2f} at {ms_half['load']}; saturation rate ratio {ms['rate'] / sx['rate']:.2f}; "
              f"manverify p50/p99 at half its saturation {ms_half['p50_ms']}/{ms_half['p99_ms']} ms "
              f"(secsipidx {sx_half['p50_ms']}/{sx_half['p99_ms']} ms)")
        if args.check and not (ratio_half >= 1.5 and ms_half["p99_ms"] <= 5):
            print("below target (>= 1.5x per CPU-second, p99 <= 5 ms)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
