"""`manverify serve` over real HTTP: both dialects, signing → verification, every error class,
callers' keys, request limits, slow clients, health. One service (2 workers) for the module."""
import json
import socket
import threading
import time

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve]) is not installed")

from .servehelp import DEST, ORIG, Service, raw_exchange  # noqa: E402

VERIFY, SIGN = "/stir/v1/verification", "/stir/v1/signing"
SECOND_KEY = "rotated-key-0123456789abcdef"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    def edit(config):
        config["server"]["api_keys"].append(SECOND_KEY)
        config["server"]["limits"] = {"header_time": 1, "request_time": 1, "body": 4096}

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
