"""The legacy Insights Web API (v1): its 18 operations, as ``insights-web-api-legacy.txt``
documents them.

Every v1 request is a JSON body (POST) or a query string (GET); lists of up to 100 site
URLs, emails or group ids go in one request; paged answers carry ``results`` and
``nextToken``; an export answers an integer ``id`` whose status and file have a route per
job family (permission, activity).
"""

from __future__ import annotations

from .enums import (
    DATA_SOURCE,
    DEFAULT_LANGUAGE,
    EXPORT_OPTION,
    EXPOSURE_LEVEL,
    LANGUAGE,
    LINK_TYPE,
    MODULE,
    OBJECT_TYPE,
    RISK_LEVEL,
    SENSITIVITY_LEVEL,
)
from .limits import MAX_LIST_VALUES, MAX_PAGE_SIZE
from .model import JOB_ENDPOINTS, Field, Filter, Generation, Operation

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

JOB_ENDPOINTS[("v1", "permission")] = (_JOB_ENDPOINT_LIST[0], _JOB_ENDPOINT_LIST[1])
JOB_ENDPOINTS[("v1", "activity")] = (_JOB_ENDPOINT_LIST[2], _JOB_ENDPOINT_LIST[3])

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


V1 = Generation("v1", _EXPORTS + _JOB_ENDPOINT_LIST + _QUERIES)
