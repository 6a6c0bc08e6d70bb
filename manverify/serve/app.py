"""The HTTP application (ASGI): routing, callers' authentication, request limits, the two dialects.

One App per worker process. It builds its Setup (manverify.serve.settings) at start-up, warms
the certificate store's local copy, and from then on answers from whichever Setup is current:
a reload (a changed configuration or trust file, looked at about once a second by
manverify.reload) builds a complete new Setup and swaps it with one assignment, so a request is
served by the old configuration or the new one, never a mix. A bad new file keeps the old one.

Where the certificate store may fetch an x5u over the network (verifier_options "fetch": true,
the default), verifications run on a small thread pool: a call waiting for a slow x5u waits
there, not on the event loop, and other requests keep flowing. With "fetch": false (MAN's local
copy, "without external requests") nothing on the per-call path waits, and verifications run on
the event loop itself: the hop to a thread cost about a third of the CPU per request and halved
the rate (benches/serve_load.py). Those POSTs, and signings, are answered inline by the protocol
(App.takes_inline, App.answer), without an ASGI task; the routing, checks and answers are the
same functions either way.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import os
import re
import sys
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from .. import config as _config
from .. import tn
from ..certs.model import CredentialError
from ..errors import EngineError, Error, ReportLimited
from ..reload import Watch
from . import dialects, numbers, screening, settings

try:  # part of manverify[serve]: reads and writes these bodies in about a fifth of json's time
    import orjson
except ImportError:  # pragma: no cover — json answers alike (tests/test_serve_inline.py pins where not)
    orjson = None

log = logging.getLogger("manverify.serve")

VERIFY, SIGN = "/stir/v1/verification", "/stir/v1/signing"
HEALTH, READY, METRICS = "/healthz", "/readyz", "/metrics"
SCREEN = screening.CHECK
_ROUTES = {VERIFY: "POST", SIGN: "POST", HEALTH: "GET", READY: "GET", METRICS: "GET", SCREEN: "POST"}
THREADS = 4  # per worker: enough to keep serving while a few calls wait on an x5u fetch
CONFIG_ENV = "MANVERIFY_SERVE_CONFIG"  # the configuration file a worker process reads


_APPS: "weakref.WeakSet[App]" = weakref.WeakSet()  # this process's Apps, for reload_all()


def reload_all(*_signal_args) -> None:
    """SIGHUP in a single-process server: every App of the process reads its files again."""
    for app in list(_APPS):
        if app.setup is not None:
            app.reload()


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: Tuple[Tuple[bytes, bytes], ...] = (),
                 rules: Optional[Tuple[str, ...]] = None):
        super().__init__(message)
        self.status, self.headers, self.rules = status, headers, rules


class App:
    """The ASGI application of one worker. `path`: the configuration file (reloaded on change)."""

    def __init__(self, path: str, setup: Optional[settings.Setup] = None):
        self.path = path
        self.setup = setup
        self.ready = False
        self.warmed = 0  # local copy entries loaded and usable at start-up (or the last reload)
        self._watch: Optional[Watch] = None
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="manverify-serve")
        _APPS.add(self)

    # ------------------------------------------------------------------ configuration
    def start(self) -> None:
        """Build the Setup (unless given), warm the local copy, start watching the files."""
        if self.setup is None:
            self.setup = settings.build(_config.load(self.path))
        self.setup = screening.attach(self.setup, self.path)
        self._warm(self.setup)
        if self.setup.server.reload:
            self._watch = Watch(self._watched(self.setup), self._reread, self._use,
                                f"manverify serve configuration {self.path}")
        self.ready = True

    def _warm(self, setup: settings.Setup) -> None:
        usable = 0
        for url, outcome in setup.verifier.store.warm().items():
            if isinstance(outcome, CredentialError):
                log.warning("local copy: %s is not usable: %s", url, outcome.detail)
            else:
                usable += 1
        self.warmed = usable

    def _watched(self, setup: settings.Setup) -> List[Any]:
        signer = setup.config.get("signer") or {}
        tls = (setup.config.get("server") or {}).get("tls") or {}
        return _config.watched_files(self.path, setup.config, signer.get("key"), tls.get("client_ca"))

    def reload(self) -> bool:
        """Build the Setup again from the files as they are now, changed or not (SIGHUP in a
        single-process server); a configuration that cannot be used keeps the one in use."""
        try:
            new = self._reread(everything=True)
        except Exception as e:  # noqa: BLE001 — whatever the files hold, the old configuration stays
            log.warning("reload asked for, but %s cannot be used, keeping the configuration in use: %s", self.path, e)
            return False
        self._use(new)
        log.info("manverify serve configuration reloaded from %s (signal)", self.path)
        return True

    def _reread(self, everything: bool = False) -> settings.Setup:
        config = _config.load(self.path)
        old = self.setup
        changed = everything or set(self._watch.changed) - {self._watch.paths[0]}
        keep = _config.same_verifier(config, old.config) and not changed
        new = settings.build(config, (lambda c: old.verifier) if keep else _config.build_verifier)
        if new.verifier is not old.verifier:
            self._warm(new)
        new_server, old_server = config.get("server") or {}, old.config.get("server") or {}
        restart = [k for k in ("listen", "workers", "tls", "metrics_dir", "log_level")
                   if new_server.get(k) != old_server.get(k)]
        new_limits, old_limits = new_server.get("limits") or {}, old_server.get("limits") or {}
        restart += [f"limits.{k}" for k in settings.LIMITS if k != "body" and new_limits.get(k) != old_limits.get(k)]
        if restart:
            log.warning("server.%s changed: the supervisor holds it; it takes effect at the next restart",
                        ", server.".join(restart))
        return screening.attach(new, self.path, old)

    def _use(self, new: settings.Setup) -> None:
        old, self.setup = self.setup, new  # one assignment: a request sees the old Setup or the new one
        if old is not None and (new.verifier is not old.verifier or new.screen is not old.screen):
            _metrics_flush_now()  # the old Verifier's and Screen's last counts, before they go
        screening.retire(old, new)
        paths = self._watched(new)
        if self._watch is not None and [str(p) for p in paths] != [str(p) for p in self._watch.paths]:
            self._watch = Watch(paths, self._reread, self._use, self._watch.what)

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Dict[str, Any], receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.get_running_loop().run_in_executor(self._pool, self.start)
                    _metrics_register()
                except Exception as e:  # noqa: BLE001 — the worker must not serve a half-built setup
                    log.error("cannot start: %s", e)
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _metrics_flush()
                self._pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        method, path = scope.get("method"), scope.get("path")
        try:
            status, body, headers = await self._handle(scope, receive)
        except Exception as e:  # noqa: BLE001 — every failure is an answer (_failure says which)
            status, body, headers = _failure(e, method, path)
        data, content_type = _encode(body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(data)).encode()),
                                *headers]})
        await send({"type": "http.response.body", "body": data})

    async def _handle(self, scope, receive) -> Tuple[int, Any, tuple]:
        setup = self.setup
        path, method = scope["path"], scope["method"]
        if setup is None:
            raise HTTPError(503, "starting")
        headers = scope["headers"]  # their size and time were bounded by the protocol (431, 408)
        customer = None
        if path not in _OPEN:
            customer = _authenticate(setup, headers)  # before routing: without a key, nothing is learnt
        number = _route(setup, path, method)
        if number is not None:
            return await self._numbers(setup, number, method, headers, receive)
        if path == HEALTH:
            return 200, {"status": "alive"}, ()
        if path == READY:
            return 200, self._readiness(setup), ()
        if path == METRICS:
            return 200, _metrics_export(), ()
        if path == SIGN and customer is not None:
            setup = setup._replace(customer=customer)  # this signing's own copy (_authorised)
        _body_headers(headers, setup.server.limits)
        raw = await _body(receive, setup.server.limits)
        if (path == VERIFY and setup.verifier.store.options.fetch) or screening.remote(setup):
            # a call may wait for an x5u fetch or a shared counter store: on the pool, not the loop
            return await asyncio.get_running_loop().run_in_executor(self._pool, _post, setup, path, raw)
        return _post(setup, path, raw)

    async def _numbers(self, setup, number: str, method: str, headers, receive) -> Tuple[int, Any, tuple]:
        """GET /numbers/v1/{tn}, POST /numbers/v1/{tn}/reports (manverify.serve.numbers);
        the caller is authenticated already."""
        if method != "POST":  # GET or HEAD
            # On the event loop even with Redis: one round trip, bounded by counters.budget_ms (a
            # store that misses it opens the breaker: local counters, no wait). The hop to a pool
            # thread cost more than the wait it overlaps: at 500 look-ups/s, p50/p99 1.5/5.5 ms
            # on the loop against 2.1/7.9 ms on the pool, 480 against 790 us of CPU a look-up
            # (benches/lookup_load.py, interleaved runs).
            return numbers.lookup(setup, number)
        _body_headers(headers, setup.server.limits)
        body = _json(await _body(receive, setup.server.limits))
        if screening.remote(setup):  # three round trips, and rare: on the pool, not the loop
            return await asyncio.get_running_loop().run_in_executor(self._pool, numbers.report, setup, number, body)
        return numbers.report(setup, number, body)

    def _readiness(self, setup: settings.Setup) -> dict:
        if not self.ready:
            raise HTTPError(503, "not ready: the local copy is still being loaded")
        if not self.warmed and not setup.verifier.store.options.fetch:
            # every call would be a 436: a load balancer must not send them here
            raise HTTPError(503, "not ready: no certificate of the local copy is usable and fetching is off")
        return {"status": "ready", "local_copy": self.warmed}

    # ------------------------------------------------------------------ answered inline
    # The ASGI cycle (a task, an event, message dicts, uvicorn's response writer) cost about as
    # much CPU as the verification itself. A POST that needs nothing but CPU (a signing, or a
    # verification with fetching off) is answered by the protocol straight from its parser's
    # callbacks (manverify.serve.protocol): the same routing, checks and answers as below.
    def takes_inline(self, path: str, headers) -> Optional[settings.Setup]:
        """The Setup to answer this POST with inline, once its body is in; None: the ASGI way
        (every other request, and every request that is refused before its body is read)."""
        setup = self.setup
        if setup is None or path not in _INLINE:
            return None
        if (path == VERIFY and setup.verifier.store.options.fetch) or screening.remote(setup):
            return None
        try:
            customer = _authenticate(setup, headers)
            _route(setup, path, "POST")
            _body_headers(headers, setup.server.limits)
        except HTTPError:
            return None
        return setup if path != SIGN or customer is None else setup._replace(customer=customer)

    @staticmethod
    def answer(setup: settings.Setup, path: str, raw: bytes) -> Tuple[int, bytes, bytes]:
        """The answer to an inline POST: status, body, content type. Never raises."""
        try:
            status, body, _ = _post(setup, path, raw)
        except Exception as e:  # noqa: BLE001 — every failure is an answer (_failure says which)
            status, body, _ = _failure(e, "POST", path)
        data, content_type = _encode(body)
        return status, data, content_type

    # The protocol's own refusals (400, 408, 413, 431, 503) say it in the same words and form.
    body_too_large = staticmethod(lambda limit: f"the body is larger than {limit} bytes")
    error_body = staticmethod(lambda message: _encode({"error": message})[0])


_INLINE = frozenset((VERIFY, SIGN, SCREEN))
_OPEN = frozenset((HEALTH, READY, METRICS))  # probes and the scraper: no key needed


def _failure(e: Exception, method: Optional[str], path: Optional[str]) -> Tuple[int, Any, tuple]:
    """The answer to a request that failed with `e`; called from its except clause (a 500 logs
    the traceback)."""
    if isinstance(e, HTTPError):
        if e.rules is not None:  # a signing refused by the outbound rules: which ones
            return e.status, {"error": str(e), "rules": list(e.rules)}, e.headers
        return e.status, {"error": str(e)}, e.headers
    if isinstance(e, dialects.BadRequest):
        return 400, {"error": str(e)}, ()
    if isinstance(e, ReportLimited):
        return 429, {"error": str(e)}, ((b"retry-after", str(max(1, math.ceil(e.retry_after))).encode()),)
    if isinstance(e, EngineError):
        log.exception("the signature engine refused its own arguments; answering 500")
    else:
        log.exception("internal error on %s %s; answering 500", method, path)
    return 500, {"error": "internal server error"}, ()


def _encode(body: Any) -> Tuple[bytes, bytes]:
    """The body's bytes and content type: the metrics export as it is, anything else as JSON."""
    if isinstance(body, bytes):
        return body, METRICS_TYPE
    if orjson is not None:
        return orjson.dumps(body), b"application/json"
    return json.dumps(body, separators=(",", ":")).encode(), b"application/json"


