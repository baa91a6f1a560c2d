"""Access tokens: OIDC discovery, a client assertion signed by the certificate, a token cache.

The flow the vendor documents ("Get the Access Token"): read the identity service's
discovery document, sign a short JWT with the app's certificate (RS256; iss = sub = client
id, aud = the token endpoint, a fresh jti, five minutes of life, the certificate thumbprint
as ``x5t``/``kid``), and trade it for an access token of scope ``insights.graph.readwrite.all``
with the client-credentials grant.

The Graph API's docs also describe the client-secret flow: ``SecretAuth`` posts
``client_id`` and ``client_secret`` with the same grant and scope instead of an assertion
(the secret is a ``Secret``: it reaches the form and nothing else, never a log line).

``CertificateAuth`` is what the transport asks for a header.  The decisions (is the cached
token still good? is a refresh due?) are pure functions of a clock value; only ``_fetch`` and
``discover`` do I/O.  A token lives in a ``Secret`` and is never logged.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from runner import catalog
from runner.errors import AuthError, RequestRejected
from runner.secret import Secret

from .credentials import Credential
from .response import Response
from .transport import Transport, check_status, service_message

log = logging.getLogger("runner.client.auth")

DISCOVERY_PATH = "/.well-known/openid-configuration"
REFRESH_MARGIN = 300.0  # refresh five minutes before expiry...
REFRESH_FRACTION = 0.1  # ...or a tenth of the lifetime, for short-lived tokens


@dataclass(frozen=True)
class Discovery:
    issuer: str
    token_endpoint: str


@dataclass(frozen=True)
class Token:
    value: Secret
    issued_at: float
    expires_at: float
    scope: str
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    def refresh_at(self) -> float:
        """When to stop using this token and fetch the next one."""
        margin = min(REFRESH_MARGIN, REFRESH_FRACTION * self.lifetime)
        return self.expires_at - margin

    def usable(self, now: float) -> bool:
        return now < self.refresh_at()

    def header(self) -> str:
        value = self.value.reveal()
        return f"{self.token_type} {value.decode() if isinstance(value, bytes) else value}"


# ------------------------------------------------------------------- pure: the assertion


def client_assertion(
    credential: Credential,
    client_id: str,
    audience: str,
    *,
    now: float,
    jti: str | None = None,
    lifetime: int = catalog.ASSERTION_LIFETIME_SECONDS,
) -> str:
    """The signed JWT that proves we hold the certificate's private key."""
    issued = int(now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti or str(uuid.uuid4()),
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
    }
    headers = {"x5t": credential.x5t, "kid": credential.thumbprint_hex, "typ": "JWT"}
    return jwt.encode(claims, credential.signing_key(), algorithm="RS256", headers=headers)


def token_request_form(
    credential: Credential,
    client_id: str,
    token_endpoint: str,
    now: float,
    scope: str = catalog.SCOPE,
) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_assertion_type": catalog.CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(credential, client_id, token_endpoint, now=now),
        "scope": scope,
    }


def parse_token(body: Any, now: float, scope: str) -> Token:
    if not isinstance(body, Mapping) or not isinstance(body.get("access_token"), str):
        raise AuthError("the identity service answered without an access_token")
    try:
        lifetime = float(body.get("expires_in", catalog.TOKEN_LIFETIME_SECONDS))
    except (TypeError, ValueError):
        lifetime = float(catalog.TOKEN_LIFETIME_SECONDS)
    return Token(
        value=Secret(body["access_token"]),
        issued_at=now,
        expires_at=now + lifetime,
        scope=str(body.get("scope") or scope),
        token_type=str(body.get("token_type") or "Bearer").capitalize(),
    )


# ---------------------------------------------------------------------- the auth object


