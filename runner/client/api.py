"""The Insights API client: one method per catalog operation, paging, export jobs, downloads.

Everything about an operation (path, method, field names, enum codes, paging style) comes
from ``runner.catalog``; this module only knows how to speak HTTP about it.

* ``call(op, body)`` sends one request and returns the checked JSON answer.
* ``iter_pages(op, body, start=None)`` yields ``Page(records, next)`` one page at a time;
  ``next`` is the cursor to store (a page number or a token) and to pass back as ``start``
  to resume; ``iter_records`` flattens them.  Nothing holds more than one page.
* ``submit(op, body)`` starts an export and returns its job id; ``job_status(op, id)`` the
  status code; ``download(op, id, dest)`` streams the finished file.
* Every operation also has a thin named method (``client.user_summary(language="ja")``).

Responses are checked twice: the HTTP status, and the ``status`` element inside a 200 JSON
body (the service reports some failures there).

Both generations speak through the same methods; the client's ``generation`` (the
connection's ``api``) picks the catalog's operations.  On v2 each field goes where the
catalog places it (``split_request``): path values percent-encoded into the URL, lists as
repeated query keys, the rest in a JSON body; job ids are strings of digits, the job state
is ``jobStatus``, every job shares ``job/{jobId}/...``, and answers are read tolerantly
(``values`` or ``results``, ``nextLink`` or ``nextToken``, a record key in any of the
spellings the sources use).  An export start is never retried where the service may have
acted on it, GET or POST alike: it could create a second job.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import catalog
from runner.catalog import Field, Operation
from runner.errors import (
    RateLimited,
    RequestRejected,
    ServerError,
    ServiceError,
    SlotsBusy,
    UserError,
)

from .auth import CertificateAuth, SecretAuth
from .connection import ConnectionSettings
from .credentials import Credential
from .download import Downloaded, download
from .response import Response
from .retry import RetryPolicy, SubmitPolicy, parse_retry_after
from .session import Session
from .transport import Transport, check_status, new_session, service_message

log = logging.getLogger("runner.client.api")

Cursor = int | str | None
JobId = int | str


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next: Cursor  # what to send for the following page; None when this was the last
    cursor: Cursor  # what was sent to get this page (None for the first token page)


# -------------------------------------------------------------- pure: request bodies


def request_body(op: Operation, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """An API request body from values keyed by playbook or API names (codes or names)."""
    body: dict[str, Any] = {}
    paging = {f.lower(): f for f in (op.page_start_field, op.token_field) if f}
    for key, value in (values or {}).items():
        if key.lower() in paging:  # a cursor the caller kept: passed through as it is
            body[paging[key.lower()]] = value
            continue
        try:
            field = op.field(key)
        except KeyError:
            allowed = ", ".join(f.name for f in op.fields)
            raise UserError(f"{op.name}: unknown field {key!r}; fields: {allowed}") from None
        body[field.api] = _encode(op, field, value)
    for field in op.fields:
        if field.api not in body and field.default is not None:
            body[field.api] = field.default
    return body


def split_request(op: Operation, body: Mapping[str, Any]) -> tuple[str, dict[str, Any],
                                                                   dict[str, Any] | None]:
    """An encoded request (API names) as (path, query, JSON body): each field where the
    catalog places it.  A path value is percent-encoded once (``catalog.fill_path``); a
    query list repeats its key; ``None`` values are left out.  The body is ``None`` for
    GET and PATCH."""
    path_values: dict[str, Any] = {}
    query: dict[str, Any] = {}
    json_body: dict[str, Any] = {}
    placed = {f.api.lower(): f for f in op.fields}
    paging = {f.lower() for f in (op.page_start_field, op.token_field) if f}
    for key, value in body.items():
        field = placed.get(key.lower())
        where = op.placement(field) if field is not None else (
            "query" if op.method == "GET" else "body")
        if key.lower() in paging and op.method == "GET":
            where = "query"
        if value is None:
            continue
        if where == "path":
            path_values[field.api if field else key] = value
        elif where == "query":
            query[key] = list(value) if isinstance(value, list | tuple) else value
        else:
            json_body[key] = list(value) if isinstance(value, tuple) else value
    try:
        path = catalog.fill_path(op, path_values)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return path, query, (json_body if op.method == "POST" else None)


def _encode(op: Operation, field: Field, value: Any) -> Any:
    try:
        return catalog.encode(op, field, value)
    except ValueError as exc:
        raise UserError(f"{op.name}.{field.name}: {exc}") from None


def check_body(op: Operation) -> Callable[[Response], None]:
    """The HTTP status, then what the JSON body says (a 200 may carry a failure)."""

    def check(response: Response) -> None:
        _check_http(op, response)
        if op.kind == "file":
            return
        try:
            body = response.json()
        except ValueError:
            raise ServerError(
                f"{op.name}: the answer is not JSON", status=response.status_code, operation=op.name
            ) from None
        if not isinstance(body, Mapping):
            raise ServerError(f"{op.name}: the answer is not a JSON object", operation=op.name)
        if op.kind == "status":
            if not isinstance(_first(body, op.job_state_keys), int):
                raise ServerError(f"{op.name}: the answer has no status code", operation=op.name)
            return
        inner = body.get("status")
        if isinstance(inner, int) and inner != 200:
            _raise_for(op, inner, str(body.get("message") or ""), retry_after=None)
        if op.kind == "export":
            job_id(op, body)

    return check


def _first(body: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value under the first of ``keys`` the answer has (the sources disagree)."""
    for key in keys:
        if body.get(key) is not None:
            return body[key]
    return None


