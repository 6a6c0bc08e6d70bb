"""Property tests (hypothesis) of the service's request path and its dialect decoders.

The request path: arbitrary bytes, alone or mixed with pieces of real requests, in arbitrary
chunks, on one connection (in process, tests/servehelp.py's InProcess). Every answer is a
well-formed HTTP/1.1 answer with a JSON or metrics body, never a 500; after every read the
connection is closed, lingering, or has a timer armed (or an ASGI answer under way, which arms
one when it ends). The decoders: any JSON value is a request or the decoder's own 400
(dialects.BadRequest), never another exception; and json and orjson read any text alike."""
import asyncio
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("uvicorn", reason="uvicorn (extra manverify[serve], Python >= 3.10) is not installed")

from manverify.serve import app as appmod  # noqa: E402
from manverify.serve import dialects  # noqa: E402

from .servehelp import DEST, ORIG, InProcess, armed  # noqa: E402


@pytest.fixture(scope="module")
def here(tmp_path_factory):
    lab = InProcess(tmp_path_factory.mktemp("properties"))
    yield lab
    lab.close()


def pieces(lab):
    """Bytes a hostile or clumsy client might send: real requests, their parts, noise."""
    good = lab.post(lab.verification())
    real = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\n\r\n",
        good,
        lab.post(b"{}", b"/stir/v1/signing"),
        lab.post(b'{"signingRequest": {"attest": "A", "orig": {"tn": "%s"}, "dest": {"tn": ["%s"]}}}'
                 % (ORIG.encode(), DEST.encode()), b"/stir/v1/signing"),
        good.replace(b"Authorization", b"X-Authorization"),
        good.replace(b"Content-Length", b"Transfer-Encoding: chunked\r\nX-Length"),
        b"POST /stir/v1/verification HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Authorization: Bearer " + lab.key + b"\r\nContent-Type: application/json\r\n\r\n2;ext=1\r\n{}\r\n0\r\n\r\n",
        b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"\r\n", b"\r\n\r\n", b"0\r\n\r\n", b"X-Junk: " + b"j" * 3000 + b"\r\n",
    ]
    fragments = st.sampled_from(real).flatmap(
        lambda r: st.tuples(st.integers(0, len(r)), st.integers(0, len(r))).map(lambda ij: r[min(ij):max(ij)]))
    return st.lists(st.one_of(st.sampled_from(real), fragments, st.binary(max_size=64)), max_size=8)


def settle(lab, state) -> None:
    """Run the ASGI tasks as far as they go: one may wait for a body that will not come (the
    connection refused it); it ends when the connection closes, which a timer guarantees."""
    for _ in range(10):
        pending = [t for t in state.tasks if not t.done()]
        if not pending:
            return
        done, _ = lab.loop.run_until_complete(asyncio.wait(pending, timeout=0.05))
        if not done:
            return


def split(data: bytes, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)]) if b > a]


