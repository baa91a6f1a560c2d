"""The Insights endpoints: one handler per catalog operation, answering as the service does.

Queries answer the envelope ``{results, status, message, content, nextToken}``; exports
answer ``{getFileUrl, id}``; status endpoints ``{status, description}``; file endpoints
the .zip.  Request rules live in ``fields`` (reading) and here (rules that need the tenant
or the job book).  Every refusal is a ``fields.BadRequest`` or an ``ApiError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from werkzeug import Request, Response
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from runner import catalog
from runner.catalog import Operation
from runner.sim import records
from runner.sim.bigfile import BigExport
from runner.sim.fields import BadRequest
from runner.sim.jobs import Job, JobBook, SlotsFull
from runner.sim.paging import Tokens, query_hash, start_page, token_page
from runner.sim.reports import Reports
from runner.sim.tenant import Tenant


class ApiError(Exception):
    """A refusal with its own status code (404 unknown job, 400 job not downloadable...)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_body(request: Request) -> dict[str, Any]:
    """A request's JSON object body, or the 400 the service gives for anything else."""
    if not request.mimetype.endswith("json"):
        raise BadRequest(f"Unsupported content type '{request.mimetype}': send "
                         f"application/json.", "$", binding=True)
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}", "$", binding=True) \
            from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", "$", binding=True)
    return body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    mimetype="application/json", headers=headers)


def envelope(results: Any, next_token: str | None = None, status: int = 200,
             message: str = "", content: Any = None) -> dict[str, Any]:
    return {"results": results, "status": status, "message": message, "content": content,
            "nextToken": next_token}


def error_response(status: int, message: str, content: Any = None) -> Response:
    return json_response(envelope(None, status=status, message=message, content=content), status)


def problem_response(message: str, field: str) -> Response:
    """The body ASP.NET's model binder answers a malformed request with."""
    return Response(json.dumps({
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": "One or more validation errors occurred.", "status": 400,
        "errors": {field or "$": [message]},
    }), status=400, mimetype="application/problem+json")


