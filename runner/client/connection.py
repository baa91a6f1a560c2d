"""Connection settings: what a playbook's ``connection`` mapping (or ``auth check``'s flags) means.

``resolve_connection`` turns the user's mapping into a frozen ``ConnectionSettings``: the
data-center alias becomes its Web API URL, the government data center pairs with the
government identity service, ``base_url``/``identity_url`` override both (the simulator, a
proxy), certificate paths are taken relative to the playbook's folder, and TLS is verified
unless the user wrote ``verify_tls: false``.  Loading the certificate itself is deferred to
``CertificateSource.load`` so that ``plan`` and ``validate`` never touch key material.

All problems are reported at once; ``locate`` (when the caller knows where each field sits in
its file) turns them into ``file:line:col`` diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner import regions
from runner.catalog import GENERATIONS, MAX_CONCURRENT_EXPORTS
from runner.errors import Diagnostic, PlaybookError, UserError
from runner.secret import Secret

from .credentials import Credential, load_certificate

# field path ("connection.region") -> (file, line, column)
Locate = Callable[[str], tuple[str, int, int]]

KNOWN_FIELDS = frozenset(
    {"api", "region", "base_url", "cloud", "identity_url", "client_id", "certificate",
     "client_secret", "max_exports", "verify_tls", "simulator", "timeout"}
)  # fmt: skip
CERTIFICATE_FIELDS = frozenset({"path", "key_path", "password", "pfx_base64"})
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class CertificateSource:
    """Where the certificate is; nothing is read until ``load``."""

    path: Path | None = None
    key_path: Path | None = None
    password: Secret | None = None
    pfx_base64: Secret | None = None

    def load(self) -> Credential:
        return load_certificate(
            self.path, key_path=self.key_path, password=self.password, pfx_base64=self.pfx_base64
        )

    def describe(self) -> str:
        if self.pfx_base64 is not None:
            return "base64 .pfx (from the playbook's pfx_base64)"
        return str(self.path)


@dataclass(frozen=True)
class ConnectionSettings:
    base_url: str
    identity_url: str
    client_id: str
    certificate: CertificateSource | None = None
    verify_tls: bool = True
    region: str | None = None
    simulator: bool = False
    timeout: float = DEFAULT_TIMEOUT
    api: str = "v1"  # the API generation: v1 (legacy Web API) or v2 (Graph API)
    client_secret: Secret | None = None  # the client-secret flow, instead of a certificate
    max_exports: int = MAX_CONCURRENT_EXPORTS

    def api_url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


def resolve_connection(
    mapping: Mapping[str, Any],
    base_dir: str | Path = ".",
    *,
    locate: Locate | None = None,
    prefix: str = "connection",
) -> ConnectionSettings:
    """The settings a connection mapping describes; raises a ``UserError`` listing every problem."""
    problems: list[tuple[str, str]] = []  # (field path, message)

    def problem(name: str, message: str) -> None:
        problems.append((f"{prefix}.{name}" if name else prefix, message))

    if not isinstance(mapping, Mapping):
        raise _error([(prefix, "must be a mapping of connection settings")], locate)
    for name in mapping:
        if name not in KNOWN_FIELDS:
            problem(
                str(name), f"unknown connection setting; allowed: {', '.join(sorted(KNOWN_FIELDS))}"
            )

    simulator = _bool(mapping, "simulator", False, problem)
    api = str(mapping.get("api", "v1")).strip().lower()
    if api not in GENERATIONS:
        problem("api", f"unknown API generation {mapping.get('api')!r}; choose v1 or v2")
        api = "v1"
    region = _text(mapping, "region", problem)
    data_center = None
    if region is not None:
        try:
            data_center = regions.data_center(region)
        except KeyError:
            aliases = ", ".join(dc.alias for dc in regions.data_centers(api))
            problem("region", f"unknown data center {region!r}; valid aliases: {aliases}")
        else:
            if api not in data_center.generations:
                other = data_center.generations[0]
                problem("region", f"{data_center.name} ({data_center.alias}) serves the "
                        f"{other} API only; set api: {other} or pick another region")

    base_url = _url(mapping, "base_url", problem)
    if base_url is None and data_center is not None:
        base_url = data_center.base_url
    if base_url is None and region is None and not simulator:
        problem("", "needs a region (data-center alias such as us, ne, gov) or a base_url")

    cloud = _text(mapping, "cloud", problem)
    if cloud is not None and cloud.lower() not in regions.IDENTITY_SERVICES:
        problem(
            "cloud",
            f"unknown cloud {cloud!r}; choose one of: {', '.join(regions.IDENTITY_SERVICES)}",
        )
        cloud = None
    identity_url = _url(mapping, "identity_url", problem)
    if identity_url is None:
        if cloud is not None:
            identity_url = regions.IDENTITY_SERVICES[cloud.lower()]
        elif data_center is not None:
            identity_url = data_center.identity_url
        else:
            identity_url = regions.IDENTITY_SERVICES["commercial"]

    client_id = _text(mapping, "client_id", problem)
    if not client_id and not simulator:
        problem(
            "client_id", "the application (client) ID of the registered AvePoint app is required"
        )

    client_secret = _secret(mapping.get("client_secret"))
    if "client_secret" in mapping and client_secret is None:
        problem("client_secret", "must be the secret's text; use {{ env('NAME') }}")
    if client_secret is not None and mapping.get("certificate") is not None:
        problem("client_secret", "give a certificate or a client_secret, not both")
    certificate = _certificate(mapping.get("certificate"), Path(base_dir), problem,
                               simulator or client_secret is not None)
    max_exports = mapping.get("max_exports", MAX_CONCURRENT_EXPORTS)
    if isinstance(max_exports, bool) or not isinstance(max_exports, int) or max_exports < 1:
        problem("max_exports", "must be a whole number of jobs, at least 1")
        max_exports = MAX_CONCURRENT_EXPORTS
    verify_tls = _bool(mapping, "verify_tls", True, problem)
    timeout = mapping.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problem("timeout", "must be a positive number of seconds")
        timeout = DEFAULT_TIMEOUT

    if problems:
        raise _error(problems, locate)
    return ConnectionSettings(
        base_url=(base_url or "").rstrip("/"),
        identity_url=identity_url.rstrip("/"),
        client_id=client_id or "",
        certificate=certificate,
        verify_tls=verify_tls,
        region=data_center.alias if data_center else None,
        simulator=simulator,
        timeout=float(timeout),
        api=api,
        client_secret=client_secret,
        max_exports=max_exports,
    )


def settings_for_simulator(sim: Any, *, verify_tls: bool = True, api: str = "v1",
                           max_exports: int = MAX_CONCURRENT_EXPORTS) -> ConnectionSettings:
    """Settings for a running ``runner.sim.Simulator`` (its loopback URLs, client and .pfx)."""
    creds = sim.credentials
    return ConnectionSettings(
        base_url=sim.base_url.rstrip("/"),
        identity_url=sim.identity_url.rstrip("/"),
        client_id=sim.client_id,
        certificate=CertificateSource(
            path=Path(creds.pfx_path),
            password=_secret(creds.pfx_password),
        ),
        verify_tls=verify_tls,
        simulator=True,
        api=api,
        max_exports=max_exports,
    )


# ------------------------------------------------------------------------------ helpers


def _certificate(value: Any, base_dir: Path, problem, simulator: bool) -> CertificateSource | None:
    if value is None:
        if not simulator:
            problem(
                "certificate",
                "a certificate is required (path to a .pfx/.p12 or PEM, or pfx_base64)",
            )
        return None
    if isinstance(value, str):  # shorthand: certificate: path/to/cert.pfx
        value = {"path": value}
    if not isinstance(value, Mapping):
        problem("certificate", "must be a mapping with path (and password) or pfx_base64")
        return None
    for name in value:
        if name not in CERTIFICATE_FIELDS:
            problem(
                f"certificate.{name}",
                f"unknown certificate setting; allowed: {', '.join(sorted(CERTIFICATE_FIELDS))}",
            )
    path = value.get("path")
    pfx_base64 = value.get("pfx_base64")
    if (path is None) == (pfx_base64 is None):
        problem("certificate", "give exactly one of path or pfx_base64")
        return None
    for name in ("path", "key_path"):
        if value.get(name) is not None and not isinstance(value.get(name), str):
            problem(f"certificate.{name}", "must be a file path")
            return None
    password = value.get("password")
    if password is not None and not isinstance(password, str | Secret):
        problem(
            "certificate.password",
            "must be a string (use {{ env('NAME') }}, never the password itself)",
        )
        return None
    return CertificateSource(
        path=_relative(path, base_dir),
        key_path=_relative(value.get("key_path"), base_dir),
        password=_secret(password),
        pfx_base64=_secret(pfx_base64),
    )


def _relative(path: str | None, base_dir: Path) -> Path | None:
    if path is None:
        return None
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


def _secret(value: Any) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(str(value))


def _text(mapping: Mapping[str, Any], name: str, problem) -> str | None:
    value = mapping.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problem(name, "must be a non-empty string")
        return None
    return value.strip()


def _url(mapping: Mapping[str, Any], name: str, problem) -> str | None:
    value = _text(mapping, name, problem)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        problem(name, f"{value!r} is not an http(s) URL")
        return None
    return value


def _bool(mapping: Mapping[str, Any], name: str, default: bool, problem) -> bool:
    value = mapping.get(name, default)
    if not isinstance(value, bool):
        problem(name, "must be true or false")
        return default
    return value


def _error(problems: list[tuple[str, str]], locate: Locate | None) -> UserError:
    if locate is not None:
        diagnostics = []
        for path, message in problems:
            file, line, column = locate(path)
            diagnostics.append(Diagnostic(file, line, column, f"{path}: {message}", field=path))
        return PlaybookError(diagnostics)
    return UserError("\n".join(f"{path}: {message}" for path, message in problems))
