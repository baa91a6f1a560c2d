"""The simulator's Graph API (v2) export jobs over plain HTTP: all twelve exports, the
shared job status and file routes, the slot limit shared with v1, the files' content (the
same records as v1 for M365; the Google tenant for Google), faults and the request log."""

from __future__ import annotations

import requests
from sim_support import call as call_v1
from sim_v2_support import call, download, job_path, run_export, wait, workbooks

from runner import catalog
from runner.sim import Faults


def exports(sim):
    t, g = sim.tenant, sim.service.google
    return {
        "site_permission_export": {"siteUrls": [t.site(1).url, t.site(2).url]},
        "user_access_export": {"email": t.user(1).email,
                               "dataSources": ["microsoft teams", "sharepoint online"]},
        "group_access_export": {"groupId": t.group(0).id, "exportOptionType": 2,
                                "dataSources": ["sharepoint online", "microsoft teams"]},
        "link_export": {"exportLinkType": 32, "startTime": "2020-01-01T00:00:00",
                        "finishTime": "2025-06-30T00:00:00"},
        "user_activity_export": {"email": t.user(2).email},
        "object_activity_export": {"path": t.site(3).url, "eventTypes": ["FileAccessed"]},
        "google_user_access_export": {"email": g.user(3).email,
                                      "dataSources": ["my drive", "shared drive"]},
        "google_group_access_export": {"groupId": g.group(0).email, "exportOptionType": 2,
                                       "dataSources": ["shared drive"]},
        "google_drive_permission_export": {"driveIds": [g.drive(0).id, g.user(4).email,
                                                        "0AnoSuchDrive0000Uk9PVA"]},
        "google_link_export": {"exportLinkType": 303, "startTime": "2020-01-01T00:00:00",
                               "finishTime": "2025-06-30T00:00:00"},
        "google_user_activity_export": {"email": g.user(5).email},
        "google_object_activity_export": {"id": g.file(1, 1)["id"]},
    }


def test_every_export_runs_a_job_to_a_file(make_sim):
    sim = make_sim(job_seconds=0.1, max_exports=12)
    from sim_support import headers

    auth = headers(sim)
    bodies = exports(sim)
    assert set(bodies) == {o.name for o in catalog.routed("v2") if o.kind == "export"}
    ids = {}
    for name, body in bodies.items():
        started = call(sim, name, auth, body)
        assert started.status_code == 200, (name, started.text)
        ids[name] = started.json()["jobId"]
        assert started.json()["status"] == 200 and started.json()["message"] == ""
    assert len(set(ids.values())) == 12
    for name, job_id in ids.items():
        assert wait(sim, auth, job_id) == {"jobStatus": 2, "status": 200, "message": ""}, name
        response = download(sim, auth, job_id)
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == "application/zip"
        books = workbooks(response.content)
        assert books and all(rows for rows in books.values()), name


def test_m365_exports_hold_the_v1_reports(sim, sim_auth):
    t = sim.tenant
    user = t.user(11)
    v2 = run_export(sim, sim_auth, "user_access_export",
                    {"email": user.email, "dataSources": ["Microsoft Teams", "SharePoint Online",
                                                          "onedrive for business"]})
    started = call_v1(sim, "user_access_export", sim_auth, {
        "emails": [user.email], "ExportOptionType": 2,
        "dataSources": ["Microsoft Teams", "SharePoint Online", "OneDrive"]}).json()
    v1_file = requests.get(f"{sim.base_url}/{catalog.operation('permission_export_file').path}",
                           params={"id": started["id"]}, headers=sim_auth, timeout=10)
    while v1_file.status_code == 400:
        v1_file = requests.get(v1_file.url, headers=sim_auth, timeout=10)
    assert workbooks(v1_file.content) == v2
    assert any(user.email in str(rows) for rows in v2.values())


def test_google_reports_report_the_google_tenant(sim, sim_auth):
    g = sim.service.google
    user = g.user(3)
    books = run_export(sim, sim_auth, "google_user_access_export",
                       {"email": user.email, "dataSources": ["my drive"]})
    summary, access = (books[k] for k in sorted(books, key=lambda k: "Access" in k))
    assert summary[1][:2] == [user.display_name, user.email]
    assert {row[2] for row in access[1:]} == {"my drive"}
    assert len(access) - 1 == g.my_drive(user.index).file_count
    drives = run_export(sim, sim_auth, "google_drive_permission_export",
                        {"driveIds": [g.drive(2).id, "0AnoSuchDrive0000Uk9PVA"]})
    overview = next(rows for name, rows in drives.items() if name.startswith("Overview"))
    assert overview[1][1] == g.drive(2).id and overview[2][-1].startswith("Not found")
    links = run_export(sim, sim_auth, "google_link_export", {"exportLinkType": 301})
    rows = next(iter(links.values()))[1:]
    expected = sum(g.link_count(d, 301) for d in range(g.drive_count))
    assert len(rows) == expected and {r[4] for r in rows} == {"Target audience link"}


