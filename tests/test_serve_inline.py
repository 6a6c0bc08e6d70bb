"""Which requests manverify.serve.protocol answers inline (from the parser's callbacks, no ASGI task)
and which go the ASGI way; and that json and orjson give the same answers. In-process, on a
recording transport: tests/test_serve.py checks the same answers over real sockets."""
import json

import pytest

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from manverify.serve import app as appmod  # noqa: E402

from .servehelp import DEST, ORIG, InProcess  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    here = InProcess(tmp_path_factory.mktemp("inline"))
    yield here
    here.close()


def test_a_verification_is_answered_inline(served):
    protocol, transport, state = served.connect()
    protocol.data_received(served.post(served.verification()))
    assert not state.tasks  # no ASGI task was made
    head, _, body = transport.sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: %d" % len(body) in head
    assert json.loads(body)["verificationResponse"]["verstat"] == "TN-Validation-Passed"
    assert not transport.closed and state.total_requests == 1
    # a signing too, on the same kept-alive connection
    transport.sent = b""
    claims = {"signingRequest": {"attest": "A", "orig": {"tn": ORIG}, "dest": {"tn": [DEST]}}}
    protocol.data_received(served.post(json.dumps(claims).encode(), b"/stir/v1/signing"))
    assert not state.tasks and transport.sent.startswith(b"HTTP/1.1 200 OK\r\n")
    protocol.connection_lost(None)


@pytest.mark.parametrize("request_bytes", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",  # not a POST
    b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",  # no key: 401
    b"POST /stir/v1/verific%61tion HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",  # escaped path
])
def test_everything_else_goes_the_asgi_way(served, request_bytes):
    protocol, transport, state = served.connect()
    protocol.data_received(request_bytes)
    assert state.tasks and transport.sent == b""  # the ASGI task answers it
    served.finish(state)
    assert transport.sent.startswith((b"HTTP/1.1 200 ", b"HTTP/1.1 401 "))
    protocol.connection_lost(None)


def test_expect_continue_and_pipelining_behind_asgi_go_the_asgi_way(served):
    protocol, transport, state = served.connect()
    protocol.data_received(served.post(served.verification(), extra=b"Expect: 100-continue\r\n"))
    assert len(state.tasks) == 1
    served.finish(state)
    assert transport.sent.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    protocol.connection_lost(None)
    protocol, transport, state = served.connect()
    # a verification pipelined behind a request under way waits its turn (answers go out in order)
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + served.post(served.verification()))
    assert len(state.tasks) == 1 and transport.sent == b"" and len(protocol.pipeline) == 1
    served.finish(state)
    first, second = transport.sent.split(b"HTTP/1.1 ")[1:]
    assert b'"alive"' in first and b"TN-Validation-Passed" in second
    protocol.connection_lost(None)


def test_a_body_beyond_the_limit_is_413_and_closed(served):
    protocol, transport, state = served.connect()
    chunk = b"x" * 10000
    protocol.data_received(served.post(b"", extra=b"Transfer-Encoding: chunked\r\n").replace(b"Content-Length: 0\r\n", b"")
                           + b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2)
    assert transport.sent.startswith(b"HTTP/1.1 413 ") and transport.eof and not state.tasks


def test_json_and_orjson_give_the_same_answers(served, monkeypatch):
    fast_json = pytest.importorskip("orjson", reason="orjson (extra manverify[serve]) is not installed")
    app = served.app
    good = served.verification()
    bodies = [good, good.replace(ORIG.encode(), b"+33611111111"), b"{}", b"[1, 2", b"[" * 500 + b"]" * 500,
              json.dumps({"verificationRequest": {"from": {"tn": ORIG}, "to": {"tn": [DEST]}, "identity": "é"}}).encode()]
    fast = [app.answer(app.setup, appmod.VERIFY, b) for b in bodies]
    monkeypatch.setattr(appmod, "orjson", None)
    slow = [app.answer(app.setup, appmod.VERIFY, b) for b in bodies]
    assert [(s, json.loads(d), t) for s, d, t in fast] == [(s, json.loads(d), t) for s, d, t in slow]
    assert [s for s, _, _ in fast] == [200, 200, 400, 400, 400, 200]
    monkeypatch.setattr(appmod, "orjson", fast_json)