def well_formed(sent: bytes):
    """The statuses in `sent`; AssertionError where an answer is not well formed."""
    statuses = []
    while sent:
        head, sep, rest = sent.partition(b"\r\n\r\n")
        assert sep, sent[:200]
        lines = head.split(b"\r\n")
        version, status = lines[0].split(b" ")[:2]
        assert version == b"HTTP/1.1" and status.isdigit(), lines[0]
        status = int(status)
        if status == 100:
            sent = rest
            continue
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(fields[b"content-length"])
        body, sent = rest[:length], rest[length:]
        assert len(body) == length
        if fields[b"content-type"] == b"application/json" and length:
            json.loads(body)
        statuses.append(status)
    return statuses


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bytes_in_any_chunks(here, data):
    parts = data.draw(pieces(here))
    stream = b"".join(parts)
    # cut between some pieces (where a client's writes end) and anywhere else
    ends = [sum(map(len, parts[:i + 1])) for i in range(len(parts))]
    cuts = [e for e, cut in zip(ends, data.draw(st.lists(st.booleans(), min_size=len(ends), max_size=len(ends))))
            if cut]
    chunks = split(stream, cuts + data.draw(st.lists(st.integers(0, 10 ** 6), max_size=4)))
    protocol, transport, state = here.connect()
    try:
        for chunk in chunks:
            protocol.data_received(chunk)
            settle(here, state)
            assert transport.closed or transport.eof or armed(protocol), \
                f"no timer after {chunk!r} (stream {stream!r})"
        if data.draw(st.booleans()) and armed(protocol) and not transport.closed:
            # time passes: the first armed timer fires, as the loop would run it
            fire = {"_head_timer": protocol._too_slow, "_body_timer": protocol._body_too_slow,
                    "_linger_timer": transport.close, "timeout_keep_alive_task": protocol.timeout_keep_alive_handler}
            name = armed(protocol)[0]
            getattr(protocol, name).cancel()
            fire[name]()
            settle(here, state)
            assert transport.closed or transport.eof or armed(protocol), f"no timer after {name} (stream {stream!r})"
        statuses = well_formed(transport.sent)
        assert all(200 <= s < 300 or 400 <= s < 500 or s == 503 for s in statuses), statuses
    finally:
        protocol.connection_lost(None)
        here.finish(state)  # every task ends once the connection is gone


# ---------------------------------------------------------------------- the decoders
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
numbers = st.one_of(st.text(), st.lists(st.text(), max_size=3),
                    st.sampled_from([ORIG, DEST, "+1 202 555 0100", "tel:+33612345678", "", " "]))
field = st.one_of(json_values, numbers)


def shaped():
    """Values shaped like the requests, their fields arbitrary: to get past the first checks."""
    atis = st.fixed_dictionaries({}, optional={"from": st.one_of(field, st.fixed_dictionaries({"tn": field})),
                                               "to": st.one_of(field, st.fixed_dictionaries({"tn": field})),
                                               "identity": field, "time": field})
    ms = st.fixed_dictionaries({}, optional={"from": field, "to": field, "dest": field, "time": field,
                                             "identityHeader": field, "identityHeaders": field})
    sign = st.fixed_dictionaries({}, optional={"orig": st.one_of(field, st.fixed_dictionaries({"tn": field})),
                                               "dest": st.one_of(field, st.fixed_dictionaries({"tn": field}),
                                                                 st.lists(st.fixed_dictionaries({"tn": field}))),
                                               "attest": st.sampled_from(["A", "B", "C", "D", 1, None]),
                                               "origid": field, "iat": st.one_of(st.integers(), field)})
    return st.one_of(json_values, st.builds(lambda r: {"verificationRequest": r}, st.one_of(atis, ms)),
                     st.builds(lambda r: {"signingRequest": r}, sign), sign)


@settings(max_examples=500, deadline=None)
@given(value=shaped())
def test_the_decoders_raise_nothing_but_their_400(value):
    for decode in (dialects.verification, dialects.signing):
        try:
            decode(value)
        except dialects.BadRequest:
            pass


@settings(max_examples=300, deadline=None)
@given(value=json_values, extra=st.sampled_from([b"", b" ", b"\xef\xbb\xbf", b"\n"]),
       number=st.one_of(st.integers(), st.floats()))
def test_json_and_orjson_read_alike(value, extra, number):
    orjson = pytest.importorskip("orjson", reason="orjson (extra manverify[serve]) is not installed")
    text = json.dumps([value, number], allow_nan=True).encode()
    for raw in (extra + text, text + extra):
        outcomes = []
        for library in (orjson, None):
            appmod.orjson = library
            try:
                outcomes.append(("ok", _canonical(appmod.loads(raw))))
            except ValueError:
                outcomes.append(("error", None))
            finally:
                appmod.orjson = orjson
        assert outcomes[0] == outcomes[1], raw[:200]


def _canonical(value):
    """Comparable across libraries: NaN never equals itself, and -0.0 == 0.0 hides a sign."""
    if isinstance(value, float):
        return ("float", math.copysign(1, value), repr(value))
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value