def test_google_group_option_1_is_refused_and_data_sources_take_both_spellings(sim,
                                                                              sim_auth):
    g = sim.service.google
    answer = call(sim, "google_group_access_export", sim_auth,
                  {"groupId": g.group(1).email, "exportOptionType": 1,
                   "dataSources": ["shared drive"]})
    assert answer.status_code == 400
    assert answer.json()["jobId"] is None and "exportOptionType" in answer.json()["message"]
    assert sim.jobs.all == []
    for spelling in ("User Drive", "MY DRIVE"):
        started = call(sim, "google_user_access_export", sim_auth,
                       {"email": g.user(1).email, "dataSources": [spelling]})
        assert started.status_code == 200, started.text


def test_an_export_get_is_not_idempotent(sim, sim_auth):
    body = {"siteUrls": [sim.tenant.site(1).url]}
    first = call(sim, "site_permission_export", sim_auth, body).json()["jobId"]
    second = call(sim, "site_permission_export", sim_auth, body).json()["jobId"]
    assert first != second and sim.log.count("site_permission_export") == 2


def test_the_slot_limit_is_shared_with_v1_and_configurable(make_sim):
    from sim_support import headers

    sim = make_sim(job_seconds=30, max_exports=2)
    auth = headers(sim)
    body = {"siteUrls": [sim.tenant.site(1).url]}
    assert call(sim, "site_permission_export", auth, body).status_code == 200
    assert call_v1(sim, "site_permission_export", auth, body).status_code == 200
    refused = call(sim, "site_permission_export", auth, body)
    assert refused.status_code == 400
    answer = refused.json()
    assert answer["jobId"] is None and answer["status"] == 400
    assert answer["message"].startswith(catalog.EXPORT_LIMIT_MESSAGE)
    v1_refused = call_v1(sim, "site_permission_export", auth, body)
    assert v1_refused.status_code == 400
    assert v1_refused.json()["content"] == catalog.EXPORT_LIMIT_CODE
    assert sim.log.max_concurrent_jobs() == 2


def test_the_default_slot_limit_is_five(make_sim):
    from sim_support import headers

    sim = make_sim(job_seconds=30)
    auth = headers(sim)
    body = {"siteUrls": [sim.tenant.site(1).url]}
    codes = [call(sim, "site_permission_export", auth, body).status_code for _ in range(6)]
    assert codes == [200] * 5 + [400]


def test_job_routes_answer_unknown_foreign_early_and_malformed_ids(sim, sim_auth):
    status_op = next(o for o in catalog.iter_operations("v2") if o.kind == "status")
    file_op = next(o for o in catalog.iter_operations("v2") if o.kind == "file")
    v1_job = call_v1(sim, "site_permission_export", sim_auth,
                     {"siteUrls": [sim.tenant.site(1).url]}).json()["id"]
    for job_id, code in ((999_999, 404), (v1_job, 404), ("abc", 400)):
        answer = requests.get(f"{sim.base_url}/{job_path(status_op.name, job_id)}",
                              headers=sim_auth, timeout=10)
        assert answer.status_code == code, (job_id, answer.text)
    job_id = call(sim, "link_export", sim_auth, {"exportLinkType": 64}).json()["jobId"]
    early = requests.get(f"{sim.base_url}/{job_path(file_op.name, job_id)}", headers=sim_auth,
                         timeout=10)
    assert early.status_code == 400 and "in progress" in early.json()["message"]
    assert set(early.json()) == {"status", "message"}
    v1_status = requests.get(f"{sim.base_url}/{catalog.operation('permission_export_status').path}",
                             params={"id": int(job_id)}, headers=sim_auth, timeout=10)
    assert v1_status.status_code == 404  # a v2 job is not seen on v1's routes


def test_a_file_honours_range_with_206_and_416(sim, sim_auth):
    started = call(sim, "link_export", sim_auth, {"exportLinkType": 128}).json()["jobId"]
    wait(sim, sim_auth, started)
    whole = download(sim, sim_auth, started).content
    part = download(sim, sim_auth, started, {"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == whole[100:]
    beyond = download(sim, sim_auth, started, {"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416


def test_failed_jobs_and_faults_are_shared_with_v1(make_sim):
    from sim_support import headers

    sim = make_sim(job_seconds=0.05, faults=Faults(job_failure_rate=1.0))
    auth = headers(sim)
    job_id = call(sim, "google_link_export", auth, {"exportLinkType": 303}).json()["jobId"]
    answer = wait(sim, auth, job_id)
    assert answer["jobStatus"] == 3 and answer["message"].startswith("Failed to export")
    assert download(sim, auth, job_id).status_code == 400
    sim.set_faults(Faults(error_rate=1.0, status_codes=(500,)))
    assert call(sim, "group_summary", auth, {"startPage": 1}).status_code == 500
    entry = sim.log.entries[-1]
    assert (entry.operation, entry.status, entry.fault) == ("group_summary", 500, "error")
    events = [e for e in sim.log.job_events if e.job_id == int(job_id)]
    assert [e.event for e in events] == ["start", "end"] and events[-1].status == 3
