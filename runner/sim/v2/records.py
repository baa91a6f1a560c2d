"""The records of the Graph API (v2) queries, shaped as §4 of the v2 reference shows them
(DOC's current state, which is newer than the OpenAPI file), over the same seeded M365
tenant as v1: a v2 record is the v1 record of the same user, group, site, link or object,
renamed and retyped where v2 renamed or retyped it (§9.3).  So a report holds the same
records on both generations.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runner.sim import records as v1
from runner.sim.tenant import EPOCH, Tenant, parse_time


def inherit_type(unique: bool) -> str:
    """v1's boolean ``inheritType`` (true: the object has unique permissions) as v2's text."""
    return "Unique" if unique else "Inheritance"


def last_sign_in(value: str) -> str:
    """v1's last sign-in time as the bucket v2 reports (§4.8)."""
    if not value or value == "None":
        return "None"
    age = EPOCH - parse_time(value)
    if age < dt.timedelta(days=90):
        return "Less than 90 Days"
    return "More than 90 Days" if age < dt.timedelta(days=180) else "More than 180 Days"


def user_summary(tenant: Tenant, u: int) -> dict[str, Any]:
    row = v1.user_summary(tenant, u)
    return {
        "displayName": row["displayName"], "loginName": row["loginName"],
        "email": row["email"], "userStatus": row["userStatus"],
        "trustStatus": row["trustStatus"], "sitesWithDirectAccess": row["sitesWithDirectAccess"],
        "lastSignIn": last_sign_in(row["lastSignin"]), "createdOn": row["createdOn"],
    }


def group_summary(tenant: Tenant, g: int) -> dict[str, Any]:
    return v1.group_summary(tenant, g)


def user_access(row: dict[str, Any]) -> dict[str, Any]:
    """A v1 ``User/permission`` row as a ``users/access`` record (13 fields)."""
    return {**row, "inheritType": inherit_type(bool(row["inheritType"]))}


def site_permission(row: dict[str, Any]) -> dict[str, Any]:
    """A v1 ``Site/permission`` row as a ``sites/permission`` record (12 fields)."""
    return {**row, "inheritType": inherit_type(bool(row["inheritType"]))}


def link_summary(link: dict[str, Any]) -> dict[str, Any]:
    """A tenant link as a ``sharingLinks/summary`` record: ``loginName`` became ``logonName``."""
    out = dict(link)
    out["logonName"] = out.pop("loginName")
    return out


def detail_record(record: dict[str, Any]) -> dict[str, Any]:
    """A v1 detail record as a ``sites/detailRecords`` record (23 fields)."""
    out = dict(record)
    out["inheritType"] = inherit_type(out.pop("inheritance") == "No")
    classifiers = out["trainableClassifier"]
    out["trainableClassifier"] = ", ".join(classifiers) if classifiers else None
    out["dataType"] = list(out["dataType"])
    return out
