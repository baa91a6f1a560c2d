"""Export files of the Graph API (v2) jobs: a .zip of .xlsx reports, as for v1.

* The M365 exports build the very report v1 builds for the same request (one user, one
  group, one activity subject): the v2 values are restated as v1 values, so the two
  generations' files hold the same records.  v2 has no ``language``; reports are en-US.
  The user access export lost ``exportOptionType`` (§10 question 13): it produces the
  summary plus the access report on all objects (v1's option 2).
* The Google exports report on the seeded Google Workspace tenant (``google.py``):
  a user or group summary with its access report across drives, a drive overview with one
  permission report per drive, the links of one type, and activity reports.

``V2Reports`` extends v1's ``Reports`` so both generations share one file cache and the
test hook that replaces a job's file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from runner import catalog
from runner.sim.google import LINK_LABELS, GoogleTenant
from runner.sim.jobs import Job
from runner.sim.reports import Reports, archive
from runner.sim.tenant import Group, Tenant, parse_time
from runner.sim.xlsx import Sheet

V1_USER_ACCESS_OPTION = 2  # what the v2 user access export produces (see above)

USER_COLUMNS = ("Display Name", "Email", "Status", "Organizational Unit", "Drives with Access",
                "Last Login", "Created")
GROUP_COLUMNS = ("Group Name", "Email", "Members", "External Members", "Created")
ACCESS_COLUMNS = ("Principal", "Drive", "Drive Type", "Object Name", "Path", "Object Type",
                  "Role", "Direct Permission", "Inherited From")
OVERVIEW_COLUMNS = ("Drive Name", "Drive ID", "Drive Type", "Files", "Members",
                    "External Principals", "Sharing Links", "Result")
PERMISSION_COLUMNS = ("Object Name", "Path", "Object Type", "Principal", "Principal Type",
                      "Role", "External", "Inherited")
LINK_COLUMNS = ("Object Name", "Path", "Object Type", "Drive", "Link Type", "Audience", "Role",
                "Link URL", "Shared By", "Created")
ACTIVITY_COLUMNS = ("Time (UTC)", "Actor", "Event", "File ID", "Object Name", "Drive",
                    "IP Address")


@dataclasses.dataclass(frozen=True)
class _Unknown:
    """A group id no group has: the v1 report lists it as not found."""

    id: str


def _v1_sources(values: Iterable[Any]) -> list[str]:
    """v2 data sources (OAS spells them in lower case, OneDrive as "onedrive for business",
    §10 question 16) as the v1 labels the reports compare."""
    out = []
    for value in values:
        key = str(value).strip().lower()
        for member in catalog.DATA_SOURCE.members:
            if key == str(member.code).lower() or key.startswith(member.label.lower()):
                out.append(member.label)
                break
    return out


def _time(values: dict[str, Any], name: str) -> Any:
    return parse_time(values[name]) if values.get(name) else None


class V2Reports(Reports):
    def __init__(self, tenant: Tenant, google: GoogleTenant):
        super().__init__(tenant)
        self.google = google

    def build(self, job: Job) -> tuple[bytes, str, str]:
        if job.generation == "v1":
            return super().build(job)
        restated = self.as_v1(job)
        if restated is not None:
            operation, values = restated
            return super().build(dataclasses.replace(job, operation=operation, values=values))
        builder, name = GOOGLE_BUILDERS[job.operation]
        return archive(job, builder(self, job.values), name, name)

    def as_v1(self, job: Job) -> tuple[str, dict[str, Any]] | None:
        """The v1 export (operation, values) that v2 M365 job ``job`` restates; None for a
        Google job."""
        v = job.values
        base = {"language": catalog.DEFAULT_LANGUAGE, "site_urls": v.get("site_urls") or [],
                "data_sources": _v1_sources(v.get("data_sources") or []),
                "start_time": v.get("start_time"), "end_time": v.get("end_time"),
                "event_types": v.get("event_types") or []}
        if job.operation == "site_permission_export":
            return "site_permission_export", base
        if job.operation == "user_access_export":
            return "user_access_export", {**base, "emails": v["emails"],
                                          "export_option": V1_USER_ACCESS_OPTION}
        if job.operation == "group_access_export":
            ids = [(self.tenant.group_by_id(g) or self._group_by_email(g) or _Unknown(g)).id
                   for g in v["group_ids"]]
            return "group_access_export", {**base, "export_option": v["export_option"],
                                           "group_ids": ids}
        if job.operation == "link_export":
            return "link_export", {**base, "link_type": v["link_type"]}
        if job.operation == "user_activity_export":
            return "activity_export", {**base, "email": v["email"], "path": ""}
        if job.operation == "object_activity_export":
            return "activity_export", {**base, "email": "", "path": v["path"]}
        return None

    def _group_by_email(self, email: str) -> Group | None:
        # §10 question 12: OAS also takes a group's e-mail (or logon name) as the id.
        key = (email or "").strip().lower()
        for g in range(self.tenant.group_count):
            if self.tenant.group(g).email.lower() == key:
                return self.tenant.group(g)
        return None

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _book(name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple:
        sheet: Sheet = (name[:31], list(columns), rows)
        return name, [sheet]

    def _drives_asked(self, values: dict[str, Any]) -> tuple[set[str], set[int] | None]:
        kinds = {str(v).lower() for v in values.get("data_sources") or ()}
        ids = values.get("drive_ids") or []
        drives = {d.index for d in map(self.google.drive_by_id, ids) if d is not None}
        return kinds, (drives if ids else None)

    def _in_drives(self, d: int, kinds: set[str], drives: set[int] | None) -> bool:
        kind = self.google.drive(d).kind
        return (not kinds or kind in kinds) and (drives is None or d in drives)

    def _access_rows(self, principal: str, drives: Iterable[int], role_of: Callable) -> list:
        g = self.google
        rows = []
        for d in drives:
            drive = g.drive(d)
            role = role_of(d)
            for j, item in enumerate(g.drive_files(d)):
                rows.append([principal, drive.name, drive.kind, item["name"], item["path"],
                             item["type"], role, j == 0, None if j == 0 else drive.name])
        return rows

    # ----------------------------------------------------------------- builders

    def google_user_access(self, values: dict[str, Any]) -> list:
        g = self.google
        email = str(values["emails"][0])
        user = g.user_by_email(email)
        if user is None:
            summary: list[list[Any]] = [[None, email, "Not found in the configured scope", None,
                                         None, None, None]]
            return [self._book("User Summary", USER_COLUMNS, summary)]
        kinds, scope = self._drives_asked(values)
        drives = [d for d in g.user_drives(user.index) if self._in_drives(d, kinds, scope)]
        summary = [[user.display_name, user.email, "Suspended" if user.suspended else "Active",
                    user.org_unit, len(drives), user.last_login, user.created]]

        def role(d: int) -> str:
            for member in g.drive_members(d):
                if member["principal"] == user.email:
                    return str(member["role"])
            return "Contributor"  # through a group

        return [self._book("User Summary", USER_COLUMNS, summary),
                self._book(f"Access Report - {user.email}", ACCESS_COLUMNS,
                           self._access_rows(user.email, drives, role))]

    def google_group_access(self, values: dict[str, Any]) -> list:
        g = self.google
        group = g.group_by_email(str(values["group_ids"][0]))
        if group is None:
            summary = [[None, values["group_ids"][0], None, None, None]]
            return [self._book("Group Summary", GROUP_COLUMNS, summary)]
        summary = [[group.name, group.email, group.member_count, group.external_members,
                    group.created]]
        books = [self._book("Group Summary", GROUP_COLUMNS, summary)]
        if int(values["export_option"]) == 3:
            return books
        kinds, scope = self._drives_asked(values)
        drives = [d for d in g.group_drives(group.index) if self._in_drives(d, kinds, scope)]
        books.append(self._book(f"Access Report - {group.email}", ACCESS_COLUMNS,
                                self._access_rows(group.email, drives, lambda d: "Contributor")))
        return books

    def google_drive_permissions(self, values: dict[str, Any]) -> list:
        g = self.google
        overview, books = [], []
        for value in values["drive_ids"]:
            drive = g.drive_by_id(value)
            if drive is None:
                overview.append([None, value, None, None, None, None, None,
                                 "Not found in the configured scope"])
                continue
            rows = []
            for j, item in enumerate(g.drive_files(drive.index)):
                for p in g.file_permissions(drive.index, j):
                    rows.append([item["name"], item["path"], item["type"], p["principal"],
                                 p["type"], p["role"], p["external"], p["inherited"]])
            links = sum(g.link_count(drive.index, t) for t in LINK_LABELS)
            overview.append([drive.name, drive.id, drive.kind, drive.file_count,
                             len(g.drive_members(drive.index)),
                             sum(bool(r[6]) for r in rows), links, "Exported"])
            books.append(self._book(f"Permission Report - {drive.name}", PERMISSION_COLUMNS,
                                    rows))
        return [self._book("Overview", OVERVIEW_COLUMNS, overview), *books]

    def google_links(self, values: dict[str, Any]) -> list:
        g = self.google
        link_type = int(values["link_type"])
        start = _time(values, "start_time")
        end = _time(values, "end_time")
        rows = []
        for d in range(g.drive_count):
            for j in range(g.link_count(d, link_type)):
                link = g.link(d, link_type, j)
                created = parse_time(link["createdTime"])
                if (start and created < start) or (end and created > end):
                    continue
                rows.append([link["name"], link["path"], link["type"], link["driveName"],
                             link["linkType"], link["audience"], link["role"], link["url"],
                             link["sharedBy"], link["createdTime"]])
        return [self._book(f"{LINK_LABELS[link_type]}s Report", LINK_COLUMNS, rows)]

    def _activity(self, subject: str, user_report: bool, values: dict[str, Any]) -> list:
        start = _time(values, "start_time")
        end = _time(values, "end_time")
        kinds = {k.lower() for k in values.get("event_types") or ()}
        rows = [[e["time"].strftime("%Y-%m-%dT%H:%M:%SZ"), e["actor"], e["event"], e["fileId"],
                 e["name"], e["drive"], e["ip"]]
                for e in self.google.activities(subject, user_report)
                if (not start or e["time"] >= start) and (not end or e["time"] <= end)
                and (not kinds or e["event"] in kinds)]
        name = "User Activity Report" if user_report else "Activity Report on Object"
        return [self._book(name, ACTIVITY_COLUMNS, rows)]

    def google_user_activity(self, values: dict[str, Any]) -> list:
        return self._activity(str(values["emails"][0]), True, values)

    def google_object_activity(self, values: dict[str, Any]) -> list:
        return self._activity(str(values["object_ids"][0]), False, values)


# v2 Google operation -> (builder, file name)
GOOGLE_BUILDERS: dict[str, tuple[Callable[[V2Reports, dict[str, Any]], list], str]] = {
    "google_user_access_export": (V2Reports.google_user_access, "GoogleUserAccessReport"),
    "google_group_access_export": (V2Reports.google_group_access, "GoogleGroupAccessReport"),
    "google_drive_permission_export": (V2Reports.google_drive_permissions, "DrivePermissionReport"),
    "google_link_export": (V2Reports.google_links, "GoogleLinkReport"),
    "google_user_activity_export": (V2Reports.google_user_activity, "GoogleUserActivityReport"),
    "google_object_activity_export": (V2Reports.google_object_activity,
                                      "GoogleObjectActivityReport"),
}
