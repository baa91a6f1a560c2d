"""The simulator as a running service: a threaded werkzeug server on one port carrying the
identity service (under ``/identity``) and the Web API (under ``/insights``).

``Simulator`` is the embeddable harness (a context manager that starts the server on a
thread and yields its URLs); ``Service`` is the WSGI application: it routes by the
catalog, checks bearer tokens, injects faults, reads requests and logs every answer.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, make_server

from runner import catalog
from runner.sim import faults as fault_kinds
from runner.sim.api import (
    Api,
    ApiError,
    error_response,
    json_body,
    json_response,
    problem_response,
)
from runner.sim.credentials import Credentials, write, write_tls
from runner.sim.drift import tenant_for
from runner.sim.faults import Faults
from runner.sim.fields import BadRequest, read
from runner.sim.google import GoogleTenant
from runner.sim.keepalive import KeepAliveHandler
from runner.sim.identity import (
    DISCOVERY_PATH,
    TOKEN_PATH,
    IdentityService,
    OAuthError,
    Unauthorized,
)
from runner.sim.jobs import JobBook, JobSeconds
from runner.sim.log import Entry, RequestLog
from runner.sim.tenant import Scale, Tenant
from runner.sim.v2.api import ApiV2, raw_path
from runner.sim.v2.reports import V2Reports

API_PREFIX = "insights"
IDENTITY_PREFIX = "identity"


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    scale: str | Scale = "small"
    job_seconds: JobSeconds = 1.0
    token_lifetime: float = catalog.TOKEN_LIFETIME_SECONDS
    faults: Faults = field(default_factory=Faults)
    credentials_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None  # also append the request log here as JSON lines
    fresh_certificate: bool = False  # sim serve: a new key; embedded: one key per process
    client_id: str | None = None  # default: derived from the seed
    client_secret: str | None = None  # the app's client secret (v2 docs); default: random
    max_exports: int = catalog.MAX_CONCURRENT_EXPORTS  # export jobs in progress at once
    tls: bool = False  # serve HTTPS with a self-signed certificate (see Simulator.ca_bundle)
    clock: Callable[[], float] = time.time
    export_bytes: int | None = None  # every export file: a synthetic .zip this big, streamed
    drift: int = 0  # the tenant some time later (runner.sim.drift); 0 = as seeded

    @property
    def resolved_client_id(self) -> str:
        return self.client_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"insights-sim/{self.seed}"))


class Service:
    """The WSGI application."""

    def __init__(self, config: SimConfig, identity: IdentityService, log: RequestLog):
        self.config = config
        self.identity = identity
        self.log = log
        self.faults = config.faults
        self.tenant = tenant_for(config.seed, config.scale, config.drift)
        self.jobs = JobBook(config.clock, config.job_seconds, lambda: self.faults, log,
                            limit=config.max_exports)
        log.settle = self.jobs.settle
        self.google = GoogleTenant(config.seed, self.tenant.scale)
        self.api = Api(self.tenant, self.jobs, V2Reports(self.tenant, self.google),
                       config.export_bytes)
        self.api_v2 = ApiV2(self.tenant, self.google, self.jobs, self.api)
        self._numbers = itertools.count(1)
        self._download_numbers = itertools.count(1)  # truncation is drawn per download
        self._number_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        prefix, _, rest = request.path.strip("/").partition("/")
        if prefix.lower() == IDENTITY_PREFIX:
            response, entry = self._identity(request, rest)
        elif prefix.lower() == API_PREFIX:
            response, entry = self._api(request, rest)
        else:
            response = error_response(404, f"No endpoint at {request.path}.")
            entry = self._entry(request, "", {}, None, 404)
        fault = entry.fault
        self.log.record(entry)
        if fault == fault_kinds.DROP:
            return _drop(environ, start_response)
        if fault == fault_kinds.TRUNCATE:
            return _truncate(response, environ, start_response)
        return response(environ, start_response)

    # ------------------------------------------------------------------ identity

    def _identity(self, request: Request, rest: str) -> tuple[Response, Entry]:
        path = rest.lower()
        if request.method == "GET" and path == DISCOVERY_PATH:
            return json_response(self.identity.discovery()), \
                self._entry(request, "discovery", {}, None, 200)
        if request.method == "GET" and path == f"{DISCOVERY_PATH}/jwks":
            return json_response({"keys": []}), self._entry(request, "jwks", {}, None, 200)
        if path != TOKEN_PATH:
            return json_response({"error": "not_found"}, 404), \
                self._entry(request, "", {}, None, 404)
        form = request.form.to_dict() if request.method == "POST" else {}
        shown = {k: v for k, v in form.items() if k not in ("client_assertion", "client_secret")}
        fault, number = self._fault(download=False) if self.faults.identity else (None, 0)
        if fault in (fault_kinds.ERROR, fault_kinds.RATE_LIMIT, fault_kinds.DROP):
            response = self._fault_response(fault, number)
            return response, self._entry(request, "token", shown, None, response.status_code,
                                         fault)
        if request.method != "POST":
            return json_response({"error": "invalid_request"}, 405), \
                self._entry(request, "token", shown, None, 405)
        try:
            client_id, body = self.identity.issue(form)
        except OAuthError as exc:
            body = {"error": exc.error, "error_description": exc.description}
            return json_response(body, 400, {"Cache-Control": "no-store"}), \
                self._entry(request, "token", {**shown, "error": exc.error}, None, 400)
        return json_response(body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}), \
            self._entry(request, "token", shown, client_id, 200)

    # ----------------------------------------------------------------------- API

    def _api(self, request: Request, rest: str) -> tuple[Response, Entry]:
        op = catalog.find_by_path(request.method, rest)
        path_values: dict[str, str] | None = None
        raw = raw_path(request.environ, API_PREFIX) or ""
        if op is None:
            found = self.api_v2.route(request.method, raw)
            if found is not None:
                op, path_values = found
        if op is None:
            other = "POST" if request.method == "GET" else "GET"
            served = catalog.find_by_path(other, rest) or self.api_v2.other_methods(raw)
            status = 405 if served else 404
            return error_response(status, f"No {request.method} endpoint at {request.path}."), \
                self._entry(request, "", {}, None, status)
        if op.kind == "health":  # §10 question 7: no token needed
            return self.api_v2.handle(op, request, {}, ""), \
                self._entry(request, op.name, {}, None, 200)
        try:
            client_id = self.identity.authenticate(request.headers.get("Authorization"))
        except Unauthorized as exc:
            return _unauthorized(exc), self._entry(request, op.name, {}, None, 401)
        fault, number = self._fault(download=op.kind == "file")
        if fault == fault_kinds.EXPIRE_TOKEN and self.faults.token_early_expiry_rate < 1 and \
                not self.identity.used_before(request.headers.get("Authorization")):
            fault = None  # a fresh token works once; at rate 1 no token ever works
        if fault == fault_kinds.EXPIRE_TOKEN:
            self.identity.revoke(request.headers.get("Authorization"))
            response = _unauthorized(Unauthorized("The token expired"))
            return response, self._entry(request, op.name, {}, client_id, 401, fault)
        if fault in (fault_kinds.ERROR, fault_kinds.RATE_LIMIT, fault_kinds.DROP):
            response = self._fault_response(fault, number)
            return response, self._entry(request, op.name, {}, client_id,
                                         response.status_code, fault)
        body: dict[str, Any] = {}
        try:
            if path_values is not None:  # a v2 operation
                body = {k: v[0] if len(v) == 1 else v
                        for k, v in request.args.to_dict(flat=False).items()} | path_values
                if op.method == "POST":
                    with contextlib.suppress(BadRequest):  # answered by handle() below
                        body = self._body(request, op) | path_values
                response = self.api_v2.handle(op, request, path_values, client_id)
            else:
                body = self._body(request, op)
                values = read(op, body)
                response = self.api.handle(op, values, client_id, request)
        except BadRequest as exc:
            response = (problem_response(exc.message, exc.field) if exc.binding
                        else error_response(400, exc.message))
        except ApiError as exc:
            response = error_response(exc.status, exc.message)
        return response, self._entry(request, op.name, body, client_id, response.status_code,
                                     fault)

    @staticmethod
    def _body(request: Request, op: catalog.Operation) -> dict[str, Any]:
        if op.method == "GET":
            return {k: v for k, v in request.args.items()}
        return json_body(request)

    # -------------------------------------------------------------------- faults

    def _fault(self, download: bool) -> tuple[str | None, int]:
        """The fault this request meets (drawn from its sequence number) and that number."""
        if not self.faults.any:
            return None, 0
        with self._number_lock:
            number = next(self._numbers)
            download_number = next(self._download_numbers) if download else 0
        return self.faults.request_fault(number, download_number), number

    def _fault_response(self, fault: str, number: int) -> Response:
        if fault == fault_kinds.RATE_LIMIT:
            response = error_response(429, "Too many requests. Retry after the time the "
                                           "Retry-After header gives.")
            response.headers["Retry-After"] = self.faults.retry_after_header()
            return response
        status = 500 if fault == fault_kinds.DROP else self.faults.error_status(number)
        if status == 503:
            return Response("The service is temporarily unavailable.", 503,
                            mimetype="text/plain")
        return error_response(status, "An error occurred while processing your request.")

    def _entry(self, request: Request, operation: str, fields: dict[str, Any],
               client_id: str | None, status: int, fault: str | None = None) -> Entry:
        return Entry(self.config.clock(), request.method, request.path, operation, fields,
                     client_id, status, fault)


def _unauthorized(exc: Unauthorized) -> Response:
    challenge = "Bearer"
    if exc.error:
        challenge = f'Bearer error="{exc.error}", error_description="{exc.description}"'
    return Response(b"", 401, headers={"WWW-Authenticate": challenge})


def _drop(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    """Close the connection without an answer (the server then sees a broken pipe)."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        _shutdown(sock)
    start_response("500 Dropped", [("Content-Length", "0")])
    return []