def _route(setup: settings.Setup, path: str, method: str) -> Optional[str]:
    """Raises 404/405 for what is not served; the number of a /numbers/v1/ path, else None."""
    found = numbers.route(path)
    if found is not None:
        number, allowed = found
    else:
        number, allowed = None, _ROUTES.get(path)
        if allowed is None or (path == SIGN and setup.signer is None):
            raise HTTPError(404, "no such resource" + (" (no signer is configured)" if path == SIGN else ""))
    if setup.screen is None and (found is not None or path == SCREEN):
        raise HTTPError(404, "no such resource (no screening is configured)")
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise HTTPError(405, f"method not allowed; use {allowed}", ((b"allow", allowed.encode()),))
    return number


def _authenticate(setup: settings.Setup, headers) -> Optional[str]:
    """With API keys configured, the request must carry one of them (compared in constant time,
    every key looked at, so the time says nothing about which nearly matched). A client
    certificate, when required, was checked in the TLS handshake already. The key's customer
    (server.api_keys objects), None for a key of none."""
    keys = setup.server.api_keys
    if not keys:
        return None
    given = next((v for k, v in headers if k == b"authorization"), b"")
    scheme, _, token = given.partition(b" ")
    token = token.strip()
    ok = False
    which = -1
    for i, key in enumerate(keys):
        match = hmac.compare_digest(token, key)
        ok |= match
        which = i if match else which
    if scheme.lower() != b"bearer" or not ok:
        raise HTTPError(401, "missing or unknown API key (Authorization: Bearer <key>)",
                        ((b"www-authenticate", b'Bearer realm="manverify"'),))
    customers = setup.server.key_customers
    return customers[which] if customers else None


