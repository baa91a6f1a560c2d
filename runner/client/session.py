"""HTTP/1.1 over ``http.client``: a keep-alive pool per host, TLS, proxies, redirects.

What ``requests.Session`` did for the runner, without its per-request machinery (settings
merged and the environment read on every request, hooks, cookies, adapters): about 0.8 ms
of CPU per small request against 0.2 ms here (BENCHMARKS.md, "HTTP path").  The proxy and
the TLS context are decided once per host (``environment``); a connection whose answer
was read to its end goes back to the pool, and one the server closed while it sat idle is
noticed before it is used again.

Every failure leaves as ``HTTPFailure``; ``transport`` turns it into ``runner.errors``.
"""

from __future__ import annotations

import base64
import http.client
import json as jsonlib
import logging
import select
import socket
import ssl
import sys
import threading
import weakref
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from runner import __version__

from . import environment
from .response import Headers, Response, StreamResponse, decode_body
from .wire import FastResponse

log = logging.getLogger("runner.client.session")

USER_AGENT = (f"insights-runner/{__version__} "
              f"(Python/{sys.version_info.major}.{sys.version_info.minor}; http.client)")
POOL_SIZE = 10  # idle connections kept per host (requests' default too)
MAX_REDIRECTS = 30
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HTTPFailure(Exception):
    """No usable answer.  ``kind``: "tls", "timeout" or "connect"; ``before_sending``: no
    byte of the request left, so the service cannot have acted on it."""

    def __init__(self, kind: str, reason: str, *, before_sending: bool) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.before_sending = before_sending


@dataclass(frozen=True)
class _Route:
    scheme: str
    host: str
    port: int
    proxy: tuple[str, int] | None  # (host, port) of an http:// proxy
    proxy_auth: str | None  # Proxy-Authorization, from the proxy URL's user:password


