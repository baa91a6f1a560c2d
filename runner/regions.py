"""Data centers (Web API URLs) and identity services, as the vendor's reference lists them.

A playbook names a data center by its alias (``us``, ``ne``, ``gcp-au``, ``gov``...), the
host part that tells the vendor's URLs apart.  The U.S. Government data center pairs with
the government identity service; every other one with the commercial service.
"""

from __future__ import annotations

from dataclasses import dataclass

IDENTITY_SERVICES: dict[str, str] = {
    "commercial": "https://identity.avepointonlineservices.com",
    "gov": "https://identity-gov.avepointonlineservices.com",
}


@dataclass(frozen=True)
class DataCenter:
    alias: str
    name: str
    base_url: str
    cloud: str = "commercial"

    @property
    def identity_url(self) -> str:
        return IDENTITY_SERVICES[self.cloud]


def _dc(alias: str, name: str, cloud: str = "commercial") -> DataCenter:
    url = f"https://graph-{alias}.avepointonlineservices.com/insights"
    return DataCenter(alias, name, url, cloud)


DATA_CENTERS: tuple[DataCenter, ...] = (
    _dc("au", "Australia Southeast (Victoria)"),
    _dc("ca", "Canada Central (Toronto)"),
    _dc("cn", "China North"),
    _dc("us", "East US (Virginia)"),
    _dc("fr", "France Central (Paris)"),
    _dc("de", "Germany West Central (Frankfurt)"),
    _dc("jp", "Japan West (Osaka)"),
    _dc("kr", "Korea Central (Seoul)"),
    _dc("ne", "North Europe (Ireland)"),
    _dc("za", "South Africa North (Johannesburg)"),
    _dc("sg", "Southeast Asia (Singapore)"),
    _dc("ch", "Switzerland North (Zurich)"),
    _dc("uk", "UK South (London)"),
    _dc("gov", "US Gov Virginia (Virginia)", cloud="gov"),
    _dc("we", "West Europe (Netherlands)"),
    _dc("uae", "United Arab Emirates (Dubai)"),
    _dc("gcp-au", "GCP for Australia Southeast (Sydney)"),
    _dc("gcp-we", "GCP for West Europe (Eemshaven, Netherlands)"),
    _dc("gcp-jp", "GCP for Japan (Tokyo)"),
    _dc("gcp-us", "GCP for East US (Moncks Corner)"),
    _dc("gcp-kr", "GCP for South Korea (Seoul)"),
)

BY_ALIAS: dict[str, DataCenter] = {dc.alias: dc for dc in DATA_CENTERS}


def data_center(alias: str) -> DataCenter:
    """The data center for ``alias`` (case-insensitive); KeyError lists nothing, callers do."""
    return BY_ALIAS[alias.strip().lower()]
