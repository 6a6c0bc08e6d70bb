"""`manverify bench`: side-by-side speed ratios on this machine, measured in one process.

    manverify bench [--rounds N] [--json] [--allow-fallback]

Machines are shared and noisy, so nothing here is an absolute claim: every candidate runs on the
same token and key, interleaved round-robin, and the report is the median of the rounds as a
ratio to `cryptography`'s bare ES256 verify measured in the same run.

Every benchmark of the project (this one, benches/*.py and the pytest-benchmark suites) says
which signature backend it measures, and refuses to run (exit EXIT_NOT_NATIVE, 3) when it is not
the native engine: a source tree without the built engine, or MANVERIFY_BACKEND=cryptography,
would otherwise measure the `cryptography` fallback under the native engine's name. Pass
--allow-fallback (ALLOW_FALLBACK) to measure the fallback on purpose.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from typing import IO, Callable, Dict, List, Mapping, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import es256, passport, pki
from .signer import Signer
from .verifier import Verifier

ORIG, DEST = "+33612345678", "+33198765432"
SCREEN_CHECK = "Screen.check (plan, lists, local counters)"

ALLOW_FALLBACK = "--allow-fallback"  # the one name, for every benchmark script and suite
EXIT_NOT_NATIVE = 3


def backend_line() -> str:
    """This process's signature backend, and why when it is not the native engine."""
    return es256.backend_line()


def backend_of(python: str = sys.executable, env: Optional[Mapping[str, str]] = None) -> str:
    """The backend line `python -m manverify --version` prints in `env`: what a server started
    the same way (`manverify serve`, Kamailio's venv) measures, rather than this process."""
    done = subprocess.run([python, "-m", "manverify", "--version"], env=env, capture_output=True, text=True,
                          timeout=120)
    found = re.search(r"signature backend (.+)$", done.stdout.strip())
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{python} -m manverify --version failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return found.group(1)


def refusal(what: str, backend: str, allow_fallback: bool) -> Optional[str]:
    """Why `what` must not measure with `backend` (a backend line), or None when it may."""
    if backend.split(" ", 1)[0] == "native" or allow_fallback:
        return None
    return (f"{what}: refusing to measure: the signature backend is {backend}, not the native engine, so the "
            f"figures would be the `cryptography` fallback's. Build the engine (python setup.py build_ext "
            f"--inplace) and unset MANVERIFY_BACKEND, or pass {ALLOW_FALLBACK} to measure the fallback on purpose.")


def native_or_refuse(what: str, backend: str, allow_fallback: bool, out: Optional[IO[str]] = None) -> bool:
    """Say which signature backend `what` measures; False, with why on stderr, when it is not the
    native engine and the fallback was not allowed (see refusal())."""
    print(f"{what}: signature backend {backend}", file=out or sys.stdout, flush=True)
    why = refusal(what, backend, allow_fallback)
    if why:
        print(why, file=sys.stderr, flush=True)
    return why is None


