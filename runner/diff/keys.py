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


def sheet_key(module: str | None, header: list[str], rows: list[list[str]]) -> tuple[str, ...]:
    """The key columns of one export sheet, or () when none identifies its rows."""
    identity = IDENTITY.get(module or "")
    for candidate in identity.sheets if identity else ():
        if all(name in header for name in candidate):
            columns = [header.index(name) for name in candidate]
            values = [tuple(row[c] if c < len(row) else "" for c in columns) for row in rows]
            if len(set(values)) == len(values):
                return candidate
    return ()


def record_key(module: str | None, records: list[dict]) -> tuple[str, ...]:
    """The key fields of a query's records, or () when they do not identify them."""
    identity = IDENTITY.get(module or "")
    fields = identity.records if identity else ()
    if not fields:
        return ()
    values = [tuple(_text(r.get(f)) for f in fields) for r in records]
    if any(all(v == "" for v in value) for value in values) or len(set(values)) != len(values):
        return ()
    return fields


def _text(value: object) -> str:
    return "" if value is None else str(value)
