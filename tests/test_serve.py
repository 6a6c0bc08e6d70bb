"""`manverify serve` over real HTTP: both dialects, signing → verification, every error class,
callers' keys, request limits, slow clients, health. One service (2 workers) for the module."""
import json
import socket
import threading
import time

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from .servehelp import DEST, ORIG, Service, raw_exchange  # noqa: E402

VERIFY, SIGN = "/stir/v1/verification", "/stir/v1/signing"
SECOND_KEY = "rotated-key-0123456789abcdef"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    def edit(config):
        config["server"]["api_keys"].append(SECOND_KEY)
        config["server"]["limits"] = {"header_time": 1, "request_time": 1, "body": 4096, "keep_alive": 2}

    with Service(tmp_path_factory.mktemp("serve"), edit) as s:
        yield s


# ---------------------------------------------------------------------- ATIS-1000082
def test_atis_verification_passes_with_verstat_and_decision(service):
    status, body = service.verify_atis(service.signer.sign(ORIG, DEST, attest="B"))
    assert status == 200
    assert body == {"verificationResponse": {
        "verstat": "TN-Validation-Passed", "attest": "B",
        "decision": {"action": "continue", "rule": "verified", "verstat": "TN-Validation-Passed", "mask": False}}}


def test_atis_forged_call_is_a_200_with_438(service):
    forged = service.signer.sign(ORIG, "0198765499")  # signed for another called number
    status, body = service.verify_atis(forged)
    assert status == 200
    r = body["verificationResponse"]
    assert (r["verstat"], r["reasoncode"], r["reasontext"]) == ("TN-Validation-Failed", 438, "Invalid Identity Header")
    assert r["decision"] == {"action": "reject", "rule": "failed", "code": 438, "reason": "Invalid Identity Header"}


def test_atis_call_without_identity_is_428(service):
    status, body = service.verify_atis(None)
    r = body["verificationResponse"]
    assert status == 200 and (r["verstat"], r["reasoncode"]) == ("No-TN-Validation", 428)


def test_atis_time_is_the_date_header(service):
    good = service.signer.sign(ORIG, DEST)
    body = {"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]}, "identity": good,
                                    "time": int(time.time()) - 3600}}
    status, out = service.request("POST", VERIFY, body)
    assert status == 200 and out["verificationResponse"]["reasoncode"] == 403


def test_atis_signing_round_trip(service):
    status, body = service.request("POST", SIGN, {"signingRequest": {
        "attest": "A", "orig": {"tn": ORIG}, "dest": {"tn": [DEST]}, "iat": int(time.time()),
        "origid": "123e4567-e89b-12d3-a456-426655440000"}})
    assert status == 200
    identity = body["signingResponse"]["identity"]
    assert identity.endswith(";info=<https://certs.lab.invalid/op1001.pem>;alg=ES256;ppt=shaken")
    assert service.verify_atis(identity)[1]["verificationResponse"]["verstat"] == "TN-Validation-Passed"


# ---------------------------------------------------------------------- 3GPP Ms
def test_ms_signing_and_verification(service):
    status, body = service.request("POST", SIGN, {"attest": "C", "orig": {"tn": "12155551211"},
                                                  "dest": [{"tn": ["12155551212"]}]})
    assert status == 200 and set(body) == {"identityHeader"}
    call = {"identityHeader": body["identityHeader"], "from": "sip:+12155551211@example.com;user=phone",
            "to": "tel:+12155551212"}
    status, out = service.request("POST", VERIFY, {"verificationRequest": call})
    r = out["verificationResponse"]
    assert status == 200 and r["verstatValue"] == "TN-Validation-Passed"
    assert r["verifyResults"] == [{"ppt": "shaken", "status": "pass"}]
    # the same token presented for another called number: the header fails with the call's code
    call.update(to="sip:anonymous@example.com", dest="tel:+12155550000")
    r = service.request("POST", VERIFY, {"verificationRequest": call})[1]["verificationResponse"]
    assert r["verstatValue"] == "TN-Validation-Failed"
    assert r["verifyResults"] == [{"ppt": "shaken", "status": "fail", "reasonCode": 438,
                                   "reasonText": "Invalid Identity Header"}]


def test_ms_several_identity_headers(service):
    good = service.signer.sign(ORIG, DEST)
    call = {"identityHeaders": ["garbage;info=<https://x.invalid/a.pem>", good], "from": ORIG, "to": DEST}
    r = service.request("POST", VERIFY, {"verificationRequest": call})[1]["verificationResponse"]
    assert r["verstatValue"] == "TN-Validation-Passed"
    assert [v["status"] for v in r["verifyResults"]] == ["fail", "pass"]
    assert r["verifyResults"][0]["reasonCode"] == 438


