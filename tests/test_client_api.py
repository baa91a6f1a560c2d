"""The API client against the simulator: every catalog operation, paging, checks, refusals."""

from __future__ import annotations

import json
import math

import pytest
from client_support import make_client, wait_terminal

from runner import catalog
from runner.client.api import check_body, request_body
from runner.client.response import Headers, Response
from runner.errors import RequestRejected, ServerError, SlotsBusy, UserError


@pytest.fixture
def client(sim):
    with make_client(sim) as client:
        yield client


def _first(client, op, values):
    return next(client.iter_pages(op, values)).records


def test_every_operation_once_with_its_documented_fields(sim, client, tmp_path):
    sites = _first(
        client,
        "site_overview",
        {
            "page_size": 10,
            "filters": {
                "module": ["teams", "sharepoint", "onedrive", "m365_group"],
                "sensitivity": ["not_sensitive", "low", "medium", "high", "not_defined"],
                "exposure": ["low", "medium", "high"],
                "risk": ["no_risk", "low", "medium", "high", "not_defined"],
            },
        },
    )
    urls = [s["siteUrl"] for s in sites[:3]]
    users = _first(client, "user_summary", {"language": "en-US", "page_size": 10})
    emails = [u["email"] for u in users[:2]]
    groups = _first(client, "group_summary", {"language": "fr-FR", "page_size": 10})
    site_ids = _first(client, "site_ids", {"site_urls": urls})
    _first(
        client,
        "link_summary",
        {"language": "ja-JP", "site_urls": urls, "page_size": 10, "link_type": "anyone"},
    )
    _first(client, "site_permissions", {"site_urls": urls, "language": "en-US", "page_size": 10})
    _first(
        client,
        "user_permissions",
        {"site_urls": urls, "language": "en-US", "emails": emails, "page_size": 10},
    )
    _first(
        client,
        "detail_records_by_site",
        {
            "site_id": site_ids[0]["siteId"],
            "language": "en-US",
            "page_size": 10,
            "filters": {
                "object_type": ["folder", "file", "item", "list"],
                "tag_name": ["Reviewed"],
                "sensitivity": ["high"],
                "exposure": ["low"],
                "risk": ["high"],
                "created_by": [emails[0]],
                "modified_time": ["2024-09-20T10:57:28Z", "2025-09-27T10:57:28Z"],
            },
        },
    )
    _first(
        client,
        "detail_records",
        {
            "language": "en-US",
            "page_size": 10,
            "filters": {
                "module": ["teams"],
                "object_type": ["file"],
                "tag_name": ["Reviewed"],
                "username": [emails[0]],
                "sensitivity": ["high"],
                "exposure": ["high"],
                "risk": ["high"],
                "location": urls,
                "site_name": [sites[0]["siteName"]],
            },
        },
    )
    jobs = {
        "site_permission_export": client.submit(
            "site_permission_export", {"site_urls": urls, "language": "ja-JP"}
        ),
        "user_access_export": client.submit(
            "user_access_export",
            {
                "emails": emails,
                "data_sources": ["teams", "SharePoint Online"],
                "site_urls": urls,
                "language": "fr-FR",
                "export_option": "summary_and_site_level",
            },
        ),
        "group_access_export": client.submit(
            "group_access_export",
            {
                "group_ids": [g["groupId"] for g in groups[:2]],
                "site_urls": urls,
                "data_sources": ["onedrive"],
                "export_option": 2,
                "language": "en-US",
            },
        ),
        "link_export": client.link_export(
            language="en-US",
            link_type="organization",
            start_time="2024-01-01T00:00:00",
            end_time="2025-06-30T00:00:00",
        ),
        "activity_export": client.activity_export(
            email=emails[0],
            path=urls[0],
            start_time="2025-01-01T00:00:00",
            end_time="2025-06-30T00:00:00",
            event_types=["FileAccessed", "FileModified"],
            language="en-US",
        ),
    }
    for name, job_id in jobs.items():
        assert wait_terminal(client, name, job_id) == catalog.STATUS_SUCCEEDED
        result = client.download(name, job_id, tmp_path / f"{name}.zip")
        assert result.path == tmp_path / f"{name}.zip" and result.bytes > 0

    called = {e.operation for e in sim.log.entries if e.status == 200}
    assert {op.name for op in catalog.V1.operations} <= called
    # every documented field reached the service under the reference's name
    for op in catalog.V1.operations:
        sent = [e.fields for e in sim.log.requests(op.name) if e.status == 200]
        names = {key.lower() for fields in sent for key in fields}
        assert {f.api.lower() for f in op.fields} <= names, op.name