def _signing(iat) -> bytes:
    return (b'{"signingRequest": {"attest": "A", "orig": {"tn": "%s"}, "dest": {"tn": ["%s"]}, "iat": %s}}'
            % (ORIG.encode(), DEST.encode(), iat))


# Where json and orjson once disagreed (issue 19, item 14), and the edges of the rules both follow.
# None: the status is not the parser's to decide (the signer's iat bounds are), only that it is
# the same with either library.
RULES = [
    ("bom", appmod.VERIFY, lambda good: b"\xef\xbb\xbf" + good, 400),
    ("utf-16", appmod.VERIFY, lambda good: good.decode().encode("utf-16"), 400),
    ("lone surrogate", appmod.VERIFY, lambda good: good.replace(b'"identity": "', b'"identity": "\\ud800'), 400),
    ("iat 2**64", appmod.SIGN, lambda good: _signing(b"%d" % 2 ** 64), 400),
    ("iat 2**200", appmod.SIGN, lambda good: _signing(b"%d" % 2 ** 200), 400),
    ("iat -2**63-1", appmod.SIGN, lambda good: _signing(b"%d" % (-2 ** 63 - 1)), 400),
    ("iat 2**64-1", appmod.SIGN, lambda good: _signing(b"%d" % (2 ** 64 - 1)), None),
    ("iat 2**63", appmod.SIGN, lambda good: _signing(b"%d" % 2 ** 63), None),
    ("iat 1e400", appmod.SIGN, lambda good: _signing(b"1e400"), 400),
    ("iat NaN", appmod.SIGN, lambda good: _signing(b"NaN"), 400),
    ("iat Infinity", appmod.SIGN, lambda good: _signing(b"-Infinity"), 400),
    ("a huge number ignored", appmod.VERIFY, lambda good: good[:-1] + b', "x": %d}' % 2 ** 200, 200),
    ("nested 1024", appmod.VERIFY, lambda good: good[:-1] + b', "x": ' + b"[" * 1023 + b"]" * 1023 + b"}", 200),
    ("nested 1025", appmod.VERIFY, lambda good: good[:-1] + b', "x": ' + b"[" * 1024 + b"]" * 1024 + b"}", 400),
    ("nested 5000", appmod.VERIFY, lambda good: good[:-1] + b', "x": ' + b"{\"a\":" * 5000 + b"1" + b"}" * 5000 + b"}",
     400),
    ("brackets in strings", appmod.VERIFY, lambda good: good[:-1] + b', "x": "' + b"[" * 100 + b'"}', 200),
    ("a repeated key", appmod.VERIFY, lambda good: good[:-1] + b', "verificationRequest": {}}', 400),
]


@pytest.mark.parametrize("case, path, make, status", RULES, ids=[r[0] for r in RULES])
def test_one_decoder_s_rules_whichever_library_parses(served, monkeypatch, case, path, make, status):
    pytest.importorskip("orjson", reason="orjson (extra manverify[serve]) is not installed")
    app = served.app
    raw = make(served.verification())
    with_orjson = app.answer(app.setup, path, raw)
    monkeypatch.setattr(appmod, "orjson", None)
    with_json = app.answer(app.setup, path, raw)
    assert with_orjson[0] == with_json[0] and _unsigned(with_orjson[1]) == _unsigned(with_json[1])
    if status is not None:
        assert with_orjson[0] == status, with_orjson[1]


def _unsigned(answer: bytes):
    """An answer less what differs between two signings of the same claims (origid, signature)."""
    body = json.loads(answer)
    return "signed" if "signingResponse" in body else body
