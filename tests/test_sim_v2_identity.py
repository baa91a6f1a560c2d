"""The identity service's client-secret flow (Graph API docs) beside the certificate
assertion: both give tokens that every endpoint accepts; a wrong secret is refused."""

from __future__ import annotations

import requests
from sim_support import assertion, call, token_request
from sim_v2_support import call as call_v2

from runner import catalog


def secret_request(sim, **form):
    data = {"grant_type": "client_credentials", "client_id": sim.client_id,
            "client_secret": sim.client_secret, "scope": catalog.SCOPE}
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    return requests.post(sim.token_endpoint, data=data, timeout=10)


def test_discovery_offers_both_client_authentications(sim):
    doc = requests.get(f"{sim.identity_url}/.well-known/openid-configuration", timeout=5).json()
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"private_key_jwt",
                                                                 "client_secret_post"}


def test_a_client_secret_gets_a_token_the_api_accepts(sim):
    response = secret_request(sim)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"  # noqa: S105
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    assert body["scope"] == catalog.SCOPE
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert call(sim, "user_summary", auth, {"StartPage": 1}).status_code == 200
    entry = sim.log.requests("token")[-1]
    assert entry.client_id == sim.client_id
    assert sim.client_secret not in repr(sim.log.entries)


def test_both_flows_work_side_by_side(sim):
    by_secret = secret_request(sim).json()["access_token"]
    by_certificate = token_request(sim, assertion(sim)).json()["access_token"]
    for token in (by_secret, by_certificate):
        auth = {"Authorization": f"Bearer {token}"}
        assert call(sim, "group_summary", auth, {"StartPage": 1}).status_code == 200
        assert call_v2(sim, "group_summary", auth, {"startPage": 1}).status_code == 200
        assert call_v2(sim, "site_overview", auth, {"pageSize": 1}).status_code == 200


def test_bad_secrets_are_refused_as_invalid_client(sim):
    cases = {
        "the client secret is not valid": {"client_secret": sim.client_secret + "x"},
        "client_id is missing": {"client_id": None},
        "unknown client, or it has no client secret": {"client_id": "someone-else"},
        "send a client_secret or a client_assertion, not both": {
            "client_assertion": assertion(sim),
            "client_assertion_type": catalog.CLIENT_ASSERTION_TYPE},
    }
    for description, form in cases.items():
        response = secret_request(sim, **form)
        assert response.status_code == 400, description
        assert response.json() == {"error": "invalid_client",
                                   "error_description": description}
    assert secret_request(sim, scope="other").json()["error"] == "invalid_scope"
    assert secret_request(sim, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert sim.client_secret not in repr(sim.log.entries)


def test_a_configured_secret_is_the_one_registered(make_sim):
    sim = make_sim(client_secret="s3cret-from-config")  # noqa: S106
    assert sim.client_secret == "s3cret-from-config"  # noqa: S105
    assert secret_request(sim).status_code == 200