def test_start_page_paging_returns_every_record_once(sim, client):
    pages = list(client.iter_pages("user_summary", {"page_size": 7}))
    emails = [r["email"] for p in pages for r in p.records]
    total = sim.tenant.user_count
    assert len(emails) == len(set(emails)) == total
    assert sim.log.count("user_summary") == math.ceil(total / 7) + (total % 7 == 0)
    assert [p.cursor for p in pages] == list(range(1, len(pages) + 1))


def test_token_paging_is_lazy_complete_and_resumable(sim, client):
    body = {"page_size": 40, "filters": {"module": ["teams", "sharepoint"]}}
    whole = [r["id"] for r in client.iter_records("detail_records", body)]
    assert len(whole) == len(set(whole)) > 120

    sim.log.clear()
    pages = client.iter_pages("detail_records", body)
    first, second = next(pages), next(pages)
    assert sim.log.count("detail_records") == 2  # one request per page, nothing read ahead
    pages.close()
    # a new run resumes from the stored token
    rest = [
        r["id"]
        for p in client.iter_pages("detail_records", body, start=second.next)
        for r in p.records
    ]
    assert [r["id"] for r in first.records + second.records] + rest == whole
    assert json.dumps(second.next)  # the cursor is a plain value the state store can keep


def test_page_size_is_capped_by_the_catalog(client):
    body = request_body(catalog.operation("site_permissions"), {"site_urls": ["u"]})
    assert body["Top"] == catalog.MAX_PAGE_SIZE and body["Language"] == catalog.DEFAULT_LANGUAGE


def test_a_400_is_not_retried_and_carries_the_service_message(sim, client):
    with pytest.raises(RequestRejected, match="between 1 and 100") as info:
        client.call("site_permissions", {"SiteUrls": ["https://x"], "Top": 500}, encoded=True)
    assert info.value.exit_code == 1 and info.value.status == 400
    assert sim.log.count("site_permissions") == 1


def test_a_binding_error_names_the_field(sim, client):
    with pytest.raises(RequestRejected, match="SiteUrls: ") as info:
        client.call("site_permissions", {"SiteUrls": "not a list", "Top": "x"}, encoded=True)
    assert sim.log.count("site_permissions") == 1
    assert "could not be converted" in str(info.value)


def test_a_sixth_export_is_slots_busy_and_not_retried(sim, client):
    urls = ["https://contoso.sharepoint.com/teams/team00000"]
    for _ in range(catalog.MAX_CONCURRENT_EXPORTS):
        client.submit("site_permission_export", {"site_urls": urls})
    with pytest.raises(SlotsBusy) as info:
        client.submit("site_permission_export", {"site_urls": urls})
    assert info.value.transient
    assert sim.log.count("site_permission_export") == catalog.MAX_CONCURRENT_EXPORTS + 1


def test_unknown_names_are_user_errors(client):
    with pytest.raises(UserError, match="unknown field 'colour'"):
        client.submit("link_export", {"colour": "red", "link_type": "anyone"})
    with pytest.raises(UserError, match="not a valid link type"):
        client.submit("link_export", {"link_type": "everyone"})


def _response(status: int, body: dict) -> Response:
    return Response(status, "", Headers(), json.dumps(body).encode(),
                    "http://127.0.0.1/insights/api/v1/User/summary")


def test_a_failure_inside_a_200_body_is_an_error():
    check = check_body(catalog.operation("user_summary"))
    with pytest.raises(RequestRejected, match="no such language"):
        check(_response(200, {"results": None, "status": 400, "message": "no such language"}))
    with pytest.raises(ServerError):
        check(_response(200, {"results": None, "status": 500, "message": "boom"}))
    check(_response(200, {"results": [], "status": 200, "message": ""}))
    # a status endpoint's "status" is the job's, not an HTTP code
    check_body(catalog.operation("permission_export_status"))(
        _response(200, {"status": 2, "description": "Successfully exported."})
    )


@pytest.mark.parametrize(
    ("op", "values"),
    [
        (
            "user_access_export",
            {
                "emails": ["a@b"],
                "data_sources": ["teams", "onedrive"],
                "export_option": "summary_only",
                "language": "ja",
            },
        ),
        ("link_summary", {"link_type": "anyone", "site_urls": ["https://x"], "page_size": 5}),
        (
            "detail_records",
            {
                "filters": {"sensitivity": ["high", "not_defined"], "site_name": ["Finance"]},
                "page_size": 9,
            },
        ),
    ],
)
def test_request_bodies_use_api_names_and_codes_and_encode_idempotently(op, values):
    operation = catalog.operation(op)
    body = request_body(operation, values)
    assert set(body) <= {f.api for f in operation.fields}
    assert request_body(operation, body) == body  # an already encoded body (a plan's) is kept
    if op == "link_summary":
        assert body["LinkType"] == "128"
    if op == "detail_records":
        assert body["filters"][0] == {"id": "sensitivityLevel", "values": ["3", "-2"]}
