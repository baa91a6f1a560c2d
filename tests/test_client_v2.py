"""The client on the Graph API (v2), against the simulator's v2 endpoints over 127.0.0.1."""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import replace

import pytest
from client_support import FAST_RETRY, Sleeps, wait_terminal

from runner import catalog
from runner.client.api import InsightsClient, job_id
from runner.client.connection import settings_for_simulator
from runner.errors import ServerError, SlotsBusy, UserError
from runner.sim import SimConfig, Simulator
from runner.sim.faults import Faults

GUEST = "noah.hayashi9_fabrikam.com#ext#@contoso.onmicrosoft.com"
SITES = ["https://contoso.sharepoint.com/teams/team00000",
         "https://contoso.sharepoint.com/sites/site00003"]


@pytest.fixture(scope="module")
def sim():
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=0.1)) as running:
        yield running


def v2_client(sim, **settings) -> InsightsClient:
    base = replace(settings_for_simulator(sim, api="v2"), **settings)
    return InsightsClient(base, retry=FAST_RETRY, sleep=Sleeps())


@pytest.fixture
def client(sim):
    with v2_client(sim) as made:
        sent: list[str] = []
        request = made.session.request

        def recording(*args, **kwargs):  # each URL as sent, query included
            response = request(*args, **kwargs)
            sent.append(response.url)
            return response

        made.session.request = recording  # type: ignore[method-assign]
        made.sent = sent  # type: ignore[attr-defined]
        yield made


def _finish(client, op, job, tmp_path) -> zipfile.ZipFile:
    # by the clock, not by a count of polls: a faster client polls a 0.1 s job more often
    status = wait_terminal(client, op, job)
    assert status == catalog.STATUS_SUCCEEDED, (op, status)
    done = client.download(op, job, tmp_path / f"{op}-{job}.zip")
    archive = zipfile.ZipFile(done.path)
    assert archive.namelist() and archive.testzip() is None
    return archive


def test_every_v2_export_starts_a_string_job_that_polls_and_downloads(sim, client, tmp_path):
    google = sim.service.google
    group = next(iter(client.iter_records("group_summary")))["groupId"]
    exports = {
        "site_permission_export": {"site_urls": SITES},
        "user_access_export": {"emails": GUEST, "data_sources": ["teams", "sharepoint"],
                               "site_urls": SITES},
        "group_access_export": {"group_ids": group, "export_option": "summary_only",
                                "data_sources": ["teams"]},
        "link_export": {"link_type": "anyone", "start_time": "2020-01-01T00:00:00",
                        "end_time": "2030-01-01T00:00:00"},
        "user_activity_export": {"email": GUEST, "event_types": ["FileAccessed", "ListViewed"]},
        "object_activity_export": {"path": SITES[1]},
        "google_user_access_export": {"emails": google._user(1).email,
                                      "data_sources": ["my_drive", "shared_drive"]},
        "google_group_access_export": {"group_ids": google.group(0).email, "export_option": 2,
                                       "data_sources": ["shared_drive"]},
        "google_drive_permission_export": {"drive_ids": [google._drive(0).id,
                                                         google._user(1).email]},
        "google_link_export": {"link_type": "target_audience"},
        "google_user_activity_export": {"emails": google._user(1).email},
        "google_object_activity_export": {"object_ids": google.file(0, 1)["id"]},
    }
    assert set(exports) == {op.name for op in catalog.routed("v2") if op.is_export}
    for name, values in exports.items():
        job = client.submit(name, values)
        assert isinstance(job, str) and job.isdigit(), name
        _finish(client, name, job, tmp_path)
    paths = {url.split("/insights/", 1)[1].split("?")[0] for url in client.sent
             if "/insights/" in url}
    assert f"job/{job}/exportstatus" in paths and f"job/{job}/exportfile" in paths
    # lists travel as repeated query keys
    assert any("eventTypes=FileAccessed&eventTypes=ListViewed" in url for url in client.sent)


def test_path_values_are_percent_encoded_once_guest_upns_included(sim, client, tmp_path):
    job = client.submit("user_access_export", {"emails": GUEST, "data_sources": ["teams"]})
    sent = next(url for url in client.sent if "/access/export" in url)
    assert "/users/noah.hayashi9_fabrikam.com%23ext%23%40contoso.onmicrosoft.com/access/" in sent
    assert sim.log.requests("user_access_export")[-1].fields["email"] == GUEST
    archive = _finish(client, "user_access_export", job, tmp_path)
    assert archive.namelist()
    client.call("site_ids", {"site_urls": SITES[1]})
    assert client.sent[-1].endswith("/sites/https%3A%2F%2Fcontoso.sharepoint.com%2Fsites%2F"
                                    "site00003/siteId")


