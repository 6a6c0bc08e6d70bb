"""End to end: SIPp → Kamailio (+ manverify KEMI, or + the secsipid module) → SIPp UAS, all on
127.0.0.1, every process started here and stopped by PID.

Calls are signed by secsipidx (an independent Go signer) and by our Signer right before each run
(the MAN window is 60 s); certificates are served over http from a loopback server in this process
(manverify runs with allow_http, the lab mode). Assertions are on every call's final response code
at the caller, and on what reached the callee (verstat on P-Asserted-Identity, Reason).
"""
from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

from manverify import pki
from manverify.demo import serve
from manverify.signer import Signer

from . import stack

pytestmark = pytest.mark.e2e

_MISSING = stack.missing_tools()
if _MISSING:
    pytest.skip(f"end-to-end SIP tests need {', '.join(_MISSING)} (apt-get install; .ci/run does)",
                allow_module_level=True)

ORIG, DEST = "+33612345678", "+33198765432"


class Case(NamedTuple):
    name: str
    ours: int  # final code through Kamailio + manverify (terminating)
    peer: int  # final code through Kamailio + secsipid
    shared: bool  # both verifiers are expected to agree (accept/reject) on it


CASES = [
    Case("valid-ours", 200, 200, True),
    Case("valid-secsipidx", 200, 200, True),
    Case("valid-secsipidx-b", 200, 200, True),
    Case("stale", 403, 438, True),
    Case("tampered", 438, 438, True),
    Case("missing", 428, 428, True),
    Case("bad-x5u", 436, 438, True),
    # Checks secsipid does not make: the call's numbers and the certificate chain.
    Case("wrong-number", 438, 200, False),
    Case("untrusted", 437, 200, False),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sip")


@pytest.fixture(scope="module")
def venv(work) -> Path:
    return stack.build_venv(work / "venv")


@pytest.fixture(scope="module")
def lab(work):
    lab = pki.lab_pki(spc="1001")
    rogue = pki.lab_pki(spc="6666")  # a chain from a root nobody trusts
    (work / "root.pem").write_bytes(lab.root.pem)
    (work / "key.pem").write_bytes(lab.signer.key_pem)
    (work / "rogue-key.pem").write_bytes(rogue.signer.key_pem)
    files: Dict[str, bytes] = {"/op1001.pem": lab.chain_pem, "/rogue.pem": rogue.chain_pem}
    with serve(files) as base:  # lab x5u server; the mapping is read per request
        yield {"lab": lab, "rogue": rogue, "base": base}


def _flip(token: str) -> str:
    h, c, s = token.split(".")
    return f"{h}.{c}.{s[:20]}{'A' if s[20] != 'A' else 'B'}{s[21:]}"


def make_rows(work: Path, lab) -> List[List[str]]:
    """One CSV row per case, signed now: case;header;token;x5u;orig;dest;date."""
    base = lab["base"]
    good, rogue_url, missing_url = f"{base}/op1001.pem", f"{base}/rogue.pem", f"{base}/missing.pem"
    now = int(time.time())
    ours = Signer(lab["lab"].signer.key_pem, good)
    key, rogue_key = work / "key.pem", work / "rogue-key.pem"
    o, d = ORIG[1:], DEST[1:]
    tok = {
        "valid-ours": (ours.passport(ORIG, DEST), good),
        "valid-secsipidx": (stack.secsipidx_token(key, o, d, good, now), good),
        "valid-secsipidx-b": (stack.secsipidx_token(key, o, d, good, now, attest="B"), good),
        "stale": (stack.secsipidx_token(key, o, d, good, now - 120), good),
        "tampered": (_flip(ours.passport(ORIG, DEST)), good),
        "missing": ("", good),
        "bad-x5u": (stack.secsipidx_token(key, o, d, missing_url, now), missing_url),
        "wrong-number": (stack.secsipidx_token(key, "33699999999", d, good, now), good),
        "untrusted": (stack.secsipidx_token(rogue_key, o, d, rogue_url, now), rogue_url),
    }
    date = stack.sip_date()
    rows = []
    for case in CASES:
        token, x5u = tok[case.name]
        header = "X-No-Identity" if case.name == "missing" else "Identity"
        rows.append([case.name, header, token or "none", x5u, ORIG, DEST, date])
    return rows


def _run_calls(work: Path, lab, port: int, name: str) -> Dict[str, List[int]]:
    csv = stack.write_csv(work / f"{name}.csv", make_rows(work, lab))
    stack.run_uac(work, port, csv, calls=len(CASES), rate=30, timeout=20, name=name)
    return stack.uac_codes(work, name)


def _manverify(work, venv, lab, policy: dict, name: str, cfg: str = "kamailio.cfg"):
    k_port, uas_port = stack.free_udp_port(), stack.free_udp_port()
    config = stack.write_manverify_config(
        work / f"{name}.json", venv=venv, root_pem=work / "root.pem", cache_dir=work / f"{name}-cache",
        next_hop=f"sip:127.0.0.1:{uas_port}", policy=policy)
    env = dict(stack.python_env(), MANVERIFY_KAMAILIO_CONFIG=str(config))
    defines = {"KEMI_SCRIPT": f'"{stack.EXAMPLES / "manverify_kemi.py"}"', "WORKERS": "2",
               "NEXT_HOP": f'"sip:127.0.0.1:{uas_port}"'}
    uas = stack.SippUAS(work, uas_port, name=f"{name}-uas")
    kam = stack.Kamailio(work, stack.EXAMPLES / cfg, k_port, defines, env=env, name=name)
    return uas, kam


def _explain(kam: stack.Kamailio, uas: stack.SippUAS, codes) -> str:
    return f"codes={codes}\nuas={uas.received()}\n--- kamailio log tail ---\n{kam.log_text()[-4000:]}"


def test_manverify_terminating(work, venv, lab):
    """Kamailio + manverify, terminating role: every call gets the MAN code; only the verified
    calls reach the callee, with verstat=TN-Validation-Passed on P-Asserted-Identity."""
    uas, kam = _manverify(work, venv, lab, {"role": "terminating"}, "mv-term")
    with uas, kam:
        codes = _run_calls(work, lab, kam.port, "mv-term")
        bad_input = _bad_input_calls(kam.port, lab)
        time.sleep(0.3)
        received = uas.received()
        why = _explain(kam, uas, codes)
    assert {c.name: [c.ours] for c in CASES} == codes, why
    passed = {c.name for c in CASES if c.ours == 200}
    assert {k for k in received if k in {c.name for c in CASES}} == passed, why
    for case in passed:
        (pai, reason, privacy), = received[case]
        assert "verstat=TN-Validation-Passed" in pai, why
        assert reason in ("", "[$reason]"), why
    for label, (got, want) in bad_input.items():
        assert got == want, f"{label}: got {got}, expected {want}\n{why}"
    assert "Traceback" not in kam.log_text() and "internal error" not in kam.log_text(), why


def test_manverify_native_routing(work, venv, lab):
    """kamailio-native.cfg: native routing, Python only for initial INVITEs (python_exec)."""
    uas, kam = _manverify(work, venv, lab, {"role": "terminating"}, "mv-native", cfg="kamailio-native.cfg")
    with uas, kam:
        codes = _run_calls(work, lab, kam.port, "mv-native")
        time.sleep(0.3)
        received = uas.received()
        why = _explain(kam, uas, codes)
    assert {c.name: [c.ours] for c in CASES} == codes, why
    for c in CASES:
        if c.ours == 200:
            assert "verstat=TN-Validation-Passed" in received[c.name][0][0], why


def test_manverify_monitoring(work, venv, lab):
    """Monitoring role: no call is rejected; each is delivered with its verstat and, when it
    failed, a Reason header naming the code the terminating role would have answered."""
    uas, kam = _manverify(work, venv, lab, {"role": "monitoring"}, "mv-mon")
    with uas, kam:
        codes = _run_calls(work, lab, kam.port, "mv-mon")
        time.sleep(0.3)
        received = uas.received()
        why = _explain(kam, uas, codes)
    assert codes == {c.name: [200] for c in CASES}, why
    for c in CASES:
        (pai, reason, _), = received[c.name]
        if c.ours == 200:
            assert "verstat=TN-Validation-Passed" in pai, why
        elif c.ours == 428:
            assert "verstat=No-TN-Validation" in pai and "cause=428" in reason, why
        else:
            assert "verstat=TN-Validation-Failed" in pai and f"cause={c.ours}" in reason, why


def test_secsipid_module_agrees_on_shared_cases(work, lab):
    """The same calls through Kamailio's own secsipid module: both verifiers accept and reject
    the shared cases alike; the cases only manverify rejects are documented here."""
    k_port, uas_port = stack.free_udp_port(), stack.free_udp_port()
    cache = work / "secsipid-cache"
    cache.mkdir(exist_ok=True)
    defines = {"NEXT_HOP": f'"sip:127.0.0.1:{uas_port}"', "CACHE_DIR": f'"{cache}"', "WORKERS": "2"}
    with stack.SippUAS(work, uas_port, name="peer-uas") as uas, \
            stack.Kamailio(work, stack.EXAMPLES / "secsipid.cfg", k_port, defines, name="peer") as kam:
        codes = _run_calls(work, lab, kam.port, "peer")
        why = _explain(kam, uas, codes)
    assert codes == {c.name: [c.peer] for c in CASES}, why
    for c in CASES:
        if c.shared:
            assert (c.ours == 200) == (c.peer == 200), c.name


# ---------------------------------------------------------------------- hostile requests over UDP
def _invite(port: int, headers: List[bytes], branch: str) -> bytes:
    head = [
        f"INVITE sip:{DEST}@127.0.0.1:{port};user=phone SIP/2.0".encode(),
        f"Via: SIP/2.0/UDP 127.0.0.1:{{lport}};branch=z9hG4bK{branch}".encode(),
        f"To: <sip:{DEST}@127.0.0.1;user=phone>".encode(),
        f"Call-ID: {branch}@e2e".encode(),
        b"CSeq: 1 INVITE",
        b"Max-Forwards: 70",
        b"X-Case: raw",
        b"Content-Length: 0",
    ]
    return b"\r\n".join(head + headers) + b"\r\n\r\n"


def _send(port: int, headers: List[bytes], branch: str, timeout: float = 5.0) -> Optional[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        msg = _invite(port, headers, branch).replace(b"{lport}", str(s.getsockname()[1]).encode())
        deadline = time.monotonic() + timeout
        s.sendto(msg, ("127.0.0.1", port))
        while time.monotonic() < deadline:
            try:
                data = s.recv(65535)
            except socket.timeout:
                continue
            code = int(data.split(b" ", 2)[1])
            if code >= 200:
                if code >= 300:  # hop-by-hop ACK for the final answer
                    to = next(line for line in data.split(b"\r\n") if line.lower().startswith(b"to:"))
                    ack = msg.replace(b"INVITE sip", b"ACK sip", 1).replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK")
                    ack = ack.replace(f"To: <sip:{DEST}@127.0.0.1;user=phone>".encode(), to)
                    s.sendto(ack, ("127.0.0.1", port))
                return code
    return None


def _bad_input_calls(port: int, lab) -> Dict[str, tuple]:
    """Requests SIPp cannot shape: several/folded/compact/binary/oversized Identity headers,
    missing or anonymous callers. {label: (got, expected)}."""
    base = lab["base"]
    signer = Signer(lab["lab"].signer.key_pem, f"{base}/op1001.pem")
    good = signer.sign(ORIG, DEST)
    token, params = good.split(";", 1)
    frm = f"From: <sip:{ORIG}@127.0.0.1;user=phone>;tag=raw".encode()
    pai = f"P-Asserted-Identity: <sip:{ORIG}@127.0.0.1;user=phone>".encode()
    cases = {
        "garbage then good, folded": ([frm, pai, b"Identity: not-a-token;info=<x>",
                                      f"Identity: {token};\r\n  {params}".encode()], 200),
        "compact y:": ([frm, pai, f"y: {good}".encode()], 200),
        "same header twice": ([frm, pai, f"Identity: {good}".encode(), f"Identity: {good}".encode()], 200),
        "binary": ([frm, pai, b"Identity: \xff\xfe\x00\x01;info=<http://127.0.0.1/x>"], 438),
        "oversized": ([frm, pai, b"Identity: " + b"A" * 9000 + b".B.C;info=<http://127.0.0.1/x>;alg=ES256;ppt=shaken"],
                      438),
        "anonymous, no PAI": ([b"From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=raw",
                               f"Identity: {good}".encode()], 400),
        "anonymous From, PAI": ([b"From: <sip:anonymous@anonymous.invalid>;tag=raw", pai,
                                 f"Identity: {good}".encode()], 200),
        # (A request without From never reaches the script: Kamailio's core drops it.)
        "From without a number": ([b"From: <sip:alice@example.org>;tag=raw", f"Identity: {good}".encode()], 400),
        "no Identity, anonymous": ([b"From: <sip:anonymous@anonymous.invalid>;tag=raw"], 428),
    }
    out = {}
    for i, (label, (headers, want)) in enumerate(cases.items()):
        got = _send(port, headers, f"raw{i}{int(time.time() * 1000)}")
        out[label] = (got, want)
    return out


def test_workers_reload_without_a_restart_and_export_their_counters(work, venv, lab, tmp_path):
    """The JSON changes under a running Kamailio: each worker applies it on its next INVITE (at
    most a second later); a broken file keeps the configuration in use and the reason reaches
    Kamailio's log through KSR. Meanwhile every worker writes its counters to the
    multiprocess directory, whose sum is every INVITE sent."""
    import json
    import os
    import subprocess

    multiprocess = pytest.importorskip("prometheus_client.multiprocess",
                                       reason="prometheus_client (extra manverify[metrics]) is not installed")
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                          "prometheus_client>=0.17"], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    uas, kam = _manverify(work, venv, lab, {"role": "terminating"}, "mv-reload")
    path = work / "mv-reload.json"
    mpdir = tmp_path / "metrics"
    mpdir.mkdir()
    kam.env["PROMETHEUS_MULTIPROC_DIR"] = str(mpdir)

    def rewrite(data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def exported() -> float:
        return sum(s.value for m in multiprocess.MultiProcessCollector(None, path=str(mpdir)).collect()
                   for s in m.samples if s.name == "manverify_verifications_total")

    config = dict(json.loads(path.read_text()), metrics=True)
    rewrite(json.dumps(config).encode())
    with uas, kam:
        before = _run_calls(work, lab, kam.port, "mv-reload-1")
        rewrite(json.dumps(dict(config, policy={"role": "monitoring"})).encode())
        time.sleep(1.2)
        after = _run_calls(work, lab, kam.port, "mv-reload-2")
        rewrite(b'{"trust_anchors": [')  # caught half-written
        time.sleep(1.2)
        kept = _run_calls(work, lab, kam.port, "mv-reload-3")
        # A worker writes its counts at its first INVITE a second or more after its last write:
        # one more INVITE a second until both workers have written everything before them.
        extra, deadline = 0, time.monotonic() + 20
        while exported() < 3 * len(CASES) and time.monotonic() < deadline:
            time.sleep(1.1)
            _send(kam.port, [f"From: <sip:{ORIG}@127.0.0.1;user=phone>;tag=raw".encode()],
                  f"flush{extra}{int(time.time() * 1000)}")
            extra += 1
        counted = exported()
        why = _explain(kam, uas, (before, after, kept))
        log = kam.log_text()
    assert before == {c.name: [c.ours] for c in CASES}, why
    assert after == kept == {c.name: [200] for c in CASES}, why
    assert "manverify: manverify configuration" in log and "cannot be used" in log, why
    assert "Traceback" not in log, why
    assert 3 * len(CASES) <= counted <= 3 * len(CASES) + extra, (counted, extra, why)
