"""Data centers (API base URLs) and identity services, as the vendor's references list them.

A playbook names a data center by its alias (``us``, ``ne``, ``gcp-au``, ``gov``...), the
host part that tells the vendor's URLs apart.  Both API generations live on the same hosts
below ``/insights``; the legacy Web API (v1) lists 21 data centers and the Graph API (v2)
23: China North is v1 only, Qatar, AOS2 and FedRAMP are v2 only (open question 62).

Each data center pairs with the identity service of its environment (open question 61):
U.S. Government with ``identity-gov``, AOS2 with ``identity-aos2``, FedRAMP (Project Hosts,
its own domain) with ``identity.online15.net``, every other one with the commercial service.
"""

from __future__ import annotations

from dataclasses import dataclass

IDENTITY_SERVICES: dict[str, str] = {
    "commercial": "https://identity.avepointonlineservices.com",
    "gov": "https://identity-gov.avepointonlineservices.com",
    "aos2": "https://identity-aos2.avepointonlineservices.com",
    "fedramp": "https://identity.online15.net",
}
BOTH = ("v1", "v2")


@dataclass(frozen=True)
class DataCenter:
    alias: str
    name: str
    base_url: str
    cloud: str = "commercial"
    generations: tuple[str, ...] = BOTH

    @property
    def identity_url(self) -> str:
        return IDENTITY_SERVICES[self.cloud]


def _dc(alias: str, name: str, cloud: str = "commercial",
        generations: tuple[str, ...] = BOTH) -> DataCenter:
    url = f"https://graph-{alias}.avepointonlineservices.com/insights"
    return DataCenter(alias, name, url, cloud, generations)


DATA_CENTERS: tuple[DataCenter, ...] = (
    _dc("au", "Australia Southeast (Victoria)"),
    _dc("ca", "Canada Central (Toronto)"),
    _dc("cn", "China North", generations=("v1",)),
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
    _dc("qa", "Qatar Central (Doha)", generations=("v2",)),
    _dc("aos2", "AOS2", cloud="aos2", generations=("v2",)),
    DataCenter("fedramp", "FedRAMP Cloud (Project Hosts)",
               "https://graphusgovapi.online15.net/insights", "fedramp", ("v2",)),
)

BY_ALIAS: dict[str, DataCenter] = {dc.alias: dc for dc in DATA_CENTERS}


def data_center(alias: str) -> DataCenter:
    """The data center for ``alias`` (case-insensitive); KeyError lists nothing, callers do."""
    return BY_ALIAS[alias.strip().lower()]


def data_centers(generation: str) -> tuple[DataCenter, ...]:
    """The data centers that serve ``generation`` (v1 or v2)."""
    return tuple(dc for dc in DATA_CENTERS if generation in dc.generations)
