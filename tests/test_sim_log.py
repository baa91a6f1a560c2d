"""The request log: in memory for tests, JSON lines for people; never a token."""

from __future__ import annotations

import json
import time

import pytest
import requests
from sim_support import call, headers

from runner.sim import SimConfig, Simulator


def test_the_log_is_written_as_json_lines_without_secrets(tmp_path):
    path = tmp_path / "sim.jsonl"
    with Simulator(SimConfig(job_seconds=0.05, log_path=path)) as sim:
        auth = headers(sim)
        call(sim, "user_summary", auth, {"StartPage": 1, "PageSize": 1})
        job = call(sim, "link_export", auth, {"exportLinkType": "32"}).json()["id"]
        time.sleep(0.1)
        assert [e.event for e in sim.log.job_events] == ["start", "end"]
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    kinds = [(line["kind"], line.get("operation")) for line in lines]
    assert ("request", "token") in kinds and ("request", "user_summary") in kinds
    assert {(line["event"], line["job_id"]) for line in lines if line["kind"] == "job"} == {
        ("start", job), ("end", job)}
    text = path.read_text(encoding="utf-8")
    token = auth["Authorization"].split()[1]
    assert token not in text and "client_assertion\"" not in text


def test_job_seconds_may_be_a_function_of_the_job_id():
    now = [0.0]  # seconds added to the real time
    with Simulator(SimConfig(job_seconds=lambda job_id: 100 if job_id % 2 else 1,
                             clock=lambda: now[0] + time.time())) as sim:
        auth = headers(sim)
        first = call(sim, "link_export", auth, {"exportLinkType": "32"}).json()["id"]
        second = call(sim, "link_export", auth, {"exportLinkType": "32"}).json()["id"]
        slow, quick = (first, second) if first % 2 else (second, first)
        now[0] += 2
        status = sim.url("permission_export_status")
        assert requests.get(status, params={"id": quick}, headers=auth,
                            timeout=10).json()["status"] == 2
        assert requests.get(status, params={"id": slow}, headers=auth,
                            timeout=10).json()["status"] == 1


def test_make_sim_starts_configured_simulators(make_sim):
    first, second = make_sim(seed=1), make_sim(seed=2, token_lifetime=60)
    assert first.base_url != second.base_url
    assert first.tenant.user(0) != second.tenant.user(0)
    response = call(second, "user_summary", headers(second), {"StartPage": 1})
    assert response.status_code == 200


def test_tls_serves_https_that_verifies_against_its_ca_bundle(make_sim):
    sim = make_sim(tls=True)
    assert sim.base_url.startswith("https://") and sim.ca_bundle.exists()
    discovery = f"{sim.identity_url}/.well-known/openid-configuration"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(discovery, timeout=10)  # verification is on, and the CA is unknown
    assert requests.get(discovery, timeout=10, verify=str(sim.ca_bundle)).status_code == 200


def test_the_job_book_logs_each_end_once_and_counts_only_running_jobs_as_slots():
    from runner import catalog
    from runner.sim import Faults
    from runner.sim.jobs import JobBook, SlotsFull
    from runner.sim.log import RequestLog

    now = [0.0]
    faults = Faults()
    log = RequestLog()
    book = JobBook(lambda: now[0], lambda job_id: 1 + job_id % 3, lambda: faults, log, limit=2)
    log.settle = book.settle
    op = catalog.operation("user_access_export", "v2")
    ended_at: dict[int, float] = {}
    refused = 0
    for step in range(300):  # a long book: only the running jobs take slots
        try:
            job = book.submit(op, {}, "client")
            ended_at[job.id] = job.ends
        except SlotsFull:
            refused += 1
            assert book.in_progress() == 2
        now[0] = step * 0.5
        book.settle()
    now[0] += 10
    events = log.job_events
    ends = [(e.job_id, e.time) for e in events if e.event == "end"]
    assert sorted(ends) == sorted(ended_at.items())  # every job's end, once, at its time
    assert len(ended_at) > 100 and refused > 0 and book.in_progress() == 0
    assert log.max_concurrent_jobs() == 2
    assert len(book.all) == len(ended_at)
