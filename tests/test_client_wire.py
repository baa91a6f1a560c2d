"""The header block as the client reads it (runner/client/wire.py): names in any case,
repeated headers joined, folded lines joined, lines without a colon ignored."""

from __future__ import annotations

from runner.client.wire import parse_header_lines


def test_header_lines_become_case_insensitive_headers():
    headers = parse_header_lines([
        b"Content-Type: application/json; charset=utf-8\r\n",
        b"Set-Thing: one\r\n",
        b"set-thing: two\r\n",
        b"X-Folded: first\r\n",
        b"\t second\r\n",
        b"no colon here\r\n",
        b"Content-Disposition: attachment; filename=\"r\xe9sum\xe9.zip\"\r\n",
        b"\r\n",
    ])
    assert headers["content-type"] == headers.get("CONTENT-TYPE") == \
        "application/json; charset=utf-8"
    assert headers["Set-Thing"] == "one, two"
    assert headers["x-folded"] == "first second"
    assert "Content-Disposition" in headers and "no colon here" not in headers
    assert headers["content-disposition"].endswith('"r\u00e9sum\u00e9.zip"')  # ISO-8859-1
    assert headers.get_all("set-thing") == ["one, two"] and headers.get_all("nope") is None