def _body_headers(headers, limits) -> None:
    """What the head says of the body: JSON, with a length within the limit (or chunked)."""
    ctype = length = encoding = None
    for name, value in headers:
        if name == b"content-type":
            ctype = value
        elif name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            encoding = value
    if ctype is None or ctype.split(b";")[0].strip().lower() != b"application/json":
        raise HTTPError(415, "the body must be application/json")
    if length is None and (encoding is None or b"chunked" not in encoding.lower()):
        raise HTTPError(411, "Content-Length is required")
    if length is not None and (not length.isdigit() or int(length) > limits["body"]):
        raise HTTPError(413, App.body_too_large(limits["body"]))


async def _body(receive, limits) -> bytes:
    # The body's time is bounded by the protocol (manverify.serve.protocol): 408 and closed.
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits["body"]:
            raise HTTPError(413, App.body_too_large(limits["body"]))
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _post(setup: settings.Setup, path: str, raw: bytes) -> Tuple[int, Any, tuple]:
    """A POST's answer from its body: a signing, or a verification (whose verdict is a 200)."""
    body = _json(raw)
    if path == SIGN:
        return 200, _sign(setup, dialects.signing(body)), ()
    if path == SCREEN:
        return 200, screening.check(setup, body), ()
    return 200, _verify(setup, dialects.verification(body)), ()


