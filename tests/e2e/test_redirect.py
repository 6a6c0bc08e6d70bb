"""End to end: Kamailio as a redirect STI-VS (kamailio-redirect.cfg + manverify_kemi.py with
"mode": "redirect"), asked by SIPp as an SBC would, all on 127.0.0.1, every process started here
and stopped by PID. The calls are the relay tests' (test_kamailio.make_rows: signed by secsipidx
and by our Signer right before each run, certificates over http from a loopback server).

SIPp's regexp checks (scenarios/uac_redirect.xml) fail any 302 whose Contact lacks the escaped
P-Asserted-Identity URI header with verstat and the verstat parameter, and any rejection
without a Reason header; the test then compares each case's code and verstats."""
from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from manverify.signer import Signer

from . import stack
from .test_kamailio import CASES, DEST, ORIG, lab, make_rows, venv, work  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


def _redirect_server(work: Path, venv: Path, policy: dict, name: str) -> stack.Kamailio:
    config = stack.write_manverify_config(
        work / f"{name}.json", venv=venv, root_pem=work / "root.pem", cache_dir=work / f"{name}-cache",
        next_hop=None, policy=policy, mode="redirect")
    env = dict(stack.python_env(), MANVERIFY_KAMAILIO_CONFIG=str(config))
    defines = {"KEMI_SCRIPT": f'"{stack.EXAMPLES / "manverify_kemi.py"}"', "WORKERS": "2"}
    return stack.Kamailio(work, stack.EXAMPLES / "kamailio-redirect.cfg", stack.free_udp_port(), defines,
                          env=env, name=name)


def _ask(work: Path, lab, port: int, name: str) -> Dict[str, List[Tuple[str, ...]]]:
    """{case: [(code, checks...)]} from SIPp's log: 302 → verstat (in the Contact's PAI URI
    header, in the 302's PAI header field); a rejection → its Reason header's cause."""
    csv = stack.write_csv(work / f"{name}.csv", make_rows(work, lab))
    stack.run_uac(work, port, csv, calls=len(CASES), rate=30, timeout=20, name=name, scenario="uac_redirect.xml")
    out: Dict[str, List[Tuple[str, ...]]] = {}
    log = work / f"{name}-codes.log"
    for line in (log.read_text(errors="replace").splitlines() if log.exists() else ()):
        case, *rest = line.split()
        out.setdefault(case, []).append(tuple(rest))
    return out


def _explain(kam: stack.Kamailio, got, work: Path, name: str) -> str:
    errors = work / f"{name}-errors.log"
    return (f"got={got}\n--- sipp errors ---\n{errors.read_text(errors='replace')[-3000:] if errors.exists() else ''}"
            f"\n--- kamailio log tail ---\n{kam.log_text()[-4000:]}")


def test_terminating_redirect_server(work, venv, lab):  # noqa: F811
    """Verified calls: 302 with TN-Validation-Passed in both places; forged, stale, missing,
    untrusted...: the MAN code with a Reason header naming it. Then non-INVITE requests and
    hostile values over raw UDP."""
    with _redirect_server(work, venv, {"role": "terminating"}, "rd-term") as kam:
        got = _ask(work, lab, kam.port, "rd-term")
        raw = _raw_requests(kam.port, lab)
        why = _explain(kam, got, work, "rd-term")
        log = kam.log_text()
    passed = ("TN-Validation-Passed",) * 2
    want = {c.name: [("302", *passed) if c.ours == 200 else (str(c.ours), str(c.ours))] for c in CASES}
    assert got == want, why
    for label, (code, check) in raw.items():
        assert check, f"{label}: {code}\n{why}"
    assert "Traceback" not in log and "internal error" not in log, why


def test_monitoring_redirect_server(work, venv, lab):  # noqa: F811
    """Monitoring role: every call is redirected, failures with TN-Validation-Failed (No-TN-
    Validation without an Identity header) and a Reason URI header in the Contact."""
    with _redirect_server(work, venv, {"role": "monitoring"}, "rd-mon") as kam:
        got = _ask(work, lab, kam.port, "rd-mon")
        why = _explain(kam, got, work, "rd-mon")
    verstat = {200: "TN-Validation-Passed", 428: "No-TN-Validation"}
    assert got == {c.name: [("302",) + (verstat.get(c.ours, "TN-Validation-Failed"),) * 2] for c in CASES}, why


