"""Retries through each fault the simulator can inject, and the bounds that stop them."""

from __future__ import annotations

import pytest
from client_support import Sleeps, closed_port, make_client

from runner.client.retry import RetryPolicy
from runner.errors import RateLimited, ServerError, UnreachableError
from runner.sim import Faults

FAULTS = {
    "error": Faults(seed=3, error_rate=0.35, status_codes=(500, 503)),
    "rate_limit": Faults(seed=3, rate_limit_rate=0.35, retry_after=0.01),
    "drop": Faults(seed=3, drop_rate=0.35),
    # seed 27: revocations never hit two requests in a row (that is a real refusal, exit 3)
    "expire_token": Faults(seed=27, token_early_expiry_rate=0.2),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_paging_survives_each_fault(sim, kind):
    sleeps = Sleeps()
    client = make_client(sim, sleeps=sleeps)
    sim.set_faults(FAULTS[kind])
    emails = [r["email"] for r in client.iter_records("user_summary", {"page_size": 10})]
    assert len(emails) == len(set(emails)) == sim.tenant.user_count
    met = [e for e in sim.log.entries if e.fault == kind]
    assert met, f"the simulator injected no {kind}"
    if kind == "expire_token":
        assert client.auth.fetches == 1 + len(met) and not sleeps
    else:
        assert len(sleeps) >= len(met)
    if kind == "rate_limit":
        assert sleeps.count(0.01) == len(met)  # Retry-After honoured, not jitter


def test_token_endpoint_faults_are_retried(sim):
    sleeps = Sleeps()
    sim.set_faults(Faults(seed=5, error_rate=0.5, identity=True))
    client = make_client(sim, sleeps=sleeps)
    client.auth.token()
    assert sim.log.count("token", 200) == 1
    assert sleeps == [] or sim.log.count("token") == 1 + len(sleeps)


def test_retries_are_bounded_by_attempts(sim):
    sleeps = Sleeps()
    client = make_client(sim, sleeps=sleeps, retry=RetryPolicy(max_attempts=4, base_delay=0.001))
    client.auth.token()
    sim.set_faults(Faults(error_rate=1.0, status_codes=(503,)))
    with pytest.raises(ServerError, match="503") as info:
        client.call("user_summary", {"page_size": 5})
    assert info.value.transient and info.value.exit_code == 1
    assert sim.log.count("user_summary") == 4 and len(sleeps) == 3


def test_retries_are_bounded_by_time(sim):
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=100, max_total=1.0)
    client = make_client(sim, sleeps=sleeps, retry=policy)
    client.auth.token()
    sim.set_faults(Faults(rate_limit_rate=1.0, retry_after=0.4))
    with pytest.raises(RateLimited) as info:
        client.call("user_summary", {"page_size": 5})
    assert info.value.retry_after == 0.4
    assert sleeps == [0.4, 0.4]  # a third wait would pass the one-second budget


def test_an_unreachable_service_is_exit_3(sim):
    sleeps = Sleeps()
    client = make_client(
        sim,
        sleeps=sleeps,
        base_url=f"http://127.0.0.1:{closed_port()}/insights",
        retry=RetryPolicy(max_attempts=3, base_delay=0.001),
    )
    with pytest.raises(UnreachableError, match="cannot connect") as info:
        client.call("user_summary", {"page_size": 5})
    assert info.value.exit_code == 3 and len(sleeps) == 2


def test_tls_is_verified_unless_the_user_says_otherwise(sim):
    assert make_client(sim).session.verify is True
    assert make_client(sim, verify_tls=False).session.verify is False
    # https to a plain-HTTP port: the TLS failure is converted at the boundary, exit 3
    client = make_client(
        sim,
        identity_url=sim.identity_url.replace("http://", "https://"),
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(UnreachableError, match="TLS failed") as info:
        client.auth.token()
    assert info.value.exit_code == 3