def _json(raw: bytes) -> Any:
    if not raw:
        raise HTTPError(400, "missing request body")
    try:
        return loads(raw)
    except ValueError:  # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HTTPError(400, "failed to parse the message body as JSON") from None


# ---------------------------------------------------------------------- one JSON decoder's rules
# A body's meaning must not depend on which library is installed. The rules are orjson's: strict
# UTF-8 without a BOM (RFC 8259 §8.1), no NaN or Infinity, no number beyond a double's range, no
# lone surrogate escape (I-JSON, RFC 7493), an integer outside [-2**63, 2**64) read as a float
# (so an iat of 2**64 is not an integer either way); a repeated key: the last one counts. Plus a
# nesting bound, MAX_DEPTH: orjson 3.13's, which orjson 3.8 lacks (it parses any depth, and
# crashes on some deep enough) and json reaches earlier, at a depth that depends on the stack.
# Without orjson, _strict_loads (json with hooks) applies them all. With it, a body that could
# be nested deeper than MAX_DEPTH (more brackets than that) goes there too; a body shorter than
# 2 * MAX_DEPTH cannot be, and is not even counted (a count of a typical body cost 1% of the CPU
# of a request).
MAX_DEPTH = 1024
_INT_RANGE = (-(2 ** 63), 2 ** 64)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