# ---------------------------------------------------------------------- raw requests over UDP
def _request(port: int, method: str, ruri: str, headers: List[str], to_tag: str = "") -> Optional[str]:
    """Send one request, return the final response's text (ACKing a non-2xx INVITE answer)."""
    call = uuid.uuid4().hex
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        via = f"Via: SIP/2.0/UDP 127.0.0.1:{s.getsockname()[1]};branch=z9hG4bK{call}"
        to = f"To: <sip:{DEST}@127.0.0.1;user=phone>" + (f";tag={to_tag}" if to_tag else "")
        common = [via, f"From: <sip:{ORIG}@127.0.0.1;user=phone>;tag=raw", to, f"Call-ID: {call}@e2e"]
        head = [f"{method} {ruri} SIP/2.0", *common, f"CSeq: 1 {method}", "Max-Forwards: 70", *headers,
                "Content-Length: 0"]
        s.sendto(("\r\n".join(head) + "\r\n\r\n").encode(), ("127.0.0.1", port))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                text = s.recv(65535).decode("latin-1")
            except socket.timeout:
                continue
            if int(text.split(" ", 2)[1]) < 200:
                continue
            if method == "INVITE":  # hop-by-hop ACK for the non-2xx final answer
                answer_to = next(line for line in text.split("\r\n") if line.lower().startswith("to:"))
                ack = [f"ACK {ruri} SIP/2.0", via, common[1], answer_to, common[3], "CSeq: 1 ACK",
                       "Max-Forwards: 70", "Content-Length: 0"]
                s.sendto(("\r\n".join(ack) + "\r\n\r\n").encode(), ("127.0.0.1", port))
            return text
    return None


def _lines(text: Optional[str], name: str) -> List[str]:
    return [line for line in (text or "").split("\r\n") if line.lower().startswith(name.lower() + ":")]


def _raw_requests(port: int, lab) -> Dict[str, Tuple[Optional[str], bool]]:  # noqa: F811
    """{label: (status line, whether the answer is right)}."""
    signer = Signer(lab["lab"].signer.key_pem, f"{lab['base']}/op1001.pem")
    ruri = f"sip:{DEST}@127.0.0.1:{port};user=phone"
    out: Dict[str, Tuple[Optional[str], bool]] = {}

    def status(text: Optional[str]) -> Optional[str]:
        return text.split("\r\n", 1)[0] if text else None

    options = _request(port, "OPTIONS", f"sip:127.0.0.1:{port}", [])
    out["OPTIONS keepalive"] = (status(options), status(options) == "SIP/2.0 200 OK"
                                and _lines(options, "Allow") == ["Allow: INVITE, ACK, CANCEL, OPTIONS"])
    for method, code in (("BYE", "405"), ("REGISTER", "405"), ("CANCEL", "481")):
        text = _request(port, method, ruri, [])
        out[f"{method} outside a dialog"] = (status(text), (status(text) or "").startswith(f"SIP/2.0 {code} "))
    text = _request(port, "BYE", ruri, [], to_tag="x1")
    out["BYE inside a dialog"] = (status(text), (status(text) or "").startswith("SIP/2.0 481 "))
    good = f"Identity: {signer.sign(ORIG, DEST)}"
    text = _request(port, "INVITE", f"tel:{DEST}", [good, f"P-Asserted-Identity: <sip:{ORIG}@127.0.0.1>"])
    out["tel: target"] = (status(text), status(text) == "SIP/2.0 416 Unsupported URI Scheme")
    # Values that would end the Contact's URI or add header fields if they were not escaped.
    hostile = f'P-Asserted-Identity: "x>&Evil=1" <sip:{ORIG}@127.0.0.1;user=phone?Route=%0D%0AEvil:1&Via=x>'
    text = _request(port, "INVITE", ruri, [good, hostile])
    contact = _lines(text, "Contact")
    out["hostile PAI"] = (status(text), status(text) == "SIP/2.0 302 Moved Temporarily" and len(contact) == 1
                          and contact[0].count("<") == contact[0].count(">") == 1 and "Evil=" not in contact[0]
                          and "%22x%3E%26Evil%3D1%22" in contact[0] and not _lines(text, "Evil")
                          and "verstat%3DTN-Validation-Passed" in contact[0]
                          and contact[0].startswith(f"Contact: <{ruri}?P-Asserted-Identity=%22x"))
    return out
