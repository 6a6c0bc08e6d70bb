"""`manverify demo`: the whole job on an embedded default, with nothing outside the machine.

A throwaway STI PKI (root → intermediate → a signer per operator), a certificate server on
127.0.0.1, a few thousand signed calls of which some are deliberately bad (one kind per SIP code),
all verified one by one and as a batch, and a table comparing what each call got with what it should.
With --jsonl the batch's decision records are written too, for `manverify report`.
"""
from __future__ import annotations

import contextlib
import http.server
import json
import random
import threading
import time
from collections import Counter
from typing import Dict, Iterator, List, Optional, Tuple

from . import pki, tn
from .batch import decision_record
from .result import REASONS
from .signer import Signer
from .verifier import Verifier


@contextlib.contextmanager
def serve(files: Dict[str, bytes]) -> Iterator[str]:
    """Serve {path: body} on http://127.0.0.1:<free port>; yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/pem-certificate-chain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=86400")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the demo's output to the table
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# (kind, expected SIP code or None for a pass, share of the calls)
KINDS: List[Tuple[str, object, int]] = [
    ("valid, attest A", None, 40),
    ("valid, attest B", None, 10),
    ("valid, attest C", None, 5),
    ("valid, retargeted (div)", None, 5),
    ("no Identity header", 428, 5),
    ("calling number malformed", 400, 3),
    ("stale iat (replay)", 403, 5),
    ("iat in the future", 403, 2),
    ("x5u not found (404)", 436, 3),
    ("alg RS256 in PASSporT", 437, 2),
    ("signer not trusted", 437, 3),
    ("signature tampered", 438, 5),
    ("calling number differs", 438, 5),
    ("called number differs", 438, 4),
    ("attest D", 438, 3),
    ("signer certificate expired", 437, 2),
]

# (SPC, share of the calls, how many times likelier its calls go wrong): partners differ, so that
# the per-operator report of this traffic (--jsonl, then `manverify report`) has something to show.
OPERATORS: List[Tuple[str, int, int]] = [("1001", 6, 1), ("1002", 3, 1), ("1003", 1, 5)]
EXPIRED_SPC = "1004"  # the partner whose certificate has expired


def _calls(n: int, now: int, signers: Dict[str, Signer], rogue: Signer, expired: Signer,
           missing: Signer) -> List[tuple]:
    rng = random.Random(8224)
    shares = [share for _, share, _ in OPERATORS]
    weights = {spc: [w * (worse if expected is not None else 1) for _, expected, w in KINDS]
               for spc, _, worse in OPERATORS}
    out = []
    for i in range(n):
        spc = rng.choices(OPERATORS, shares)[0][0]
        good = signers[spc]
        kind, expected, _ = KINDS[rng.choices(range(len(KINDS)), weights[spc])[0]]
        orig = f"+336{rng.randrange(10**8):08d}"
        dest = f"01{rng.randrange(10**8):08d}"
        call = {"orig": orig, "dest": dest, "now": now}
        if kind.startswith("valid, attest"):
            call["identity"] = good.sign(orig, dest, attest=kind[-1], iat=now - rng.randrange(5))
        elif kind == "valid, retargeted (div)":
            forwarded = f"07{rng.randrange(10**8):08d}"
            call["identity"] = [good.sign(orig, dest, iat=now), good.sign_div(orig, forwarded, dest, iat=now)]
            call["dest"] = forwarded
        elif kind == "no Identity header":
            call["identity"] = None
        elif kind == "calling number malformed":
            call["identity"] = good.sign(orig, dest, iat=now)
            call["orig"] = "anonymous"
        elif kind == "stale iat (replay)":
            call["identity"] = good.sign_claims(_claims(orig, dest, now - 3600, "A"))  # sign() keeps iat fresh
        elif kind == "iat in the future":
            call["identity"] = good.sign_claims(_claims(orig, dest, now + 300, "A"))
        elif kind == "x5u not found (404)":
            call["identity"] = missing.sign(orig, dest, iat=now)
        elif kind == "alg RS256 in PASSporT":
            header = {"alg": "RS256", "ppt": "shaken", "typ": "passport", "x5u": good.x5u}
            call["identity"] = good.sign_claims(_claims(orig, dest, now, "A"), header=header)
        elif kind == "signer not trusted":
            call["identity"] = rogue.sign(orig, dest, iat=now)
        elif kind == "signature tampered":
            h = good.sign(orig, dest, iat=now)
            token, rest = h.split(";", 1)
            flip = "A" if token[-10] != "A" else "B"
            call["identity"] = f"{token[:-10]}{flip}{token[-9:]};{rest}"
        elif kind == "calling number differs":
            call["identity"] = good.sign(orig, dest, iat=now)
            call["orig"] = f"+336{(int(orig[4:]) + 1) % 10**8:08d}"
        elif kind == "called number differs":
            call["identity"] = good.sign(orig, "0199999999", iat=now)
        elif kind == "attest D":
            call["identity"] = good.sign_claims(_claims(orig, dest, now, "D"))
        elif kind == "signer certificate expired":
            call["identity"] = expired.sign(orig, dest, iat=now)
        out.append((kind, expected, call))
    return out


def _claims(orig: str, dest: str, iat: int, attest: str) -> dict:
    return {"attest": attest, "dest": {"tn": [tn.canonical(dest)]}, "iat": iat,
            "orig": {"tn": tn.canonical(orig)}, "origid": "4437c7eb-8f0c-4a33-8c4e-9b0dfc1d1b17"}


def run(n: int = 3000, out=None, jsonl: Optional[str] = None) -> int:
    """Run the demo; print the table to `out` (default stdout); write the batch's decision records
    to the file `jsonl` if given; return the exit status."""
    import sys

    out = out or sys.stdout
    now = int(time.time())
    lab = pki.lab_pki(spc=OPERATORS[0][0])
    rogue_lab = pki.lab_pki(spc="6666")
    operators = {OPERATORS[0][0]: lab.signer}
    for spc, _, _ in OPERATORS[1:]:
        operators[spc] = pki.make_signer(lab.intermediate, f"manverify lab signer {spc}", spc=spc)
    expired = pki.make_signer(lab.intermediate, f"manverify lab signer {EXPIRED_SPC}", spc=EXPIRED_SPC,
                              not_before=now - 400 * 86400, days=365)
    files = {f"/op{spc}.pem": cert.pem + lab.intermediate.pem for spc, cert in operators.items()}
    files.update({"/rogue.pem": rogue_lab.chain_pem, f"/op{EXPIRED_SPC}.pem": expired.pem + lab.intermediate.pem})
    with serve(files) as base:
        def signer(key_pem: bytes, url: str) -> Signer:  # the demo's clock: every call is dated `now`
            return Signer(key_pem, url, clock=lambda: now)

        signers = {spc: signer(cert.key_pem, f"{base}/op{spc}.pem") for spc, cert in operators.items()}
        rogue = signer(rogue_lab.signer.key_pem, base + "/rogue.pem")
        calls = _calls(n, now, signers, rogue, signer(expired.key_pem, f"{base}/op{EXPIRED_SPC}.pem"),
                       signer(lab.signer.key_pem, base + "/missing.pem"))
        verifier = Verifier(trust_anchors=[lab.root.pem], allow_http=True, profile="man")

        t0 = time.perf_counter()
        singles = [verifier.verify(**call) for _, _, call in calls]
        t1 = time.perf_counter()
        batch = verifier.verify_many([call for _, _, call in calls])
        t2 = time.perf_counter()

    if jsonl:
        with open(jsonl, "w", encoding="utf-8") as f:
            for i, ((kind, _, _), r) in enumerate(zip(calls, batch), 1):
                f.write(json.dumps(dict(decision_record(r, id=i), kind=kind), separators=(",", ":")) + "\n")

    rows: Dict[str, Counter] = {}
    wrong = 0
    for (kind, expected, _), r, rb in zip(calls, singles, batch):
        rows.setdefault(kind, Counter())[r.sip_code] += 1
        if r.sip_code != expected or rb != r:
            wrong += 1
    from . import es256

    print(f"manverify demo: {n} calls signed and verified on this machine "
          f"(signature backend: {es256.backend()})\n", file=out)
    print(f"{'call kind':28s} {'calls':>6s}  {'expected':27s} {'got':27s}", file=out)
    print("-" * 92, file=out)
    for kind, expected, _ in KINDS:
        got = rows.get(kind)
        if not got:
            continue
        exp = _label(expected)
        gots = ", ".join(f"{_label(c)}" + (f" ×{k}" if len(got) > 1 else "") for c, k in got.items())
        mark = "" if set(got) == {expected} else "   ← MISMATCH"
        print(f"{kind:28s} {sum(got.values()):6d}  {exp:27s} {gots:27s}{mark}", file=out)
    codes = Counter(r.sip_code for r in singles)
    print("-" * 92, file=out)
    print("by code: " + ", ".join(f"{_label(c)}: {k}" for c, k in sorted(codes.items(), key=lambda x: x[0] or 0)),
          file=out)
    print(f"verify():      {n / (t1 - t0):8.0f} calls/s  ({(t1 - t0) / n * 1e6:.1f} µs per call, cached certificate)",
          file=out)
    print(f"verify_many(): {n / (t2 - t1):8.0f} calls/s  ({verifier.threads} threads)", file=out)
    if wrong:
        print(f"\n{wrong} call(s) did not get the expected result", file=out)
        return 1
    print("\nevery call got the expected verdict", file=out)
    return 0


def _label(code) -> str:
    return "pass" if code is None else f"{code} {REASONS.get(code, '')}"
