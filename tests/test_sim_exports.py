"""The simulator's export jobs over plain HTTP: submission, the five-job limit, status by
the clock, failed jobs, and the .zip of .xlsx reports (names, languages, Range)."""

from __future__ import annotations

import io
import time
import zipfile
from urllib.parse import unquote

import openpyxl
import pytest
import requests
from sim_support import call, headers

from runner import catalog
from runner.sim import Faults, SimConfig, Simulator


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def csim(clock):
    """A simulator whose clock only moves when the test says so; jobs take 10 s."""
    with Simulator(SimConfig(job_seconds=10, clock=clock)) as running:
        yield running


def export_bodies(sim):
    t = sim.tenant
    return {
        "site_permission_export": {"siteUrls": [t.site(1).url, t.site(2).url]},
        "user_access_export": {"emails": [t.user(1).email], "ExportOptionType": 1,
                               "dataSources": ["Microsoft Teams", "SharePoint Online"]},
        "group_access_export": {"Emails": [t.group(0).id], "ExportOptionType": 2,
                                "dataSources": ["SharePoint Online", "Microsoft Teams"]},
        "link_export": {"exportLinkType": "32"},
        "activity_export": {"email": t.user(2).email, "path": ""},
    }


def status_of(sim, auth, operation, job_id):
    op = catalog.operation(operation).status_operation
    return requests.get(f"{sim.base_url}/{op.path}", params={"id": job_id}, headers=auth,
                        timeout=10)


def download(sim, auth, operation, job_id, extra=None):
    op = catalog.operation(operation).file_operation
    return requests.get(f"{sim.base_url}/{op.path}", params={"id": job_id},
                        headers={**auth, **(extra or {})}, timeout=30)


def test_each_export_runs_1_then_2_and_serves_a_zip_of_xlsx(csim, clock):
    auth = headers(csim)
    jobs = {}
    for name, body in export_bodies(csim).items():
        answer = call(csim, name, auth, body)
        assert answer.status_code == 200, answer.text
        job = answer.json()
        assert set(job) == {"getFileUrl", "id"} and isinstance(job["id"], int)
        assert job["getFileUrl"] == f"{catalog.operation(name).file_operation.path}?id={job['id']}"
        jobs[name] = job["id"]
        assert status_of(csim, auth, name, job["id"]).json() == {
            "status": 1, "description": "Export in progress."}
    early = download(csim, auth, "link_export", jobs["link_export"])
    assert early.status_code == 400 and "Export in progress" in early.json()["message"]
    clock.now += 10
    for name, job_id in jobs.items():
        assert status_of(csim, auth, name, job_id).json() == {
            "status": 2, "description": "Successfully exported."}
        file = download(csim, auth, name, job_id)
        assert file.status_code == 200
        assert file.headers["Content-Type"] == "application/zip"
        assert file.headers["Accept-Ranges"] == "bytes"
        names = zipfile.ZipFile(io.BytesIO(file.content)).namelist()
        assert names and all(n.endswith(".xlsx") for n in names), name
    events = csim.log.job_events
    assert [e.event for e in events] == ["start"] * 5 + ["end"] * 5
    assert csim.log.max_concurrent_jobs() == 5


def test_a_sixth_export_is_refused_until_a_slot_frees(csim, clock):
    auth = headers(csim)
    body = {"siteUrls": [csim.tenant.site(1).url]}
    for _ in range(5):
        assert call(csim, "site_permission_export", auth, body).status_code == 200
    clock.now += 3
    sixth = call(csim, "activity_export", auth, {"email": "a@b.c", "path": ""})
    assert sixth.status_code == 400
    refusal = sixth.json()
    assert refusal["content"] == catalog.EXPORT_LIMIT_CODE
    assert refusal["message"].startswith(catalog.EXPORT_LIMIT_MESSAGE)
    assert refusal["results"] is None and refusal["status"] == 400
    other = call(csim, "site_permission_export", auth, {})
    assert other.status_code == 400 and other.json()["content"] is None
    clock.now += 7  # the first five end: their slots are free again
    assert call(csim, "activity_export", auth, {"email": "a@b.c", "path": ""}).status_code == 200
    assert csim.log.max_concurrent_jobs() == 5


def test_jobs_of_one_family_are_unknown_to_the_other(csim, clock):
    auth = headers(csim)
    job = call(csim, "activity_export", auth, {"email": "", "path": "https://x/y"}).json()["id"]
    wrong = status_of(csim, auth, "site_permission_export", job)
    assert wrong.status_code == 404 and str(job) in wrong.json()["message"]
    assert status_of(csim, auth, "activity_export", 99999).status_code == 404
    bad = requests.get(f"{csim.base_url}/{catalog.operation('activity_export_status').path}",
                       params={"id": "abc"}, headers=auth, timeout=10)
    assert bad.status_code == 400