def job_id(op: Operation, body: Mapping[str, Any]) -> JobId:
    """The job id of an export's answer: v1's integer ``id``; v2's ``jobId``, a string of
    digits (open question 52: the routes take it as int32, so anything else is refused)."""
    value = _first(body, op.job_id_keys)
    if op.job_id_type is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, str | int) and not isinstance(value, bool) and \
            str(value).isdigit() and str(value).isascii():
        return str(value)
    raise ServerError(f"{op.name}: the answer carries no job id"
                      + (f" (got {value!r})" if value is not None else ""), operation=op.name)


def _check_http(op: Operation, response: Response) -> None:
    if 200 <= response.status_code < 300:
        return
    message = service_message(response)
    busy = op.is_export and _busy(response)
    if not busy and (response.status_code in (401, 403, 429) or response.status_code >= 500):
        try:
            check_status(response)
        except ServiceError as exc:
            exc.operation = op.name
            raise
    if busy:
        raise SlotsBusy(
            f"{op.name}: the tenant already runs {catalog.MAX_CONCURRENT_EXPORTS} "
            f"export jobs: {message}",
            status=response.status_code,
            operation=op.name,
        )
    _raise_for(
        op,
        response.status_code,
        message,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _raise_for(op: Operation, status: int, message: str, retry_after: float | None) -> None:
    tail = f": {message}" if message else ""
    if status == 429:
        raise RateLimited(
            f"{op.name}: rate limited{tail}",
            retry_after=retry_after,
            status=status,
            operation=op.name,
        )
    if status >= 500:
        raise ServerError(
            f"{op.name}: server error {status}{tail}", status=status, operation=op.name
        )
    raise RequestRejected(
        f"{op.name}: the service rejected the request ({status}){tail}",
        status=status,
        operation=op.name,
    )


def _busy(response: Response) -> bool:
    """The service's refusal of a sixth concurrent export job (see catalog.EXPORT_LIMIT_*)."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, Mapping):
        return False
    message = str(body.get("message") or "")
    return body.get("content") == catalog.EXPORT_LIMIT_CODE or message.startswith(
        catalog.EXPORT_LIMIT_MESSAGE
    )


# ----------------------------------------------------------------------- the client


class InsightsClient:
    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        credential: Credential | None = None,
        session: Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        generation: str | None = None,
    ) -> None:
        self.settings = settings
        self.generation = catalog.GENERATIONS[generation or settings.api]
        self.session = session or new_session(verify_tls=settings.verify_tls)
        plain = Transport(self.session, retry=retry, timeout=settings.timeout, sleep=sleep)
        self.auth: CertificateAuth
        if credential is None and settings.client_secret is not None:
            self.auth = SecretAuth(plain, settings.identity_url, settings.client_id,
                                   settings.client_secret, clock=clock)
        else:
            if credential is None:
                if settings.certificate is None:
                    raise UserError("connection: no certificate to authenticate with")
                credential = settings.certificate.load()
            self.auth = CertificateAuth(
                plain, settings.identity_url, settings.client_id, credential, clock=clock
            )
        self.transport = Transport(
            self.session, self.auth, retry=retry, timeout=settings.timeout, sleep=sleep
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> InsightsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def operation(self, op: str | Operation) -> Operation:
        return op if isinstance(op, Operation) else self.generation.get(op)

    # -- one request

    def call(
        self,
        op: str | Operation,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        encoded: bool = False,
    ) -> dict[str, Any]:
        """One request; the checked JSON answer.  ``encoded``: ``body`` already uses API names."""
        op = self.operation(op)
        kwargs: dict[str, Any] = {}
        if op.generation == "v1":
            url = self.settings.api_url(op.path)
            if op.method == "GET":
                kwargs["params"] = dict(params or body or {})
            else:
                kwargs["json"] = dict(body or {}) if encoded else request_body(op, body)
        else:
            values = dict(params or {}) if params else (
                dict(body or {}) if encoded else request_body(op, body))
            path, query, json_body = split_request(op, values)
            url = self.settings.api_url(path)
            if query:
                kwargs["params"] = query
            if json_body is not None:
                kwargs["json"] = json_body
        response = self.transport.request(
            op.method,
            url,
            operation=op.name,
            check=check_body(op),
            retry=self._policy(op),
            **kwargs,
        )
        return response.json()

    def _policy(self, op: Operation) -> RetryPolicy | None:
        if op.is_export:  # a retried submit could create a second job: see SubmitPolicy
            return _submit_policy(self.transport.retry)
        return None  # the transport's own

    def health(self) -> str:
        """v2's service health check (``GET healthz``): its plain-text answer."""
        op = catalog.operation("health", catalog.V2.name)
        response = self.transport.request("GET", self.settings.api_url(op.path),
                                          operation=op.name, headers={"Accept": "text/plain"})
        return response.text

    # -- paging

    def iter_pages(
        self, op: str | Operation, body: Mapping[str, Any] | None = None, *, start: Cursor = None
    ) -> Iterator[Page]:
        """Pages of records, one request each; resume by passing a page's ``next`` as ``start``."""
        op = self.operation(op)
        encoded = request_body(op, body)
        if op.is_action:  # set_tag: one request, one record saying what was written
            answer = self.call(op, encoded, encoded=True)
            done = {f.name: encoded.get(f.api) for f in op.fields}
            yield Page([{**done, "status": answer.get("status", 200),
                         "message": answer.get("message") or ""}], None, None)
            return
        if op.paging is None:
            answer = self.call(op, encoded, encoded=True)
            yield Page(_records(op, answer, encoded), None, None)
            return
        size = int(
            encoded.get(op.page_size_field or "", catalog.MAX_PAGE_SIZE) or catalog.MAX_PAGE_SIZE
        )
        first: Cursor = op.first_page if op.paging == "start_page" else None
        cursor: Cursor = start if start is not None else first
        while True:
            field = (op.page_start_field if op.paging == "start_page" else op.token_field) or ""
            answer = self.call(op, {**encoded, field: cursor}, encoded=True)
            records = _records(op, answer, encoded)
            if op.paging == "start_page":
                # a short or empty page is the last (v2's nextLink is always null there)
                assert isinstance(cursor, int)
                following: Cursor = cursor + 1 if len(records) >= size and records else None
            else:
                following = _first(answer, op.next_keys) or None
                if following is not None and following == cursor:
                    raise ServerError(
                        f"{op.name}: the service returned the same token again", operation=op.name
                    )
            log.debug(
                "%s: page of %d records (more: %s)", op.name, len(records), following is not None
            )
            yield Page(records, following, cursor)
            if following is None:
                return
            cursor = following

    def iter_records(
        self, op: str | Operation, body: Mapping[str, Any] | None = None, *, start: Cursor = None
    ) -> Iterator[dict[str, Any]]:
        for page in self.iter_pages(op, body, start=start):
            yield from page.records

    # -- export jobs

    def submit(self, op: str | Operation, body: Mapping[str, Any] | None = None) -> JobId:
        """Start an export job; its id (v1 an int, v2 a string of digits).  ``SlotsBusy``
        when the tenant's export slots are all in use."""
        op = self.operation(op)
        if not op.is_export:
            raise ValueError(f"{op.name} is not an export")
        if op.splits:
            raise ValueError(f"{op.name} is served by one job per kind: "
                             + ", ".join(split.operation for split in op.splits))
        new = job_id(op, self.call(op, body))
        log.info("%s: export job %s submitted", op.name, new)
        return new

    def job_status(self, op: str | Operation, job_id: JobId) -> int:
        """The export status code (catalog.EXPORT_STATUS) of job ``job_id``."""
        status_op = self._job_op(op, "status")
        answer = self.call(status_op, params={_job_key(status_op): _job_value(status_op,
                                                                             job_id)})
        return int(_first(answer, status_op.job_state_keys))

    def download(
        self, op: str | Operation, job_id: JobId, dest: str | Path, **kwargs: Any
    ) -> Downloaded:
        """Stream a finished export to ``dest``: a file path, or a folder (the server names it)."""
        file_op = self._job_op(op, "file")
        kwargs.setdefault("fallback_name", f"{self.operation(op).name}-{job_id}.zip")
        key, value = _job_key(file_op), _job_value(file_op, job_id)
        if file_op.generation == "v1":
            url, params = self.settings.api_url(file_op.path), {key: value}
        else:
            url, params = self.settings.api_url(catalog.fill_path(file_op, {key: value})), None
        return download(
            self.transport,
            url,
            dest,
            params=params,
            operation=f"{file_op.name} {job_id}",
            **kwargs,
        )

    def _job_op(self, op: str | Operation, which: str) -> Operation:
        op = self.operation(op)
        if op.kind in ("status", "file"):
            family = catalog.JOB_ENDPOINTS[(op.generation, op.job_family or "")]
            return family[0] if which == "status" else family[1]
        return op.status_operation if which == "status" else op.file_operation


@functools.lru_cache(maxsize=8)
def _submit_policy(retry: RetryPolicy) -> SubmitPolicy:
    """The submit variant of a (frozen) policy, made once: ``dataclasses.asdict`` on every
    export call was 0.4 s of the profile of a 2,000-Step run."""
    return SubmitPolicy(**dataclasses.asdict(retry))


def _job_key(op: Operation) -> str:
    return op.fields[0].api  # v1 "id" in the query, v2 "jobId" in the path


def _job_value(op: Operation, job: JobId) -> JobId:
    if op.generation == "v1":
        return int(job)
    text = str(job)
    if not (text.isdigit() and text.isascii()):
        raise UserError(f"{op.name}: a v2 job id is a number, not {job!r}")
    return text


def _records(op: Operation, answer: Mapping[str, Any],
             request: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The answer's records, read tolerantly: under the first of the operation's
    ``records_keys`` present, with record keys respelled (``record_aliases``), and bare
    values (v2's site ids) made records that echo what was asked."""
    key = next((k for k in op.records_keys if answer.get(k) is not None), op.records_keys[0])
    records = answer.get(key)
    if records is None:
        return []
    if not isinstance(records, list):
        raise ServerError(f"{op.name}: {key!r} is not a list", operation=op.name)
    if op.scalar_record is not None:
        echo = {name: (request or {}).get(api) for name, api in op.echo.items()}
        return [dict(value) if isinstance(value, Mapping) else {op.scalar_record: value, **echo}
                for value in records]
    if op.record_aliases:
        aliases = op.record_aliases
        return [{aliases.get(k, k): v for k, v in record.items()}
                if isinstance(record, Mapping) and any(k in aliases for k in record)
                else record for record in records]
    return records


def _named(op: Operation) -> Callable[..., Any]:
    """A thin method for one operation, so callers can write ``client.user_summary(...)``;
    the name is resolved in the client's generation (v1 or v2) at call time."""
    name = op.name
    if op.is_export:

        def method(self: InsightsClient, **fields: Any) -> Any:
            return self.submit(name, fields)
    elif op.kind == "status":

        def method(self: InsightsClient, job_id: JobId) -> Any:  # type: ignore[misc]
            return self.job_status(name, job_id)
    elif op.kind == "file":

        def method(self: InsightsClient, job_id: JobId, dest: str | Path,  # type: ignore[misc]
                   **kwargs: Any) -> Any:
            return self.download(name, job_id, dest, **kwargs)
    else:

        def method(self: InsightsClient, **fields: Any) -> Any:  # type: ignore[misc]
            return self.iter_records(name, fields)

    method.__name__ = op.name
    method.__doc__ = f"{op.summary} ({op.method} {op.path})"
    return method


for _generation in catalog.GENERATIONS.values():
    for _op in _generation.operations:
        if not hasattr(InsightsClient, _op.name) and _op.kind != "health":
            setattr(InsightsClient, _op.name, _named(_op))
