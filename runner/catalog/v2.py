"""The Graph API for Insights (v2): its 24 operations, as ``insights-graph-api-v2.md`` lists
them (§0.4), for Microsoft 365 and Google Workspace.

What a reader coming from v1 should notice (§9 of the reference):

* Exports start with a GET; one user, group or object per job, in the URL path (``cap=1``
  and ``single``), so an access export of 250 users is 250 jobs; lists go in the query
  string as repeated keys (``siteUrls=A&siteUrls=B``), at most 100 site URLs or drive ids.
* Every export answers ``{"jobId": "<digits>", "status": 200, "message": ""}``; all jobs
  share ``job/{jobId}/exportstatus`` (the state is ``jobStatus``; ``status`` is the HTTP
  code) and ``job/{jobId}/exportfile``.
* Queries page with ``startPage`` (the two summaries) or with an opaque ``nextLink`` that
  is sent back in the body; records come in ``values`` (``results`` tolerated).
* No ``language`` anywhere; ``export_option`` only on group exports; detail records lost
  their filters and the tenant-wide query; site ids are looked up one URL at a time.

Operations that keep a v1 module's meaning carry the v1 name (``user_access_export``), so a
playbook moves by changing ``api:`` on its connection; ``v1_only`` says what v2 refuses and
what to do instead, and ``V2.unavailable`` names the v1 module v2 cannot serve.  Where the
sources disagree, the choice made is in ``runner.catalog.questions``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .enums import (
    DATA_SOURCE,
    EXPORT_OPTION,
    GOOGLE_DATA_SOURCE,
    GOOGLE_EXPORT_OPTION,
    GOOGLE_LINK_TYPE,
    LINK_TYPE,
    RISK_LEVEL,
)
from .limits import MAX_LIST_VALUES, MAX_PAGE_SIZE
from .model import JOB_ENDPOINTS, Field, Filter, Generation, Operation, Split

GENERATION = "v2"
JOB_FAMILY = "job"

# -------------------------------------------------------------- what v2 refuses

NO_LANGUAGE = ("v2 has no language: its reports come in English (en-US); remove language "
               "or keep this task on an api: v1 connection")
NO_EXPORT_OPTION = ("v2 removed export_option from user access exports (October 2025): "
                    "remove it; for a summary-only or site-level report keep this task on an "
                    "api: v1 connection")
NO_RECORD_FILTERS = ("v2 has no server-side filters on detail records: remove filters and "
                     "keep the records you want with a later task's selectattr/when on the "
                     "registered records")
NO_DETAIL_RECORDS = ("detail_records (tenant-wide, filtered) has no v2 equivalent: look up "
                     "each site's id with site_ids, then page detail_records_by_site per site "
                     "(loop over the registered ids) and filter the records yourself")
ONE_GROUP = ("v2 exports one group per job, named in the URL: the all-groups export "
             "(empty group_ids) has no v2 form; list the groups with group_summary and pass "
             "their ids")
ONE_SITE = ("v2 pages the sharing links of one site per call: give site_urls (each becomes "
            "its own Step), e.g. from site_overview")


def _refused(*names: str, **special: str) -> MappingProxyType[str, str]:
    out = {name: NO_LANGUAGE for name in names}
    out.update(special)
    return MappingProxyType(out)


# ----------------------------------------------------------------- field helpers


def _path(name: str, api: str, help: str, *, listed: bool = True,
          kind: str = "string") -> Field:
    """One value in the URL path; ``listed``: the playbook may give a list (one job each)."""
    if listed:
        return Field(name, api, "string_list", required=True, cap=1, single=True,
                     empty_allowed=False, placement="path", help=help)
    return Field(name, api, kind, required=True, placement="path", help=help)  # type: ignore[arg-type]


def _site_urls(api: str = "siteUrls", *, required: bool, placement: str = "query") -> Field:
    return Field("site_urls", api, "string_list", required=required, cap=MAX_LIST_VALUES,
                 empty_allowed=not required, placement=placement,  # type: ignore[arg-type]
                 help="URLs of site collections, at most 100 per request "
                      "(longer lists are chunked).")


def _drive_ids(required: bool) -> Field:
    return Field("drive_ids", "driveIds", "string_list", required=required,
                 cap=MAX_LIST_VALUES, empty_allowed=not required, placement="query",
                 help="Google drive ids (a My Drive by its owner's email), at most 100 per "
                      "request (longer lists are chunked).")


def _data_sources(google: bool = False) -> Field:
    enum = GOOGLE_DATA_SOURCE if google else DATA_SOURCE
    words = "my_drive, shared_drive" if google else "teams, sharepoint, onedrive, m365_group"
    return Field("data_sources", "dataSources", "enum_list", required=True, enum=enum,
                 empty_allowed=False, placement="query",
                 help=f"Workspaces: {words} (or the API names).")


def _times(start_help: str, end_help: str) -> tuple[Field, Field]:
    return (Field("start_time", "startTime", "datetime", placement="query", help=start_help),
            Field("end_time", "finishTime", "datetime", placement="query", help=end_help))


def _event_types() -> Field:
    return Field("event_types", "eventTypes", "string_list", placement="query",
                 help="Operations to include (repeated in the query string).")


def _page_size(placement: str) -> Field:
    return Field("page_size", "pageSize", "int", default=MAX_PAGE_SIZE, maximum=MAX_PAGE_SIZE,
                 placement=placement,  # type: ignore[arg-type]
                 help="Records per page, at most 100 (default 100).")


_ACTIVITY_TIMES = _times("Activity from (yyyy-MM-ddTHH:mm:ss).",
                         "Activity until, inclusive (yyyy-MM-ddTHH:mm:ss).")
_LINK_TIMES = _times("Links created at or after (yyyy-MM-ddTHH:mm:ss).",
                     "Links created at or before (yyyy-MM-ddTHH:mm:ss).")

_EXPORT: dict[str, Any] = dict(generation=GENERATION, job_family=JOB_FAMILY,
                               job_id_keys=("jobId", "id"), job_id_type=str)
_LIST: dict[str, Any] = dict(generation=GENERATION, records_keys=("values", "results"),
             next_keys=("nextLink", "nextToken"))
_TOKEN: dict[str, Any] = dict(_LIST, paging="token", page_size_field="pageSize",
                              token_field="nextLink")
_PAGES: dict[str, Any] = dict(_LIST, paging="start_page", page_size_field="pageSize",
              page_start_field="startPage", first_page=1)
_RISK = Filter("risk", "riskLevel", RISK_LEVEL)
# Spellings the sources disagree on (§10: 36-41) -> the one the runner writes
_RECORD_ALIASES = MappingProxyType({
    "LastSignIn": "lastSignIn", "lastSignin": "lastSignIn",
    "sitesWithDirectAcccess": "sitesWithDirectAccess",
    "sensitiveInfoType": "dataType", "sensitiveLevel": "sensitivityLevel",
    "loginName": "logonName",
})
_DETAIL_RECORD_FIELDS = (
    "id", "name", "location", "objectType", "createdBy", "module", "inheritType", "siteName",
    "sensitivityLevel", "exposureLevel", "scannedTime", "createdTime", "modifiedTime",
    "channelName", "riskLevel", "privacy", "dataType", "sensitivityLabel",
    "trainableClassifier", "tagName", "retentionLabel", "creatorEmail", "webUrl",
)  # fmt: skip

# ------------------------------------------------------------------------- jobs

_JOB_ID = Field("job_id", "jobId", "int", required=True, placement="path",
                help="The job id an export answered (digits; sent as a number).")
JOB_STATUS = Operation(
    "job_status", "status", "GET", "job/{jobId}/exportstatus",
    "Status of any export job: jobStatus 1 in progress, 2 finished, 3 failed.",
    fields=(_JOB_ID,), job_family=JOB_FAMILY, generation=GENERATION,
    job_state_keys=("jobStatus",),
)
JOB_FILE = Operation(
    "job_file", "file", "GET", "job/{jobId}/exportfile",
    "Download the .zip of a finished export job.",
    fields=(_JOB_ID,), job_family=JOB_FAMILY, generation=GENERATION,
)
JOB_ENDPOINTS[(GENERATION, JOB_FAMILY)] = (JOB_STATUS, JOB_FILE)

# ------------------------------------------------------------ Microsoft 365 exports

_M365_EXPORTS: tuple[Operation, ...] = (
    Operation(
        "site_permission_export", "export", "GET", "sites/permission/export",
        "Export the permission reports of site collections (.zip: overview + one per site).",
        fields=(_site_urls(required=True),),
        v1_only=_refused("language"), **_EXPORT,
    ),
    Operation(
        "user_access_export", "export", "GET", "users/{email}/access/export",
        "Export the access report of users, one job per user.",
        fields=(
            _path("emails", "email", "Logon names of users; v2 takes one per job, so each "
                  "user is its own Step."),
            _data_sources(),
            _site_urls(required=False),
        ),
        v1_only=_refused("language", export_option=NO_EXPORT_OPTION), **_EXPORT,
    ),
    Operation(
        "group_access_export", "export", "GET", "groups/{groupId}/access/export",
        "Export the access report of groups, one job per group.",
        fields=(
            _path("group_ids", "groupId", "IDs (or emails) of groups; one per job, so each "
                  "group is its own Step."),
            _site_urls(required=False),
            _data_sources(),
            Field("export_option", "exportOptionType", "enum", required=True,
                  enum=EXPORT_OPTION, placement="query",
                  help="1 summary_and_site_level, 2 summary_and_all_objects, 3 summary_only."),
        ),
        v1_only=_refused("language"), **_EXPORT,
    ),
    Operation(
        "link_export", "export", "GET", "sharingLinks/export",
        "Export the report of objects shared via links of one type.",
        fields=(
            Field("link_type", "exportLinkType", "enum", required=True, enum=LINK_TYPE,
                  placement="query", help="specific (32), organization (64) or anyone (128)."),
            *_LINK_TIMES,
        ),
        v1_only=_refused("language"), **_EXPORT,
    ),
    Operation(
        "activity_export", "export", "GET", "",
        "Export the activity report of a user and/or on an object (one job each).",
        fields=(
            Field("email", "email", "string", required=True,
                  help="Email or UPN of the user; empty for an object report only."),
            Field("path", "path", "string", required=True,
                  help="Full URL of the object; empty for a user report only."),
            *_ACTIVITY_TIMES,
            _event_types(),
        ),
        splits=(Split("email", "user_activity_export"), Split("path", "object_activity_export")),
        v1_only=_refused("language"), **_EXPORT,
    ),
    Operation(
        "user_activity_export", "export", "GET", "users/{email}/activities/export",
        "Export the activity report of one user.",
        fields=(_path("email", "email", "Email or UPN of the user.", listed=False),
                *_ACTIVITY_TIMES, _event_types()),
        public=False, **_EXPORT,
    ),
    Operation(
        "object_activity_export", "export", "GET", "activities/object/{path}/export",
        "Export the activity report on one object.",
        fields=(_path("path", "path", "Full URL of the object.", listed=False),
                *_ACTIVITY_TIMES, _event_types()),
        public=False, **_EXPORT,
    ),
)

# ------------------------------------------------------------------ M365 queries

_M365_QUERIES: tuple[Operation, ...] = (
    Operation(
        "user_permissions", "query", "POST", "users/access",
        "Permissions of users (all sites in scope when no site URL is given).",
        fields=(
            _site_urls(required=False, placement="body"),
            Field("emails", "emails", "string_list", required=True, cap=MAX_LIST_VALUES,
                  empty_allowed=False, placement="body",
                  help="Emails or principal names, at most 100 per request."),
            _page_size("body"),
        ),
        result_fields=("module", "siteName", "name", "location", "objectType", "inheritType",
                       "permission", "sensitivityLevel", "dataType", "isDirect",
                       "sensitivityLabel", "trainableClassifier", "inheritedFrom"),
        record_aliases=_RECORD_ALIASES, v1_only=_refused("language"), **_TOKEN,
    ),
    Operation(
        "user_summary", "query", "GET", "users/summary", "Summary of users.",
        fields=(_page_size("query"),),
        result_fields=("displayName", "loginName", "email", "userStatus", "trustStatus",
                       "sitesWithDirectAccess", "lastSignIn", "createdOn"),
        record_aliases=MappingProxyType({k: v for k, v in _RECORD_ALIASES.items()
                                         if v != "logonName"}),
        v1_only=_refused("language"), **dict(_PAGES, records_keys=("results", "values")),
    ),
    Operation(
        "group_summary", "query", "GET", "groups/summary", "Summary of groups.",
        fields=(_page_size("query"),),
        result_fields=("displayName", "groupId", "email", "groupType", "membershipType",
                       "createdOn", "externalMemberCount"),
        v1_only=_refused("language"), **_PAGES,
    ),
    Operation(
        "link_summary", "query", "POST", "sharingLinks/summary",
        "Sharing links of one type, one site per call.",
        fields=(
            Field("site_urls", "siteUrl", "string_list", required=True, cap=1, single=True,
                  empty_allowed=False, placement="body", help=ONE_SITE + "."),
            Field("link_type", "linkType", "enum", required=True, enum=LINK_TYPE,
                  placement="body", help="specific (32), organization (64) or anyone (128)."),
            _page_size("body"),
        ),
        result_fields=("id", "siteId", "selfId", "linkId", "logonName", "createTime",
                       "expireTime", "name", "objectUrl", "linkType", "shareBy", "inheritFrom",
                       "inheritType", "shareWith", "linkUrl", "permission", "fileType",
                       "sensitivityLevel"),
        record_aliases=_RECORD_ALIASES, v1_only=_refused("language"), **_TOKEN,
    ),
    Operation(
        "site_permissions", "query", "POST", "sites/permission",
        "Permissions of site collections.",
        fields=(_site_urls(required=True, placement="body"), _page_size("body")),
        result_fields=("module", "name", "url", "objectType", "principalName", "email",
                       "principalType", "permission", "numberOfMembers", "isExternalUser",
                       "inheritType", "linkGivingAccessTo"),
        v1_only=_refused("language"), **_TOKEN,
    ),
    Operation(
        "site_overview", "query", "POST", "sites/overview",
        "Risk overview of site collections (v2 keeps only the risk filter).",
        fields=(Field("filters", "riskLevel", "filters", placement="body",
                      help="Only risk: [...] (v2 sends it as riskLevel)."),
                _page_size("body")),
        filters=(_RISK,),
        result_fields=("siteName", "siteUrl", "riskItemCount", "sensitiveItemCount",
                       "exposureItemCount"),
        **_TOKEN,
    ),
    Operation(
        "site_ids", "query", "GET", "sites/{siteUrl}/siteId",
        "The site id of site collections, one URL per call.",
        fields=(_path("site_urls", "siteUrl", "URLs of site collections; v2 looks up one "
                      "per call, so each URL is its own Step."),),
        result_fields=("siteId", "siteUrl"),
        scalar_record="siteId", echo=MappingProxyType({"siteUrl": "siteUrl"}),
        **_LIST,
    ),
    Operation(
        "detail_records_by_site", "query", "POST", "sites/detailRecords",
        "Risk analysis detailed records of one site collection (no server-side filters).",
        fields=(
            Field("site_id", "siteId", "string", required=True, placement="body",
                  help="ID of the site collection (see site_ids)."),
            _page_size("body"),
        ),
        result_fields=_DETAIL_RECORD_FIELDS, record_aliases=_RECORD_ALIASES,
        v1_only=_refused("language", filters=NO_RECORD_FILTERS), **_TOKEN,
    ),
)

# -------------------------------------------------------------- Google exports

_GOOGLE_EXPORTS: tuple[Operation, ...] = (
    Operation(
        "google_object_activity_export", "export", "GET", "google/activities/object/{id}/export",
        "Export the activity report on Google objects, one job per object.",
        fields=(_path("object_ids", "id", "Google object ids (a Drive file's id); one per "
                      "job."), *_ACTIVITY_TIMES, _event_types()),
        **_EXPORT,
    ),
    Operation(
        "google_user_activity_export", "export", "GET", "google/users/{email}/activities/export",
        "Export the activity report of Google users, one job per user.",
        fields=(_path("emails", "email", "Emails of Google users; one per job."),
                *_ACTIVITY_TIMES, _event_types()),
        **_EXPORT,
    ),
    Operation(
        "google_user_access_export", "export", "GET", "google/users/{email}/access/export",
        "Export the access report of Google users, one job per user.",
        fields=(_path("emails", "email", "Primary emails of Google users; one per job."),
                _drive_ids(required=False), _data_sources(google=True)),
        **_EXPORT,
    ),
    Operation(
        "google_group_access_export", "export", "GET", "google/groups/{groupId}/access/export",
        "Export the access report of Google groups, one job per group.",
        fields=(
            _path("group_ids", "groupId", "Email addresses of Google groups; one per job."),
            Field("export_option", "exportOptionType", "enum", required=True,
                  enum=GOOGLE_EXPORT_OPTION, placement="query",
                  help="2 summary_and_all_objects or 3 summary_only (1 is not supported yet)."),
            _drive_ids(required=False),
            _data_sources(google=True),
        ),
        **_EXPORT,
    ),
    Operation(
        "google_drive_permission_export", "export", "GET", "google/drives/permission/export",
        "Export the permission reports of Google drives, at most 100 per job.",
        fields=(_drive_ids(required=True),),
        **_EXPORT,
    ),
    Operation(
        "google_link_export", "export", "GET", "google/sharingLinks/export",
        "Export the report of Google objects shared via links of one type.",
        fields=(
            Field("link_type", "exportLinkType", "enum", required=True, enum=GOOGLE_LINK_TYPE,
                  placement="query", help="target_audience (301) or anyone (303)."),
            *_LINK_TIMES,
        ),
        **_EXPORT,
    ),
)

# --------------------------------------------------------- tags and health

SET_TAG = Operation(
    "set_tag", "action", "PATCH", "sites/{siteId}/{objectUrl}/settag",
    "WRITES to the tenant: apply an existing Insights tag to one object.",
    fields=(
        _path("site_id", "siteId", "ID of the site holding the object (see site_ids).",
              listed=False),
        _path("object_url", "objectUrl", "Full URL of the object to tag.", listed=False),
        Field("tag_name", "tagName", "string", required=True, placement="query",
              help="Name of a tag defined in Insights (e.g. FalsePositive)."),
    ),
    generation=GENERATION, changes_tenant=True,
)
HEALTH = Operation(
    "health", "health", "GET", "healthz",
    "Whether the API service is up (a plain string; no token needed).",
    generation=GENERATION, public=False,
)

V2 = Generation(
    GENERATION,
    _M365_EXPORTS + _M365_QUERIES + _GOOGLE_EXPORTS + (JOB_STATUS, JOB_FILE, SET_TAG, HEALTH),
    unavailable=MappingProxyType({"detail_records": NO_DETAIL_RECORDS}),
)

# The 24 endpoints of the reference's §0.4, each once (the split activity_export has none).
ENDPOINTS = tuple(op for op in V2.operations if op.path)
assert len(ENDPOINTS) == 24, len(ENDPOINTS)
# v1 modules whose v2 operation refuses a v1 field beyond the ones in v1_only: the rules
# the compiler applies (empty group_ids; link_summary without site_urls)
REQUIRED_ON_V2 = MappingProxyType({
    ("group_access_export", "group_ids"): ONE_GROUP,
    ("link_summary", "site_urls"): ONE_SITE,
})
