"""uvicorn's httptools protocol with the two bounds it lacks: time and size of the request head.

uvicorn bounds idle kept-alive connections and, for its h11 parser only, the head's size. A
client that opens a connection and sends its request line and headers a byte at a time (slowloris)
would hold that connection, and one that sends megabytes of headers would grow a buffer. Here a
request head must arrive within server.limits.header_time seconds (else 408 and the connection
closes) and fit in server.limits.header bytes (else 431 and the connection closes); its body
must follow within server.limits.request_time seconds (else 408 and the connection closes). Each worker
serves its other connections meanwhile: nothing here blocks. And a graceful stop answers the
requests already sent on fresh connections instead of resetting them (shutdown()).
"""
from __future__ import annotations

import os
from typing import Optional

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIME_ENV = "MANVERIFY_SERVE_HEADER_TIME"
HEADER_BYTES_ENV = "MANVERIFY_SERVE_HEADER_BYTES"
REQUEST_TIME_ENV = "MANVERIFY_SERVE_REQUEST_TIME"
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadTooLarge(Exception):
    pass


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
        self._head_bytes = 0
        self._refused: Optional[int] = None
        self._closing = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._body_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        self._unset_keepalive_if_required()
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of a kept-alive connection's next request
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refused is not None:
                self._refuse(self._refused)
            else:
                self.send_400_response("Invalid HTTP request received.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self._closing and self.cycle is not None:
            self.cycle.keep_alive = False
        # The body must follow within request_time (a timer here costs about a microsecond;
        # asyncio.wait_for around the application's reads cost 35).
        self._body_timer = self.loop.call_later(self.body_time, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._body_done()
        super().on_message_complete()

    def _body_done(self) -> None:
        self._body_timer = _cancel(self._body_timer)

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.cycle is not None and not self.cycle.response_started:
            self._refuse(408)  # the application's receive() then sees the disconnect

    def shutdown(self) -> None:
        """Graceful stop (SIGTERM, or this worker replaced on SIGHUP). uvicorn closes every
        connection with no request under way, including one just accepted whose request is still
        in the socket buffer: that caller would see its connection reset. A connection whose
        request head is pending gets a second to send it, is answered, then closed; uvicorn waits
        for it as for any request in flight."""
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
            raise _HeadTooLarge()

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
