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
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

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

from .auth import CertificateAuth
from .connection import ConnectionSettings
from .credentials import Credential
from .download import Downloaded, download
from .retry import RetryPolicy, SubmitPolicy, parse_retry_after
from .transport import Transport, check_status, new_session, service_message

log = logging.getLogger("runner.client.api")

Cursor = int | str | None


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


def _encode(op: Operation, field: Field, value: Any) -> Any:
    try:
        return catalog.encode(op, field, value)
    except ValueError as exc:
        raise UserError(f"{op.name}.{field.name}: {exc}") from None


def check_body(op: Operation) -> Callable[[requests.Response], None]:
    """The HTTP status, then what the JSON body says (a 200 may carry a failure)."""

    def check(response: requests.Response) -> None:
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
            if not isinstance(body.get("status"), int):
                raise ServerError(f"{op.name}: the answer has no status code", operation=op.name)
            return
        inner = body.get("status")
        if isinstance(inner, int) and inner != 200:
            _raise_for(op, inner, str(body.get("message") or ""), retry_after=None)
        if op.kind == "export" and not isinstance(body.get("id"), int):
            raise ServerError(f"{op.name}: the answer carries no job id", operation=op.name)

    return check


def _check_http(op: Operation, response: requests.Response) -> None:
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


def _busy(response: requests.Response) -> bool:
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
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        generation: str = "v1",
    ) -> None:
        self.settings = settings
        self.generation = catalog.GENERATIONS[generation]
        self.session = session or new_session(verify_tls=settings.verify_tls)
        if credential is None:
            if settings.certificate is None:
                raise UserError("connection: no certificate to authenticate with")
            credential = settings.certificate.load()
        plain = Transport(self.session, retry=retry, timeout=settings.timeout, sleep=sleep)
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
        url = self.settings.api_url(op.path)
        kwargs: dict[str, Any] = {}
        if op.method == "GET":
            kwargs["params"] = dict(params or body or {})
        else:
            kwargs["json"] = dict(body or {}) if encoded else request_body(op, body)
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
            return SubmitPolicy(**dataclasses.asdict(self.transport.retry))
        return None  # the transport's own

    # -- paging

    def iter_pages(
        self, op: str | Operation, body: Mapping[str, Any] | None = None, *, start: Cursor = None
    ) -> Iterator[Page]:
        """Pages of records, one request each; resume by passing a page's ``next`` as ``start``."""
        op = self.operation(op)
        encoded = request_body(op, body)
        if op.paging is None:
            answer = self.call(op, encoded, encoded=True)
            yield Page(_records(op, answer), None, None)
            return
        size = int(
            encoded.get(op.page_size_field or "", catalog.MAX_PAGE_SIZE) or catalog.MAX_PAGE_SIZE
        )
        cursor: Cursor = start if start is not None else (1 if op.paging == "start_page" else None)
        while True:
            field = (op.page_start_field if op.paging == "start_page" else op.token_field) or ""
            answer = self.call(op, {**encoded, field: cursor}, encoded=True)
            records = _records(op, answer)
            if op.paging == "start_page":
                assert isinstance(cursor, int)
                following: Cursor = cursor + 1 if len(records) >= size and records else None
            else:
                following = answer.get("nextToken") or None
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

    def submit(self, op: str | Operation, body: Mapping[str, Any] | None = None) -> int:
        """Start an export job; its id.  ``SlotsBusy`` when five are already running."""
        op = self.operation(op)
        if not op.is_export:
            raise ValueError(f"{op.name} is not an export")
        job_id = int(self.call(op, body)["id"])
        log.info("%s: export job %d submitted", op.name, job_id)
        return job_id

    def job_status(self, op: str | Operation, job_id: int) -> int:
        """The export status code (catalog.EXPORT_STATUS) of job ``job_id``."""
        status_op = self._job_op(op, "status")
        return int(self.call(status_op, params={"id": job_id})["status"])

    def download(
        self, op: str | Operation, job_id: int, dest: str | Path, **kwargs: Any
    ) -> Downloaded:
        """Stream a finished export to ``dest``: a file path, or a folder (the server names it)."""
        file_op = self._job_op(op, "file")
        kwargs.setdefault("fallback_name", f"{self.operation(op).name}-{job_id}.zip")
        return download(
            self.transport,
            self.settings.api_url(file_op.path),
            dest,
            params={"id": job_id},
            operation=f"{file_op.name} {job_id}",
            **kwargs,
        )

    def _job_op(self, op: str | Operation, which: str) -> Operation:
        op = self.operation(op)
        if op.kind in ("status", "file"):
            family = catalog.JOB_ENDPOINTS[(op.generation, op.job_family or "")]
            return family[0] if which == "status" else family[1]
        return op.status_operation if which == "status" else op.file_operation


def _records(op: Operation, answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    records = answer.get("results")
    if records is None:
        return []
    if not isinstance(records, list):
        raise ServerError(f"{op.name}: 'results' is not a list", operation=op.name)
    return records


def _named(op: Operation) -> Callable[..., Any]:
    """A thin method for one operation, so callers can write ``client.user_summary(...)``."""
    if op.is_export:

        def method(self: InsightsClient, **fields: Any) -> Any:
            return self.submit(op, fields)
    elif op.kind == "status":

        def method(self: InsightsClient, job_id: int) -> Any:  # type: ignore[misc]
            return self.job_status(op, job_id)
    elif op.kind == "file":

        def method(self: InsightsClient, job_id: int, dest: str | Path, **kwargs: Any) -> Any:  # type: ignore[misc]
            return self.download(op, job_id, dest, **kwargs)
    else:

        def method(self: InsightsClient, **fields: Any) -> Any:  # type: ignore[misc]
            return self.iter_records(op, fields)

    method.__name__ = op.name
    method.__doc__ = f"{op.summary} ({op.method} {op.path})"
    return method


for _op in catalog.V1.operations:
    if not hasattr(InsightsClient, _op.name):
        setattr(InsightsClient, _op.name, _named(_op))
