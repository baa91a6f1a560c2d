"""Faults on demand: deterministic from a seed, switched at runtime, off by default."""

from __future__ import annotations

import time

import pytest
import requests
from sim_support import call, headers

from runner.sim import Faults

BODY = {"StartPage": 1, "PageSize": 1}


def statuses(sim, auth, count):
    return [call(sim, "user_summary", auth, BODY).status_code for _ in range(count)]


def test_faults_are_off_by_default(sim, sim_auth):
    assert statuses(sim, sim_auth, 20) == [200] * 20


def test_error_rate_gives_500_and_503_deterministically(sim, sim_auth):
    faults = Faults(seed=3, error_rate=0.5)
    sim.set_faults(faults)
    first = statuses(sim, sim_auth, 30)
    assert set(first) == {200, 500, 503}
    sim.set_faults(faults)  # a fresh Faults value restarts nothing: the sequence goes on
    sim.service._numbers = iter(range(1, 100))  # same request numbers, same faults
    assert statuses(sim, sim_auth, 30) == first
    unavailable = next(e for e in sim.log.entries if e.status == 503)
    assert unavailable.fault == "error"


def test_rate_limit_answers_429_with_retry_after(sim, sim_auth):
    sim.set_faults(Faults(rate_limit_rate=1.0, retry_after=2))
    response = call(sim, "user_summary", sim_auth, BODY)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    sim.set_faults(Faults(rate_limit_rate=1.0, retry_after=0.25))
    assert call(sim, "user_summary", sim_auth, BODY).headers["Retry-After"] == "0.25"
    sim.set_faults(Faults())
    assert call(sim, "user_summary", sim_auth, BODY).status_code == 200


def test_dropped_connections_get_no_answer(sim, sim_auth):
    sim.set_faults(Faults(drop_rate=1.0))
    with pytest.raises(requests.ConnectionError):
        call(sim, "user_summary", sim_auth, BODY)
    assert sim.log.entries[-1].fault == "drop"


def test_truncated_downloads_stop_halfway(sim, sim_auth):
    job = call(sim, "link_export", sim_auth, {"exportLinkType": "128"}).json()["id"]
    time.sleep(0.25)
    url = sim.url("permission_export_file")
    whole = requests.get(url, params={"id": job}, headers=sim_auth, timeout=10)
    assert whole.status_code == 200
    sim.set_faults(Faults(truncate_rate=1.0))
    assert call(sim, "user_summary", sim_auth, BODY).status_code == 200  # queries unaffected
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, params={"id": job}, headers=sim_auth, timeout=10)
    streamed = requests.get(url, params={"id": job}, headers=sim_auth, timeout=10, stream=True)
    assert int(streamed.headers["Content-Length"]) == len(whole.content)
    received = b""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in streamed.iter_content(1024):
            received += chunk
    assert len(received) <= len(whole.content) // 2
    assert received == whole.content[: len(received)]


def test_early_token_expiry_revokes_a_used_token(sim):
    sim.set_faults(Faults(token_early_expiry_rate=0.999, seed=1))
    auth = headers(sim)
    assert call(sim, "user_summary", auth, BODY).status_code == 200  # a new token works once
    refused = call(sim, "user_summary", auth, BODY)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert sim.log.entries[-1].fault == "expire_token"
    sim.set_faults(Faults())
    assert call(sim, "user_summary", auth, BODY).status_code == 401  # stays revoked
    assert call(sim, "user_summary", headers(sim), BODY).status_code == 200
    sim.set_faults(Faults(token_early_expiry_rate=1.0))  # no token works at all
    assert call(sim, "user_summary", headers(sim), BODY).status_code == 401


def test_identity_faults_only_when_asked(sim):
    sim.set_faults(Faults(error_rate=1.0, status_codes=(500,)))
    headers(sim)  # the identity service stays healthy
    sim.set_faults(Faults(error_rate=1.0, status_codes=(500,), identity=True))
    with pytest.raises(requests.HTTPError):
        headers(sim)


def test_fault_settings_are_checked():
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=1.5)


def test_jobs_may_end_with_exceptions_and_still_serve_a_file(sim, sim_auth):
    sim.set_faults(Faults(job_exception_rate=1.0))
    job = call(sim, "link_export", sim_auth, {"exportLinkType": "64"}).json()["id"]
    time.sleep(0.25)
    status = requests.get(sim.url("permission_export_status"), params={"id": job},
                          headers=sim_auth, timeout=10).json()
    assert status == {"status": 4, "description": "Exported with exceptions."}
    file = requests.get(sim.url("permission_export_file"), params={"id": job},
                        headers=sim_auth, timeout=10)
    assert file.status_code == 200


def test_hostile_names_climb_out_of_the_folder(sim, sim_auth):
    import io
    import zipfile

    sim.set_faults(Faults(hostile_names=True))
    body = {"siteUrls": [sim.tenant.site(1).url, sim.tenant.site(2).url]}
    job = call(sim, "site_permission_export", sim_auth, body).json()["id"]
    time.sleep(0.25)
    file = requests.get(sim.url("permission_export_file"), params={"id": job},
                        headers=sim_auth, timeout=10)
    disposition = file.headers["Content-Disposition"]
    assert 'filename="../../SitePermissionReport_' in disposition
    assert "filename*=UTF-8''..%2F..%2F" in disposition
    names = zipfile.ZipFile(io.BytesIO(file.content)).namelist()
    assert names[0].startswith("../../") and names[1].startswith("/tmp/")  # noqa: S108
