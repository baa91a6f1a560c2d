"""The catalog agrees with the vendor's reference and is internally consistent."""

from __future__ import annotations

import re

import pytest

from runner import catalog, regions


def test_every_endpoint_of_the_reference_is_in_the_catalog(reference_text: str) -> None:
    documented = {
        (method, path.split("?")[0].lower())
        for method, path in re.findall(r"^(GET|POST) (api/v1/\S+)", reference_text, re.M)
    }
    in_catalog = {(op.method, op.path.lower()) for op in catalog.V1.operations}
    assert documented == in_catalog
    assert len(in_catalog) == 18


def test_every_data_center_of_the_reference_is_in_the_table(reference_text: str) -> None:
    pattern = r"https://graph-[a-z-]+\.avepointonlineservices\.com/insights"
    urls = set(re.findall(pattern, reference_text))
    assert urls == {dc.base_url for dc in regions.data_centers("v1")}
    assert len(regions.data_centers("v1")) == 21
    assert regions.data_center("gov").identity_url == regions.IDENTITY_SERVICES["gov"]
    assert regions.data_center("NE").identity_url == regions.IDENTITY_SERVICES["commercial"]


def test_modules_are_the_five_exports_and_nine_queries() -> None:
    kinds = [op.kind for op in catalog.modules()]
    assert kinds.count("export") == 5
    assert kinds.count("query") == 9
    for op in catalog.modules():
        if op.is_export:
            assert op.status_operation.kind == "status"
            assert op.file_operation.kind == "file"


@pytest.mark.parametrize(
    ("enum", "value", "code"),
    [
        (catalog.EXPORT_OPTION, "summary_only", 3),
        (catalog.EXPORT_OPTION, "1", 1),
        (catalog.LINK_TYPE, "Anyone", 128),
        (catalog.LINK_TYPE, 32, 32),
        (catalog.MODULE, "teams", 1),
        (catalog.OBJECT_TYPE, "library", 14),
        (catalog.SENSITIVITY_LEVEL, "not_defined", -2),
        (catalog.RISK_LEVEL, "-2", -2),
        (catalog.EXPOSURE_LEVEL, "HIGH", 3),
        (catalog.LANGUAGE, "fr", "fr-FR"),
        (catalog.DATA_SOURCE, "onedrive", "OneDrive"),
    ],
)
def test_enum_values_resolve_from_names_and_codes(enum, value, code) -> None:
    assert enum.resolve(value) == code


def test_a_bad_enum_value_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"summary_only \(3\)"):
        catalog.EXPORT_OPTION.resolve("everything")


def test_paged_queries_name_their_paging_fields() -> None:
    for op in catalog.modules():
        if op.paging == "start_page":
            assert op.page_start_field and op.page_size_field
        elif op.paging == "token":
            assert op.token_field and op.page_size_field
