"""Tokens from the simulator's identity service: each credential form, each refused assertion,
refresh before expiry and after an early 401."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import replace

import jwt
import pytest
from client_certs import certificate, rsa_key
from client_support import Sleeps, closed_port, make_client

from runner import catalog
from runner.client.auth import client_assertion, discover, request_token, token_request_form
from runner.client.connection import CertificateSource, settings_for_simulator
from runner.client.credentials import load_certificate, load_pfx
from runner.client.transport import MAX_REFRESHES, Transport, new_session
from runner.errors import AuthError, UnreachableError
from runner.sim import Faults


def _summary_page(client) -> list:
    return next(client.iter_pages("user_summary", {"page_size": 5})).records


def test_pfx_with_password(sim):
    client = make_client(sim)
    assert len(_summary_page(client)) == 5
    assert client.auth.fetches == 1
    assert client.auth.token().scope == catalog.SCOPE


def test_pem_key_and_certificate_files(sim):
    creds = sim.credentials
    settings = replace(
        settings_for_simulator(sim),
        certificate=CertificateSource(path=creds.cert_pem_path, key_path=creds.key_pem_path),
    )
    from runner.client.api import InsightsClient

    with InsightsClient(settings) as client:
        assert len(_summary_page(client)) == 5


def test_pem_in_one_file(sim, tmp_path):
    creds = sim.credentials
    both = tmp_path / "app.pem"
    both.write_bytes(creds.cert_pem_path.read_bytes() + creds.key_pem_path.read_bytes())
    from runner.client.api import InsightsClient

    with InsightsClient(settings_for_simulator(sim), credential=load_certificate(both)) as client:
        assert len(_summary_page(client)) == 5


def test_base64_pfx_from_the_environment(sim, monkeypatch):
    creds = sim.credentials
    monkeypatch.setenv("CI_PFX", base64.b64encode(creds.pfx_path.read_bytes()).decode())
    import os

    source = CertificateSource(pfx_base64=os.environ["CI_PFX"], password=creds.pfx_password)
    settings = replace(settings_for_simulator(sim), certificate=source)
    from runner.client.api import InsightsClient

    with InsightsClient(settings) as client:
        assert len(_summary_page(client)) == 5


# ------------------------------------------------------------------ refused assertions


@pytest.fixture
def identity(sim):
    transport = Transport(new_session(), sleep=Sleeps())
    credential = load_pfx(sim.credentials.pfx_path, sim.credentials.pfx_password)
    return transport, credential, discover(transport, sim.identity_url).token_endpoint


def _signed(credential, **claims) -> str:
    now = int(time.time())
    body = {
        "iss": claims.pop("iss", None),
        "sub": None,
        "aud": None,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    body.update(claims)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None},
        credential.signing_key(),
        algorithm="RS256",
        headers={"x5t": credential.x5t},
    )


def _form(sim, endpoint, assertion, **extra) -> dict:
    form = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_assertion_type": catalog.CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": catalog.SCOPE,
    }
    form.update(extra)
    return form


REFUSALS = {
    "unknown client": lambda sim, ep, cred: _form(
        sim, ep, client_assertion(cred, "not-registered", ep, now=time.time()), client_id=""
    ),
    "wrong audience": lambda sim, ep, cred: _form(
        sim, ep, client_assertion(cred, sim.client_id, ep + "/other", now=time.time())
    ),
    "expired": lambda sim, ep, cred: _form(
        sim, ep, client_assertion(cred, sim.client_id, ep, now=time.time() - 900)
    ),
    "lives too long": lambda sim, ep, cred: _form(
        sim, ep, client_assertion(cred, sim.client_id, ep, now=time.time(), lifetime=3600)
    ),
    "sub is not the client": lambda sim, ep, cred: _form(
        sim, ep, _signed(cred, iss=sim.client_id, sub="someone-else", aud=ep)
    ),
    "no jti": lambda sim, ep, cred: _form(
        sim, ep, _signed(cred, iss=sim.client_id, sub=sim.client_id, aud=ep, jti=None)
    ),
    "wrong scope": lambda sim, ep, cred: _form(
        sim, ep, client_assertion(cred, sim.client_id, ep, now=time.time()), scope="openid"
    ),
    "not signed with RS256": lambda sim, ep, cred: _form(
        sim,
        ep,
        jwt.encode(
            {
                "iss": sim.client_id,
                "sub": sim.client_id,
                "aud": ep,
                "exp": int(time.time()) + 300,
                "jti": "x",
            },
            "k" * 32,
            algorithm="HS256",
        ),
    ),
}
EXPECTED = {
    "unknown client": "unknown client",
    "wrong audience": "aud must be the token endpoint",
    "expired": "expired",
    "lives too long": "longer than 5 minutes",
    "sub is not the client": "sub must equal iss",
    "no jti": "jti",
    "wrong scope": "invalid_scope",
    "not signed with RS256": "RS256",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refused_assertion_is_a_clear_auth_error(sim, identity, case):
    transport, credential, endpoint = identity
    with pytest.raises(AuthError) as info:
        request_token(transport, endpoint, REFUSALS[case](sim, endpoint, credential), time.time())
    assert EXPECTED[case] in str(info.value)
    assert "refused the client assertion (400" in str(info.value)
    assert info.value.exit_code == 3


def test_a_reused_jti_is_refused(sim, identity):
    transport, credential, endpoint = identity
    form = token_request_form(credential, sim.client_id, endpoint, time.time())
    request_token(transport, endpoint, form, time.time())
    with pytest.raises(AuthError, match="jti was already used"):
        request_token(transport, endpoint, form, time.time())


def test_an_unregistered_certificate_is_refused(sim):
    key = rsa_key(2)
    from cryptography.hazmat.primitives import serialization

    from runner.client.api import InsightsClient
    from runner.client.credentials import Credential
    from runner.secret import Secret

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stranger = Credential(Secret(pem), certificate(key), "stranger.pfx")
    client = InsightsClient(settings_for_simulator(sim), credential=stranger, sleep=Sleeps())
    with pytest.raises(AuthError, match="signature does not match"):
        _summary_page(client)


# ------------------------------------------------------------------------ refreshing


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_refresh_before_expiry(sim):
    clock = FakeClock()
    client = make_client(sim, clock=clock)
    first = client.auth.token()
    assert first.lifetime == catalog.TOKEN_LIFETIME_SECONDS
    clock.now += first.lifetime - 301  # still more than five minutes left: keep it
    assert client.auth.token() is first
    clock.now += 2  # inside the last five minutes: a new one before the old one expires
    second = client.auth.token()
    assert second is not first and client.auth.fetches == 2
    assert sim.log.count("token", 200) == 2
    assert len(_summary_page(client)) == 5
    assert sim.log.count("user_summary", 401) == 0


def test_refresh_after_an_early_401(sim):
    client = make_client(sim)
    _summary_page(client)
    sim.expire_tokens()  # the service stops honouring every token it issued
    assert len(_summary_page(client)) == 5
    assert sim.log.count("user_summary", 401) == 1
    assert sim.log.count("token", 200) == 2


def test_a_401_after_refreshing_is_an_auth_error(sim):
    client = make_client(sim)
    sim.set_faults(Faults(token_early_expiry_rate=1.0))
    with pytest.raises(AuthError, match="even after a refresh") as info:
        _summary_page(client)
    assert info.value.exit_code == 3
    # the first try and one after each of the few refreshes a request may make
    assert sim.log.count("user_summary", 401) == 1 + MAX_REFRESHES


def test_identity_service_unreachable(sim):
    client = make_client(sim, identity_url=f"http://127.0.0.1:{closed_port()}/identity")
    with pytest.raises(UnreachableError, match="cannot connect") as info:
        _summary_page(client)
    assert info.value.exit_code == 3