def test_every_v2_query_answers_records_in_the_catalog_spelling(sim, client):
    users = list(client.iter_records("user_summary"))
    assert len(users) == len({u["loginName"] for u in users}) > 100
    assert set(users[0]) == set(catalog.operation("user_summary", "v2").result_fields)
    groups = list(client.iter_records("group_summary"))
    assert groups and all(g["groupId"] for g in groups)
    access = list(client.iter_records("user_permissions", {"emails": [users[0]["loginName"]]}))
    assert access and "dataType" in access[0]
    links = list(client.iter_records("link_summary", {"site_urls": SITES[0],
                                                      "link_type": "anyone"}))
    assert all("logonName" in link for link in links)
    perms = list(client.iter_records("site_permissions", {"site_urls": SITES}))
    assert {p["url"].split("/")[4] for p in perms} >= {"team00000", "site00003"}
    risky = list(client.iter_records("site_overview", {"filters": {"risk": ["high"]}}))
    everything = list(client.iter_records("site_overview"))
    assert 0 < len(risky) < len(everything)
    [site] = client.iter_records("site_ids", {"site_urls": SITES[1]})
    assert site["siteUrl"] == SITES[1] and site["siteId"]
    records = list(client.iter_records("detail_records_by_site", {"site_id": site["siteId"]}))
    assert records and {r["webUrl"] for r in records} == {SITES[1]}
    assert catalog.operation("detail_records_by_site", "v2").method == "POST"
    bodies = [e.fields for e in sim.log.requests("detail_records_by_site")]
    assert bodies[0]["siteId"] == site["siteId"]


def test_start_page_paging_stops_on_a_short_page_and_resumes(client):
    pages = list(client.iter_pages("user_summary", {"page_size": 30}))
    assert [p.cursor for p in pages] == list(range(1, len(pages) + 1))
    assert all(len(p.records) == 30 for p in pages[:-1]) and len(pages[-1].records) < 30
    again = list(client.iter_pages("user_summary", {"page_size": 30}, start=pages[2].next))
    assert again[0].records == pages[3].records


def test_next_link_paging_sends_the_opaque_token_back_in_the_body(sim, client):
    pages = list(client.iter_pages("site_permissions", {"site_urls": SITES, "page_size": 5}))
    assert len(pages) > 2 and pages[-1].next is None and pages[0].cursor is None
    bodies = [e.fields for e in sim.log.requests("site_permissions")][-len(pages):]
    assert "nextLink" not in bodies[0]
    assert [b["nextLink"] for b in bodies[1:]] == [p.next for p in pages[:-1]]
    resumed = list(client.iter_records("site_permissions", {"site_urls": SITES, "page_size": 5},
                                       start=pages[1].next))
    assert resumed == [r for p in pages[2:] for r in p.records]


def test_a_get_export_is_never_retried_blindly(sim):
    config = SimConfig(seed=7, scale="small", job_seconds=0.1, faults=Faults(error_rate=1.0))
    with Simulator(config) as failing, v2_client(failing) as client:
        with pytest.raises(ServerError):
            client.submit("site_permission_export", {"site_urls": SITES})
        assert failing.log.count("site_permission_export") == 1  # one GET, no retry
        with pytest.raises(ServerError):
            list(client.iter_records("user_summary"))
        assert failing.log.count("user_summary") == FAST_RETRY.max_attempts  # a query is


def test_the_export_slots_are_shared_and_the_refusal_is_slots_busy(client):
    for _ in range(catalog.MAX_CONCURRENT_EXPORTS):
        client.submit("google_link_export", {"link_type": "anyone"})
    with pytest.raises(SlotsBusy):
        client.submit("google_link_export", {"link_type": "anyone"})


def test_the_client_secret_flow_authenticates_and_never_logs_the_secret(sim, caplog):
    caplog.set_level(logging.DEBUG)
    secret = sim.client_secret
    with v2_client(sim, certificate=None, client_secret=catalog_secret(secret)) as client:
        assert list(client.iter_records("group_summary"))
        assert client.auth.fetches == 1
    assert secret not in caplog.text
    token = [e.fields for e in sim.log.entries if e.operation == "token"][-1]
    assert "client_assertion" not in token and token["grant_type"] == "client_credentials"
    assert secret not in json.dumps([e.fields for e in sim.log.entries])


def catalog_secret(value: str):
    from runner.secret import Secret

    return Secret(value)


def test_a_job_id_must_be_digits():
    op = catalog.operation("link_export", "v2")
    assert job_id(op, {"jobId": "4790", "status": 200}) == "4790"
    for bad in ({"jobId": "47a"}, {"jobId": None}, {"jobId": True}, {}):
        with pytest.raises(ServerError, match="no job id"):
            job_id(op, bad)

def test_a_job_id_that_is_not_a_number_never_reaches_a_url(client):
    with pytest.raises(UserError, match="a v2 job id is a number"):
        client.job_status("link_export", "../../users/summary")
    assert not client.sent


def test_the_health_check_and_the_named_methods_speak_the_clients_generation(client):
    assert client.health().strip()
    assert client.sent[-1].lower().endswith("/insights/healthz")
    assert list(client.user_summary())[0]["lastSignIn"]  # v2's spelling: the v2 route
    assert "/insights/users/summary?" in client.sent[-1]
