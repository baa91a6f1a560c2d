"""``http.client``'s response, with the header block read into ``Headers`` directly.

``http.client`` hands every header block to ``email.parser`` (a feed parser, policies,
header objects): about 40% of the CPU of a small request once ``requests`` was gone
(BENCHMARKS.md, "HTTP path").  HTTP headers need none of it: ``Name: value`` lines, an
obsolete folded line joined to the one before.  ``begin`` is http.client's own (3.11-3.13)
with that one call replaced; the rest of the class (bodies, chunks, ``readinto``) is the
standard library's.
"""

from __future__ import annotations

import http.client
from typing import Any

from .response import Headers


class HeaderBlock(Headers):
    """``Headers`` that also answers what ``http.client.HTTPResponse`` asks of its ``msg``."""

    def get_all(self, name: str, failobj: Any = None) -> Any:
        value = self.get(name)
        return failobj if value is None else [value]


def parse_header_lines(lines: list[bytes]) -> HeaderBlock:
    pairs: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("iso-8859-1").rstrip("\r\n")
        if not line:
            continue
        if line[0] in " \t" and pairs:  # obs-fold: the value goes on
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon:
            pairs.append((name.strip(), value.strip()))
    return HeaderBlock(pairs)


class FastResponse(http.client.HTTPResponse):
    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:  # a 100 Continue and its headers are skipped
            version, status, reason = self._read_status()  # type: ignore[attr-defined]
            if status != http.client.CONTINUE:
                break
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        headers = parse_header_lines(http.client._read_headers(self.fp))  # type: ignore[attr-defined]
        self.headers = self.msg = headers  # type: ignore[assignment]
        encoding = headers.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        length = headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
                or 100 <= status < 200 or self._method == "HEAD"):  # type: ignore[attr-defined]
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