class CertificateAuth:
    """Gives the transport an ``Authorization`` header; fetches and refreshes tokens."""

    def __init__(
        self,
        transport: Transport,
        identity_url: str,
        client_id: str,
        credential: Credential,
        *,
        scope: str = catalog.SCOPE,
        clock: Callable[[], float] = time.time,
        assertion_clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport  # an unauthenticated transport to the identity service
        self.identity_url = identity_url.rstrip("/")
        self.client_id = client_id
        self.credential = credential
        self.scope = scope
        self.clock = clock  # decides when a token is due; tests move it to skip an hour
        self.assertion_clock = assertion_clock  # the identity service checks these times
        self._discovery: Discovery | None = None
        self._token: Token | None = None
        self._lock = threading.Lock()  # the scheduler's threads share one token
        self.fetches = 0  # how many tokens were fetched (tests and auth check read it)

    # -- what the transport calls

    def headers(self) -> dict[str, str]:
        return {"Authorization": self.token().header()}

    def unauthorized(self, sent: Mapping[str, str]) -> bool:
        """After a 401: drop the token that was refused (unless another thread already did)."""
        with self._lock:
            if self._token is not None and sent.get("Authorization") == self._token.header():
                log.info("the service refused the cached token; fetching a new one")
                self._token = None
        return True

    # -- tokens

    def token(self) -> Token:
        with self._lock:
            now = self.clock()
            if self._token is None or not self._token.usable(now):
                if self._token is not None:
                    log.debug("token refresh due (expires in %.0f s)", self._token.expires_at - now)
                self._token = self._fetch()
            return self._token

    def discovery(self) -> Discovery:
        if self._discovery is None:
            self._discovery = discover(self.transport, self.identity_url)
        return self._discovery

    def _form(self, endpoint: str) -> dict[str, str]:
        return token_request_form(
            self.credential, self.client_id, endpoint, self.assertion_clock(), self.scope
        )

    def _fetch(self) -> Token:
        endpoint = self.discovery().token_endpoint
        form = self._form(endpoint)
        token = request_token(self.transport, endpoint, form, self.clock(), self.scope)
        self.fetches += 1
        log.info("access token obtained (scope %s, expires in %.0f s)", token.scope, token.lifetime)
        return token


class SecretAuth(CertificateAuth):
    """The client-secret flow: the same grant, ``client_secret`` instead of an assertion."""

    def __init__(self, transport: Transport, identity_url: str, client_id: str,
                 secret: Secret, **kwargs: Any) -> None:
        super().__init__(transport, identity_url, client_id, None,  # type: ignore[arg-type]
                         **kwargs)
        self.secret = secret

    def _form(self, endpoint: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": str(self.secret.reveal()),
            "scope": self.scope,
        }


def request_token(
    transport: Transport,
    endpoint: str,
    form: Mapping[str, str],
    now: float,
    scope: str = catalog.SCOPE,
) -> Token:
    """The client-credentials grant: trade a signed assertion for an access token."""
    try:
        response = transport.request(
            "POST",
            endpoint,
            data=dict(form),
            operation="token request",
            check=_check_token_answer,
            headers={"Accept": "application/json"},
        )
    except RequestRejected as exc:  # _check_token_answer raises AuthError for 4xx already
        raise AuthError(str(exc)) from exc
    return parse_token(_json(response, "token endpoint"), now, scope)


def discover(transport: Transport, identity_url: str) -> Discovery:
    """The identity service's OIDC discovery document: where to ask for tokens."""
    url = identity_url.rstrip("/") + DISCOVERY_PATH
    try:
        response = transport.request("GET", url, operation="OIDC discovery")
    except RequestRejected as exc:
        raise AuthError(f"OIDC discovery at {identity_url} failed: {exc}") from exc
    body = _json(response, "OIDC discovery")
    endpoint = body.get("token_endpoint") if isinstance(body, Mapping) else None
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise AuthError(f"OIDC discovery at {identity_url} names no token_endpoint")
    return Discovery(issuer=str(body.get("issuer") or identity_url), token_endpoint=endpoint)


def _check_token_answer(response: Response) -> None:
    """Token endpoint refusals (400/401 invalid_client ...) are authentication failures."""
    if 400 <= response.status_code < 500 and response.status_code != 429:
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error", "") if isinstance(body, Mapping) else ""
        detail = service_message(response)
        what = f"{error}: {detail}" if error and detail and detail != error else (error or detail)
        raise AuthError(
            f"the identity service refused the client assertion ({response.status_code}"
            f"{', ' + what if what else ''})"
        )

    check_status(response)


def _json(response: Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise AuthError(f"{what}: the answer is not JSON") from exc