def loads(raw: bytes) -> Any:
    """The JSON value of a request body, or ValueError. Never RecursionError."""
    if orjson is not None and (len(raw) <= 2 * MAX_DEPTH or raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH):
        return orjson.loads(raw)
    return _strict_loads(raw)


def _strict_loads(raw: bytes) -> Any:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError("a byte order mark before the JSON text")
    text = raw.decode("utf-8")  # strict: UnicodeDecodeError is a ValueError
    depth = deepest = 0
    for b in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if b in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    if deepest > 200 and sys.getrecursionlimit() < MAX_DEPTH + 1000:
        sys.setrecursionlimit(MAX_DEPTH + 1000)  # json recurses per level (orjson does not)
    value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError on a lone surrogate
    return value


def _int(digits: str) -> Any:
    n = int(digits)
    return n if _INT_RANGE[0] <= n < _INT_RANGE[1] else _float(digits)


def _float(digits: str) -> float:
    x = float(digits)
    if x in (float("inf"), float("-inf")):
        raise ValueError(f"the number {digits[:30]} is beyond a double's range")
    return x


def _constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _verify(setup: settings.Setup, call: dialects.Verification) -> dict:
    result = setup.verifier.verify(call.identity, orig=call.orig, dest=call.dest, date=call.date)
    decision = None
    if setup.policy is not None:
        calling = result.orig_tn or tn.try_canonical(call.orig)
        decision = setup.policy.decide(result, calling=calling)
    return screening.annotate(setup, dialects.verification_response(call.dialect, result, decision), call, result,
                              decision)


def _sign(setup: settings.Setup, request: dialects.Signing) -> dict:
    attest = request.attest
    if setup.server.key_customers:
        attest = _authorised(setup, request)
    try:
        value = setup.signer.sign(request.orig, request.dest, attest, request.origid, request.iat)
    except (Error, ValueError) as e:
        if isinstance(e, EngineError):
            raise
        raise HTTPError(400, f"cannot sign these claims: {e}") from None
    return dialects.signing_response(request.dialect, value)


def _authorised(setup: settings.Setup, request: dialects.Signing) -> str:
    """With keys mapped to customers, the attestation the key's customer gets for this call
    (Screen.authorise for each called number): A for a number it may show, B or a 403 for another
    (signer.unauthorised), a 403 naming the rules when an outbound rule acts, and a 403 for a key
    of no customer or an unknown one. Never a level above the one asked for."""
    customer = setup.customer
    if customer is None or setup.screen is None:
        raise HTTPError(403, "this API key has no customer: it may not sign", rules=())
    attest = "A"
    for dest in request.dest:
        a = setup.screen.authorise(customer, request.orig, dest, unauthorised=setup.unauthorised)
        if a.attest is None:
            raise HTTPError(403, f"not signed: {a.error}", rules=a.rules)
        attest = max(attest, a.attest)  # "A" < "B" < "C": the lowest level any called number gets
    return max(attest, request.attest)


# ---------------------------------------------------------------------- metrics (optional extra)
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def _metrics_register() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from .. import metrics

        metrics.register()


def _metrics_flush() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from .. import metrics

        metrics.flush()


def _metrics_flush_now() -> None:
    metrics = sys.modules.get("manverify.metrics")  # imported (and registered) at start-up, if at all
    if metrics is not None:
        metrics.flush()


def _metrics_export() -> bytes:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise HTTPError(404, "metrics are off: install manverify[metrics]")
    import prometheus_client

    from .. import metrics

    return prometheus_client.generate_latest(metrics.multiprocess_registry())


def from_environment() -> App:
    """The App a worker process builds (the server's factory): the file named by $MANVERIFY_SERVE_CONFIG."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} names the configuration file; start the service with `manverify serve`")
    return App(path)


__all__ = ["App", "from_environment", "VERIFY", "SIGN"]
