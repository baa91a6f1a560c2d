"""One HTTP request, made reliable: auth header, retries, and the boundary for foreign errors.

``Transport.request`` sends a request through a ``Session`` (``session.py``, over
``http.client``), asks the auth object for its header, refreshes once after a 401, and
retries what ``RetryPolicy`` calls transient (connection errors, 5xx, 429 with its
Retry-After).  Every ``HTTPFailure`` and every unusable answer is converted here, once,
into ``runner.errors``; nothing above this module sees a socket, TLS or http.client error.

Logs name the method, the path and the status, never a header, a body or a query string
that could hold a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from runner.errors import (
    AuthError,
    RateLimited,
    RequestRejected,
    RunnerError,
    ServerError,
    UnreachableError,
)

from .response import Response
from .retry import RetryPolicy, parse_retry_after
from .session import USER_AGENT, HTTPFailure, Session

log = logging.getLogger("runner.client.transport")

# a function that looks at a response and raises a RunnerError when it is unusable
Check = Callable[[Response], None]


class Auth(Protocol):
    def headers(self) -> dict[str, str]: ...

    def unauthorized(self, sent: Mapping[str, str]) -> bool:
        """A 401 answered the request that carried ``sent``: True when a retry may help."""
        ...


def new_session(*, verify_tls: bool = True, user_agent: str = USER_AGENT) -> Session:
    """Connections that honour HTTPS_PROXY / NO_PROXY / REQUESTS_CA_BUNDLE like other tools."""
    return Session(verify_tls=verify_tls, user_agent=user_agent)


MAX_REFRESHES = 3


class Transport:
    def __init__(
        self,
        session: Session,
        auth: Auth | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.sleep = sleep

    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str = "",
        check: Check | None = None,
        stream: bool = False,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> Response:
        """The response once ``check`` accepts it; raises a ``RunnerError`` otherwise."""
        policy = retry or self.retry
        check = check or check_status
        attempt, slept, refreshes = 0, 0.0, 0
        while True:
            attempt += 1
            sent = dict(headers or {})
            if self.auth is not None:
                sent.update(self.auth.headers())
            try:
                response = self._send(method, url, sent, stream, operation, **kwargs)
                if response.status_code == 401 and self.auth is not None:
                    response.close()
                    # A 401 means the token we sent expired or was revoked: refresh and
                    # retry.  Another thread may revoke the next one too (tokens are
                    # shared), so allow a few; a fresh token refused again and again is a
                    # permission problem, not an expiry.
                    if refreshes < MAX_REFRESHES and self.auth.unauthorized(sent):
                        refreshes += 1  # not counted as a retry
                        attempt -= 1
                        log.info("%s %s: 401, refreshing the token once", method, _path(url))
                        continue
                    raise AuthError(
                        f"{operation or _path(url)}: the service refused the access token (401) "
                        "even after a refresh; check the app's permissions (scope)"
                    )
                try:
                    check(response)
                except RunnerError:
                    response.close()  # a streamed body left unread: close it, do not leak it
                    raise
                return response
            except RunnerError as error:
                delay = policy.next_delay(error, attempt, slept)
                if delay is None:
                    raise
                log.info("%s %s: %s; retry %d in %.2f s", method, _path(url), error, attempt, delay)
                self.sleep(delay)
                slept += delay

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        stream: bool,
        operation: str,
        **kwargs: Any,
    ) -> Response:
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                stream=stream,
                timeout=kwargs.pop("timeout", self.timeout),
                **kwargs,
            )
        except HTTPFailure as exc:
            if exc.kind == "tls":
                raise UnreachableError(
                    f"{_host(url)}: TLS failed ({exc.reason}); check the URL and the CA bundle "
                    "(REQUESTS_CA_BUNDLE) or, for a test service only, set verify_tls: false"
                ) from exc
            if exc.kind == "timeout":
                error = UnreachableError(f"{_host(url)}: timed out ({operation or _path(url)})")
            else:
                error = UnreachableError(f"{_host(url)}: cannot connect ({exc.reason})")
            error.request_sent = not exc.before_sending
            raise error from exc
        if log.isEnabledFor(logging.DEBUG):  # _path parses the URL: not for a line not logged
            log.debug("%s %s -> %d (%.3f s)", method, _path(url), response.status_code,
                      time.monotonic() - started)
        return response


def check_status(response: Response) -> None:
    """The HTTP status alone: 2xx passes, 429 and 5xx are transient, other 4xx are rejections."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = service_message(response)
    where = _path(response.url)
    if status == 429:
        raise RateLimited(
            f"{where}: rate limited (429){_tail(message)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=status,
        )
    if status >= 500:
        raise ServerError(f"{where}: server error {status}{_tail(message)}", status=status)
    if status in (401, 403):
        raise AuthError(f"{where}: {status} {response.reason or ''}{_tail(message)}".rstrip())
    raise RequestRejected(
        f"{where}: the service rejected the request ({status}){_tail(message)}", status=status
    )


def service_message(response: Response) -> str:
    """The service's own words about a failure, from a JSON body or a short text body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:300]
    if not isinstance(body, Mapping):
        return ""
    parts = []
    for key in ("message", "error_description", "description", "error", "title", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            parts.append(value.strip())
            break
    errors = body.get("errors")  # ASP.NET ProblemDetails: {field: [messages]}
    if isinstance(errors, Mapping):
        parts += [
            f"{field}: {'; '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for field, msgs in errors.items()
        ]
    return " ".join(parts)[:500]


def _tail(message: str) -> str:
    return f": {message}" if message else ""


def _path(url: str) -> str:
    """The URL's path only: query strings are kept out of messages and logs."""
    return urlsplit(url).path or "/"


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url
