"""manverify.serve.protocol and the App's first checks, in process (tests/servehelp.py's
InProcess): every connection keeps a timer, answers go out in the order the requests came, and
every refusal is JSON that tells a caller without a key nothing. tests/test_serve.py checks the
same over real sockets."""
import gc
import json
import logging

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from manverify.serve import app as appmod  # noqa: E402
from manverify.serve import lab as labmod  # noqa: E402
from manverify.serve import protocol, settings  # noqa: E402

from .servehelp import InProcess, answers, armed  # noqa: E402

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def here(tmp_path_factory):
    here = InProcess(tmp_path_factory.mktemp("protocol"))
    yield here
    here.close()


def exchange(here, *pieces, state=None):
    """Feed each piece to a fresh connection, running the ASGI tasks after each."""
    protocol, transport, state = here.connect(state)
    for piece in pieces:
        protocol.data_received(piece)
        here.finish(state)
    return protocol, transport


# ---------------------------------------------------------------------- item 1: timers
@pytest.mark.parametrize("first", ["get", "inline post"])
def test_bytes_skipped_between_requests_leave_a_timer(here, first):
    request = HEALTH if first == "get" else here.post(here.verification())
    protocol, transport = exchange(here, request, b"\r\n")
    assert [s for s, _ in answers(transport.sent)] == [200] and not transport.closed
    assert armed(protocol), "a connection without a timer stays open for ever"
    protocol, transport = exchange(here, request + b"\r\n\r\n")  # in the same read
    assert armed(protocol)
    protocol.connection_lost(None)


@pytest.mark.parametrize("head", [
    b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",  # no key: 401
    b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %(key)s\r\n",  # 404
    b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %(key)s\r\n"
    b"Content-Type: application/json\r\nContent-Length: 99999\r\n",  # 413 from the head
], ids=["401", "404", "413"])
def test_an_early_refusal_with_its_body_unread_closes_lingering(here, head):
    head = head % {b"key": here.key}
    if b"Content-Length" not in head:
        head += b"Content-Length: 1000\r\n"
    protocol, transport = exchange(here, head + b"\r\n" + b"{" * 10)
    status = answers(transport.sent)[0][0]
    assert status in (401, 404, 413)
    # the answer, then the write side shut (the client reads it), then whatever comes is dropped
    # until the client closes or a short time is up: some timer stays armed
    assert transport.eof and armed(protocol) == ["_linger_timer"]
    sent = transport.sent
    protocol.data_received(b"{" * 100)
    assert transport.sent == sent and armed(protocol)
    protocol.connection_lost(None)


def test_a_connection_that_never_sends_has_its_head_timer(here):
    protocol, transport, _ = here.connect()
    assert armed(protocol) == ["_head_timer"]
    protocol._too_slow()
    assert answers(transport.sent)[0][0] == 408 and transport.eof


# ---------------------------------------------------------------------- item 15: order
@pytest.mark.parametrize("second, status", [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"j" * 9000 + b"\r\n\r\n", 431),
    (b"GARBAGE\r\n\r\n", 400),
], ids=["431", "400"])
def test_a_refusal_comes_after_the_answers_already_due(here, second, status):
    protocol, transport = exchange(here, HEALTH + HEALTH + second)
    assert [s for s, _ in answers(transport.sent)] == [200, 200, status]
    assert transport.eof


# ---------------------------------------------------------------------- item 11: JSON errors
def test_every_refusal_is_json(here):
    for request, status in ((b"GARBAGE\r\n\r\n", 400), (HEALTH.replace(b"\r\n\r\n", b"\r\nX: " + b"j" * 9000), 431)):
        _, transport = exchange(here, request)
        head = transport.sent.partition(b"\r\n\r\n")[0].lower()
        assert b"content-type: application/json" in head and b"connection: close" in head
        assert answers(transport.sent)[0][0] == status and "error" in answers(transport.sent)[0][1]


def test_beyond_the_connection_limit_is_a_json_503(tmp_path):
    busy = InProcess(tmp_path, limit_concurrency=1)
    try:
        first, _, state = busy.connect()
        protocol, transport, _ = busy.connect(state)
        protocol.data_received(HEALTH)
        busy.finish(state)
        [(status, body)] = answers(transport.sent)
        assert status == 503 and "error" in body and b"application/json" in transport.sent.lower()
        first.connection_lost(None)
    finally:
        busy.close()


