"""The Graph API (v2) endpoints: one handler per catalog operation of generation v2,
answering the envelopes of §3.5 over the same tenant, job book and request log as v1.

* Queries answer ``{values, status, message, nextLink}``.  The five token-paged queries
  reuse v1's walks over the tenant (so a v2 page holds the same records as the v1 page of
  the same request) and restate each record in its v2 shape (``records``).
* Exports answer ``{jobId, status, message}`` with a string ``jobId``; the shared
  ``job/{jobId}/exportstatus`` and ``exportfile`` answer ``{jobStatus, status, message}``
  and the file (Range and 206 as v1, by v1's own file code).
* ``settag`` changes the tenant: later records of the object, v1's and v2's, carry the tag.

Routing is the catalog's (``catalog.match_path`` over the raw, still encoded request
target, so that an object URL in the path stays one segment; it decodes each value until
stable: single, double and raw-``@`` encodings all work, §10 question 9).  A request's
values come from the path, then the query string (GET, PATCH; a list field repeats its
key) or the JSON body (POST), and are read and checked by the same ``fields.read`` as v1,
against the catalog's fields, after three v2 readings: a ``single`` field's one value
becomes a list of one, the flat ``riskLevel`` (one value or a list, §10 question 22)
becomes v1's filter, and an enum value may be a code, a label or an alias in any case
(``onedrive for business``, ``User Drive``: §10 questions 16, 17).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from werkzeug import Request, Response
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from runner import catalog
from runner.catalog import ApiEnum, Operation
from runner.sim.api import Api, ApiError, json_body, json_response, problem_response
from runner.sim.fields import BadRequest, read
from runner.sim.google import GoogleTenant
from runner.sim.jobs import Job, JobBook, SlotsFull
from runner.sim.paging import start_page
from runner.sim.tenant import Tenant
from runner.sim.v2 import records
from runner.sim.v2.reports import V2Reports

GENERATION = "v2"
HEALTHY = "Healthy"  # §10 question 7: the health check's plain-text body


def envelope(op: Operation, data: Any = None, status: int = 200, message: str = "",
             next_link: str | None = None) -> dict[str, Any]:
    """The v2 answer of ``op``: its data key beside ``status`` and ``message``, under the
    catalog's documented key (its first: ``results`` for users/summary, as DOC, §10
    question 34; ``values`` for every other list)."""
    if op.kind == "export":
        return {op.job_id_keys[0]: data, "status": status, "message": message}
    if op.kind == "status":
        return {op.job_state_keys[0]: data, "status": status, "message": message}
    if op.kind == "query":
        return {op.records_keys[0]: data, "status": status, "message": message,
                op.next_keys[0]: next_link}
    return {"status": status, "message": message}


def raw_path(environ: dict[str, Any], prefix: str) -> str | None:
    """The raw (still encoded) request path below ``/{prefix}/``, or None elsewhere:
    werkzeug's ``PATH_INFO`` is already decoded, and would split a value such as
    ``https%3A%2F%2F...`` into segments."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or \
        quote(environ.get("PATH_INFO", ""))
    path = target.split("?", 1)[0]
    if not path.startswith("/"):  # an absolute-form request target: drop scheme and host
        path = "/" + (path.split("/", 3)[3] if path.count("/") >= 3 else "")
    head, _, rest = path.strip("/").partition("/")
    return rest if head.lower() == prefix.lower() else None


def error(op: Operation, status: int, message: str) -> Response:
    return json_response(envelope(op, None, status, message), status)