class Session:
    def __init__(self, *, verify_tls: bool = True, user_agent: str = USER_AGENT) -> None:
        self.verify = verify_tls
        self.headers = {"User-Agent": user_agent, "Accept": "application/json",
                        "Accept-Encoding": "gzip, deflate"}
        self._lock = threading.Lock()
        self._idle: dict[_Route, list[http.client.HTTPConnection]] = {}
        self._routes: dict[tuple[str, str], _Route] = {}
        self._context: ssl.SSLContext | None = None
        # a session dropped without close() still closes its sockets (as urllib3's pools do)
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    def close(self) -> None:
        _close_idle(self._idle, self._lock)

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, data: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None, stream: bool = False,
                timeout: float = 60.0) -> Response:
        """One answer (after redirects); raises ``HTTPFailure`` when there is none."""
        url = _with_query(url, params)
        sent = {**self.headers, **(headers or {})}
        body: bytes | None = None
        if json is not None:
            body = jsonlib.dumps(json, allow_nan=False).encode()
            sent.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = urlencode(data, doseq=True).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        for _ in range(MAX_REDIRECTS):
            response = self._send(method, url, sent, body, stream, timeout)
            location = response.headers.get("Location")
            if response.status_code not in REDIRECTS or not location:
                return response
            response.close()
            target = urljoin(url, location)
            if urlsplit(target)[:2] != urlsplit(url)[:2]:  # another host: not our token
                sent.pop("Authorization", None)
            if response.status_code == 303 or (response.status_code in (301, 302)
                                                and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
                sent.pop("Content-Type", None)
            url = target
        raise HTTPFailure("connect", f"more than {MAX_REDIRECTS} redirects",
                          before_sending=False)

    # -- one exchange

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
              stream: bool, timeout: float) -> Response:
        parts = urlsplit(url)
        route = self._route(parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if route.proxy is not None and route.scheme == "http":
            target = url.split("#", 1)[0]  # a plain-HTTP proxy takes the whole URL
            if route.proxy_auth:
                headers = {**headers, "Proxy-Authorization": route.proxy_auth}
        connection = self._take(route, timeout)
        try:
            if connection.sock is None:
                connection.connect()
        except (ssl.SSLError, ssl.CertificateError) as exc:
            connection.close()
            raise HTTPFailure("tls", _reason(exc), before_sending=True) from exc
        except TimeoutError as exc:
            connection.close()
            raise HTTPFailure("timeout", "connect", before_sending=True) from exc
        except OSError as exc:
            connection.close()
            raise HTTPFailure("connect", _reason(exc), before_sending=True) from exc
        try:
            connection.request(method, target, body=body, headers=headers)
            raw = connection.getresponse()
            headers_read = raw.headers  # wire.FastResponse parsed them into Headers
            answer = headers_read if isinstance(headers_read, Headers) else Headers(
                raw.getheaders())
            if stream:
                return StreamResponse(raw.status, raw.reason, answer, url, raw,
                                      lambda reusable: self._give(route, connection, reusable))
            content = decode_body(raw.read(), answer)
        except TimeoutError as exc:
            connection.close()
            raise HTTPFailure("timeout", "read", before_sending=False) from exc
        except (OSError, http.client.HTTPException, zlib.error) as exc:
            connection.close()
            raise HTTPFailure("connect", _reason(exc), before_sending=False) from exc
        self._give(route, connection, not raw.will_close)
        return Response(raw.status, raw.reason, answer, content, url)

    # -- the pool

    def _route(self, scheme: str, netloc: str) -> _Route:
        route = self._routes.get((scheme, netloc))
        if route is None:
            route = self._routes[(scheme, netloc)] = _new_route(scheme, netloc)
        return route

    def _take(self, route: _Route, timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                idle = self._idle.get(route)
                connection = idle.pop() if idle else None
            if connection is None:
                return self._new(route, timeout)
            if connection.sock is not None and not _dropped(connection.sock):
                connection.timeout = timeout
                connection.sock.settimeout(timeout)
                return connection
            connection.close()  # the server closed it while it sat idle

    def _new(self, route: _Route, timeout: float) -> http.client.HTTPConnection:
        host, port = route.proxy or (route.host, route.port)
        log.debug("new connection to %s:%d%s", route.host, route.port,
                  f" through the proxy {host}:{port}" if route.proxy else "")
        connection: http.client.HTTPConnection
        if route.scheme == "http":
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            if self._context is None:
                try:
                    self._context = environment.tls_context(self.verify)
                except (OSError, ssl.SSLError) as exc:  # a CA bundle that is not one
                    raise HTTPFailure("tls", f"cannot use the CA bundle {environment.ca_bundle()}"
                                      f" ({_reason(exc)})", before_sending=True) from exc
            connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                     context=self._context)
            if route.proxy is not None:
                tunnel = {"Proxy-Authorization": route.proxy_auth} if route.proxy_auth else None
                connection.set_tunnel(route.host, route.port, headers=tunnel)
        connection.response_class = FastResponse
        return connection

    def _give(self, route: _Route, connection: http.client.HTTPConnection,
              reusable: bool) -> None:
        if reusable and connection.sock is not None:
            with self._lock:
                idle = self._idle.setdefault(route, [])
                if len(idle) < POOL_SIZE:
                    idle.append(connection)
                    return
        connection.close()


def _close_idle(idle: dict[_Route, list[http.client.HTTPConnection]],
                lock: threading.Lock) -> None:
    with lock:
        connections = [c for kept in idle.values() for c in kept]
        idle.clear()
    for connection in connections:
        connection.close()


def _new_route(scheme: str, netloc: str) -> _Route:
    if scheme not in ("http", "https"):
        raise HTTPFailure("connect", f"no {scheme or 'scheme'}:// URLs", before_sending=True)
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        host, port = parts.hostname or "", parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise HTTPFailure("connect", str(exc), before_sending=True) from exc
    proxy_url = environment.proxy_for(f"{scheme}://{netloc}")
    if proxy_url is None:
        return _Route(scheme, host, port, None, None)
    proxy = urlsplit(proxy_url)
    if proxy.scheme != "http" or not proxy.hostname:
        raise HTTPFailure("connect", f"the proxy must be an http:// URL (got {proxy.scheme}://)",
                          before_sending=True)
    auth = None
    if proxy.username is not None:
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        auth = "Basic " + base64.b64encode(pair).decode()
    return _Route(scheme, host, port, (proxy.hostname, proxy.port or 80), auth)


def _with_query(url: str, params: Mapping[str, Any] | None) -> str:
    """``params`` appended as requests appended them: repeated keys for lists, ``None``
    left out."""
    if not params:
        return url
    pairs = [(key, value) for key, value in params.items() if value is not None]
    query = urlencode(pairs, doseq=True)
    if not query:
        return url
    base, _, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}#{fragment}" if fragment else joined


def _dropped(sock: socket.socket) -> bool:
    """An idle kept connection that is readable has been closed by the server (or holds
    bytes nobody asked for): either way it cannot carry the next request."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _reason(exc: BaseException) -> str:
    """A short reason: the OS's words for a socket error, the class for the rest."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return text[:200] if text else type(exc).__name__
