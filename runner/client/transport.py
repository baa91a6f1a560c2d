"""One HTTP request, made reliable: auth header, retries, and the boundary for foreign errors.

``Transport.request`` sends a request through a ``requests.Session``, asks the auth object
for its header, refreshes once after a 401, and retries what ``RetryPolicy`` calls
transient (connection errors, 5xx, 429 with its Retry-After).  Every ``requests`` exception
and every unusable answer is converted here, once, into ``runner.errors``; nothing above
this module sees a ``requests`` exception.

Logs name the method, the path and the status, never a header, a body or a query string
that could hold a secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3

from runner import __version__
from runner.errors import (
    AuthError,
    RateLimited,
    RequestRejected,
    RunnerError,
    ServerError,
    UnreachableError,
)

from .retry import RetryPolicy, parse_retry_after

log = logging.getLogger("runner.client.transport")

USER_AGENT = f"insights-runner/{__version__} (+python-requests/{requests.__version__})"

# a function that looks at a response and raises a RunnerError when it is unusable
Check = Callable[[requests.Response], None]


class Auth(Protocol):
    def headers(self) -> dict[str, str]: ...

    def unauthorized(self, sent: Mapping[str, str]) -> bool:
        """A 401 answered the request that carried ``sent``: True when a retry may help."""
        ...


class _Session(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA settings once per
    host: requests walks all of ``os.environ`` (twice) on every request otherwise, about
    a quarter of the CPU of a small request, 200,000 of which make an access review on
    v2.  The environment does not change while a client lives."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        if proxies:  # given for this request: as requests does it
            return super().merge_environment_settings(  # type: ignore[no-any-return]
                url, proxies, stream, verify, cert)
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = self._environment[key] = super().merge_environment_settings(
                url, {}, stream, verify, cert)
        return {**settings, "proxies": dict(settings["proxies"])}


def new_session(*, verify_tls: bool = True, user_agent: str = USER_AGENT) -> requests.Session:
    session = _Session()
    session.verify = verify_tls
    session.trust_env = True  # honour HTTPS_PROXY / REQUESTS_CA_BUNDLE like other tools
    session.headers["User-Agent"] = user_agent
    session.headers["Accept"] = "application/json"
    return session


MAX_REFRESHES = 3


class Transport:
    def __init__(
        self,
        session: requests.Session,
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
    ) -> requests.Response:
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
                check(response)
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
    ) -> requests.Response:
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
        except requests.exceptions.SSLError as exc:
            raise UnreachableError(
                f"{_host(url)}: TLS failed ({_reason(exc)}); check the URL and the CA bundle "
                "(REQUESTS_CA_BUNDLE) or, for a test service only, set verify_tls: false"
            ) from exc
        except requests.exceptions.Timeout as exc:
            error = UnreachableError(f"{_host(url)}: timed out ({operation or _path(url)})")
            error.request_sent = not _before_sending(exc)
            raise error from exc
        except requests.exceptions.RequestException as exc:
            error = UnreachableError(f"{_host(url)}: cannot connect ({_reason(exc)})")
            error.request_sent = not _before_sending(exc)
            raise error from exc
        log.debug(
            "%s %s -> %d (%.3f s)",
            method,
            _path(url),
            response.status_code,
            time.monotonic() - started,
        )
        return response


def _before_sending(exc: requests.exceptions.RequestException) -> bool:
    """Did the request fail before any byte of it left (connection refused, DNS, connect
    time-out)?  Then the service cannot have acted on it."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError
                      | urllib3.exceptions.NameResolutionError)


def check_status(response: requests.Response) -> None:
    """The HTTP status alone: 2xx passes, 429 and 5xx are transient, other 4xx are rejections."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = service_message(response)
    where = _path((response.request.url if response.request else None) or response.url or "")
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


def service_message(response: requests.Response) -> str:
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


def _reason(exc: Exception) -> str:
    # urllib3 nests the useful part deep inside; keep the innermost message, short.
    inner: BaseException | None = exc
    while inner is not None and inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None) or inner
    text = str(reason)
    return text.split(": ", 1)[-1][:200] if text else type(exc).__name__