class Api:
    def __init__(self, tenant: Tenant, jobs: JobBook, reports: Reports,
                 export_bytes: int | None = None):
        self.tenant = tenant
        self.jobs = jobs
        self.reports = reports
        # Every export file is a synthetic .zip of this size, streamed (see bigfile).
        self.big = BigExport(export_bytes) if export_bytes else None
        self.tokens = Tokens(tenant.seed)

    def handle(self, op: Operation, values: dict[str, Any], client_id: str,
               request: Request) -> Response:
        if op.kind == "query":
            results, next_token = _QUERIES[op.name](self, op, values)
            return json_response(envelope(results, next_token))
        if op.kind == "export":
            return self._export(op, values, client_id)
        job = self._job(op, values)
        if op.kind == "status":
            status = self.jobs.status(job)
            return json_response({"status": status,
                                  "description": catalog.EXPORT_STATUS.label(status)})
        return self._file(job, request)

    # ------------------------------------------------------------------- queries

    def _paged(self, op: Operation, values: dict[str, Any],
               walk: Callable) -> tuple[list, str | None]:
        query = query_hash(op.name, values)
        cursor = None
        if values.get("token"):
            cursor = self.tokens.decode(values["token"], query, op.token_field or "token",
                                        op.next_keys[0])
        return token_page(walk(cursor), values["page_size"], self.tokens, query)

    def _sites(self, urls: list[str] | None) -> list[int] | range:
        """The sites a request names (unknown URLs are skipped), or every site."""
        if not urls:
            return range(self.tenant.site_count)
        found: list[int] = []
        for url in urls:
            site = self.tenant.site_by_url(url)
            if site is not None and site.index not in found:
                found.append(site.index)
        return found

    def user_summary(self, op: Operation, values: dict[str, Any]) -> tuple[list, None]:
        users = self.tenant.users()
        rows = start_page(len(users), values["start_page"], values["page_size"])
        return [records.user_summary(self.tenant, users[i]) for i in rows], None

    def group_summary(self, op: Operation, values: dict[str, Any]) -> tuple[list, None]:
        rows = start_page(self.tenant.group_count, values["start_page"], values["page_size"])
        return [records.group_summary(self.tenant, g) for g in rows], None

    def link_summary(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        sites = self._sites(values["site_urls"])
        link_type = int(values["link_type"])
        return self._paged(op, values,
                           lambda c: records.walk_links(self.tenant, sites, link_type, c))

    def site_permissions(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        sites = self._sites(values["site_urls"])
        rows = lambda s: records.site_permissions(self.tenant, s)  # noqa: E731
        return self._paged(op, values, lambda c: records.walk_rows(rows, sites, c))

    def user_permissions(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        scope = set(self._sites(values["site_urls"])) if values["site_urls"] else None
        pairs = []
        for email in values["emails"]:
            user = self.tenant.user_by_email(email)
            if user is None:
                continue
            pairs += [(user.index, s) for s in self.tenant.user_sites(user.index)
                      if scope is None or s in scope]

        def rows(pair: tuple[int, int]) -> list[dict[str, Any]]:
            return records.user_permissions(self.tenant, *pair)

        return self._paged(op, values, lambda c: records.walk_rows(rows, pairs, c))

    def detail_records_by_site(self, op: Operation,
                               values: dict[str, Any]) -> tuple[list, str | None]:
        site = self.tenant.site_by_id(values["site_id"])
        sites = [site.index] if site else []
        filters = values["filters"] or {}
        return self._paged(op, values,
                           lambda c: records.walk_objects(self.tenant, sites, filters, c))

    def site_ids(self, op: Operation, values: dict[str, Any]) -> tuple[list, None]:
        return [{"siteId": self.tenant.site(s).id, "siteUrl": self.tenant.site(s).url}
                for s in self._sites(values["site_urls"])], None

    def site_overview(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        sites = range(self.tenant.site_count)
        filters = values["filters"] or {}
        return self._paged(op, values,
                           lambda c: records.walk_overview(self.tenant, sites, filters, c))

    def detail_records(self, op: Operation, values: dict[str, Any]) -> tuple[list, str | None]:
        sites = range(self.tenant.site_count)
        filters = values["filters"] or {}
        return self._paged(op, values,
                           lambda c: records.walk_objects(self.tenant, sites, filters, c))

    # ------------------------------------------------------------------- exports

    def _export(self, op: Operation, values: dict[str, Any], client_id: str) -> Response:
        _check_export(op, values)
        try:
            job = self.jobs.submit(op, values, client_id)
        except SlotsFull as exc:
            return error_response(400, str(exc), content=catalog.EXPORT_LIMIT_CODE)
        return json_response({"getFileUrl": f"{op.file_operation.path}?id={job.id}",
                              "id": job.id})

    def _job(self, op: Operation, values: dict[str, Any]) -> Job:
        job = self.jobs.get(values["id"])
        if job is None or job.family != op.job_family:
            raise ApiError(404, f"The export job {values['id']} was not found.")
        return job

    def _file(self, job: Job, request: Request) -> Response:
        status = self.jobs.status(job)
        if status not in catalog.DOWNLOADABLE_STATUSES:
            raise ApiError(400, f"The export job {job.id} has no file: "
                                f"{catalog.EXPORT_STATUS.label(status)}")
        if self.big is not None:
            return _big_file(self.big, job, request)
        data, filename, fallback = self.reports.file(job)
        response = Response(data, mimetype="application/zip")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{fallback}"; filename*=UTF-8\'\'{quote(filename, safe="")}')
        response.set_etag(f"job-{job.id}-{len(data)}")
        try:
            return response.make_conditional(request, accept_ranges=True,
                                             complete_length=len(data))
        except RequestedRangeNotSatisfiable:
            return _unsatisfiable(len(data))


def _big_file(big: BigExport, job: Job, request: Request) -> Response:
    """The synthetic export, streamed from the first byte a ``Range: bytes=N-`` asks for."""
    if request.range is not None and _past_the_end(request, big.total):
        return _unsatisfiable(big.total)
    span = request.range.range_for_length(big.total) if request.range else None
    start = span[0] if span and span[1] == big.total else 0
    response = Response(big.iter_from(start), status=206 if start else 200,
                        mimetype="application/zip", direct_passthrough=True)
    response.headers["Content-Length"] = str(big.total - start)
    response.headers["Accept-Ranges"] = "bytes"
    if start:
        response.headers["Content-Range"] = f"bytes {start}-{big.total - 1}/{big.total}"
    response.headers["Content-Disposition"] = f'attachment; filename="export_{job.id}.zip"'
    return response


def _past_the_end(request: Request, total: int) -> bool:
    """A range every part of which starts at or past the end: what a server answers 416."""
    ranges = request.range.ranges if request.range is not None else []
    return bool(ranges) and all(begin >= total for begin, _ in ranges)  # suffixes are < 0


def _unsatisfiable(total: int) -> Response:
    """416 as a real server answers it: the body is short, the header gives the size."""
    response = error_response(416, f"The range is past the end of the {total}-byte file.")
    response.headers["Content-Range"] = f"bytes */{total}"
    response.headers["Accept-Ranges"] = "bytes"
    return response


def _check_export(op: Operation, values: dict[str, Any]) -> None:
    """Rules of the export requests that one field alone cannot tell."""
    if op.name == "group_access_export" and not values["group_ids"] and \
            values["export_option"] != 3:
        raise BadRequest("The Emails field may be empty only when ExportOptionType is 3 "
                         "(export the summary report of all groups).", "Emails")
    if op.name == "activity_export" and not values["email"] and not values["path"]:
        raise BadRequest("Set email, path or both: the activity report needs a user or an "
                         "object.", "email")


_QUERIES: dict[str, Callable[[Api, Operation, dict[str, Any]], tuple[list, str | None]]] = {
    name: getattr(Api, name) for name in catalog.module_names() if hasattr(Api, name)
}
