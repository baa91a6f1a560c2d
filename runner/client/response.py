"""An HTTP answer as the client reads it: status, headers, body; nothing foreign leaks out.

``Response`` holds a whole body (JSON answers, errors).  ``StreamResponse`` keeps the body
on the wire for ``download``: ``raw`` is ``http.client``'s response, read with
``readinto`` straight into the caller's buffers; ``release`` gives the connection back to
the pool once every byte was read, ``close`` drops it otherwise.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Headers(dict[str, str]):
    """Header names in any case (``headers["content-type"]`` is ``Content-Type``); a
    repeated header is one value joined with ", ", as HTTP allows."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        for name, value in pairs:
            key = name.lower()
            earlier = super().get(key)
            super().__setitem__(key, value if earlier is None else f"{earlier}, {value}")

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class Response:
    def __init__(self, status: int, reason: str, headers: Headers, body: bytes,
                 url: str) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.content = body
        self.url = url  # what was asked, query included: never put it in a message or log

    def json(self) -> Any:
        """The body as JSON; a ``ValueError`` when it is not (empty, HTML, bad UTF-8)."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers), errors="replace")

    def close(self) -> None:
        """Nothing is held: the body was read and the connection went back to its pool."""

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamResponse(Response):
    """The body still on the connection.  ``content`` is empty until ``read_all``."""

    def __init__(self, status: int, reason: str, headers: Headers, url: str, raw: Any,
                 done: Callable[[bool], None]) -> None:
        super().__init__(status, reason, headers, b"", url)
        self.raw = raw  # http.client.HTTPResponse
        self._done: Callable[[bool], None] | None = done  # done(reusable)

    def read_all(self) -> bytes:
        """The rest of the body (an error answer's few bytes), then the connection is free."""
        self.content = decode_body(self.raw.read(), self.headers)
        self.release()
        return self.content

    def json(self) -> Any:
        if not self.content and not self.raw.isclosed():
            self.read_all()
        return super().json()

    @property
    def text(self) -> str:
        if not self.content and not self.raw.isclosed():
            self.read_all()
        return super().text

    def decoded(self, size: int) -> Iterator[bytes]:
        """The body in pieces of about ``size`` bytes, decoded as its Content-Encoding says."""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        decoder = _decoder(encoding)
        while chunk := self.raw.read1(size):
            if decoder is not None:
                chunk = decoder.decompress(chunk)
            if chunk:
                yield chunk
        if decoder is not None and (tail := decoder.flush()):
            yield tail

    def release(self) -> None:
        """Every byte was read: the connection serves the next request (if the server
        keeps it); anything else closes it."""
        if self._done is not None:
            done, self._done = self._done, None
            done(self.raw.isclosed() and not self.raw.will_close and
                 self.raw.length in (0, None))

    def close(self) -> None:
        if self._done is not None:
            done, self._done = self._done, None
            done(False)


def _charset(headers: Headers) -> str:
    for part in headers.get("Content-Type", "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value.strip('"'):
            return value.strip('"')
    return "utf-8"


def _decoder(encoding: str) -> Any:
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None  # identity (or one we never asked for: passed through as it is)


def decode_body(body: bytes, headers: Headers) -> bytes:
    decoder = _decoder(headers.get("Content-Encoding", "identity").strip().lower())
    return body if decoder is None else decoder.decompress(body) + decoder.flush()
