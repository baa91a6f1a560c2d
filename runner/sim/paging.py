"""Paging as the service does it: ``StartPage`` pages for the summaries, opaque
continuation tokens for the rest.

A token is ``base64url(json([cursor, query hash]) + mac)``: the cursor says where the next
page starts (a tuple of indices into the tenant), the query hash ties it to the request it
came from, and the MAC (keyed by the tenant seed, so tokens survive a restart of the same
simulator) makes a hand-edited token an error instead of a wrong page.  A page of token
paging is the last one when ``nextToken`` is null; a ``StartPage`` page is the last one when
it holds fewer records than ``PageSize`` (a page past the end is empty).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from typing import Any

from runner.sim.fields import BadRequest

Cursor = tuple[int, ...]
_MAC_BYTES = 8


def query_hash(operation: str, values: dict[str, Any]) -> str:
    """What makes two requests 'the same query': everything but the page size and token."""
    key = {k: v for k, v in values.items() if k not in ("token", "page_size", "start_page")}
    text = json.dumps([operation, key], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Tokens:
    def __init__(self, seed: int):
        self._key = hashlib.sha256(f"insights-sim-paging:{seed}".encode()).digest()

    def encode(self, cursor: Cursor, query: str) -> str:
        body = json.dumps([list(cursor), query], separators=(",", ":")).encode()
        mac = hmac.new(self._key, body, "sha256").digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")

    def decode(self, token: str, query: str, field: str, answer: str = "nextToken") -> Cursor:
        refused = BadRequest(f"The {field} is not valid for this query: pass the {answer} of "
                             f"the previous page of the same request.", field)
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raise refused from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, "sha256").digest()[:_MAC_BYTES]):
            raise refused
        cursor, token_query = json.loads(body)
        if token_query != query:
            raise refused
        return tuple(cursor)


def token_page(records: Iterator[tuple[Cursor, dict[str, Any]]], size: int, tokens: Tokens,
               query: str) -> tuple[list[dict[str, Any]], str | None]:
    """Take one page from ``records`` (already started at the request's cursor)."""
    page: list[dict[str, Any]] = []
    for cursor, record in itertools.islice(records, size + 1):
        if len(page) == size:
            return page, tokens.encode(cursor, query)
        page.append(record)
    return page, None


def start_page(total: int, page: int, size: int) -> range:
    """The indices of page ``page`` (1-based) of ``size`` records out of ``total``."""
    first = (page - 1) * size
    return range(min(first, total), min(first + size, total))
