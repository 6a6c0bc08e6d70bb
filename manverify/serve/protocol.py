"""uvicorn's httptools protocol with the bounds it lacks, and refusals that keep their turn.

uvicorn bounds idle kept-alive connections and, for its h11 parser only, the head's size. A
client that opens a connection and sends its request line and headers a byte at a time (slowloris)
would hold that connection, and one that sends megabytes of headers would grow a buffer. Here a
request head must arrive within server.limits.header_time seconds (else 408) and fit in
server.limits.header bytes with its chunk framing and trailers (else 431); its body must follow
within server.limits.request_time seconds (else 408). Each worker serves its other connections
meanwhile: nothing here blocks. A graceful stop answers the requests already sent on fresh
connections instead of resetting them (shutdown()).

Every connection has a timer armed at all times but while its application works on an answer
(which arms the keep-alive timer when it ends): the head's, the body's, the keep-alive one, or
the lingering close's. A refusal (400, 408, 413, 431, 503: JSON, as every answer) ends the
connection: nothing more is parsed, the refusal goes out after the answers to the requests before
it, then the write side is shut and what the client still sends is dropped for a moment (a close
with unread bytes would reset the connection and could lose the answer). An application answer
given before its request's body is in (401, 404, 413...) closes the same way.

A POST that needs nothing but CPU (App.takes_inline: a verification with fetching off, a signing),
authenticated and with an acceptable head, is answered here, from the parser's callbacks, once its
body is in, instead of through an ASGI task: the task, its event, the message dicts and uvicorn's
response writer cost about as much CPU as the verification (benches/serve_load.py). Everything
else (and such a POST pipelined behind a request still under way) goes the ASGI way.

This subclass uses uvicorn's private state (cycle, pipeline, tasks, flow, timeout_keep_alive_task,
_start_asgi_task, on_response_complete): pyproject pins uvicorn to the range CI tests it on
(tools/serve-uvicorn-range; docs/http-path.md says why this and not a server of our own).
"""
from __future__ import annotations

import http
import os
from typing import Any, List, NamedTuple, Optional

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIME_ENV = "MANVERIFY_SERVE_HEADER_TIME"
HEADER_BYTES_ENV = "MANVERIFY_SERVE_HEADER_BYTES"
REQUEST_TIME_ENV = "MANVERIFY_SERVE_REQUEST_TIME"
LINGER = 2.0  # seconds a refused connection drains what the client still sends before it closes


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode())


STATUS_LINE = {s.value: status_line(s.value) for s in http.HTTPStatus}


class _Refused(Exception):
    pass


_HEAD, _BODY = "head", "body"


class _Inline(NamedTuple):
    """A POST to answer inline, while its body arrives."""
    setup: Any  # manverify.serve.settings.Setup: the configuration it is answered with
    path: str
    keep_alive: bool
    chunks: List[bytes]


def _cancel(timer) -> None:
    """Cancel a loop timer, if any; None to store in its place."""
    if timer is not None:
        timer.cancel()


class Protocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_time = float(os.environ.get(HEADER_TIME_ENV, "5"))
        self.head_limit = int(os.environ.get(HEADER_BYTES_ENV, "8192"))
        self.body_time = float(os.environ.get(REQUEST_TIME_ENV, "5"))
        self._head_timer = None
        self._body_timer = None
        self._linger_timer = None
        self._pending = None  # _HEAD or _BODY while a request's head or body is still to come
        self._head_bytes = 0  # of the request under way: its request line, headers and trailers
        self._raw_bytes = 0  # of the request under way: its reads but those where it began, less body bytes
        self._messages = 0  # requests begun on this connection
        self._body_bytes = 0  # body bytes the parser handed over in the current read
        self._refusal: Optional[tuple] = None  # (status, message) set by a parser callback
        self._stopped = False  # nothing more is read: a refusal is due or the connection lingers
        self._closing = False
        self._running = None  # the ASGI request-response cycle under way (uvicorn's)
        self._app = _application(self.app)
        self._inline: Optional[_Inline] = None
        self._inline_size = 0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._body_done()
        self._linger_timer = _cancel(self._linger_timer)
        self._inline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # The keep-alive timer is not cancelled here but when a request begins: bytes the parser
        # skips between requests (a lone CRLF) must not leave the connection without a timer.
        if self._stopped:
            return
        begun, pending = self._messages, self._pending
        self._body_bytes = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(None)  # no upgrade is served: answer what came before, then close
            return
        except httptools.HttpParserError:
            status, message = self._refusal or (400, "the request is not valid HTTP/1.1")
            self._refuse(status, message)
            return
        if ((pending is self._pending is not None and self._messages == begun)
                or (pending is None and self._pending is _HEAD and self._messages == begun + 1)):
            # A read wholly inside one request's head or body (or starting it, after nothing
            # but skipped CRLFs). httptools hands a header over once it ends (it buffers it
            # meanwhile), and what a body's read holds besides body bytes is chunk framing
            # (sizes, extensions): both count against the head's limit here.
            self._raw_bytes += len(data) - self._body_bytes
            if self._raw_bytes > self.head_limit:
                self._refuse(431, self._head_message())
                return
        # A request usually arrives whole in one read: its deadline is set only when part of it
        # is still to come (a timer set and cancelled on every request cost a microsecond or two).
        if self._pending is _HEAD:
            if self._head_timer is None:
                self._arm()
        elif self._pending is _BODY and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_time, self._body_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._unset_keepalive_if_required()  # the request's own timers take over
        self._messages += 1
        self._head_bytes = self._raw_bytes = 0
        self._pending = _HEAD

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if self.limit_concurrency is not None and (len(self.connections) >= self.limit_concurrency
                                                   or len(self.tasks) >= self.limit_concurrency):
            self.logger.warning("Exceeded concurrency limit.")
            self._refusal = (503, "too many connections; try again later")
            raise _Refused()  # stops the parser; data_received answers (in turn) and closes
        # The body must follow within request_time (data_received sets the timer when it has
        # not all come; asyncio.wait_for around the application's reads cost 35 µs a request).
        self._pending = _BODY
        if self._take_inline():
            return
        super().on_headers_complete()
        if self._closing and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._inline is None:
            super().on_body(body)
            return
        self._inline_size += len(body)
        limit = self._inline.setup.server.limits["body"]
        if self._inline_size > limit:
            self._inline = None  # the head said less (or chunked): no reason to read on
            self._refusal = (413, self._app.body_too_large(limit))
            raise _Refused()  # stops the parser; data_received answers
        self._inline.chunks.append(body)

    def on_message_complete(self) -> None:
        self._body_done()
        self._pending = None
        if self._inline is None:
            super().on_message_complete()
            return
        request, self._inline = self._inline, None
        status, data, content_type = self._app.answer(request.setup, request.path, b"".join(request.chunks))
        keep_alive = request.keep_alive and not self._closing
        self.transport.write(self._answer(status, content_type, data, keep_alive))
        self.server_state.total_requests += 1
        if not keep_alive:
            self.transport.close()
            return
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _start_asgi_task(self, cycle, app) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        cycle = self._running
        super().on_response_complete()  # starts the next pipelined request, or the keep-alive timer
        if self.transport.is_closing():
            return
        if cycle is self.cycle and cycle.more_body and not self._stopped:
            # Answered before its body was all in (401, 404, 413...): reading the rest would be
            # work for a caller already refused, and leaving it unread would keep the connection.
            self._stopped = True
            self._linger()
        elif self._stopped and not self._answers_due():
            self._send_refusal()

    def _take_inline(self) -> bool:
        """Whether this request is answered inline (see the module's docstring)."""
        if self._app is None or self.parser.get_method() != b"POST" or self.expect_100_continue:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind a request under way: answers go out in order
        if self.flow.write_paused or self.parser.should_upgrade():
            return False  # the ASGI way waits for the client to read its answers
        path = httptools.parse_url(self.url).path.decode("latin-1")
        if "%" in path:
            return False
        setup = self._app.takes_inline(path, self.headers)
        if setup is None:
            return False
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        self._inline, self._inline_size = _Inline(setup, path, keep_alive, []), 0
        return True

    def _body_done(self) -> None:
        self._body_timer = _cancel(self._body_timer)

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self._inline is not None or (self.cycle is not None and not self.cycle.response_started):
            self._refuse(408, "the request did not arrive in time")

    def shutdown(self) -> None:
        """Graceful stop (SIGTERM, or this worker replaced on SIGHUP). uvicorn closes every
        connection with no request under way, including one just accepted whose request is still
        in the socket buffer: that caller would see its connection reset. A connection whose
        request head is pending gets a second to send it, is answered, then closed; uvicorn waits
        for it as for any request in flight."""
        if self._stopped:
            return  # refused or lingering: it closes on its own, shortly
        if self._inline is not None:
            self._closing = True  # its body is arriving (bounded by its own timer): answer, then close
            return
        if self._head_timer is None:
            super().shutdown()
            return
        self._closing = True
        self._disarm()
        self._head_timer = self.loop.call_later(min(self.head_time, 1.0), self._too_slow)

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.head_limit:
            self._refusal = (431, self._head_message())
            raise _Refused()

    def _head_message(self) -> str:
        return f"the request head is larger than {self.head_limit} bytes"

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_time, self._too_slow)

    def _disarm(self) -> None:
        self._head_timer = _cancel(self._head_timer)

    def _too_slow(self) -> None:
        self._head_timer = None
        self._refuse(408, "the request did not arrive in time")

    # ------------------------------------------------------------------ refusals, in turn
    # A refusal ends the connection: nothing more is read. It goes out after the answers to the
    # requests before it (pipelined), or a client would take it for the answer to an earlier one.
    def _answers_due(self, waiting=None) -> bool:
        running = self._running
        return bool(self.pipeline) or (running is not None and running is not waiting
                                       and not running.response_complete)

    def _refuse(self, status: Optional[int], message: str = "") -> None:
        """Answer `status` (None: nothing) once the answers due are out, then close lingering."""
        waiting = self.cycle if self._pending is _BODY and self.cycle is not None else None
        if waiting is not None and not waiting.response_started:
            # The refusal answers the request whose body was arriving. Its application waits
            # for that body (receive() sees the disconnect once closed), or it is queued behind
            # another request: then it is dropped, and the refusal goes out after that answer.
            for entry in self.pipeline:
                if entry[0] is waiting:
                    self.pipeline.remove(entry)
                    break
        self._stopped = True
        self._inline = None
        self._refusal = None if status is None else (status, message)
        self._disarm()
        self._body_done()
        self._unset_keepalive_if_required()
        if not self._answers_due(waiting):
            self._send_refusal()
        # else on_response_complete sends it; the request under way is bounded by its own time

    def _send_refusal(self) -> None:
        if self.transport.is_closing():
            return
        if self._refusal is not None:
            status, message = self._refusal
            data = self._app.error_body(message) if self._app is not None else b'{"error":"%s"}' % message.encode()
            self.transport.write(self._answer(status, b"application/json", data, keep_alive=False))
        self._linger()

    def _answer(self, status: int, content_type: bytes, data: bytes, keep_alive: bool) -> bytes:
        """One whole answer written by this protocol (inline answers, refusals): status line,
        the server's default headers, then ours."""
        head = [STATUS_LINE[status]]
        head += [b"%s: %s\r\n" % h for h in self.server_state.default_headers]
        head.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(data)))
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"\r\n", data)
        return b"".join(head)

    def _linger(self) -> None:
        """Close after the answer has gone: shut the write side, drop what the client still sends
        until it closes or LINGER is up. Closing at once with unread bytes would reset the
        connection, and the client could lose the answer."""
        self._disarm()
        self._body_done()
        self._unset_keepalive_if_required()
        if not self.transport.can_write_eof():  # TLS
            self.transport.close()
            return
        self.transport.write_eof()
        self._linger_timer = self.loop.call_later(min(LINGER, self.head_time), self.transport.close)


def _application(app):
    """manverify's App under uvicorn's middleware wrappers (None when serving something else)."""
    from .app import App

    for _ in range(8):
        if isinstance(app, App):
            return app
        app = getattr(app, "app", None)
    return None