# ---------------------------------------------------------------------- request errors
@pytest.mark.parametrize("body, message", [
    (b"{not json", "failed to parse"),
    (b"", "missing request body"),
    ({"verificationRequest": {"to": {"tn": [DEST]}, "identity": "x"}}, "missing mandatory parameter: from"),
    ({"verificationRequest": {"from": {"tn": 33612345678}, "to": {"tn": [DEST]}}}, "from.tn must be"),
    ({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": []}}}, "at least one number"),
    ({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]}, "time": "yesterday"}}, "time must be"),
    ({"nothing": 1}, "missing mandatory parameter: verificationRequest"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_verification_requests_are_400(service, body, message):
    status, out = service.request("POST", VERIFY, body)
    assert status == 400 and message in out["error"], out


@pytest.mark.parametrize("claims, message", [
    ({"attest": "D", "orig": {"tn": ORIG}, "dest": {"tn": [DEST]}}, "attest must be"),
    ({"attest": "A", "orig": {"tn": "not-a-number"}, "dest": {"tn": [DEST]}}, "not a telephone number"),
    ({"attest": "A", "orig": {"tn": ORIG}, "dest": {"tn": [DEST]}, "iat": "now"}, "iat must be"),
    ({"attest": "A", "dest": {"tn": [DEST]}}, "missing mandatory parameter: orig"),
])
def test_bad_signing_requests_are_400(service, claims, message):
    status, out = service.request("POST", SIGN, {"signingRequest": claims})
    assert status == 400 and message in out["error"], out


@pytest.mark.parametrize("iat", [int(time.time()) + 365 * 86400, int(time.time()) - 3600, 0, 2 ** 63 - 1,
                                 2 ** 64 - 1], ids=["a year ahead", "an hour ago", "0", "2^63-1", "2^64-1"])
def test_signing_refuses_an_iat_outside_the_freshness_window(service, iat):
    """A caller must not mint tokens that become fresh later: the Signer's window, in both dialects."""
    claims = {"attest": "A", "orig": {"tn": ORIG}, "dest": {"tn": [DEST]}, "iat": iat}
    for body in ({"signingRequest": claims}, dict(claims, dest=[{"tn": [DEST]}])):
        status, out = service.request("POST", SIGN, body)
        assert status == 400 and "freshness window" in out["error"], out
    status, out = service.request("POST", SIGN, {"signingRequest": dict(claims, iat=int(time.time()))})
    assert status == 200


def test_http_error_classes(service):
    assert service.request("GET", "/nowhere")[0] == 404
    status, out = service.request("GET", VERIFY)
    assert status == 405 and "POST" in out["error"]
    status, out = service.request("POST", VERIFY, b"{}", headers={"Content-Type": "text/plain"})
    assert status == 415
    reply = raw_exchange(service.port, b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + service.keys[0].encode() + b"\r\nContent-Type: application/json\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411 ")


def test_oversized_body_is_413_and_the_service_goes_on(service):
    big = {"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]}, "identity": "a" * 5000}}
    status, out = service.request("POST", VERIFY, big)
    assert status == 413 and "4096" in out["error"]
    # announced small, sent chunked and large: cut off at the limit all the same
    chunk = b"x" * 3000
    reply = raw_exchange(service.port, b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + service.keys[0].encode() + b"\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert service.verify_atis(service.signer.sign(ORIG, DEST))[0] == 200


def test_oversized_headers_are_431(service):
    status, _ = service.request("GET", "/healthz", headers={"X-Junk": "j" * 9000}, auth=False)
    assert status == 431


# ---------------------------------------------------------------------- callers
def test_api_keys(service):
    good = service.signer.sign(ORIG, DEST)
    assert service.verify_atis(good, auth=False)[0] == 401
    status, out = service.verify_atis(good, auth="x" * 30)
    assert status == 401 and "API key" in out["error"]
    assert service.verify_atis(good, auth=SECOND_KEY)[0] == 200  # the rotated-in key
    assert service.verify_atis(good, headers={"Authorization": f"Basic {service.keys[0]}"})[0] == 401
    # no key, no work: the body is not even read
    assert service.request("POST", SIGN, {"signingRequest": {}}, auth=False)[0] == 401


def test_health_and_readiness(service):
    assert service.request("GET", "/healthz", auth=False) == (200, {"status": "alive"})
    assert service.request("GET", "/readyz", auth=False) == (200, {"status": "ready", "local_copy": 1})


# ---------------------------------------------------------------------- slow and hostile clients
def test_slow_clients_do_not_hold_the_service(service):
    """Slowloris: connections that send a request head a few bytes at a time, and one that sends
    its head but never its body. Meanwhile calls are answered at once; the slow ones are cut off
    (408) once their time is up."""
    head = (b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + service.keys[0].encode() + b"\r\n")
    slow = []
    for _ in range(20):  # more than one per worker
        s = socket.create_connection(("127.0.0.1", service.port), timeout=10)
        s.sendall(head[:20])
        slow.append(s)
    body_never = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    body_never.sendall(head + b"Content-Length: 100\r\n\r\n{")
    try:
        good = service.signer.sign(ORIG, DEST)
        for _ in range(10):
            t = time.monotonic()
            assert service.verify_atis(good)[0] == 200
            assert time.monotonic() - t < 0.5
        time.sleep(1.5)  # header_time and request_time are 1 s here
        for s in slow + [body_never]:
            s.settimeout(5)
            reply = s.recv(4096)
            assert reply.startswith(b"HTTP/1.1 408 "), reply
            assert s.recv(4096) == b""  # and closed
    finally:
        for s in slow + [body_never]:
            s.close()


def _closed_within(sock, seconds: float) -> bytes:
    """What the server sent until it closed the connection; AssertionError if it did not in time."""
    sock.settimeout(seconds)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except socket.timeout:
        raise AssertionError(f"still open after {seconds} s, having sent {out!r}") from None


@pytest.mark.parametrize("request_bytes", ["get", "inline"])
def test_bytes_between_requests_do_not_keep_a_connection_open(service, request_bytes):
    """A lone CRLF after an answer (which the parser skips) once cancelled the keep-alive timer
    and armed nothing: a few such connections held every slot of `connections` (issue 19)."""
    good = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                               "identity": service.signer.sign(ORIG, DEST)}}).encode()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" if request_bytes == "get" else _post_bytes(service, good)
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(request)
        assert _read(s, 1)[0][0].startswith(b"HTTP/1.1 200 ")
        s.sendall(b"\r\n")
        assert _closed_within(s, 6) == b""  # keep_alive is 2 s here


def test_an_early_refusal_is_read_then_closed(service):
    """A 401 given before the body is in: the client reads it, then the connection ends even
    though the client keeps sending body bytes (they are dropped, not parsed)."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{")
        time.sleep(0.2)
        s.sendall(b" " * 1000)  # more of the body, after the answer
        reply = _closed_within(s, 6)
    assert reply.startswith(b"HTTP/1.1 401 ") and _answers(reply)[0][1]["error"].startswith("missing or unknown")


def test_a_refusal_follows_the_answer_before_it(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nX: " + b"j" * 9000 + b"\r\n\r\n")
        reply = _closed_within(s, 6)
    assert [a[0].split(b" ")[1] for a in _answers(reply)] == [b"200", b"431"]


def test_many_concurrent_callers(service):
    good = service.signer.sign(ORIG, DEST)
    results = []

    def caller():
        conn = service.connection()
        for _ in range(20):
            results.append(service.verify_atis(good, conn=conn)[1]["verificationResponse"]["verstat"])
        conn.close()

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["TN-Validation-Passed"] * 160


def test_the_answer_is_json_with_a_length(service):
    reply = raw_exchange(service.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower() and json.loads(body) == {"status": "alive"}


# ---------------------------------------------------------------------- answered inline or the ASGI way
def _post_bytes(service, body: bytes, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (b"POST /stir/v1/verification HTTP/" + version + b"\r\nHost: x\r\nAuthorization: Bearer "
            + service.keys[0].encode() + b"\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def _answers(data: bytes) -> list:
    """The (status line, JSON body) of each response in a stream of them."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        out.append((head.split(b"\r\n")[0], json.loads(rest[:length])))
        data = rest[length:]
    return out


def _read(sock, count: int) -> list:
    data = b""
    while True:
        try:
            if len(_answers(data)) == count:
                return _answers(data)
        except (StopIteration, ValueError):
            pass  # a response still partial
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk


def test_inline_and_asgi_answers_are_the_same(service):
    """A verification goes inline; the same one with Expect: 100-continue goes the ASGI way."""
    good = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                               "identity": service.signer.sign(ORIG, DEST)}}).encode()
    forged = good.replace(ORIG.encode(), b"+33611111111")
    bad = b'{"verificationRequest": {"from": {}}}'
    for body in (good, forged, bad, b"{not json"):
        inline = _exchange(service, _post_bytes(service, body, b"Connection: close\r\n"))
        asgi = _exchange(service, _post_bytes(service, body, b"Connection: close\r\nExpect: 100-continue\r\n"))
        assert asgi.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        asgi = asgi[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        assert _answers(inline) == _answers(asgi) and len(_answers(inline)) == 1, (inline, asgi)
    assert inline.startswith(b"HTTP/1.1 400 ")


def _exchange(service, data: bytes) -> bytes:
    """Everything the server sends on a fresh connection until it closes it."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_pipelined_requests_are_answered_in_order(service):
    good = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                               "identity": service.signer.sign(ORIG, DEST)}}).encode()
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.sendall(_post_bytes(service, good) + health + _post_bytes(service, b"{}") + health + _post_bytes(service, good))
        answers = _read(s, 5)
    assert [a[0].split(b" ")[1] for a in answers] == [b"200", b"200", b"400", b"200", b"200"]
    assert answers[1][1] == answers[3][1] == {"status": "alive"}
    assert answers[0][1] == answers[4][1] and answers[0][1]["verificationResponse"]["verstat"] == "TN-Validation-Passed"


def test_a_request_in_pieces_and_kept_alive(service):
    """Head and body each split over several writes: answered once whole; the connection then
    serves the next request; HTTP/1.0 gets its answer and the connection closed."""
    good = json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]},
                                               "identity": service.signer.sign(ORIG, DEST)}}).encode()
    request = _post_bytes(service, good)
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for at in range(0, len(request), 97):
            s.sendall(request[at:at + 97])
            time.sleep(0.01)
        first = _read(s, 1)
        s.sendall(request)
        second = _read(s, 1)
    assert first == second and first[0][0].startswith(b"HTTP/1.1 200 ")
    reply = _exchange(service, _post_bytes(service, good, version=b"1.0"))
    assert b"connection: close" in reply.lower() and _answers(reply)[0][1] == first[0][1]


# ---------------------------------------------------------------------- one called-number rule
TO_NUMBER, RURI_NUMBER, OTHER = "+33198765432", "+33187654321", "+33100000000"


@pytest.mark.parametrize("signed_for, passes", [(TO_NUMBER, True), (RURI_NUMBER, True), (OTHER, False)],
                         ids=["To", "Request-URI", "neither"])
def test_the_called_number_rule_is_the_same_every_way_in(service, signed_for, passes):
    """A call whose To and Request-URI name different numbers: a token signed for either passes,
    one signed for neither fails, through sip.check (what Kamailio runs), the KEMI handler, and
    both HTTP dialects (checks.numbers_to_check decides for all of them)."""
    from manverify import sip
    from manverify.config import build_verifier
    from manverify.integrations.kamailio import KemiApp

    from .e2e.test_kemi_handler import FakeKSR

    token = service.signer.sign(ORIG, signed_for)
    invite = "\r\n".join([f"INVITE sip:{RURI_NUMBER}@127.0.0.1;user=phone SIP/2.0", f"From: <sip:{ORIG}@h>;tag=1",
                          f"To: <tel:{TO_NUMBER}>", f"Identity: {token}"]) + "\r\n\r\n"
    verifier = build_verifier(service.config)
    d = sip.check(invite, verifier)
    assert d.result.ok == passes and d.reject != passes, d.detail
    ksr = FakeKSR(invite)
    app = KemiApp({"trust_anchors": ["unused"]}, ksr=ksr, verifier_factory=lambda config: verifier)
    assert app.ksr_request_route(None) == 1
    assert ("sl.sl_send_reply" not in ksr.names()) == passes, ksr.calls
    ms = {"identityHeader": token, "from": ORIG, "to": f"tel:{TO_NUMBER}", "dest": f"sip:{RURI_NUMBER}@h;user=phone"}
    r = service.request("POST", VERIFY, {"verificationRequest": ms})[1]["verificationResponse"]
    assert (r["verstatValue"] == "TN-Validation-Passed") == passes, r
    atis = {"from": {"tn": ORIG}, "to": {"tn": [TO_NUMBER, RURI_NUMBER]}, "identity": token}
    r = service.request("POST", VERIFY, {"verificationRequest": atis})[1]["verificationResponse"]
    assert (r["verstat"] == "TN-Validation-Passed") == passes, r
