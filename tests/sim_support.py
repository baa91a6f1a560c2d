"""Plain-HTTP helpers for the simulator tests: sign a client assertion, get a token, call an
operation by its catalog name.  Deliberately independent of runner.client, so that the
simulator is tested on its own and can be the oracle for the client."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.serialization import pkcs12

from runner import catalog
from runner.sim import Simulator

ASSERTION_TYPE = catalog.CLIENT_ASSERTION_TYPE


def signing_key(sim: Simulator) -> Any:
    creds = sim.credentials
    key, _, _ = pkcs12.load_key_and_certificates(creds.pfx_path.read_bytes(),
                                                 creds.pfx_password.encode())
    return key


def assertion(sim: Simulator, key: Any = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": sim.client_id, "sub": sim.client_id, "aud": sim.token_endpoint,
            "exp": now + 300, "iat": now, "nbf": now, "jti": str(uuid.uuid4())}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key or signing_key(sim), algorithm="RS256")


def token_request(sim: Simulator, client_assertion: str, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion, "scope": catalog.SCOPE}
    data.update(form)
    return requests.post(sim.token_endpoint, data=data, timeout=10)


def token(sim: Simulator) -> str:
    response = token_request(sim, assertion(sim))
    response.raise_for_status()
    return response.json()["access_token"]


def headers(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sim)}"}


def call(sim: Simulator, operation: str, auth: dict[str, str], body: Any = None,
         **kwargs: Any) -> requests.Response:
    op = catalog.operation(operation)
    if op.method == "GET":
        return requests.get(sim.url(operation), params=body, headers=auth, timeout=30, **kwargs)
    return requests.post(sim.url(operation), json=body if body is not None else {},
                         headers=auth, timeout=30, **kwargs)
