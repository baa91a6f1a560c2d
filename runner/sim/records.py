"""The records each query endpoint returns, shaped as the reference shows them, and the
cursor-addressed iterators that paged endpoints take pages from.

The tenant speaks in codes; this module turns them into the service's labels (from the
catalog's enums) and applies the DetailRecord filters.  Query values are returned in
English whatever ``Language`` says (the reference shows no localized sample); the
language changes the column headers of exported reports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from runner import catalog
from runner.sim.paging import Cursor
from runner.sim.tenant import Tenant, parse_time

LINK_TYPES = tuple(int(c) for c in catalog.LINK_TYPE.codes)


def _labels(enum: catalog.ApiEnum) -> dict[Any, str]:
    return {m.code: m.label for m in enum.members}


# code -> label, looked up once per record field (ApiEnum.label normalizes on every call)
OBJECT_TYPE = _labels(catalog.OBJECT_TYPE)
MODULE = _labels(catalog.MODULE)
SENSITIVITY = _labels(catalog.SENSITIVITY_LEVEL)
EXPOSURE = _labels(catalog.EXPOSURE_LEVEL)
RISK = _labels(catalog.RISK_LEVEL)
_LINK_AUDIENCE = {32: "Specific people", 64: "People in your organization",
                  128: "Anyone with the link"}

# ------------------------------------------------------------------ summary rows


def user_summary(tenant: Tenant, u: int) -> dict[str, Any]:
    user = tenant.user(u)
    return {
        "displayName": user.display_name, "loginName": user.login_name, "email": user.email,
        "userStatus": "Active" if user.active else "Blocked",
        "trustStatus": "Trusted" if user.trusted else "Not Trusted",
        "sitesWithDirectAccess": user.direct_sites, "lastSignin": user.last_signin,
        "createdOn": user.created,
    }


def group_summary(tenant: Tenant, g: int) -> dict[str, Any]:
    group = tenant.group(g)
    return {
        "displayName": group.display_name, "groupId": group.id, "email": group.email,
        "groupType": group.group_type, "membershipType": group.membership,
        "createdOn": group.created, "externalMemberCount": group.external_members,
    }


# ------------------------------------------------------------- permission rows


def site_permissions(tenant: Tenant, s: int) -> list[dict[str, Any]]:
    """Every principal with access to site ``s``: its groups, direct users, groups with
    external members and sharing links."""
    site = tenant.site(s)
    module = catalog.MODULE.label(site.module)
    base = {"module": module, "name": site.name, "url": site.url,
            "objectType": catalog.OBJECT_TYPE.label(11), "inheritType": False,
            "linkGivingAccessTo": None}
    rows = []
    for role, permission in (("Owners", "Full Control"), ("Members", "Edit"),
                             ("Visitors", "Read")):
        rows.append({**base, "principalName": f"{site.name} {role}", "email": "",
                     "principalType": "SharePoint Group", "permission": permission,
                     "numberOfMembers": 1 + tenant.h("members", s, role) % 12,
                     "isExternalUser": False})
    for u in tenant.site_users(s):
        user = tenant.user(u)
        rows.append({**base, "principalName": user.display_name, "email": user.email,
                     "principalType": "User", "permission": tenant.user_permission(u, s),
                     "numberOfMembers": 0, "isExternalUser": user.external})
    for g in tenant.site_groups(s):
        group = tenant.group(g)
        rows.append({**base, "principalName": group.display_name, "email": group.email,
                     "principalType": group.group_type, "permission": "Edit" if g % 2 else "Read",
                     "numberOfMembers": group.external_members, "isExternalUser": True})
    for link_type in LINK_TYPES:
        for j in range(tenant.link_count(s, link_type)):
            link = tenant.link(s, link_type, j)
            rows.append({**base, "name": link["name"], "url": link["objectUrl"],
                         "objectType": link["fileType"], "principalName": link["loginName"],
                         "email": "", "principalType": "Sharing Link",
                         "permission": "Edit" if link["permission"] == "Edit" else "Read",
                         "numberOfMembers": link["shareWith"],
                         "isExternalUser": link_type != 64, "inheritType": True,
                         "linkGivingAccessTo": _LINK_AUDIENCE[link_type]})
    return rows


def user_permissions(tenant: Tenant, u: int, s: int) -> list[dict[str, Any]]:
    """What user ``u`` can reach in site ``s``: the site itself (granted directly) and every
    object below it (inherited from the site)."""
    site = tenant.site(s)
    module = MODULE[site.module]
    permission = tenant.user_permission(u, s)
    rows = []
    for j, obj in enumerate(tenant.site_objects(s)):
        rows.append({
            "module": module, "siteName": site.name, "name": obj["name"],
            "location": obj["location"],
            "objectType": OBJECT_TYPE[obj["objectType"]],
            "inheritType": j > 0 and obj["inheritance"] == "No",
            "permission": permission,
            "sensitivityLevel": SENSITIVITY[obj["sensitivityLevel"]],
            "dataType": ", ".join(obj["dataType"]), "isDirect": j == 0,
            "sensitivityLabel": obj["sensitivityLabel"] or "",
            "trainableClassifier": ", ".join(obj["trainableClassifier"]),
            "inheritedFrom": None if j == 0 else site.name,
        })
    return rows


# ------------------------------------------------------------------ detail records


def detail_record(obj: dict[str, Any]) -> dict[str, Any]:
    """A tenant object (codes) as the DetailRecord endpoints return it (labels)."""
    return {
        **obj,
        "objectType": OBJECT_TYPE[obj["objectType"]],
        "module": MODULE[obj["module"]],
        "sensitivityLevel": SENSITIVITY[obj["sensitivityLevel"]],
        "exposureLevel": EXPOSURE[obj["exposureLevel"]],
        "riskLevel": RISK[obj["riskLevel"]],
    }


_CODE_FILTERS = {"object_type": "objectType", "sensitivity": "sensitivityLevel",
                 "exposure": "exposureLevel", "risk": "riskLevel", "module": "module"}
_CODE_KEYS = ("objectType", "sensitivityLevel", "exposureLevel", "riskLevel")


def site_may_match(tenant: Tenant, s: int, filters: dict[str, list[Any]]) -> bool:
    """False when no object of site ``s`` can pass ``filters`` (skips whole sites)."""
    site = tenant.site(s)
    if "module" in filters and site.module not in filters["module"]:
        return False
    if "site_name" in filters and not any(v.lower() in site.name.lower()
                                          for v in filters["site_name"]):
        return False
    if "location" in filters:
        url = site.url.lower()
        return any(v.lower().startswith(url) or url.startswith(v.lower().rstrip("/"))
                   for v in filters["location"])
    return True


def object_matches(obj: dict[str, Any], filters: dict[str, list[Any]]) -> bool:
    """The DetailRecord filters: values within one filter OR, filters AND."""
    for name, values in filters.items():
        if name in _CODE_FILTERS:
            if obj[_CODE_FILTERS[name]] not in values:
                return False
        elif name == "tag_name":
            if obj["tagName"].lower() not in {v.lower() for v in values}:
                return False
        elif name in ("created_by", "username"):
            people = {v.lower() for v in values}
            if obj["creatorEmail"].lower() not in people and obj["createdBy"].lower() not in people:
                return False
        elif name == "location":
            loc = obj["location"].lower()
            if not any(loc == v.lower().rstrip("/") or loc.startswith(v.lower().rstrip("/") + "/")
                       for v in values):
                return False
        elif name == "site_name":
            if not any(v.lower() in obj["siteName"].lower() for v in values):
                return False
        elif name == "modified_time" and not _modified_between(obj["modifiedTime"], values):
            return False
    return True


def _modified_between(modified: str, values: list[str]) -> bool:
    if not modified:
        return False
    moment = parse_time(modified)
    bounds = sorted(parse_time(v) for v in values)
    return bounds[0] <= moment <= bounds[-1] if len(bounds) > 1 else moment >= bounds[0]


def site_overview(tenant: Tenant, s: int, filters: dict[str, list[Any]]) -> dict[str, Any] | None:
    site = tenant.site(s)
    risk = sensitive = exposed = 0
    if set(filters) <= set(_CODE_FILTERS):
        # Counting needs four codes, not whole objects: a large tenant's overview is
        # millions of objects, so take the cheap path when the filters allow it.
        wanted = {_CODE_FILTERS[name]: set(values) for name, values in filters.items()}
        for j in range(site.object_count):
            codes = dict(zip(_CODE_KEYS, tenant.object_codes(s, j), strict=True))
            codes["module"] = site.module
            if all(codes[key] in values for key, values in wanted.items()):
                risk += codes["riskLevel"] > 0
                sensitive += codes["sensitivityLevel"] > 0
                exposed += 1
        objects: tuple = ()
    else:
        objects = tenant.site_objects(s)
    for obj in objects:
        if not object_matches(obj, filters):
            continue
        risk += obj["riskLevel"] > 0
        sensitive += obj["sensitivityLevel"] > 0
        exposed += 1  # every object has a Low, Medium or High exposure level
    object_filters = set(filters) - {"module"}
    if object_filters and not exposed:
        return None
    return {"siteName": site.name, "siteUrl": site.url, "riskItemCount": risk,
            "sensitiveItemCount": sensitive, "exposureItemCount": exposed}


# ---------------------------------------------------------------- cursor walkers

Walk = Iterator[tuple[Cursor, dict[str, Any]]]


def _start(cursor: Cursor | None, width: int) -> Cursor:
    return tuple(cursor) if cursor else (0,) * width


def walk_rows(rows_of: Any, keys: Sequence[Any], cursor: Cursor | None) -> Walk:
    """Rows of each key in turn; the cursor is (key position, row position)."""
    p0, r0 = _start(cursor, 2)
    for p in range(p0, len(keys)):
        rows = rows_of(keys[p])
        for r in range(r0 if p == p0 else 0, len(rows)):
            yield (p, r), rows[r]


def walk_links(tenant: Tenant, sites: Sequence[int], link_type: int, cursor: Cursor | None) -> Walk:
    p0, j0 = _start(cursor, 2)
    for p in range(p0, len(sites)):
        for j in range(j0 if p == p0 else 0, tenant.link_count(sites[p], link_type)):
            yield (p, j), tenant.link(sites[p], link_type, j)


def walk_objects(tenant: Tenant, sites: Sequence[int], filters: dict[str, list[Any]],
                 cursor: Cursor | None) -> Walk:
    p0, j0 = _start(cursor, 2)
    for p in range(p0, len(sites)):
        s = sites[p]
        if not site_may_match(tenant, s, filters):
            continue
        objects = tenant.site_objects(s)
        for j in range(j0 if p == p0 else 0, len(objects)):
            obj = objects[j]
            if object_matches(obj, filters):
                yield (p, j), detail_record(obj)


def walk_overview(tenant: Tenant, sites: Sequence[int], filters: dict[str, list[Any]],
                  cursor: Cursor | None) -> Walk:
    (p0,) = _start(cursor, 1)
    for p in range(p0, len(sites)):
        if site_may_match(tenant, sites[p], filters):
            row = site_overview(tenant, sites[p], filters)
            if row is not None:
                yield (p,), row
