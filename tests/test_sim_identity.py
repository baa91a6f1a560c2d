"""The simulator's identity service: discovery, the client-credentials grant with a signed
client assertion, and the 401s of the Insights endpoints."""

from __future__ import annotations

import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sim_support import assertion, call, headers, token_request

from runner import catalog


def test_discovery_names_the_token_endpoint(sim):
    doc = requests.get(f"{sim.identity_url}/.well-known/openid-configuration", timeout=5).json()
    assert doc["issuer"] == sim.identity_url
    assert doc["token_endpoint"] == sim.token_endpoint
    assert catalog.SCOPE in doc["scopes_supported"]
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]


def test_assertion_signed_with_the_pfx_gets_a_token(sim):
    response = token_request(sim, assertion(sim))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"  # noqa: S105
    assert body["expires_in"] == 3600
    assert body["scope"] == catalog.SCOPE
    assert sim.log.requests("token")[-1].client_id == sim.client_id
    assert "client_assertion" not in sim.log.requests("token")[-1].fields


@pytest.fixture(scope="module")
def stranger_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("case", ["forged", "audience", "expired", "too_long", "sub", "no_jti",
                                  "unknown_client"])
def test_bad_assertions_are_refused_as_invalid_client(sim, stranger_key, case):
    now = int(time.time())
    claims = {
        "forged": {},
        "audience": {"aud": f"{sim.identity_url}/somewhere-else"},
        "expired": {"exp": now - 10, "iat": now - 310, "nbf": now - 310},
        "too_long": {"exp": now + 3600},
        "sub": {"sub": "someone-else"},
        "no_jti": {"jti": None},
        "unknown_client": {"iss": "not-registered", "sub": "not-registered"},
    }[case]
    key = stranger_key if case == "forged" else None
    response = token_request(sim, assertion(sim, key=key, **claims))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


def test_a_replayed_jti_is_refused(sim):
    signed = assertion(sim)
    assert token_request(sim, signed).status_code == 200
    again = token_request(sim, signed)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_client",
                            "error_description": "client_assertion jti was already used"}


def test_wrong_scope_and_grant_type(sim):
    assert token_request(sim, assertion(sim), scope="other.scope").json()["error"] == \
        "invalid_scope"
    assert token_request(sim, assertion(sim), grant_type="password").json()["error"] == \
        "unsupported_grant_type"
    assert token_request(sim, assertion(sim),
                         client_assertion_type="secret").json()["error"] == "invalid_client"


def test_api_answers_401_without_a_good_token(sim):
    missing = call(sim, "user_summary", {}, {"StartPage": 1})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = call(sim, "user_summary", {"Authorization": "Bearer not-a-token"}, {"StartPage": 1})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_expire_tokens_makes_every_issued_token_401(sim, sim_auth):
    assert call(sim, "user_summary", sim_auth, {"StartPage": 1}).status_code == 200
    sim.expire_tokens()
    refused = call(sim, "user_summary", sim_auth, {"StartPage": 1})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert call(sim, "user_summary", headers(sim), {"StartPage": 1}).status_code == 200


def test_tokens_expire_after_the_configured_lifetime():
    from runner.sim import SimConfig, Simulator

    now = [1_000_000.0]
    with Simulator(SimConfig(token_lifetime=5, clock=lambda: now[0])) as sim:
        response = token_request(sim, assertion(sim, exp=int(now[0]) + 300, iat=int(now[0]),
                                                nbf=int(now[0])))
        assert response.json()["expires_in"] == 5
        auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
        assert call(sim, "user_summary", auth, {"StartPage": 1}).status_code == 200
        now[0] += 6
        assert call(sim, "user_summary", auth, {"StartPage": 1}).status_code == 401