class ApiV2:
    def __init__(self, tenant: Tenant, google: GoogleTenant, jobs: JobBook, v1: Api):
        self.tenant = tenant
        self.google = google
        self.jobs = jobs
        self.v1 = v1  # its walks, tokens and file serving
        reports = v1.reports
        assert isinstance(reports, V2Reports), "the service builds v2 reports for both"
        self.reports = reports
        self._routes = catalog.routed(GENERATION)

    # ------------------------------------------------------------------- routing

    def route(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        return catalog.match_path(method, path, self._routes)

    def other_methods(self, path: str) -> bool:
        """Whether some v2 operation is served at this path with another method (405)."""
        return any(catalog.match_path(m, path, self._routes) for m in ("GET", "POST", "PATCH"))

    def values(self, op: Operation, request: Request, path: dict[str, str]) -> dict[str, Any]:
        """The request's values by catalog field name (see the module docstring)."""
        given: dict[str, Any] = {}
        lists = {f.api.lower() for f in op.fields
                 if f.kind in ("string_list", "enum_list", "filters")}
        if op.method == "POST":
            given.update(json_body(request))
        else:
            for key in request.args:
                many = request.args.getlist(key)
                given[key] = many if key.lower() in lists else many[-1]
        given.update(path)
        for f in op.fields:
            name = next((k for k in given if k.lower() == f.api.lower()), None)
            if name is None or given[name] is None:
                continue
            value = given[name]
            if name.lower() in lists and not isinstance(value, list):
                value = [value]  # a single field's value; a lone riskLevel (§10: 22)
            if f.kind == "filters" and op.filters:
                value = [{"id": op.filters[0].api, "values": value}]
            if f.enum is not None:
                value = ([_code(f.enum, v) for v in value] if isinstance(value, list)
                         else _code(f.enum, value))
            given[name] = value
        return read(op, given)

    # ------------------------------------------------------------------ handling

    def handle(self, op: Operation, request: Request, path: dict[str, str],
               client_id: str) -> Response:
        """The answer to a request routed to ``op``: refusals in v2's envelope, except
        what ASP.NET's model binder refuses before the action runs (ProblemDetails)."""
        if op.kind == "health":
            return Response(HEALTHY, 200, mimetype="text/plain")
        try:
            values = self.values(op, request, path)
            if op.kind == "query":
                data, next_link = self._query(op, values)
                return json_response(envelope(op, data, next_link=next_link))
            if op.kind == "export":
                return self._export(op, values, client_id)
            if op.kind == "status":
                job = self._job(values)
                status = self.jobs.status(job)
                message = "" if status in catalog.DOWNLOADABLE_STATUSES | {
                    catalog.STATUS_IN_PROGRESS} else catalog.EXPORT_STATUS.label(status)
                return json_response(envelope(op, status, message=message))
            if op.kind == "file":
                return self._file(op, self._job(values), request)
            return self._set_tag(op, values)
        except ApiError as exc:
            return error(op, exc.status, exc.message)
        except BadRequest as exc:
            if exc.binding:
                return problem_response(exc.message, exc.field)
            return error(op, 400, exc.message)

    # ------------------------------------------------------------------- queries

    def _query(self, op: Operation, values: dict[str, Any]) -> tuple[Any, str | None]:
        return _QUERIES[op.name](self, op, values)

    def user_summary(self, op: Operation, values: dict[str, Any]) -> tuple[list, None]:
        rows = start_page(self.tenant.user_count, values["start_page"], values["page_size"])
        return [records.user_summary(self.tenant, u) for u in rows], None

    def group_summary(self, op: Operation, values: dict[str, Any]) -> tuple[list, None]:
        rows = start_page(self.tenant.group_count, values["start_page"], values["page_size"])
        return [records.group_summary(self.tenant, g) for g in rows], None

    def user_permissions(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        found, token = self.v1.user_permissions(op, values)
        return [records.user_access(r) for r in found], token

    def site_permissions(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        found, token = self.v1.site_permissions(op, values)
        return [records.site_permission(r) for r in found], token

    def link_summary(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        site = self.tenant.site_by_url(values["site_urls"][0])
        if site is None:
            return [], None  # like v1, an unknown site URL is skipped
        token = _uncosmos(values["token"]) if values.get("token") else None
        given = {**values, "token": token, "site_urls": [site.url]}
        found, token = self.v1.link_summary(op, given)
        return [records.link_summary(r) for r in found], _cosmos(token)

    def site_overview(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        return self.v1.site_overview(op, {**values, "filters": values["filters"] or {}})

    def detail_records_by_site(self, op: Operation,
                               values: dict[str, Any]) -> tuple[list, str | None]:
        found, token = self.v1.detail_records_by_site(op, {**values, "filters": {}})
        return [records.detail_record(r) for r in found], token

    def site_ids(self, op: Operation, values: dict[str, Any]) -> tuple[list, None]:
        # §10 question 49: one id for a known URL, an empty list (200) for any other.
        site = self.tenant.site_by_url(values["site_urls"][0])
        return ([site.id] if site else []), None

    # ------------------------------------------------------------------- exports

    def _export(self, op: Operation, values: dict[str, Any], client_id: str) -> Response:
        try:
            job = self.jobs.submit(op, values, client_id)
        except SlotsFull as exc:
            # The limit's refusal, answered as v1 answers it (HTTP 400, same message start)
            # in v2's job-start envelope: see README, "The simulator", Graph API (v2).
            return error(op, 400, str(exc))
        return json_response(envelope(op, str(job.id)))

    def _job(self, values: dict[str, Any]) -> Job:
        job = self.jobs.get(values["job_id"])
        if job is None or job.generation != GENERATION:
            # §10 question 56: one id space, but a job is seen by its own generation's routes.
            raise ApiError(404, f"The export job {values['job_id']} was not found.")
        return job

    def _file(self, op: Operation, job: Job, request: Request) -> Response:
        status = self.jobs.status(job)
        if status not in catalog.DOWNLOADABLE_STATUSES:
            raise ApiError(400, f"The export job {job.id} has no file: "
                                f"{catalog.EXPORT_STATUS.label(status)}")
        try:
            return self.v1._file(job, request)
        except RequestedRangeNotSatisfiable as exc:  # a Range past the end: 416, as v1 should
            return exc.get_response()

    # ---------------------------------------------------------------------- tags

    def _set_tag(self, op: Operation, values: dict[str, Any]) -> Response:
        site = self.tenant.site_by_id(values["site_id"])
        if site is None:
            raise ApiError(404, f"The site {values['site_id']} was not found.")
        j = self.tenant.object_by_url(site.index, values["object_url"])
        if j is None:
            raise ApiError(404, f"The object {values['object_url']} was not found in the site "
                                f"{site.url}.")
        tag = str(values["tag_name"]).strip()
        if not tag:
            raise BadRequest("The tagName field is required.", "tagName")
        self.tenant.set_tag(site.index, j, tag)
        return json_response(envelope(op))


def _code(enum: ApiEnum, value: Any) -> Any:
    """The code an enum value names by its code, label or an alias (any case); anything
    else is left for ``fields.read`` to refuse, naming the valid codes."""
    key = str(value).strip().lower()
    for member in enum.members:
        if key in {str(s).lower() for s in (member.code, member.label, *member.aliases)}:
            return member.code
    return value



# The sharing-link summary's nextLink looks like the Cosmos DB continuation of the DOC
# sample (a JSON array as a string), so clients must carry it as an uninterpreted string:
# JSON-escaped in bodies, percent-encoded in queries (§3.6).
_COSMOS_HEAD = "+RID:~"


def _cosmos(token: str | None) -> str | None:
    if token is None:
        return None
    return json.dumps([{"token": f"{_COSMOS_HEAD}{token}#RT:1#TRC:{len(token)}#ISV:2",
                        "range": {"min": "", "max": "FF"}}], separators=(",", ":"))


def _uncosmos(value: str) -> str:
    try:
        parsed = json.loads(value)
        inner = parsed[0]["token"]
    except (ValueError, TypeError, KeyError, IndexError):
        return value  # then the MAC check refuses it as a foreign token
    if not isinstance(inner, str) or not inner.startswith(_COSMOS_HEAD):
        return value
    return inner[len(_COSMOS_HEAD):].split("#", 1)[0]


_QUERIES: dict[str, Callable[[ApiV2, Operation, dict[str, Any]], tuple[Any, str | None]]] = {
    name: getattr(ApiV2, name) for name in ("user_summary", "group_summary", "user_permissions",
                                            "site_permissions", "link_summary", "site_overview",
                                            "detail_records_by_site", "site_ids")
}
