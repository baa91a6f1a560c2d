"""The simulator's query endpoints over plain HTTP: shapes against the reference, paging
(no record lost or repeated), case-insensitive paths and keys, and the 400s."""

from __future__ import annotations

import pytest
import requests
from sim_support import call

from runner import catalog

ENVELOPE = {"results", "status", "message", "content", "nextToken"}


def all_pages(sim, auth, operation, body):
    """Every record of a token-paged query, and how many pages it took."""
    op = catalog.operation(operation)
    records, pages, token = [], 0, body.pop(op.token_field, None)
    while True:
        response = call(sim, operation, auth, {**body, op.token_field: token})
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == ENVELOPE and page["status"] == 200 and page["message"] == ""
        records += page["results"]
        pages += 1
        token = page["nextToken"]
        if token is None:
            return records, pages


def test_every_query_answers_the_envelope_with_the_reference_fields(sim, sim_auth):
    site = sim.tenant.site(4)
    user = sim.tenant.user(1)
    bodies = {
        "user_summary": {"StartPage": 1, "PageSize": 5},
        "group_summary": {"StartPage": 1, "PageSize": 5},
        "link_summary": {"LinkType": "64", "PageSize": 5},
        "site_permissions": {"SiteUrls": [site.url], "Top": 5},
        "user_permissions": {"Emails": [user.email], "Top": 5},
        "detail_records_by_site": {"siteId": site.id, "pageSize": 5},
        "site_ids": {"siteUrls": [site.url]},
        "site_overview": {"pageSize": 5},
        "detail_records": {"pageSize": 5},
    }
    assert set(bodies) == {op.name for op in catalog.modules() if op.kind == "query"}
    for name, body in bodies.items():
        response = call(sim, name, sim_auth, body)
        assert response.status_code == 200, (name, response.text)
        page = response.json()
        assert set(page) == ENVELOPE, name
        assert page["content"] is None
        assert page["results"], name
        for record in page["results"]:
            assert set(record) == set(catalog.operation(name).result_fields), name


def test_paths_and_keys_match_case_insensitively(sim, sim_auth):
    url = f"{sim.base_url}/API/V1/user/SUMMARY"
    response = requests.post(url, json={"startpage": 2, "pagesize": 3, "LANGUAGE": "fr-fr"},
                             headers=sim_auth, timeout=10)
    assert response.status_code == 200
    expected = call(sim, "user_summary", sim_auth, {"StartPage": 2, "PageSize": 3}).json()
    assert response.json()["results"] == expected["results"]


def test_start_page_paging_ends_with_a_short_page(sim, sim_auth):
    seen, page = [], 1
    while True:
        results = call(sim, "user_summary", sim_auth,
                       {"StartPage": page, "PageSize": 30}).json()["results"]
        seen += [r["email"] for r in results]
        if len(results) < 30:
            break
        page += 1
    assert len(seen) == len(set(seen)) == sim.tenant.user_count
    past = call(sim, "user_summary", sim_auth, {"StartPage": 99, "PageSize": 30}).json()
    assert past["results"] == [] and past["nextToken"] is None


@pytest.mark.parametrize("size", [7, 100])
def test_token_paging_returns_every_record_once(sim, sim_auth, size):
    records, pages = all_pages(sim, sim_auth, "detail_records", {"pageSize": size})
    total = sum(sim.tenant.site(s).object_count for s in range(sim.tenant.site_count))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == total
    assert pages == -(-total // size)


def test_pages_of_one_record_and_a_changing_page_size(sim, sim_auth):
    site = sim.tenant.site(2)
    body = {"siteId": site.id, "pageSize": 1}
    records, pages = all_pages(sim, sim_auth, "detail_records_by_site", body)
    assert pages == len(records) == len({r["id"] for r in records}) == site.object_count
    first = call(sim, "detail_records_by_site", sim_auth, {**body, "pageSize": 4}).json()
    rest, _ = all_pages(sim, sim_auth, "detail_records_by_site",
                        {**body, "pageSize": 9, "token": first["nextToken"]})
    assert [r["id"] for r in first["results"] + rest] == [r["id"] for r in records]


def test_a_token_from_another_query_is_refused(sim, sim_auth):
    first = call(sim, "detail_records", sim_auth, {"pageSize": 5}).json()
    other = call(sim, "detail_records", sim_auth,
                 {"pageSize": 5, "token": first["nextToken"],
                  "filters": [{"id": "module", "values": ["1"]}]})
    assert other.status_code == 400
    assert "token" in other.json()["message"]
    forged = call(sim, "detail_records", sim_auth, {"pageSize": 5, "token": "AAAA"})
    assert forged.status_code == 400


def test_users_direct_sites_match_the_site_permissions(sim, sim_auth):
    urls = [sim.tenant.site(s).url for s in range(sim.tenant.site_count)]
    rows = []
    for chunk in (urls[:20], urls[20:]):
        rows += all_pages(sim, sim_auth, "site_permissions", {"SiteUrls": chunk, "Top": 100})[0]
    users = call(sim, "user_summary", sim_auth, {"StartPage": 1, "PageSize": 100}).json()
    for user in users["results"][:40]:
        direct = {r["url"] for r in rows
                  if r["principalType"] == "User" and r["email"] == user["email"]}
        assert len(direct) == user["sitesWithDirectAccess"], user["email"]
        own, _ = all_pages(sim, sim_auth, "user_permissions", {"Emails": [user["email"]]})
        assert {r["location"] for r in own if r["isDirect"]} == direct


def test_detail_record_filters_filter(sim, sim_auth):
    body = {"pageSize": 100, "filters": [
        {"id": "sensitivityLevel", "values": ["3"]},
        {"id": "MODULE", "values": ["1", "2"]}]}
    records, _ = all_pages(sim, sim_auth, "detail_records", body)
    assert records
    assert {r["sensitivityLevel"] for r in records} == {"High"}
    assert {r["module"] for r in records} <= {"Microsoft Teams", "SharePoint Online"}
    site = sim.tenant.site(3)
    by_site, _ = all_pages(sim, sim_auth, "detail_records_by_site",
                           {"siteId": site.id, "pageSize": 10,
                            "filters": [{"id": "objectType", "values": ["2"]}]})
    assert by_site and {(r["objectType"], r["webUrl"]) for r in by_site} == {("File", site.url)}


def test_site_ids_and_overview(sim, sim_auth):
    urls = [sim.tenant.site(1).url, "https://contoso.sharepoint.com/sites/unknown"]
    ids = call(sim, "site_ids", sim_auth, {"siteUrls": urls}).json()
    assert ids["results"] == [{"siteId": sim.tenant.site(1).id, "siteUrl": urls[0]}]
    overview, _ = all_pages(sim, sim_auth, "site_overview", {"pageSize": 100})
    assert len(overview) == sim.tenant.site_count
    assert all(r["exposureItemCount"] >= r["riskItemCount"] for r in overview)


def test_link_summary_pages_only_the_asked_type(sim, sim_auth):
    records, _ = all_pages(sim, sim_auth, "link_summary", {"LinkType": "32", "PageSize": 10})
    expected = sum(sim.tenant.link_count(s, 32) for s in range(sim.tenant.site_count))
    assert len(records) == len({r["linkId"] for r in records}) == expected
    assert {r["linkType"] for r in records} == {catalog.LINK_TYPE.label(32)}


@pytest.mark.parametrize("operation,body,field", [
    ("site_permissions", {"SiteUrls": [f"https://x/{n}" for n in range(101)]}, "SiteUrls"),
    ("user_permissions", {"Emails": [f"u{n}@x" for n in range(101)]}, "Emails"),
    ("user_permissions", {}, "Emails"),
    ("user_summary", {"StartPage": 1, "Language": "de-DE"}, "Language"),
    ("user_summary", {"StartPage": 1, "PageSize": 101}, "PageSize"),
    ("user_summary", {"StartPage": 0}, "StartPage"),
    ("link_summary", {"LinkType": "33"}, "LinkType"),
    ("link_summary", {}, "LinkType"),
    ("detail_records", {}, "pageSize"),
    ("detail_records", {"pageSize": 10, "filters": [{"id": "riskLevel", "values": ["7"]}]},
     "riskLevel"),
    ("detail_records", {"pageSize": 10, "filters": [{"id": "color", "values": ["1"]}]},
     "color"),
    ("detail_records_by_site", {"pageSize": 10}, "siteId"),
])
def test_bad_requests_get_a_400_naming_the_field(sim, sim_auth, operation, body, field):
    response = call(sim, operation, sim_auth, body)
    assert response.status_code == 400
    page = response.json()
    assert page["status"] == 400 and page["results"] is None
    assert field in page["message"]


def test_malformed_bodies_get_problem_details(sim, sim_auth):
    url = sim.url("user_summary")
    bad_json = requests.post(url, data=b"{not json", headers={**sim_auth,
                             "Content-Type": "application/json"}, timeout=10)
    assert bad_json.status_code == 400
    assert bad_json.headers["Content-Type"].startswith("application/problem+json")
    assert bad_json.json()["title"] == "One or more validation errors occurred."
    wrong_type = call(sim, "site_permissions", sim_auth, {"SiteUrls": "https://one"})
    assert wrong_type.status_code == 400 and "SiteUrls" in wrong_type.json()["errors"]


def test_unknown_paths_and_methods(sim, sim_auth):
    assert requests.post(f"{sim.base_url}/api/v1/nothing", json={}, headers=sim_auth,
                         timeout=10).status_code == 404
    assert requests.get(sim.url("user_summary"), headers=sim_auth, timeout=10).status_code == 405


def test_the_log_records_what_the_client_did(sim, sim_auth):
    call(sim, "user_summary", sim_auth, {"StartPage": 1, "PageSize": 2})
    call(sim, "user_summary", sim_auth, {"StartPage": 1, "PageSize": 200})
    entries = sim.log.requests("user_summary")
    assert [e.status for e in entries] == [200, 400]
    assert entries[0].fields == {"StartPage": 1, "PageSize": 2}
    assert entries[0].client_id == sim.client_id
    assert sim.log.count("user_summary", status=400) == 1


def reference_sections(text):
    """{(method, path): section text} for every endpoint heading of the reference."""
    import re

    headings = list(re.finditer(r"^(GET|POST) (api/v1/\S+?)(?:\?\S*)?$", text, re.MULTILINE))
    return {(m.group(1), m.group(2).lower()): text[m.end(): nxt.start() if nxt else len(text)]
            for m, nxt in zip(headings, [*headings[1:], None], strict=True)}


def example_keys(section):
    import re

    start = section.find("Response Example")
    end = section.find("Request Information", start)
    return set(re.findall(r'"(\w+)":', section[start:end])) - ENVELOPE


def test_records_have_the_keys_of_the_reference_examples(sim, sim_auth, reference_text):
    sections = reference_sections(reference_text)
    site, user = sim.tenant.site(4), sim.tenant.user(1)
    bodies = {
        "user_summary": {"StartPage": 1}, "group_summary": {"StartPage": 1},
        "link_summary": {"LinkType": "64"}, "site_permissions": {"SiteUrls": [site.url]},
        "user_permissions": {"Emails": [user.email]},
        "detail_records_by_site": {"siteId": site.id, "pageSize": 5},
        "site_ids": {"siteUrls": [site.url]}, "site_overview": {"pageSize": 5},
        "detail_records": {"pageSize": 5},
    }
    checked = 0
    for name, body in bodies.items():
        op = catalog.operation(name)
        keys = example_keys(sections[(op.method, op.path.lower())])
        record = call(sim, name, sim_auth, body).json()["results"][0]
        assert set(record) == keys, name
        checked += 1
    assert checked == 9
    activity = catalog.operation("activity_export")
    job = call(sim, "activity_export", sim_auth, {"email": user.email, "path": ""}).json()
    assert set(job) == example_keys(sections[(activity.method, activity.path.lower())])
    status = catalog.operation("activity_export_status")
    answer = requests.get(sim.url("activity_export_status"), params={"id": job["id"]},
                          headers=sim_auth, timeout=10).json()
    assert set(answer) == example_keys(sections[(status.method, status.path.lower())]) | {
        "status"}
