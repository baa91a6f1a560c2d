"""The one catalog of the Insights API: every operation, field, limit, paging style and enum code.

The compiler, the client, the simulator, the schema generator and the docs all read this
table; no other module writes an endpoint path, a field name or an enum code again.

Operations are grouped by API *generation* so that the newer Graph API (v2) can be added
beside the legacy Web API (v1) without touching the modules that read the catalog.

Vocabulary:

* **module name** - the snake_case name a playbook task uses (``site_permission_export``).
* **field** - one request element; ``name`` is the playbook spelling, ``api`` the
  reference's spelling (the service matches request keys case-insensitively).
* **cap** - the most values a list field may carry in one request; the compiler splits a
  longer list into several Steps (their product, when a request has two capped lists).
* **filters** - the DetailRecord endpoints' ``[{id, values}]`` list; each filter has its
  own enum.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

# ---------------------------------------------------------------------------- limits

MAX_LIST_VALUES = 100  # site URLs, emails, group ids in one request
MAX_PAGE_SIZE = 100  # PageSize / Top / pageSize
MAX_CONCURRENT_EXPORTS = 5  # export jobs in progress per tenant
TOKEN_LIFETIME_SECONDS = 3600
SCOPE = "insights.graph.readwrite.all"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 300
# How the service refuses an export while five are in progress (the reference is silent;
# the simulator's README section explains the choice): HTTP 400 with the query envelope,
# "content" set to EXPORT_LIMIT_CODE and "message" starting with EXPORT_LIMIT_MESSAGE.
EXPORT_LIMIT_CODE = "ExportJobLimitReached"
EXPORT_LIMIT_MESSAGE = "Only 5 export jobs can be run simultaneously"

# ----------------------------------------------------------------------------- enums


@dataclass(frozen=True)
class Member:
    """One enum value: the API's ``code``, a snake_case ``name`` and the service's ``label``."""

    code: int | str
    name: str
    label: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiEnum:
    name: str
    members: tuple[Member, ...]
    doc: str = ""

    def resolve(self, value: Any) -> int | str:
        """The API code for a code, name, label or alias (case-insensitive).

        Raises ``ValueError`` whose message lists the valid choices.
        """
        key = _normal(value)
        for member in self.members:
            spellings = (member.code, member.name, member.label, *member.aliases)
            if key in {_normal(s) for s in spellings}:
                return member.code
        raise ValueError(f"{value!r} is not a valid {self.name}; choose one of: {self.choices()}")

    def member(self, code: int | str) -> Member:
        for member in self.members:
            if _normal(member.code) == _normal(code):
                return member
        raise KeyError(code)

    def label(self, code: int | str) -> str:
        return self.member(code).label

    @property
    def codes(self) -> tuple[int | str, ...]:
        return tuple(m.code for m in self.members)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members)

    def choices(self) -> str:
        return ", ".join(
            m.name if _normal(m.name) == _normal(m.code) else f"{m.name} ({m.code})"
            for m in self.members
        )

    def spellings(self) -> list[int | str]:
        """Every accepted spelling, for the JSON Schema enum."""
        out: list[int | str] = []
        for m in self.members:
            for s in (m.code, m.name, m.label, *m.aliases):
                if s not in out:
                    out.append(s)
            if isinstance(m.code, int) and str(m.code) not in out:
                out.append(str(m.code))
        return out


def _normal(value: Any) -> str:
    return str(value).strip().lower().replace("-", "_").replace(" ", "_")


LANGUAGE = ApiEnum(
    "language",
    (
        Member("en-US", "en-US", "English", ("en", "english")),
        Member("ja-JP", "ja-JP", "Japanese", ("ja", "japanese")),
        Member("fr-FR", "fr-FR", "French", ("fr", "french")),
    ),
    "Language of the report or of the returned information (default en-US).",
)
DEFAULT_LANGUAGE = "en-US"

DATA_SOURCE = ApiEnum(
    "data source",
    (
        Member("Microsoft Teams", "teams", "Microsoft Teams"),
        Member("SharePoint Online", "sharepoint", "SharePoint Online", ("spo",)),
        Member("OneDrive", "onedrive", "OneDrive"),
        Member("Microsoft 365 Group", "m365_group", "Microsoft 365 Group", ("group",)),
    ),
    "Workspace to report on.",
)

EXPORT_OPTION = ApiEnum(
    "export option",
    (
        Member(1, "summary_and_site_level", "Summary and site collection level access report"),
        Member(2, "summary_and_all_objects", "Summary and access report to all objects"),
        Member(3, "summary_only", "Summary report only"),
    ),
    "What the exported .zip holds.",
)

LINK_TYPE = ApiEnum(
    "link type",
    (
        Member(32, "flexible", "Links for Specific External Users", ("specific",)),
        Member(64, "organization", "Organization Links", ("org",)),
        Member(128, "anyone", "Anyone Links"),
    ),
    "Sharing link type.",
)

MODULE = ApiEnum(
    "module",
    (
        Member(1, "teams", "Microsoft Teams"),
        Member(2, "sharepoint", "SharePoint Online", ("spo",)),
        Member(3, "onedrive", "OneDrive"),
        Member(4, "m365_group", "Microsoft 365 Group", ("group",)),
    ),
    "Workspace (module) of the object.",
)

OBJECT_TYPE = ApiEnum(
    "object type",
    (
        Member(1, "folder", "Folder"),
        Member(2, "file", "File"),
        Member(3, "item", "Item"),
        Member(11, "site_collection", "Site Collection"),
        Member(12, "site", "Site"),
        Member(13, "list", "List"),
        Member(14, "library", "Library"),
    ),
)

SENSITIVITY_LEVEL = ApiEnum(
    "sensitivity level",
    (
        Member(0, "not_sensitive", "Not sensitive"),
        Member(1, "low", "Low"),
        Member(2, "medium", "Medium"),
        Member(3, "high", "High"),
        Member(-2, "not_defined", "N/A", ("no_definition", "na")),
    ),
)

EXPOSURE_LEVEL = ApiEnum(
    "exposure level",
    (
        Member(1, "low", "Low"),
        Member(2, "medium", "Medium"),
        Member(3, "high", "High"),
    ),
)

RISK_LEVEL = ApiEnum(
    "risk level",
    (
        Member(0, "no_risk", "No risk"),
        Member(1, "low", "Low"),
        Member(2, "medium", "Medium"),
        Member(3, "high", "High"),
        Member(-2, "not_defined", "N/A", ("no_definition", "na")),
    ),
)

EXPORT_STATUS = ApiEnum(
    "export status",
    (
        Member(0, "none", "None"),
        Member(1, "in_progress", "Export in progress."),
        Member(2, "succeeded", "Successfully exported."),
        Member(
            3,
            "failed",
            "Failed to export. Try again later. If the issue persists, contact the AvePoint "
            "Support team for help.",
        ),
        Member(4, "succeeded_with_exceptions", "Exported with exceptions."),
        Member(5, "stopping", "Stopping the export."),
        Member(6, "stopped", "The export was stopped."),
    ),
    "Status of an export job (the reference documents 1-3; the client library also 0, 4-6).",
)
STATUS_NONE = 0
STATUS_IN_PROGRESS = 1
STATUS_SUCCEEDED = 2
STATUS_FAILED = 3
STATUS_SUCCEEDED_WITH_EXCEPTIONS = 4
STATUS_STOPPING = 5
STATUS_STOPPED = 6
TERMINAL_STATUSES = frozenset(
    {STATUS_SUCCEEDED, STATUS_FAILED, STATUS_SUCCEEDED_WITH_EXCEPTIONS, STATUS_STOPPED})
DOWNLOADABLE_STATUSES = frozenset({STATUS_SUCCEEDED, STATUS_SUCCEEDED_WITH_EXCEPTIONS})

ENUMS: dict[str, ApiEnum] = {
    "language": LANGUAGE,
    "data_source": DATA_SOURCE,
    "export_option": EXPORT_OPTION,
    "link_type": LINK_TYPE,
    "module": MODULE,
    "object_type": OBJECT_TYPE,
    "sensitivity_level": SENSITIVITY_LEVEL,
    "exposure_level": EXPOSURE_LEVEL,
    "risk_level": RISK_LEVEL,
    "export_status": EXPORT_STATUS,
}

# ---------------------------------------------------------------------------- fields

FieldKind = Literal["string", "int", "datetime", "string_list", "enum", "enum_list", "filters"]


@dataclass(frozen=True)
class Field:
    """One request element of an operation."""

    name: str
    api: str
    kind: FieldKind
    required: bool = False
    cap: int | None = None  # most values in one request; longer lists are chunked
    enum: ApiEnum | None = None
    default: Any = None
    maximum: int | None = None  # for ints (page size)
    code_as_string: bool = False  # the API wants an enum code written as a string ("32")
    empty_allowed: bool = True  # a required list may be empty
    help: str = ""


@dataclass(frozen=True)
class Filter:
    """One DetailRecord filter: ``{"id": api, "values": [...]}``."""

    name: str
    api: str
    enum: ApiEnum | None = None
    kind: Literal["enum", "string", "datetime"] = "enum"
    max_values: int | None = None
    help: str = ""


OperationKind = Literal["export", "query", "status", "file"]
Paging = Literal["start_page", "token"] | None


@dataclass(frozen=True)
class Operation:
    name: str
    kind: OperationKind
    method: Literal["GET", "POST"]
    path: str
    summary: str
    fields: tuple[Field, ...] = ()
    filters: tuple[Filter, ...] = ()
    paging: Paging = None
    page_size_field: str | None = None  # api name: PageSize, Top or pageSize
    page_start_field: str | None = None  # StartPage for start_page paging
    token_field: str | None = None  # Token / token for token paging
    job_family: str | None = None  # exports: whose status/file endpoints to use
    result_fields: tuple[str, ...] = ()  # record fields of a query's results
    generation: str = "v1"

    @property
    def is_export(self) -> bool:
        return self.kind == "export"

    @property
    def is_query(self) -> bool:
        return self.kind == "query"

    @property
    def capped_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.cap is not None)

    def field(self, name: str) -> Field:
        """The field called ``name`` in either spelling (case-insensitive)."""
        key = name.lower()
        for f in self.fields:
            if key in (f.name.lower(), f.api.lower()):
                return f
        raise KeyError(name)

    def filter(self, name: str) -> Filter:
        key = name.lower()
        for f in self.filters:
            if key in (f.name.lower(), f.api.lower()):
                return f
        raise KeyError(name)

    @property
    def status_operation(self) -> Operation:
        assert self.job_family, f"{self.name} is not an export"
        return JOB_ENDPOINTS[(self.generation, self.job_family)][0]

    @property
    def file_operation(self) -> Operation:
        assert self.job_family, f"{self.name} is not an export"
        return JOB_ENDPOINTS[(self.generation, self.job_family)][1]


# --------------------------------------------------------------- shared field helpers


def _language(api: str = "Language") -> Field:
    return Field("language", api, "enum", enum=LANGUAGE, default=DEFAULT_LANGUAGE,
                 help="Language of the report: en-US (default), ja-JP or fr-FR.")


def _site_urls(api: str, required: bool, capped: bool = True) -> Field:
    return Field("site_urls", api, "string_list", required=required,
                 cap=MAX_LIST_VALUES if capped else None, empty_allowed=not required,
                 help="URLs of site collections, at most 100 per request "
                      "(longer lists are chunked).")


def _page_size(api: str, required: bool = False) -> Field:
    return Field("page_size", api, "int", required=required, default=MAX_PAGE_SIZE,
                 maximum=MAX_PAGE_SIZE, help="Records per page, at most 100 (default 100).")


def _data_sources() -> Field:
    return Field("data_sources", "dataSources", "enum_list", required=True, enum=DATA_SOURCE,
                 empty_allowed=False,
                 help="Workspaces: teams, sharepoint, onedrive, m365_group (or the API names).")


def _export_option() -> Field:
    return Field("export_option", "ExportOptionType", "enum", required=True, enum=EXPORT_OPTION,
                 help="1 summary_and_site_level, 2 summary_and_all_objects, 3 summary_only.")


_SENSITIVITY = Filter("sensitivity", "sensitivityLevel", SENSITIVITY_LEVEL)
_EXPOSURE = Filter("exposure", "exposureLevel", EXPOSURE_LEVEL)
_RISK = Filter("risk", "riskLevel", RISK_LEVEL)
_MODULE = Filter("module", "module", MODULE)
_OBJECT_TYPE = Filter("object_type", "objectType", OBJECT_TYPE)
_TAG = Filter("tag_name", "tagName", kind="string", help="Tag names that exist in Insights.")
_CREATED_BY = Filter("created_by", "createdBy", kind="string", help="Creators (email).")
_LOCATION = Filter("location", "location", kind="string", help="Object URLs.")

_DETAIL_RECORD_FIELDS = (
    "id", "name", "location", "objectType", "createdBy", "module", "inheritance", "siteName",
    "sensitivityLevel", "exposureLevel", "scannedTime", "createdTime", "modifiedTime",
    "channelName", "riskLevel", "privacy", "dataType", "trainableClassifier",
    "sensitivityLabel", "tagName", "retentionLabel", "creatorEmail", "webUrl",
)  # fmt: skip

# ------------------------------------------------------------------ the v1 operations

_V1 = "api/v1"

_JOB_ENDPOINT_LIST: tuple[Operation, ...] = (
    Operation("permission_export_status", "status", "GET", f"{_V1}/permission/export/status",
              "Status of a permission or access report export.",
              fields=(Field("id", "id", "int", required=True),), job_family="permission"),
    Operation("permission_export_file", "file", "GET", f"{_V1}/permission/export/get",
              "Download a finished permission or access report export.",
              fields=(Field("id", "id", "int", required=True),), job_family="permission"),
    Operation("activity_export_status", "status", "GET", f"{_V1}/activity/export/status",
              "Status of an activity report export.",
              fields=(Field("id", "id", "int", required=True),), job_family="activity"),
    Operation("activity_export_file", "file", "GET", f"{_V1}/activity/export/file",
              "Download a finished activity report export.",
              fields=(Field("id", "id", "int", required=True),), job_family="activity"),
)

JOB_ENDPOINTS: dict[tuple[str, str], tuple[Operation, Operation]] = {
    ("v1", "permission"): (_JOB_ENDPOINT_LIST[0], _JOB_ENDPOINT_LIST[1]),
    ("v1", "activity"): (_JOB_ENDPOINT_LIST[2], _JOB_ENDPOINT_LIST[3]),
}

_EXPORTS: tuple[Operation, ...] = (
    Operation(
        "site_permission_export", "export", "POST", f"{_V1}/site/permission/export",
        "Export the permission reports of site collections (.zip: overview + one per site).",
        fields=(_site_urls("siteUrls", required=True), _language("language")),
        job_family="permission",
    ),
    Operation(
        "user_access_export", "export", "POST", f"{_V1}/user/permission/export",
        "Export the access reports of users in the chosen workspaces.",
        fields=(
            Field("emails", "emails", "string_list", required=True, cap=MAX_LIST_VALUES,
                  empty_allowed=False,
                  help="Logon names of users, at most 100 per request (longer lists are chunked)."),
            _data_sources(),
            _site_urls("siteUrls", required=False),
            _language("Language"),
            _export_option(),
        ),
        job_family="permission",
    ),
    Operation(
        "group_access_export", "export", "POST", f"{_V1}/group/Permission/export",
        "Export the access reports of groups with external users.",
        fields=(
            Field("group_ids", "Emails", "string_list", required=True, cap=MAX_LIST_VALUES,
                  help="IDs of groups; empty with export_option summary_only exports all groups."),
            _site_urls("SiteUrls", required=False),
            _data_sources(),
            _export_option(),
            _language("Language"),
        ),
        job_family="permission",
    ),
    Operation(
        "link_export", "export", "POST", f"{_V1}/link/Permission/export",
        "Export the report of objects shared via links of one type.",
        fields=(
            _language("language"),
            Field("link_type", "exportLinkType", "enum", required=True, enum=LINK_TYPE,
                  code_as_string=True, help="flexible (32), organization (64) or anyone (128)."),
            Field("start_time", "startTime", "datetime", help="Links created at or after."),
            Field("end_time", "endTime", "datetime", help="Links created at or before."),
        ),
        job_family="permission",
    ),
    Operation(
        "activity_export", "export", "POST", f"{_V1}/activity/export",
        "Export the activity report of a user and/or on an object.",
        fields=(
            Field("email", "email", "string", required=True,
                  help="Email or UPN of the user; empty for an object report only."),
            Field("path", "path", "string", required=True,
                  help="Full URL of the object; empty for a user report only."),
            Field("start_time", "startTime", "datetime", help="Activity from."),
            Field("end_time", "endTime", "datetime", help="Activity until."),
            Field("event_types", "eventTypes", "string_list", help="Operations to include."),
            _language("Language"),
        ),
        job_family="activity",
    ),
)

_QUERIES: tuple[Operation, ...] = (
    Operation(
        "user_summary", "query", "POST", f"{_V1}/User/summary", "Summary of users.",
        fields=(_language(), _page_size("PageSize")),
        paging="start_page", page_size_field="PageSize", page_start_field="StartPage",
        result_fields=("displayName", "loginName", "email", "userStatus", "trustStatus",
                       "sitesWithDirectAccess", "lastSignin", "createdOn"),
    ),
    Operation(
        "group_summary", "query", "POST", f"{_V1}/Group/summary",
        "Summary of groups with external users.",
        fields=(_language(), _page_size("PageSize")),
        paging="start_page", page_size_field="PageSize", page_start_field="StartPage",
        result_fields=("displayName", "groupId", "email", "groupType", "membershipType",
                       "createdOn", "externalMemberCount"),
    ),
    Operation(
        "link_summary", "query", "POST", f"{_V1}/link/permission/query",
        "Summary of sharing links of one type.",
        fields=(
            _language(),
            _site_urls("SiteUrls", required=False),
            _page_size("PageSize"),
            Field("link_type", "LinkType", "enum", required=True, enum=LINK_TYPE,
                  code_as_string=True, help="flexible (32), organization (64) or anyone (128)."),
        ),
        paging="token", page_size_field="PageSize", token_field="Token",
        result_fields=("id", "siteId", "selfId", "linkId", "loginName", "createTime",
                       "expireTime", "name", "objectUrl", "linkType", "shareBy", "inheritFrom",
                       "inheritType", "shareWith", "linkUrl", "permission", "fileType",
                       "sensitivityLevel"),
    ),
    Operation(
        "site_permissions", "query", "POST", f"{_V1}/Site/permission",
        "Permissions of site collections.",
        fields=(_site_urls("SiteUrls", required=True), _language(), _page_size("Top")),
        paging="token", page_size_field="Top", token_field="Token",
        result_fields=("module", "name", "url", "objectType", "principalName", "email",
                       "principalType", "permission", "numberOfMembers", "isExternalUser",
                       "inheritType", "linkGivingAccessTo"),
    ),
    Operation(
        "user_permissions", "query", "POST", f"{_V1}/User/permission",
        "Permissions of users (all sites in scope when no site URL is given).",
        fields=(
            _site_urls("SiteUrls", required=False),
            _language(),
            Field("emails", "Emails", "string_list", required=True, cap=MAX_LIST_VALUES,
                  empty_allowed=False, help="Emails or principal names, at most 100 per request."),
            _page_size("Top"),
        ),
        paging="token", page_size_field="Top", token_field="Token",
        result_fields=("module", "siteName", "name", "location", "objectType", "inheritType",
                       "permission", "sensitivityLevel", "dataType", "isDirect",
                       "sensitivityLabel", "trainableClassifier", "inheritedFrom"),
    ),
    Operation(
        "detail_records_by_site", "query", "POST", f"{_V1}/DetailRecord/querybysite",
        "Risk analysis detailed records of one site collection (the recommended way).",
        fields=(
            Field("filters", "filters", "filters"),
            Field("site_id", "siteId", "string", required=True,
                  help="ID of the site collection (see site_ids)."),
            _language("language"),
            _page_size("pageSize", required=True),
        ),
        filters=(
            _OBJECT_TYPE, _TAG, _SENSITIVITY, _EXPOSURE, _RISK, _CREATED_BY,
            Filter("modified_time", "modifiedTime", kind="datetime", max_values=2,
                   help="Last modified between two times (at most two values)."),
        ),
        paging="token", page_size_field="pageSize", token_field="token",
        result_fields=_DETAIL_RECORD_FIELDS,
    ),
    Operation(
        "site_ids", "query", "POST", f"{_V1}/DetailRecord/getSiteIds",
        "Site IDs of site collections by URL.",
        fields=(_site_urls("siteUrls", required=True),),
        result_fields=("siteId", "siteUrl"),
    ),
    Operation(
        "site_overview", "query", "POST", f"{_V1}/DetailRecord/querysiteoverview",
        "Risk analysis overview of site collections.",
        fields=(Field("filters", "filters", "filters"), _page_size("pageSize", required=True)),
        filters=(_MODULE, _SENSITIVITY, _EXPOSURE, _RISK, _CREATED_BY, _LOCATION),
        paging="token", page_size_field="pageSize", token_field="token",
        result_fields=("siteName", "siteUrl", "riskItemCount", "sensitiveItemCount",
                       "exposureItemCount"),
    ),
    Operation(
        "detail_records", "query", "POST", f"{_V1}/DetailRecord/query",
        "Risk analysis detailed records that meet the filters.",
        fields=(
            Field("filters", "filters", "filters"),
            _language("language"),
            _page_size("pageSize", required=True),
        ),
        filters=(
            _MODULE, _OBJECT_TYPE, _TAG,
            Filter("username", "username", kind="string",
                   help="Users configured in Insights user management."),
            _SENSITIVITY, _EXPOSURE, _RISK, _LOCATION,
            Filter("site_name", "siteName", kind="string", help="Names of sites."),
        ),
        paging="token", page_size_field="pageSize", token_field="token",
        result_fields=_DETAIL_RECORD_FIELDS,
    ),
)


# ------------------------------------------------------------------ encoding values


def encode(op: Operation, field: Field, value: Any) -> Any:
    """``value`` in the form the API wants: enum names become codes, filters become
    ``[{"id", "values"}]``, dates ISO strings.  The compiler and the client both use this,
    so a request means the same whoever builds it.  Raises ``ValueError`` naming the choices.
    """
    if value is None:
        return None
    if field.kind == "int":
        return int(value)
    if field.kind == "enum" and field.enum is not None:
        code = field.enum.resolve(value)
        return str(code) if field.code_as_string else code
    if field.kind == "enum_list" and field.enum is not None:
        return [field.enum.resolve(v) for v in _as_list(value)]
    if field.kind == "filters":
        return encode_filters(op, value)
    if field.kind == "string_list":
        return [_text(v) for v in _as_list(value)]
    if field.kind == "datetime":
        return _text(value)
    return value


def encode_filters(op: Operation, value: Any) -> list[dict[str, Any]]:
    """``{name: values}`` or ``[{id, values}]`` -> the API's ``[{id, values}]``.

    Values are strings (codes for enum filters), as the reference writes them; filters
    named twice are merged, and the list follows the catalog's order, so the request does
    not depend on how the playbook was written.
    """
    if isinstance(value, dict) or hasattr(value, "items"):
        pairs = list(value.items())
    else:
        pairs = [(entry["id"], entry["values"]) for entry in value]
    by_name: dict[str, list[Any]] = {}
    for name, values in pairs:
        try:
            flt = op.filter(str(name))
        except KeyError:
            allowed = ", ".join(f.name for f in op.filters)
            raise ValueError(f"unknown filter {name!r}; filters: {allowed}") from None
        by_name.setdefault(flt.name, []).extend(_as_list(values))
    out = []
    for flt in op.filters:
        if flt.name in by_name:
            codes = [str(flt.enum.resolve(v)) if flt.enum is not None else _text(v)
                     for v in by_name[flt.name]]
            out.append({"id": flt.api, "values": codes})
    return out


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@dataclass(frozen=True)
class Generation:
    """One generation of the API: its operations, by name."""

    name: str
    operations: tuple[Operation, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [op.name for op in self.operations]
        assert len(names) == len(set(names)), "operation names must be unique"

    def get(self, name: str) -> Operation:
        for op in self.operations:
            if op.name == name:
                return op
        raise KeyError(name)

    @property
    def modules(self) -> tuple[Operation, ...]:
        """The operations a playbook task can name: exports and queries."""
        return tuple(op for op in self.operations if op.kind in ("export", "query"))


V1 = Generation("v1", _EXPORTS + _JOB_ENDPOINT_LIST + _QUERIES)
GENERATIONS: dict[str, Generation] = {"v1": V1}


def operation(name: str, generation: str = "v1") -> Operation:
    return GENERATIONS[generation].get(name)


def modules(generation: str = "v1") -> tuple[Operation, ...]:
    return GENERATIONS[generation].modules


def module_names(generation: str = "v1") -> tuple[str, ...]:
    return tuple(op.name for op in modules(generation))


def find_by_path(method: str, path: str, generation: str = "v1") -> Operation | None:
    """The operation served at ``path`` (case-insensitive, as the service matches paths)."""
    key = path.strip("/").lower()
    for op in GENERATIONS[generation].operations:
        if op.method == method.upper() and op.path.lower() == key:
            return op
    return None


def iter_operations(generation: str = "v1") -> Iterable[Operation]:
    return iter(GENERATIONS[generation].operations)
