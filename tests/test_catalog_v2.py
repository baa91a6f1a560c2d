"""The v2 catalog agrees with the Graph API reference, and its choices are written down."""

from __future__ import annotations

import re

import pytest

from runner import catalog, regions
from runner.catalog import questions


def _inventory(reference: str) -> set[tuple[str, str]]:
    """(method, path below /insights) of the reference's §0.4 table, DOC column."""
    section = reference.split("### 0.4", 1)[1].split("\n---", 1)[0]
    found = set()
    for row in section.splitlines():
        cells = [c.strip() for c in row.split("|")]
        if len(cells) < 5 or not cells[1].isdigit():
            continue
        doc, oas = cells[3], cells[4]
        if doc.startswith("–"):  # Healthz: OAS only
            method, path = re.search(r"(GET|POST|PATCH) `/([^`]+)`", oas).groups()
        else:
            method, path = re.search(r"(GET|POST|PATCH)\*{0,2} `/insights/([^`]+)`", doc).groups()
        found.add((method, path.lower()))
    return found


def test_the_24_endpoints_of_the_reference_are_the_catalog_routes(reference_v2_text) -> None:
    documented = _inventory(reference_v2_text)
    routed = {(op.method, op.path.lower()) for op in catalog.routed("v2")}
    assert len(documented) == 24
    assert routed == documented


def test_every_open_question_is_settled_once(reference_v2_text) -> None:
    section = reference_v2_text.split("## 10.", 1)[1]
    numbers = {int(n) for n in re.findall(r"^(\d+)\. ", section, re.M)}
    assert numbers == set(range(1, 65))
    assert set(questions.SETTLED) == numbers
    assert all(answer.strip() for _, answer in questions.SETTLED.values())


def test_v2_data_centers_are_the_reference_table(reference_v2_text) -> None:
    hosts = set(re.findall(r"`(https://graph[a-z0-9.-]+/)`", reference_v2_text.split("## 3.")[0]))
    assert {dc.base_url.removesuffix("insights") for dc in regions.data_centers("v2")} == hosts
    assert len(regions.data_centers("v2")) == 23
    assert "cn" not in {dc.alias for dc in regions.data_centers("v2")}
    assert regions.data_center("fedramp").identity_url == "https://identity.online15.net"
    assert regions.data_center("aos2").identity_url.startswith("https://identity-aos2.")


@pytest.mark.parametrize(("module", "field", "cap"), [
    ("user_access_export", "emails", 1),
    ("group_access_export", "group_ids", 1),
    ("site_ids", "site_urls", 1),
    ("link_summary", "site_urls", 1),
    ("site_permission_export", "site_urls", 100),
    ("google_drive_permission_export", "drive_ids", 100),
    ("user_permissions", "emails", 100),
])
def test_caps_come_from_the_catalog(module, field, cap) -> None:
    assert catalog.operation(module, "v2").field(field).cap == cap
    if cap == 1:
        assert catalog.operation(module, "v2").field(field).single


def test_every_v1_module_has_a_v2_equivalent_or_an_alternative() -> None:
    for name in catalog.module_names("v1"):
        if name in catalog.V2.unavailable:
            assert "detail_records_by_site" in catalog.V2.unavailable[name]
        else:
            assert catalog.operation(name, "v2").is_module, name


def test_v2_exports_share_the_job_routes_and_answer_string_ids() -> None:
    for op in catalog.modules("v2"):
        if op.is_export:
            assert op.status_operation.path == "job/{jobId}/exportstatus"
            assert op.file_operation.path == "job/{jobId}/exportfile"
            assert op.job_id_type is str and op.job_id_keys[0] == "jobId"
            assert op.status_operation.job_state_keys == ("jobStatus",)
            for split in op.splits:
                assert catalog.operation(split.operation, "v2").path


@pytest.mark.parametrize(("value", "sent"), [
    ("guest_x.com#ext#@t.onmicrosoft.com", "guest_x.com%23ext%23%40t.onmicrosoft.com"),
    ("https://c.sharepoint.com/sites/a b", "https%3A%2F%2Fc.sharepoint.com%2Fsites%2Fa%20b"),
    ("user@example.com", "user%40example.com"),
])
def test_path_values_are_encoded_once_and_decoded_whatever_the_encoding(value, sent) -> None:
    op = catalog.operation("user_access_export", "v2")
    path = catalog.fill_path(op, {"email": value})
    assert path == f"users/{sent}/access/export"
    double = sent.replace("%", "%25")
    for raw in (sent, double):
        found = catalog.match_path("GET", f"Users/{raw}/ACCESS/export", catalog.routed("v2"))
        assert found == (op, {"email": value})


def test_literal_routes_win_over_path_values() -> None:
    routes = catalog.routed("v2")
    assert catalog.match_path("GET", "sites/permission/export", routes)[0].name == \
        "site_permission_export"
    op, values = catalog.match_path("GET", "sites/https%3A%2F%2Fx%2Fs%2Fa/siteid", routes)
    assert op.name == "site_ids" and values == {"siteUrl": "https://x/s/a"}
    assert catalog.match_path("POST", "sites/permission/export", routes) is None


def test_v1_names_still_import_from_the_package() -> None:
    from runner.catalog import (  # noqa: F401
        ENUMS,
        EXPORT_LIMIT_CODE,
        JOB_ENDPOINTS,
        MAX_CONCURRENT_EXPORTS,
        V1,
        ApiEnum,
        Field,
        Filter,
        Operation,
        encode,
        find_by_path,
    )
    assert catalog.find_by_path("POST", "API/V1/user/summary").name == "user_summary"
    assert catalog.module_names() == catalog.module_names("v1")
