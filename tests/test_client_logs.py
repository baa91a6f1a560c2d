"""No secret in the logs at the most verbose level: tokens, assertions, password, private key."""

from __future__ import annotations

import logging

import pytest
from client_support import make_client, wait_terminal

from runner.client.credentials import load_pfx
from runner.errors import AuthError, CredentialError
from runner.sim import Faults


def test_no_secret_reaches_debug_logs(sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: runner.client.*, everything
    for name in ("runner", "runner.client", "runner.client.session"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    tokens = []
    client = make_client(sim)
    tokens.append(client.auth.token().value.reveal())
    list(client.iter_records("user_summary", {"page_size": 50}))
    sim.expire_tokens()  # a 401, then a refresh
    urls = [s["siteUrl"] for s in client.iter_records("site_overview", {"page_size": 5})][:2]
    tokens.append(client.auth.token().value.reveal())
    sim.set_faults(
        Faults(seed=9, truncate_rate=0.5, error_rate=0.2, rate_limit_rate=0.1, retry_after=0.01)
    )
    job_id = client.submit("site_permission_export", {"site_urls": urls})
    wait_terminal(client, "site_permission_export", job_id)
    client.download("site_permission_export", job_id, tmp_path)
    sim.set_faults(Faults())
    with pytest.raises(CredentialError):
        load_pfx(sim.credentials.pfx_path, "wrong-" + sim.credentials.pfx_password)
    with pytest.raises(AuthError):  # a refused assertion is logged too, without the assertion
        make_client(sim, client_id="someone-else").auth.token()

    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "runner.client" in "".join(r.name for r in caplog.records)
    assert {"runner.client.session", "runner.client.transport"} <= {r.name for r in caplog.records}
    assert len(caplog.records) > 30
    assert len(set(tokens)) == 2
    for token in tokens:
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature part
    assert "eyJ" not in text  # no JWT at all: access tokens or client assertions
    assert sim.credentials.pfx_password not in text
    key_lines = [
        line
        for line in sim.credentials.key_pem_path.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    assert not any(line in text for line in key_lines)
    assert "PRIVATE KEY" not in text
    assert "Bearer" not in text
