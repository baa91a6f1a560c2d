"""The simulator's request handler: HTTP/1.1 keep-alive, as the real service has.

werkzeug's development server closes every connection after one answer, because
``http.server`` cannot drain a request body the application left unread before it parses
the next request line.  A client of the real service keeps its connections, so against
werkzeug's server every request would pay for a new connection, which the runner never
pays in production and which would be most of what a per-Step CPU figure measures.  This
handler drains the body bytes the application leaves unread, so the
connection can serve the next request; a body it cannot account for (chunked, or more
than ``DRAIN_LIMIT`` left unread) closes the connection as before.  The application
sees the body through ``_BodyReader``, which stops at Content-Length: werkzeug drains
what the socket holds after each answer, which on a kept connection would otherwise
swallow the client's next request.  Faults that drop or
truncate a connection shut its socket down, which ends the keep-alive loop too.
"""

from __future__ import annotations

from typing import Any

from werkzeug.serving import WSGIRequestHandler

DRAIN_LIMIT = 1 << 20  # unread body bytes worth reading to keep a connection
IDLE_SECONDS = 60.0  # an idle kept connection is closed after this long


class _BodyReader:
    """``rfile`` as the application (and werkzeug) see it: the request's body and not a
    byte more, so nothing of the client's next request is read as part of this one
    (werkzeug's own drain after an answer reads whatever the socket holds)."""

    def __init__(self, raw: Any, length: int) -> None:
        self.raw = raw
        self.left = length

    def _allowed(self, size: int | None) -> int:
        return self.left if size is None or size < 0 else min(size, self.left)

    def read(self, size: int | None = -1) -> bytes:
        count = self._allowed(size)
        data = self.raw.read(count) if count else b""
        self.left -= len(data)
        return data

    def read1(self, size: int | None = -1) -> bytes:
        count = self._allowed(size)
        data = self.raw.read1(count) if count else b""
        self.left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        count = self._allowed(size)
        data = self.raw.readline(count) if count else b""
        self.left -= len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self.left]
        count = self.raw.readinto(view) if len(view) else 0
        self.left -= count or 0
        return count or 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class KeepAliveHandler(WSGIRequestHandler):
    """No access log on stderr (the request log is the simulator's record), and the
    connection kept for the client's next request when the body is accounted for."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    # werkzeug writes the headers and the body apart: on a kept connection Nagle's
    # algorithm would hold the body back for the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    _keep = False
    _idle = True  # waiting for a request line on a kept connection

    def handle_one_request(self) -> None:
        self._idle = True
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._idle = False  # a request line came: a time-out from here on is an error
        return super().parse_request()

    def log_error(self, format: str, *args: Any) -> None:
        # A kept connection idle for IDLE_SECONDS is closed: that is the keep-alive
        # contract (the client opens another), not an error for the simulator's stderr.
        if self._idle and format.startswith("Request timed out"):
            return
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        length = self._body_length()
        self._keep = length is not None
        if length is None:  # werkzeug's way: answer, then close
            super().run_wsgi()
            return
        body = _BodyReader(self.rfile, length)
        self.rfile = body  # type: ignore[assignment]  # read like a file; nothing else asked
        try:
            super().run_wsgi()
        finally:
            self.rfile = body.raw
            self._keep = False
        if body.left > DRAIN_LIMIT:
            self.close_connection = True
        elif body.left and not self.close_connection:
            try:  # the body the application left unread, so the next request line follows
                self.rfile.read(body.left)
            except OSError:
                self.close_connection = True

    def _body_length(self) -> int | None:
        """The request body's size when it can be drained; None when it cannot."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        value = self.headers.get("Content-Length", "0").strip() or "0"
        try:
            length = int(value)
        except ValueError:
            return None
        return length if length >= 0 else None

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug sends "Connection: close" with every answer; drop it while the body is
        # accounted for (http.server would otherwise close after this answer).
        if self._keep and keyword.lower() == "connection" and value.lower() == "close":
            return
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass
