"""The simulator's Graph API (v2) over plain HTTP: every endpoint answers at the reference's
paths with the reference's shapes, the same records as v1, path values however encoded,
both paging schemes, and set_tag changing what later queries return."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests
from sim_support import call as call_v1
from sim_v2_support import call, op, reference_path

from runner import catalog


@pytest.fixture(scope="module")
def reference() -> str:
    path = reference_path()
    if path is None:
        pytest.skip("the v2 reference is not beside the repository")
    return path.read_text(encoding="utf-8")


def section(text: str, number: str) -> str:
    start = re.search(rf"^#+ {re.escape(number)} ", text, re.MULTILINE)
    assert start, number
    end = re.search(r"^#+ \d", text[start.end():], re.MULTILINE)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def response_fields(text: str, number: str) -> set[str]:
    """The record fields of a section's response table (`| Field | Type | Meaning...`)."""
    body = section(text, number)
    table = body[body.index("| Field | Type | Meaning"):]
    fields = set()
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        fields.add(line.split("|")[1].strip().strip("`"))
    return fields


def shape_keys(text: str, number: str) -> set[str]:
    """The envelope keys of a section's "Response shape" line."""
    line = re.search(r"Response shape: `(.*)`", section(text, number)).group(1)
    return {k for k in re.findall(r'"(\w+)":', line) if k not in ("token", "range", "min",
                                                                    "max", "siteName", "siteUrl",
                                                                    "riskItemCount",
                                                                    "sensitiveItemCount",
                                                                    "exposureItemCount")}


def linked_site(sim, link_type):
    return next(sim.tenant.site(s) for s in range(sim.tenant.site_count)
                if sim.tenant.link_count(s, link_type) > 1)


def query_bodies(sim):
    site, user = sim.tenant.site(4), sim.tenant.user(1)
    return {
        "4.7": ("user_permissions", {"emails": [user.email], "pageSize": 5}),
        "4.8": ("user_summary", {"startPage": 1, "pageSize": 5}),
        "4.9": ("group_summary", {"startPage": 1, "pageSize": 5}),
        "4.10": ("link_summary", {"siteUrl": linked_site(sim, 64).url, "linkType": 64,
                                  "pageSize": 1}),
        "4.11": ("site_permissions", {"siteUrls": [site.url], "pageSize": 5}),
        "4.12": ("site_overview", {"pageSize": 5}),
        "4.13": ("site_ids", {"siteUrl": site.url}),
        "4.14": ("detail_records_by_site", {"siteId": site.id, "pageSize": 5}),
    }


def test_every_query_answers_the_reference_envelope_and_record_fields(sim, sim_auth,
                                                                      reference):
    bodies = query_bodies(sim)
    assert {name for name, _ in bodies.values()} == {
        o.name for o in catalog.iter_operations("v2") if o.kind == "query"}
    for number, (name, body) in bodies.items():
        response = call(sim, name, sim_auth, body)
        assert response.status_code == 200, (name, response.text)
        page = response.json()
        assert set(page) == shape_keys(reference, number), name
        assert page["status"] == 200 and page["message"] == "", name
        data = page.get("values", page.get("results"))
        assert data, name
        if number == "4.13":
            assert data == [sim.tenant.site(4).id]
            continue
        for record in data:
            assert set(record) == response_fields(reference, number), name


def test_job_and_tag_envelopes_have_the_reference_keys(sim, sim_auth, reference):
    start = re.search(r"job-start envelope\*\*:\s*`(\{.*?\})`", section(reference, "4."))
    job = call(sim, "site_permission_export", sim_auth,
               {"siteUrls": [sim.tenant.site(1).url]}).json()
    assert set(job) == set(re.findall(r'"(\w+)":', start.group(1)))
    assert isinstance(job["jobId"], str) and job["jobId"].isdigit()
    status_op = next(o for o in catalog.iter_operations("v2") if o.kind == "status")
    status = requests.get(f"{sim.base_url}/{status_op.path.replace('{jobId}', job['jobId'])}",
                          headers=sim_auth, timeout=10).json()
    assert set(status) == response_fields(reference, "6.1")
    site = sim.tenant.site(2)
    tagged = call(sim, "set_tag", sim_auth, {"siteId": site.id, "objectUrl": site.url,
                                             "tagName": "Reviewed"})
    sample = re.search(r"Response \(`SimpleResultModel`\): `(\{.*?\})`", section(reference, "7."))
    assert tagged.json() == {"status": 200, "message": ""}
    assert set(tagged.json()) == set(re.findall(r'"(\w+)":', sample.group(1)))


# The DOC method and path of each endpoint in the reference's inventory (§0.4), and the
# catalog operation the simulator must route it to.
INVENTORY = {1: "object_activity_export", 2: "user_activity_export", 3: "user_access_export",
             4: "group_access_export", 5: "site_permission_export", 6: "link_export",
             7: "user_permissions", 8: "user_summary", 9: "group_summary", 10: "link_summary",
             11: "site_permissions", 12: "site_overview", 13: "site_ids",
             14: "detail_records_by_site", 15: "google_object_activity_export",
             16: "google_user_activity_export", 17: "google_user_access_export",
             18: "google_group_access_export", 19: "google_drive_permission_export",
             20: "google_link_export", 21: "job_status", 22: "job_file", 23: "set_tag",
             24: "health"}


def test_every_doc_path_of_the_inventory_reaches_its_operation(sim, sim_auth, reference):
    rows = re.findall(r"^\| (\d+) \| \w+ \| \**(GET|POST|PATCH)\** `(/insights/[^`]+)`",
                      section(reference, "0.4"), re.MULTILINE)
    assert len(rows) == 23
    rows.append(("24", "GET", "/insights/Healthz"))  # OAS only (§0.4 row 24; §10 question 7)
    started = call(sim, "site_permission_export", sim_auth,
                   {"siteUrls": [sim.tenant.site(1).url]}).json()["jobId"]
    filler = {"path": sim.tenant.site(1).url, "email": sim.tenant.user(2).email,
              "groupId": sim.tenant.group(1).id, "siteUrl": sim.tenant.site(1).url,
              "siteId": sim.tenant.site(1).id, "objectUrl": sim.tenant.site(1).url,
              "id": sim.service.google.file(0, 1)["id"], "jobId": started}
    for number, method, path in rows:
        target = re.sub(r"{(\w+)}", lambda m: quote(str(filler[m.group(1)]), safe=""), path)
        response = requests.request(method, f"{sim.root_url}{target}", headers=sim_auth,
                                    json={} if method == "POST" else None, timeout=10)
        assert response.status_code not in (404, 405), (number, path, response.text)
        assert sim.log.entries[-1].operation == INVENTORY[int(number)], (number, path)


def test_v2_records_are_the_v1_records_restated(sim, sim_auth):
    site = sim.tenant.site(3)
    v1 = call_v1(sim, "site_permissions", sim_auth, {"SiteUrls": [site.url], "Top": 100})
    v2 = call(sim, "site_permissions", sim_auth, {"siteUrls": [site.url], "pageSize": 100})
    pairs = [(r["url"], r["principalName"], r["permission"]) for r in v1.json()["results"]]
    assert pairs == [(r["url"], r["principalName"], r["permission"])
                     for r in v2.json()["values"]]
    assert {r["inheritType"] for r in v2.json()["values"]} <= {"Unique", "Inheritance"}
    v1_objects = call_v1(sim, "detail_records_by_site", sim_auth,
                         {"siteId": site.id, "pageSize": 100}).json()["results"]
    v2_objects = call(sim, "detail_records_by_site", sim_auth,
                      {"siteId": site.id, "pageSize": 100}).json()["values"]
    assert [r["id"] for r in v1_objects] == [r["id"] for r in v2_objects]
    for old, new in zip(v1_objects, v2_objects, strict=True):
        assert new["inheritType"] == ("Unique" if old["inheritance"] == "No" else "Inheritance")
        assert new["trainableClassifier"] in (None, ", ".join(old["trainableClassifier"]))
    users_v1 = call_v1(sim, "user_summary", sim_auth, {"StartPage": 2, "PageSize": 7})
    users_v2 = call(sim, "user_summary", sim_auth, {"startPage": 2, "pageSize": 7})
    assert [u["loginName"] for u in users_v1.json()["results"]] == \
        [u["loginName"] for u in users_v2.json()["results"]]


@pytest.mark.parametrize("encoding", ["single", "double", "raw_at"])
def test_path_values_are_read_single_double_or_raw(sim, sim_auth, encoding):
    guest = sim.tenant.user(19)  # every tenth user is a guest: name_partner#ext#@tenant
    assert "#ext#" in guest.login_name
    name = "user_access_export"
    if encoding == "raw_at":
        target = f"{sim.base_url}/" + op(name).path.replace(
            "{email}", quote(guest.login_name, safe="@"))
        response = requests.get(target, params={"dataSources": "sharepoint online"},
                                headers=sim_auth, timeout=10)
    else:
        response = call(sim, name, sim_auth, {"email": guest.login_name,
                                              "dataSources": ["sharepoint online"]},
                        double=encoding == "double")
    assert response.status_code == 200, response.text
    assert sim.log.requests(name)[-1].fields["email"] == guest.login_name
    job = sim.jobs.get(int(response.json()["jobId"]))
    assert job.values["emails"] == [guest.login_name]


def test_an_object_url_in_the_path_is_one_segment_once_or_twice_encoded(sim, sim_auth):
    site = sim.tenant.site(5)
    for double in (False, True):
        found = call(sim, "site_ids", sim_auth, {"siteUrl": site.url}, double=double)
        assert found.json()["values"] == [site.id]
    unknown = call(sim, "site_ids", sim_auth, {"siteUrl": "https://contoso.sharepoint.com/x"})
    assert unknown.status_code == 200 and unknown.json()["values"] == []


def test_start_page_paging_ends_with_a_short_page(sim, sim_auth):
    seen, page = [], 1
    while True:
        answer = call(sim, "group_summary", sim_auth, {"startPage": page, "pageSize": 6}).json()
        assert answer["nextLink"] is None
        seen += [g["groupId"] for g in answer["values"]]
        if len(answer["values"]) < 6:
            break
        page += 1
    assert len(seen) == len(set(seen)) == sim.tenant.group_count
    assert call(sim, "user_summary", sim_auth, {"startPage": 0}).status_code == 400


def pages(sim, auth, name, body):
    records, link, count = [], None, 0
    while True:
        answer = call(sim, name, auth, {**body, "nextLink": link}).json()
        assert answer["status"] == 200, answer
        records += answer["values"]
        count += 1
        link = answer["nextLink"]
        if link is None:
            return records, count


def test_next_link_paging_returns_every_record_once(sim, sim_auth):
    urls = [sim.tenant.site(s).url for s in range(12)]
    whole, one_page = pages(sim, sim_auth, "site_permissions", {"siteUrls": urls,
                                                                "pageSize": 100})
    paged, count = pages(sim, sim_auth, "site_permissions", {"siteUrls": urls, "pageSize": 7})
    assert paged == whole and count == -(-len(whole) // 7) and one_page == -(-len(whole) // 100)
    site = linked_site(sim, 32)
    links, count = pages(sim, sim_auth, "link_summary", {"siteUrl": site.url, "linkType": 32,
                                                         "pageSize": 1})
    assert count == len(links) == sim.tenant.link_count(site.index, 32)
    assert len({r["linkId"] for r in links}) == len(links)


def test_the_link_summary_next_link_is_an_opaque_json_string(sim, sim_auth):
    site = linked_site(sim, 32)
    first = call(sim, "link_summary", sim_auth, {"siteUrl": site.url, "linkType": 32,
                                                 "pageSize": 1}).json()
    assert first["nextLink"].startswith('[{"token":"+RID:~')
    again = call(sim, "link_summary", sim_auth, {"siteUrl": site.url, "linkType": 64,
                                                 "pageSize": 1, "nextLink": first["nextLink"]})
    assert again.status_code == 400  # a token of another query
    assert again.json()["values"] is None and again.json()["status"] == 400
    assert "pass the nextLink of the previous page" in again.json()["message"]


def test_set_tag_changes_later_results_on_both_generations(sim, sim_auth):
    site = sim.tenant.site(6)
    target = sim.tenant.site_objects(6)[3]
    answer = call(sim, "set_tag", sim_auth, {"siteId": site.id, "objectUrl": target["location"],
                                             "tagName": "FalsePositive"})
    assert answer.status_code == 200, answer.text
    v2 = call(sim, "detail_records_by_site", sim_auth, {"siteId": site.id, "pageSize": 100})
    tags = {r["location"]: r["tagName"] for r in v2.json()["values"]}
    assert tags[target["location"]] == "FalsePositive"
    v1 = call_v1(sim, "detail_records", sim_auth, {"pageSize": 100, "filters": [
        {"id": "tagName", "values": ["falsepositive"]}]}).json()["results"]
    assert [r["location"] for r in v1] == [target["location"]]
    call(sim, "set_tag", sim_auth, {"siteId": site.id, "objectUrl": target["location"],
                                    "tagName": "Escalated"})  # a new tag replaces the old
    v2 = call(sim, "detail_records_by_site", sim_auth, {"siteId": site.id, "pageSize": 100})
    assert {r["location"]: r["tagName"] for r in v2.json()["values"]}[target["location"]] == \
        "Escalated"


@pytest.mark.parametrize("values,status,word", [
    ({"objectUrl": "https://contoso.sharepoint.com/nowhere", "tagName": "X"}, 404, "object"),
    ({"siteId": "00000000-0000-4000-8000-000000000000", "tagName": "X"}, 404, "site"),
    ({}, 400, "tagName"),
])
def test_set_tag_refusals(sim, sim_auth, values, status, word):
    site = sim.tenant.site(6)
    body = {"siteId": site.id, "objectUrl": site.url, **values}
    answer = call(sim, "set_tag", sim_auth, body)
    assert answer.status_code == status
    assert set(answer.json()) == {"status", "message"} and word in answer.json()["message"]


def test_post_queries_need_json_and_read_a_scalar_risk_level_as_a_list(sim, sim_auth):
    as_list = call(sim, "site_overview", sim_auth, {"riskLevel": [3], "pageSize": 100}).json()
    scalar = call(sim, "site_overview", sim_auth, {"riskLevel": 3, "pageSize": 100}).json()
    assert scalar["values"] == as_list["values"]
    total = call(sim, "site_overview", sim_auth, {"pageSize": 100}).json()["values"]
    assert sum(r["exposureItemCount"] for r in as_list["values"]) < \
        sum(r["exposureItemCount"] for r in total)
    form = requests.post(f"{sim.base_url}/{op('site_overview').path}", data={"pageSize": "5"},
                         headers=sim_auth, timeout=10)
    assert form.status_code == 400
    assert form.headers["Content-Type"].startswith("application/problem+json")


def test_routes_are_case_insensitive_and_wrong_methods_get_405(sim, sim_auth):
    path = op("detail_records_by_site").path
    lower = requests.post(f"{sim.base_url}/{path.lower()}", json={"siteId": sim.tenant.site(1).id},
                          headers=sim_auth, timeout=10)
    assert lower.status_code == 200
    assert requests.get(f"{sim.base_url}/{path}", headers=sim_auth,
                        timeout=10).status_code == 405
    assert requests.get(f"{sim.base_url}/nothing/here", headers=sim_auth,
                        timeout=10).status_code == 404
    health = requests.get(f"{sim.base_url}/Healthz", timeout=10)
    assert health.status_code == 200 and health.text == "Healthy"


def test_v2_requests_need_a_token(sim):
    answer = call(sim, "user_summary", {}, {"startPage": 1})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"


def test_the_log_records_v2_requests_with_their_values(sim, sim_auth):
    user = sim.tenant.user(3)
    call(sim, "user_permissions", sim_auth, {"emails": [user.email], "pageSize": 2})
    call(sim, "site_ids", sim_auth, {"siteUrl": sim.tenant.site(2).url}, double=True)
    access, lookup = sim.log.entries[-2:]
    assert (access.operation, access.status) == ("user_permissions", 200)
    assert access.fields == {"emails": [user.email], "pageSize": 2}
    assert lookup.fields == {"siteUrl": sim.tenant.site(2).url}
    assert access.client_id == sim.client_id
