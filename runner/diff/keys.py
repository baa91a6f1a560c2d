"""The identity of a record, per module: what makes "the same" link, user, object or site
in two runs.  One table, beside the catalog: a query's key names fields of its records
(``catalog.Operation.result_fields``, a test keeps them there); an export's keys name the
en-US column headers of its reports' sheets, tried in order (the first whose columns are
all in a sheet and whose values are unique in it is used).  A sheet or an output with no
usable key is compared whole, by hash.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    records: tuple[str, ...] = ()  # queries: record fields
    sheets: tuple[tuple[str, ...], ...] = ()  # exports: candidate header sets, in order


IDENTITY: dict[str, Identity] = {
    # queries
    "user_summary": Identity(("email",)),
    "group_summary": Identity(("groupId",)),
    "link_summary": Identity(("linkId",)),
    "site_permissions": Identity(("url", "principalName", "email")),
    "user_permissions": Identity(),  # records do not say whose they are: by hash
    "site_ids": Identity(("siteUrl",)),
    "site_overview": Identity(("siteUrl",)),
    "detail_records": Identity(("id",)),
    "detail_records_by_site": Identity(("id",)),
    # exports (.zip of .xlsx reports)
    "site_permission_export": Identity(sheets=(("Site URL",), ("URL", "User/Group", "Email"))),
    "user_access_export": Identity(sheets=(("Email",), ("Location",))),
    "group_access_export": Identity(sheets=(("Group ID",), ("Location",))),
    "link_export": Identity(sheets=(("Link URL",),)),
    "activity_export": Identity(),  # events have no identity: by hash
}


def candidates(module: str | None, header: list[str] | None) -> list[tuple[str, ...]]:
    """The keys to try for a table: a query's record fields (``header`` None), or the
    module's export header sets that this sheet's ``header`` has, in order."""
    identity = IDENTITY.get(module or "")
    if identity is None:
        return []
    if header is None:
        return [identity.records] if identity.records else []
    return [c for c in identity.sheets if all(name in header for name in c)]


def ident(row: dict, fields: tuple[str, ...]) -> tuple[str, ...]:
    """A row's identity under ``fields`` (values as text; a list keeps its text form)."""
    return tuple("" if row.get(f) is None else str(row.get(f)) for f in fields)