def test_one_413_whichever_path(here):
    limit = here.app.setup.server.limits["body"]
    chunk = b"x" * 10000
    inline = here.post(b"", extra=b"Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
    _, t1 = exchange(here, inline + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2)
    _, t2 = exchange(here, here.post(b"x" * (limit + 1)))
    (s1, b1), (s2, b2) = answers(t1.sent)[0], answers(t2.sent)[0]
    assert s1 == s2 == 413 and b1 == b2 and str(limit) in b1["error"]
    assert t1.sent.split(b"\r\n")[0] == t2.sent.split(b"\r\n")[0]


def test_chunk_extensions_count_against_the_head_limit(here):
    request = here.post(b"", extra=b"Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
    protocol, transport = exchange(here, request, b"2;" + b"e" * 5000, b"e" * 5000)
    assert answers(transport.sent)[0][0] == 431


def test_a_head_that_never_ends_is_431_before_it_is_all_in(here):
    """httptools hands a header over once it ends: one that never does must be refused by size."""
    protocol, transport = exchange(here, HEALTH[:-2] + b"X-Junk: ", *[b"j" * 3000] * 4)
    assert answers(transport.sent)[0][0] == 431


def test_a_caller_without_a_key_learns_nothing_about_the_configuration(tmp_path):
    nosigner = InProcess(tmp_path, edit=lambda c: c.pop("signer"))
    try:
        for path in (b"/stir/v1/signing", b"/nowhere", b"/stir/v1/verification"):
            _, transport = exchange(nosigner, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            [(status, body)] = answers(transport.sent)
            assert status == 401 and "signer" not in body["error"]
        _, transport = exchange(nosigner, b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answers(transport.sent)[0][0] == 401
        _, transport = exchange(nosigner, nosigner.post(b"{}", b"/stir/v1/signing"))
        [(status, body)] = answers(transport.sent)
        assert status == 404 and "no signer" in body["error"]  # a caller with a key may know
        _, transport = exchange(nosigner, HEALTH, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [s for s, _ in answers(transport.sent)] == [200, 200]  # probes need no key
    finally:
        nosigner.close()


def test_an_open_lab_server_says_so_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="manverify.serve"):
        settings.parse_server({"lab": True})
    assert "NO AUTHENTICATION" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="manverify.serve"):
        settings.parse_server({"lab": True, "api_keys": ["k" * 20]})
    assert caplog.text == ""


def test_the_tls_context_used_is_server_context(tmp_path, monkeypatch):
    """uvicorn's own context has no TLS 1.2 floor: the service must hand it server_context()."""
    import ssl

    import uvicorn

    from manverify import pki
    from manverify import serve

    lab_pki = pki.lab_pki(spc="1001", x5u="https://x.invalid/a.pem")
    (tmp_path / "tls.pem").write_bytes(lab_pki.chain_pem)
    (tmp_path / "tls.key").write_bytes(lab_pki.signer.key_pem)
    path = labmod.write(tmp_path, workers=1)
    config = json.loads(path.read_text())
    config["server"]["tls"] = {"cert": str(tmp_path / "tls.pem"), "key": str(tmp_path / "tls.key")}
    config["server"]["metrics_dir"] = str(tmp_path / "metrics")
    path.write_text(json.dumps(config))
    seen = {}
    for name in ("PROMETHEUS_MULTIPROC_DIR", appmod.CONFIG_ENV, protocol.HEADER_TIME_ENV, protocol.HEADER_BYTES_ENV,
                 protocol.REQUEST_TIME_ENV):
        monkeypatch.setenv(name, "")  # serve.run sets them: restored after the test
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    import signal
    old = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM)
    try:
        serve.run(str(path))
    finally:
        signal.signal(signal.SIGHUP, old[0])
        signal.signal(signal.SIGTERM, old[1])
    factory = seen["ssl_context_factory"]
    ctx = factory(uvicorn.Config(app=None, ssl_certfile=str(tmp_path / "tls.pem"),
                                 ssl_keyfile=str(tmp_path / "tls.key")), None)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


# ---------------------------------------------------------------------- item 6, item 9
def test_a_reload_keeps_the_old_verifiers_counts(tmp_path):
    from manverify import metrics

    metrics.register()

    def total():
        return sum(s.value for m in metrics._metrics.verifications.collect() for s in m.samples
                   if s.name.endswith("_total"))

    here = InProcess(tmp_path)
    try:
        metrics.flush()
        before = total()
        old = here.app.setup
        identity = here.signer.sign("+33612345678", "0198765432")
        for _ in range(7):
            old.verifier.verify(identity, orig="+33612345678", dest="0198765432")
        here.app._use(settings.build(old.config))  # as a reload does, when a trust file changed
        del old
        gc.collect()
        metrics.flush()
        assert total() - before == 7
    finally:
        here.close()


def test_not_ready_when_no_local_copy_is_usable_and_fetching_is_off(tmp_path):
    def unreadable(directory):
        (directory / "certs" / "op1001.pem").write_bytes(b"not a certificate")

    here = InProcess(tmp_path, prepare=unreadable)
    try:
        _, transport = exchange(here, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        [(status, body)] = answers(transport.sent)
        assert status == 503 and "local copy" in body["error"]
    finally:
        here.close()


def test_a_503_comes_after_the_answer_before_it(tmp_path):
    busy = InProcess(tmp_path, limit_concurrency=2)
    try:
        protocol, transport, state = busy.connect()
        protocol.data_received(HEALTH)  # its task is made, not yet run
        other, _, _ = busy.connect(state)  # now the limit is reached
        protocol.data_received(HEALTH)
        busy.finish(state)
        assert [s for s, _ in answers(transport.sent)] == [200, 503]
        other.connection_lost(None)
    finally:
        busy.close()


def test_a_refusal_within_an_asgi_body_answers_that_request(here):
    """Its application waits for the body: the refusal must not wait for that answer."""
    request = here.post(b"", extra=b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n").replace(
        b"Content-Length: 0\r\n", b"")
    protocol, transport, state = here.connect()
    protocol.data_received(request)
    protocol.data_received(b"2;" + b"e" * 9000)
    assert answers(transport.sent)[-1][0] == 431 and transport.eof
    protocol.connection_lost(None)
    here.finish(state)