def _truncate(response: Response, environ: dict[str, Any],
              start_response: Callable) -> Iterator[bytes]:
    """Send the headers and half the body, then close the connection."""
    body = b"".join(response(environ, start_response))
    yield body[: len(body) // 2]
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the peer may be gone already
        sock.shutdown(socket.SHUT_RDWR)


class Simulator:
    """An Insights service on a thread: ``with Simulator(SimConfig(...)) as sim: ...``."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.client_id = self.config.resolved_client_id
        # Like the certificate, a secret a playbook reads with env(); never logged.
        self.client_secret = self.config.client_secret or secrets.token_urlsafe(32)
        self.log = RequestLog(self.config.log_path)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._tempdir: tempfile.TemporaryDirectory | None = None
        # With tls=True: the server's certificate, which is also the CA bundle to trust.
        self.ca_bundle: Path | None = None
        self.credentials: Credentials
        self.service: Service

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Simulator:
        cfg = self.config
        self.credentials, self._tempdir = write(cfg.credentials_dir, cfg.fresh_certificate)
        # Bind here, not in werkzeug: werkzeug answers a busy port with sys.exit(1).
        family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
        listener = socket.create_server((cfg.host, cfg.port), family=family)
        try:
            self._server = make_server(cfg.host, cfg.port, _placeholder, threaded=True,
                                       request_handler=KeepAliveHandler, fd=listener.fileno(),
                                       ssl_context=self._tls_context())
        finally:
            listener.close()  # the server holds its own duplicate
        host = cfg.host if ":" not in cfg.host else f"[{cfg.host}]"
        scheme = "https" if cfg.tls else "http"
        self.root_url = f"{scheme}://{host}:{self._server.server_address[1]}"
        identity = IdentityService(f"{self.root_url}/{IDENTITY_PREFIX}", cfg.clock,
                                   cfg.token_lifetime)
        identity.register(self.client_id, self.credentials.certificate)
        identity.register_secret(self.client_id, self.client_secret)
        self.service = Service(cfg, identity, self.log)
        self._server.app = self.service
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="insights-sim", daemon=True)
        self._thread.start()
        return self

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        self.ca_bundle, key_path = write_tls(self.credentials.pfx_path.parent,
                                             self.config.fresh_certificate)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.ca_bundle, key_path)
        return context

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until_interrupted(self) -> None:
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    # --------------------------------------------------------------------- views

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/{API_PREFIX}"

    @property
    def identity_url(self) -> str:
        return f"{self.root_url}/{IDENTITY_PREFIX}"

    @property
    def token_endpoint(self) -> str:
        return self.service.identity.token_endpoint

    @property
    def tenant(self) -> Tenant:
        return self.service.tenant

    @property
    def jobs(self) -> JobBook:
        return self.service.jobs

    def url(self, operation: str) -> str:
        """The full URL of a catalog operation."""
        return f"{self.base_url}/{catalog.operation(operation).path}"

    # ------------------------------------------------------------------ controls

    def set_faults(self, faults: Faults) -> None:
        self.service.faults = faults

    def replace_export_file(self, job_id: int, data: bytes, file_name: str) -> None:
        """Serve ``data`` as job ``job_id``'s file, named ``file_name`` in its
        Content-Disposition: how tests play a service that sends a corrupt file or a
        hostile name."""
        self.service.api.reports.replaced[job_id] = (data, file_name, file_name)

    def expire_tokens(self) -> None:
        self.service.identity.expire_all()

    def register_client(self, certificate: Any, client_id: str | None = None) -> str:
        """Register another certificate (for the simulator's client or a new one)."""
        client_id = client_id or self.client_id
        self.service.identity.register(client_id, certificate)
        return client_id


def _placeholder(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    start_response("503 Starting", [("Content-Length", "0")])
    return []