class Setup:
    """One lab PKI, one signed call, every candidate ready to run on it."""

    def __init__(self, batch: int = 512):
        self.now = int(time.time())
        self.lab = pki.lab_pki(now=self.now)
        signer = Signer(self.lab.signer.key_pem, self.lab.x5u)
        self.header = signer.sign(ORIG, DEST, iat=self.now)
        token = self.header.split(";", 1)[0]
        self.token = token
        self.pp = passport.decode(token)
        self.pub = self.lab.signer.key.public_key()
        sig = self.pp.signature
        self.der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        self.key = es256.key_from_public(self.pub)
        self._screen = None
        self._screen_calls: list = []
        self.verifier = Verifier(trust_anchors=[self.lab.root.pem],
                                 certificates={self.lab.x5u: self.lab.chain_pem}, threads=1)
        self.verifier2 = Verifier(store=self.verifier.store, threads=2)
        self.batch = [dict(identity=signer.sign(ORIG, DEST, iat=self.now), orig=ORIG, dest=DEST, now=self.now)
                      for _ in range(batch)]
        assert self.verifier.verify(self.header, orig=ORIG, dest=DEST, now=self.now).ok
        # the same batch at the signature boundary: (key, signing input, r||s) per call
        pps = [passport.decode(call["identity"].split(";", 1)[0]) for call in self.batch]
        self.sig_batch = ([self.key] * len(pps), [p.signing_input for p in pps], [p.signature for p in pps])
        try:
            import jwt  # PyJWT

            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            self.jwt = jwt
            self.pem = self.pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        except ImportError:
            self.jwt = None

    def screening(self) -> Callable[[], object]:
        """One screened call as issue 17 prices it: the built-in plan, lists of 100 k numbers and
        10 k prefixes, local counters; callers and callees drawn from pools of 20 k and 200 k
        numbers, so the counters and lists see many keys, not one."""
        if self._screen is None:
            from .screen import screening_lab

            self._screen, self._screen_calls = screening_lab(self.now)
        screen, calls, n = self._screen, self._screen_calls, len(self._screen_calls)
        state = [0]

        def one() -> object:
            i = state[0] = (state[0] + 1) % n
            orig, dest = calls[i]
            return screen.check(orig, dest, now=self.now + i * 0.001)

        return one

    def candidates(self) -> Dict[str, Callable[[], object]]:
        pp, key, der, pub = self.pp, self.key, self.der, self.pub
        algo = ec.ECDSA(hashes.SHA256())
        out: Dict[str, Callable[[], object]] = {
            "cryptography verify": lambda: pub.verify(der, pp.signing_input, algo),
            f"es256.verify ({es256.backend()})": lambda: es256.verify(key, pp.signing_input, pp.signature),
            "Verifier.verify (cached cert)": lambda: self.verifier.verify(self.header, orig=ORIG, dest=DEST, now=self.now),
        }
        try:
            out[SCREEN_CHECK] = self.screening()
        except ImportError as e:  # the screening extra (numpy, holidays) is not installed
            print(f"manverify bench: no screening candidate: {e}", file=sys.stderr)
        if self.jwt is not None:
            jwt, pem, token = self.jwt, self.pem, self.token
            out["PyJWT decode ES256"] = lambda: jwt.decode(token, pem, algorithms=["ES256"],
                                                           options={"verify_signature": True})
        return out


def interleaved(cands: Dict[str, Callable[[], object]], rounds: int, per_round: float) -> Dict[str, float]:
    """Median seconds per call of each candidate; candidates alternate inside every round."""
    loops = {}
    for name, fn in cands.items():  # calibrate: loops per round so each takes ~per_round
        n, t = 1, 0.0
        while t < per_round / 4:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            t = time.perf_counter() - t0
            n *= 2
        loops[name] = max(1, int(n / 2 * per_round / max(t, 1e-9)))
    samples: Dict[str, List[float]] = {k: [] for k in cands}
    for _ in range(rounds):
        for name, fn in cands.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