def test_failed_jobs_end_with_status_3_and_no_file(clock):
    with Simulator(SimConfig(job_seconds=1, clock=clock,
                             faults=Faults(job_failure_rate=1.0))) as sim:
        auth = headers(sim)
        job = call(sim, "link_export", auth, {"exportLinkType": "64"}).json()["id"]
        clock.now += 1
        assert status_of(sim, auth, "link_export", job).json() == {
            "status": 3, "description": catalog.EXPORT_STATUS.label(3)}
        assert download(sim, auth, "link_export", job).status_code == 400
        assert sim.log.job_events[-1].status == 3


def test_job_durations_may_vary_and_slow_jobs_take_longer(clock):
    with Simulator(SimConfig(job_seconds=(1, 3), clock=clock,
                             faults=Faults(slow_job_rate=1.0, slow_job_factor=10))) as sim:
        auth = headers(sim)
        job = call(sim, "link_export", auth, {"exportLinkType": "64"}).json()["id"]
        clock.now += 9
        assert status_of(sim, auth, "link_export", job).json()["status"] == 1
        clock.now += 21
        assert status_of(sim, auth, "link_export", job).json()["status"] == 2


def test_download_names_range_and_stable_bytes(sim, sim_auth):
    body = {"siteUrls": [sim.tenant.site(1).url], "language": "ja-JP"}
    job = call(sim, "site_permission_export", sim_auth, body).json()["id"]
    wait_done(sim, sim_auth, "site_permission_export", job)
    whole = download(sim, sim_auth, "site_permission_export", job)
    disposition = whole.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="SitePermissionReport_')
    star = disposition.split("filename*=UTF-8''")[1]
    assert unquote(star) == f"サイトのアクセス許可レポート_{job}.zip"
    again = download(sim, sim_auth, "site_permission_export", job)
    assert again.content == whole.content
    part = download(sim, sim_auth, "site_permission_export", job, {"Range": "bytes=100-"})
    assert part.status_code == 206
    size = len(whole.content)
    assert part.headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    assert part.content == whole.content[100:]


def wait_done(sim, auth, operation, job):
    for _ in range(200):
        if status_of(sim, auth, operation, job).json()["status"] != 1:
            return
        time.sleep(0.05)
    raise AssertionError("job did not finish")


@pytest.mark.parametrize("language,header,summary", [
    ("en-US", "Display Name", "User Summary.xlsx"),
    ("ja-JP", "表示名", "ユーザーの概要.xlsx"),
    ("fr-FR", "Nom d'affichage", "Synthèse des utilisateurs.xlsx"),
])
def test_reports_speak_the_requested_language(sim, sim_auth, language, header, summary):
    user = sim.tenant.user(1)
    body = {"emails": [user.email, "nobody@contoso.onmicrosoft.com"],
            "dataSources": [m.code for m in catalog.DATA_SOURCE.members],
            "ExportOptionType": 2, "Language": language}
    job = call(sim, "user_access_export", sim_auth, body).json()["id"]
    wait_done(sim, sim_auth, "user_access_export", job)
    archive = zipfile.ZipFile(io.BytesIO(download(sim, sim_auth, "user_access_export",
                                                  job).content))
    assert archive.namelist()[0] == summary
    book = openpyxl.load_workbook(io.BytesIO(archive.read(summary)), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert rows[0][0] == header
    assert rows[1][2] == user.email and rows[1][5] == user.direct_sites
    assert len(rows) == 3  # the unknown user is listed too
    access = [n for n in archive.namelist() if user.email in n]
    book = openpyxl.load_workbook(io.BytesIO(archive.read(access[0])), read_only=True)
    objects = sum(sim.tenant.site(s).object_count for s in sim.tenant.user_sites(user.index))
    assert book.worksheets[0].max_row == objects + 1
    book.close()


@pytest.mark.parametrize("operation,body,field", [
    ("site_permission_export", {"siteUrls": [f"https://x/{n}" for n in range(101)]},
     "siteUrls"),
    ("site_permission_export", {"siteUrls": ["https://x"], "language": "es-ES"}, "language"),
    ("user_access_export", {"emails": ["a@b"], "dataSources": ["Yammer"],
                            "ExportOptionType": 1}, "dataSources"),
    ("user_access_export", {"emails": ["a@b"], "dataSources": ["OneDrive"]},
     "ExportOptionType"),
    ("user_access_export", {"emails": [], "dataSources": ["OneDrive"], "ExportOptionType": 1},
     "emails"),
    ("group_access_export", {"Emails": [], "dataSources": ["OneDrive"], "ExportOptionType": 1},
     "Emails"),
    ("link_export", {"exportLinkType": "16"}, "exportLinkType"),
    ("activity_export", {"email": "", "path": ""}, "email"),
    ("activity_export", {"email": "a@b"}, "path"),
])
def test_bad_exports_get_a_400_naming_the_field(sim, sim_auth, operation, body, field):
    response = call(sim, operation, sim_auth, body)
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert not sim.jobs.all
