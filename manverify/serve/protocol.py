"""uvicorn's httptools protocol with the two bounds it lacks: time and size of the request head.

uvicorn bounds idle kept-alive connections and, for its h11 parser only, the head's size. A
client that opens a connection and sends its request line and headers a byte at a time (slowloris)
would hold that connection, and one that sends megabytes of headers would grow a buffer. Here a
request head must arrive within server.limits.header_time seconds (else 408 and the connection
closes) and fit in server.limits.header bytes (else 431 and the connection closes); its body
must follow within server.limits.request_time seconds (else 408 and the connection closes). Each worker
serves its other connections meanwhile: nothing here blocks. And a graceful stop answers the
requests already sent on fresh connections instead of resetting them (shutdown()).

A POST that needs nothing but CPU (App.takes_inline: a verification with fetching off, a signing),
authenticated and with an acceptable head, is answered here, from the parser's callbacks, once its
body is in, instead of through an ASGI task: the task, its event, the message dicts and uvicorn's
response writer cost about as much CPU as the verification (benches/serve_load.py). Everything
else (and such a POST pipelined behind a request still under way) goes the ASGI way.
"""
from __future__ import annotations

import os
from typing import Any, List, NamedTuple, Optional

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

HEADER_TIME_ENV = "MANVERIFY_SERVE_HEADER_TIME"
HEADER_BYTES_ENV = "MANVERIFY_SERVE_HEADER_BYTES"
REQUEST_TIME_ENV = "MANVERIFY_SERVE_REQUEST_TIME"
_REASONS = {408: b"Request Timeout", 413: b"Content Too Large", 431: b"Request Header Fields Too Large"}


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
        self._pending = None  # _HEAD or _BODY while a request's head or body is still to come
        self._head_bytes = 0
        self._refused: Optional[int] = None
        self._closing = False
        self._app = _application(self.app)
        self._inline: Optional[_Inline] = None
        self._inline_size = 0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._body_done()
        self._inline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refused is not None:
                self._refuse(self._refused)
            else:
                self.send_400_response("Invalid HTTP request received.")
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
        self._head_bytes = 0
        self._pending = _HEAD

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        # The body must follow within request_time (data_received sets the timer when it has
        # not all come; asyncio.wait_for around the application's reads cost 35 µs a request).
        self._pending = _BODY
        if self._take_inline():
            return
        super().on_headers_complete()
        if self._closing and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self._inline is None:
            super().on_body(body)
            return
        self._inline_size += len(body)
        if self._inline_size > self._inline.setup.server.limits["body"]:
            self._inline = None  # the head said less (or chunked): no reason to read on
            self._refused = 413
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
        head = [STATUS_LINE[status]]
        head += [b"%s: %s\r\n" % h for h in self.server_state.default_headers]
        head.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(data)))
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"\r\n", data)
        self.transport.write(b"".join(head))
        self.server_state.total_requests += 1
        if not keep_alive:
            self.transport.close()
            return
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _take_inline(self) -> bool:
        """Whether this request is answered inline (see the module's docstring)."""
        if self._app is None or self.parser.get_method() != b"POST" or self.expect_100_continue:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind a request under way: answers go out in order
        if self.limit_concurrency is not None and len(self.connections) >= self.limit_concurrency:
            return False  # uvicorn's 503
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
            self._inline = None
            self._refuse(408)  # an ASGI application's receive() then sees the disconnect

    def shutdown(self) -> None:
        """Graceful stop (SIGTERM, or this worker replaced on SIGHUP). uvicorn closes every
        connection with no request under way, including one just accepted whose request is still
        in the socket buffer: that caller would see its connection reset. A connection whose
        request head is pending gets a second to send it, is answered, then closed; uvicorn waits
        for it as for any request in flight."""
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
            self._refused = 431
            raise _Refused()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_time, self._too_slow)

    def _disarm(self) -> None:
        self._head_timer = _cancel(self._head_timer)

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # the head arrived; the body has its own timer
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        self._refused = status
        if self.transport.is_closing():
            return
        msg = b'{"error":"%s"}' % _REASONS[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(msg), msg))
        self.transport.close()


def _application(app):
    """manverify's App under uvicorn's middleware wrappers (None when serving something else)."""
    from .app import App

    for _ in range(8):
        if isinstance(app, App):
            return app
        app = getattr(app, "app", None)
    return None
