"""A playbook's connection mapping: data centers, identity services, overrides, certificates."""

from __future__ import annotations

import pytest

from runner import regions
from runner.client.connection import resolve_connection
from runner.errors import PlaybookError, UserError
from runner.secret import Secret

CERT = {"path": "certs/app.pfx", "password": "s3cret"}


@pytest.mark.parametrize("dc", regions.data_centers("v1"), ids=lambda dc: dc.alias)
def test_every_region_alias_resolves(dc, tmp_path):
    settings = resolve_connection(
        {"region": dc.alias.upper(), "client_id": "app", "certificate": CERT}, tmp_path
    )
    assert settings.base_url == dc.base_url
    assert settings.region == dc.alias
    expected = regions.IDENTITY_SERVICES["gov" if dc.alias == "gov" else "commercial"]
    assert settings.identity_url == expected
    assert settings.verify_tls is True


def test_overrides_and_relative_certificate_path(tmp_path):
    settings = resolve_connection(
        {
            "region": "us",
            "base_url": "http://127.0.0.1:8080/insights/",
            "identity_url": "http://127.0.0.1:8081",
            "client_id": "app",
            "certificate": CERT,
            "verify_tls": False,
        },
        tmp_path,
    )
    assert settings.base_url == "http://127.0.0.1:8080/insights"
    assert settings.identity_url == "http://127.0.0.1:8081"
    assert settings.certificate.path == tmp_path / "certs" / "app.pfx"
    assert isinstance(settings.certificate.password, Secret)
    assert "s3cret" not in repr(settings)
    assert settings.verify_tls is False


def test_cloud_picks_the_identity_service(tmp_path):
    settings = resolve_connection(
        {
            "base_url": "https://proxy.example/insights",
            "cloud": "gov",
            "client_id": "a",
            "certificate": {"pfx_base64": "AAAA"},
        },
        tmp_path,
    )
    assert settings.identity_url == regions.IDENTITY_SERVICES["gov"]
    assert settings.certificate.pfx_base64 == Secret("AAAA")


def test_unknown_region_lists_the_aliases(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_connection({"region": "mars", "client_id": "a", "certificate": CERT}, tmp_path)
    message = str(info.value)
    assert "connection.region" in message and "'mars'" in message
    for dc in regions.data_centers("v1"):
        assert dc.alias in message


@pytest.mark.parametrize(("api", "region", "other"), [("v2", "cn", "v1"), ("v1", "qa", "v2"),
                                                      ("v1", "fedramp", "v2")])
def test_a_region_of_the_other_generation_is_refused(tmp_path, api, region, other):
    with pytest.raises(UserError, match=rf"connection.region: .* serves the {other} API only"):
        resolve_connection({"api": api, "region": region, "client_id": "a", "certificate": CERT},
                           tmp_path)


def test_v2_regions_pair_with_their_identity_service(tmp_path):
    for dc in regions.data_centers("v2"):
        settings = resolve_connection(
            {"api": "v2", "region": dc.alias, "client_id": "a", "client_secret": "s"}, tmp_path)
        assert settings.api == "v2" and settings.base_url == dc.base_url
        assert settings.identity_url == dc.identity_url
        assert settings.certificate is None and settings.client_secret.reveal() == "s"
    fed = resolve_connection({"api": "v2", "region": "fedramp", "client_id": "a",
                              "client_secret": "s"}, tmp_path)
    assert fed.identity_url == "https://identity.online15.net"
    assert fed.base_url == "https://graphusgovapi.online15.net/insights"


def test_max_exports_and_secret_problems(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_connection({"api": "v2", "region": "us", "client_id": "a", "certificate": CERT,
                            "client_secret": "s", "max_exports": 0}, tmp_path)
    assert "give a certificate or a client_secret, not both" in str(info.value)
    assert "connection.max_exports: must be a whole number" in str(info.value)
    assert resolve_connection({"region": "us", "client_id": "a", "certificate": CERT,
                               "max_exports": 2}, tmp_path).max_exports == 2


def test_all_problems_at_once_with_positions(tmp_path):
    def locate(path: str) -> tuple[str, int, int]:
        return ("play.yml", 4 + len(path), 3)

    with pytest.raises(PlaybookError) as info:
        resolve_connection(
            {
                "region": "mars",
                "verify_tls": "no",
                "colour": 1,
                "certificate": {"path": "a.pfx", "pfx_base64": "x"},
            },
            tmp_path,
            locate=locate,
        )
    fields = {d.field for d in info.value.diagnostics}
    assert {
        "connection.region",
        "connection.verify_tls",
        "connection.colour",
        "connection.client_id",
        "connection.certificate",
    } <= fields
    assert all(str(d).startswith("play.yml:") for d in info.value.diagnostics)
    assert info.value.exit_code == 2
