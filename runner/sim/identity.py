"""The simulated AOS identity service: OIDC discovery, the client-credentials token endpoint
(with a signed client assertion, or with a client secret as the Graph API docs describe),
and checking the bearer tokens it issued.  Both generations of the API share it.

What the token endpoint checks, in order, and what a client sees when a check fails (an
IdentityServer answers 400 with an OAuth error; the description names the failed check):

* ``grant_type`` is ``client_credentials``                       -> ``unsupported_grant_type``
* with a ``client_secret``: no assertion beside it, ``client_id`` names a client with a
  registered secret, and the secret matches (compared as SHA-256 digests, which is all the
  service keeps)                                                 -> ``invalid_client``
* ``client_assertion_type`` is the JWT-bearer type, assertion present -> ``invalid_client``
* the assertion's ``iss`` is a registered client, ``sub`` = ``iss`` -> ``invalid_client``
* RS256 signature verifies against a registered, unexpired certificate -> ``invalid_client``
* ``aud`` is the token endpoint; ``exp`` present, in the future and at most about five
  minutes ahead; ``jti`` present and never seen before              -> ``invalid_client``
* ``scope`` is exactly ``insights.graph.readwrite.all``            -> ``invalid_scope``

Access tokens are JWTs (HS256 with a key the simulator keeps) so clients may read ``exp``;
the service remembers which it revoked (``expire_all``, early-expiry faults).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509

from runner import catalog

TOKEN_PATH = "connect/token"  # noqa: S105 - a path, not a secret
DISCOVERY_PATH = ".well-known/openid-configuration"
ASSERTION_SLACK_SECONDS = 60  # a client's five minutes plus its clock drift
ACCESS_AUDIENCE = "insights"


class OAuthError(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


class Unauthorized(Exception):
    """A bearer token the Insights endpoints refuse; ``error`` goes in WWW-Authenticate."""

    def __init__(self, description: str, error: str | None = "invalid_token"):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class IdentityService:
    url: str
    clock: Callable[[], float]
    token_lifetime: float = catalog.TOKEN_LIFETIME_SECONDS
    clients: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    client_secrets: dict[str, list[bytes]] = field(default_factory=dict)  # SHA-256 digests
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _seen_jti: set[tuple[str, str]] = field(default_factory=set)
    _revoked: set[str] = field(default_factory=set)
    _decoded: dict[str, dict[str, Any]] = field(default_factory=dict)
    _uses: dict[str, int] = field(default_factory=dict)  # accepted requests per token (jti)
    _serial: int = 0
    _valid_from_serial: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/{TOKEN_PATH}"

    def register(self, client_id: str, certificate: x509.Certificate) -> None:
        self.clients.setdefault(client_id, []).append(certificate)

    def register_secret(self, client_id: str, secret: str) -> None:
        self.client_secrets.setdefault(client_id, []).append(_digest(secret))

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/openid-configuration/jwks",
            "token_endpoint": self.token_endpoint,
            "scopes_supported": [catalog.SCOPE],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["token"],
            "claims_supported": ["sub", "client_id", "scope"],
        }

    # ------------------------------------------------------------------ token endpoint

    def issue(self, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """Check a token request; the client id and the token response, or ``OAuthError``."""
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type",
                             f"grant_type {form.get('grant_type')!r} is not supported")
        if "client_secret" in form:
            client_id = self._verify_secret(form)
            self._check_scope(form)
            return client_id, {**self._token_response(client_id),
                               "ext_expires_in": int(self.token_lifetime) or 1}
        if form.get("client_assertion_type") != catalog.CLIENT_ASSERTION_TYPE:
            raise OAuthError("invalid_client",
                             f"client_assertion_type must be {catalog.CLIENT_ASSERTION_TYPE}")
        assertion = form.get("client_assertion") or ""
        if not assertion:
            raise OAuthError("invalid_client", "client_assertion is missing")
        client_id = self._verify_assertion(assertion, form.get("client_id"))
        self._check_scope(form)
        return client_id, self._token_response(client_id)

    @staticmethod
    def _check_scope(form: dict[str, str]) -> None:
        if form.get("scope", "").split() != [catalog.SCOPE]:
            raise OAuthError("invalid_scope",
                             f"the only scope this client may request is {catalog.SCOPE}")

    def _verify_secret(self, form: dict[str, str]) -> str:
        if form.get("client_assertion") or form.get("client_assertion_type"):
            raise OAuthError("invalid_client",
                             "send a client_secret or a client_assertion, not both")
        client_id = form.get("client_id") or ""
        if not client_id:
            raise OAuthError("invalid_client", "client_id is missing")
        known = self.client_secrets.get(client_id)
        if not known:
            raise OAuthError("invalid_client", "unknown client, or it has no client secret")
        given = _digest(form.get("client_secret") or "")
        if not any(hmac.compare_digest(given, digest) for digest in known):
            raise OAuthError("invalid_client", "the client secret is not valid")
        return client_id

    def _verify_assertion(self, assertion: str, form_client_id: str | None) -> str:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_client", f"client_assertion is not a JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_client", "client_assertion must be signed with RS256")
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or client_id not in self.clients:
            raise OAuthError("invalid_client", "unknown client (iss)")
        if form_client_id and form_client_id != client_id:
            raise OAuthError("invalid_client", "client_id does not match the assertion's iss")
        claims = self._verify_signature(assertion, client_id)
        if claims.get("sub") != client_id:
            raise OAuthError("invalid_client", "sub must equal iss (the client id)")
        now = self.clock()
        if claims["exp"] <= now:
            raise OAuthError("invalid_client", "client_assertion has expired")
        if claims["exp"] > now + catalog.ASSERTION_LIFETIME_SECONDS + ASSERTION_SLACK_SECONDS:
            raise OAuthError("invalid_client", "client_assertion lives longer than 5 minutes")
        for claim in ("nbf", "iat"):
            if claims.get(claim, 0) > now + ASSERTION_SLACK_SECONDS:
                raise OAuthError("invalid_client", f"client_assertion {claim} is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise OAuthError("invalid_client", "client_assertion has no jti")
        with self._lock:
            if (client_id, jti) in self._seen_jti:
                raise OAuthError("invalid_client", "client_assertion jti was already used")
            self._seen_jti.add((client_id, jti))
        return client_id

    def _verify_signature(self, assertion: str, client_id: str) -> dict[str, Any]:
        now = self.clock()
        failure = "the signature does not match the registered certificate"
        for cert in self.clients[client_id]:
            if cert.not_valid_after_utc.timestamp() < now:
                failure = "the registered certificate has expired"
                continue
            try:
                key: Any = cert.public_key()
                return jwt.decode(
                    assertion, key, algorithms=["RS256"],
                    audience=self.token_endpoint,
                    options={"require": ["exp", "aud", "iss", "sub"], "verify_exp": False,
                             "verify_iat": False, "verify_nbf": False},
                )
            except jwt.InvalidAudienceError as exc:
                raise OAuthError("invalid_client",
                                 f"aud must be the token endpoint {self.token_endpoint}") from exc
            except jwt.MissingRequiredClaimError as exc:
                raise OAuthError("invalid_client", f"client_assertion: {exc}") from exc
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise OAuthError("invalid_client", f"client_assertion: {exc}") from exc
        raise OAuthError("invalid_client", failure)

    def _token_response(self, client_id: str) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            self._serial += 1
            serial = self._serial
        claims = {
            "iss": self.url, "aud": ACCESS_AUDIENCE, "client_id": client_id, "sub": client_id,
            "scope": [catalog.SCOPE], "iat": int(now), "nbf": int(now),
            "exp": now + self.token_lifetime, "jti": uuid.uuid4().hex, "serial": serial,
        }
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return {"access_token": token, "expires_in": int(self.token_lifetime) or 1,
                "token_type": "Bearer", "scope": catalog.SCOPE}

    # ---------------------------------------------------------------- bearer tokens

    def authenticate(self, authorization: str | None) -> str:
        """The client id behind an ``Authorization`` header, or ``Unauthorized``."""
        if not authorization:
            raise Unauthorized("no bearer token", error=None)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header is not a bearer token", error=None)
        claims = self._decoded.get(token)
        if claims is None:
            try:
                claims = jwt.decode(token.strip(), self._key, algorithms=["HS256"],
                                    audience=ACCESS_AUDIENCE, options={"verify_exp": False})
            except jwt.PyJWTError as exc:
                raise Unauthorized("the token is not valid") from exc
            # Verifying costs more than the rest of a status poll: remember good tokens.
            if len(self._decoded) > 10_000:
                self._decoded.clear()
            self._decoded[token] = claims
        with self._lock:
            revoked = claims["jti"] in self._revoked or claims["serial"] <= self._valid_from_serial
        if revoked or claims["exp"] <= self.clock():
            raise Unauthorized(f"The token expired at '{claims['exp']:.0f}'")
        with self._lock:
            self._uses[claims["jti"]] = self._uses.get(claims["jti"], 0) + 1
        return claims["client_id"]

    def used_before(self, authorization: str | None) -> bool:
        """Whether the caller's (valid) token had been accepted before this request.

        Early expiry only strikes such tokens: a token fresh from a refresh always works
        once, so a client that refreshes once on a 401 is enough, as with the real service.
        """
        token = (authorization or "").partition(" ")[2].strip()
        claims = self._decoded.get(token)
        with self._lock:
            return claims is not None and self._uses.get(claims["jti"], 0) > 1

    def revoke(self, authorization: str | None) -> None:
        """Make the caller's token stop working now (an early-expiry fault)."""
        token = (authorization or "").partition(" ")[2].strip()
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], audience=ACCESS_AUDIENCE,
                                options={"verify_exp": False})
        except jwt.PyJWTError:
            return
        with self._lock:
            self._revoked.add(claims["jti"])

    def expire_all(self) -> None:
        """Every token issued so far stops working."""
        with self._lock:
            self._valid_from_serial = self._serial


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