def batch_rates(setup: Setup, rounds: int) -> Dict[str, float]:
    """Calls per second of batches on 1 and on 2 threads, interleaved: Verifier.verify_many (the
    whole pipeline; its Python parsing holds the GIL) and es256.verify_many (signatures only: the
    native batch runs without the GIL)."""
    keys, msgs, sigs = setup.sig_batch
    n = len(setup.batch)
    cands = {
        "verify_many 1 thread": lambda: setup.verifier.verify_many(setup.batch),
        "verify_many 2 threads": lambda: setup.verifier2.verify_many(setup.batch),
        "es256.verify_many 1 thread": lambda: es256.verify_many(keys, msgs, sigs, threads=1),
        "es256.verify_many 2 threads": lambda: es256.verify_many(keys, msgs, sigs, threads=2),
    }
    for fn in cands.values():  # warm up (thread pools, caches) and check the verdicts
        out = fn()
        assert all(r if isinstance(r, bool) else r.ok for r in out)
    samples: Dict[str, List[float]] = {k: [] for k in cands}
    for _ in range(rounds):
        for name, fn in cands.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(n / (time.perf_counter() - t0))
    rates = {k: statistics.median(v) for k, v in samples.items()}
    # Scaling per round (1 and 2 threads timed back to back). Another process on the second
    # core only ever lowers it, so the upper quartile says what the code can do, while a GIL
    # held during native work keeps every round near 1.0.
    for label, one, two in (("verify_many", "verify_many 1 thread", "verify_many 2 threads"),
                            ("es256.verify_many", "es256.verify_many 1 thread", "es256.verify_many 2 threads")):
        paired = sorted(b / a for a, b in zip(samples[one], samples[two]))
        rates[f"{label} scaling q3"] = paired[(3 * len(paired)) // 4]
    return rates


def key_costs(rounds: int = 9) -> Dict[str, float]:
    """Cold-key costs: loading a new key (table build) and a first verify with it."""
    builds, firsts = [], []
    for _ in range(rounds):
        k = ec.generate_private_key(ec.SECP256R1())
        msg = b"cold key"
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(k.sign(msg, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        t0 = time.perf_counter()
        key = es256.key_from_public(k.public_key())
        t1 = time.perf_counter()
        assert es256.verify(key, msg, sig)
        t2 = time.perf_counter()
        builds.append(t1 - t0)
        firsts.append(t2 - t0)
    return {"key load (table build)": statistics.median(builds), "cold key: load + first verify": statistics.median(firsts)}


def measure(rounds: int = 11, per_round: float = 0.05, batch: int = 512) -> Dict[str, object]:
    setup = Setup(batch)
    times = interleaved(setup.candidates(), rounds, per_round)
    base = times["cryptography verify"]
    rates = batch_rates(setup, max(8, rounds))
    report = {
        "backend": es256.backend(),
        "times_us": {k: v * 1e6 for k, v in times.items()},
        "ratios": {k: v / base for k, v in times.items()},
        "batch_rates": rates,
        "batch_scaling": rates["verify_many 2 threads"] / rates["verify_many 1 thread"],
        "sig_batch_scaling": rates["es256.verify_many 2 threads"] / rates["es256.verify_many 1 thread"],
        "batch_scaling_q3": rates.pop("verify_many scaling q3"),
        "sig_batch_scaling_q3": rates.pop("es256.verify_many scaling q3"),
        "keys_ms": {k: v * 1e3 for k, v in key_costs().items()},
        "native": es256.native_info(),
        "rounds": rounds,
    }
    return report


def render(report: Dict[str, object]) -> str:
    lines = [f"manverify bench — signature backend: {report['backend']}; medians of {report['rounds']} "
             "interleaved rounds, ratios to cryptography's bare verify in the same run", ""]
    lines.append(f"{'candidate':36s} {'µs/call':>9s} {'× cryptography':>15s}")
    for name, us in report["times_us"].items():
        lines.append(f"{name:36s} {us:9.1f} {report['ratios'][name]:15.2f}")
    lines.append("")
    for name, rate in report["batch_rates"].items():
        lines.append(f"{name:36s} {rate:9.0f} calls/s")
    lines.append(f"{'verify_many scaling, 2 vs 1 thread':36s} {report['batch_scaling']:9.2f}×")
    lines.append(f"{'es256.verify_many scaling, 2 vs 1':36s} {report['sig_batch_scaling']:9.2f}×")
    lines.append(f"{'  per-round upper quartile':36s} {report['batch_scaling_q3']:9.2f}× (verify_many), "
                 f"{report['sig_batch_scaling_q3']:.2f}× (es256)")
    for name, ms in report["keys_ms"].items():
        lines.append(f"{name:36s} {ms:9.2f} ms")
    if report["native"]:
        lines.append(f"{'per-key table':36s} {report['native']['table_bytes'] / 1024:9.1f} KiB")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="manverify bench", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--json", action="store_true", help="print the raw report as JSON")
    p.add_argument(ALLOW_FALLBACK, action="store_true",
                   help="measure even when the signature backend is not the native engine")
    args = p.parse_args(argv)
    # With --json, stdout is the report alone (which names the backend too).
    if not native_or_refuse("manverify bench", backend_line(), args.allow_fallback,
                            sys.stderr if args.json else None):
        return EXIT_NOT_NATIVE
    report = measure(rounds=args.rounds)
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
