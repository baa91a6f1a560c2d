"""``insights-runner auth check``: prove the credentials work, without running anything.

Takes a playbook (its ``connection``) or flags, discovers the identity service, gets a
token, and prints the Web API URL, the scope and when the token expires: never the token.
Exit 2 for a mistake in what the user gave (file, flags, certificate), 3 when the service
cannot be reached or refuses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from runner.client.connection import ConnectionSettings, resolve_connection, settings_for_simulator
from runner.errors import CredentialError, PlaybookError, UserError


@click.group(name="auth")
def auth() -> None:
    """Check credentials against the identity service."""


# The connection flags, shared by every command that reaches the service without a
# playbook (auth check, the one-shot commands): see ``connection_from_flags``.
CONNECTION_OPTIONS = (
    click.option("--region", help="Data-center alias (us, ne, gov, gcp-au ...); see `regions`."),
    click.option("--base-url", help="Web API URL, instead of --region (a proxy, the simulator)."),
    click.option("--identity-url", help="Identity service URL (default: the region's)."),
    click.option("--cloud", type=click.Choice(["commercial", "gov"]),
                 help="Identity service by name."),
    click.option("--client-id", envvar="INSIGHTS_CLIENT_ID", help="Application (client) ID."),
    click.option("--cert", "cert", type=click.Path(dir_okay=False, path_type=Path),
                 help="Certificate: .pfx/.p12 or PEM (certificate and key)."),
    click.option("--cert-key", type=click.Path(dir_okay=False, path_type=Path),
                 help="PEM private key, when it is not in the --cert file."),
    click.option("--cert-password-env", metavar="NAME",
                 help="Environment variable holding the certificate password."),
    click.option("--pfx-base64-env", metavar="NAME",
                 help="Environment variable holding a base64 .pfx (instead of --cert)."),
    click.option("--no-verify-tls", is_flag=True, help="Do not verify TLS (a test service only)."),
)


def connection_options(command: Any) -> Any:
    """Decorate a click command with the connection flags."""
    for option in reversed(CONNECTION_OPTIONS):
        command = option(command)
    return command


@auth.command(name="check")
@click.argument("playbook", required=False, type=click.Path(dir_okay=False, path_type=Path))
@connection_options
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), default=None,
              help="The inventory of a playbook with hosts: (default: inventory.yml beside it).")
@click.option("--limit", "-l", metavar="TENANT", default=None,
              help="The inventory tenant to check, when the playbook targets several.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(playbook: Path | None, as_json: bool, **flags: Any) -> None:
    """Discover, get a token, print the Web API URL, scope and expiry (never the token)."""
    from runner.client.api import InsightsClient  # imported late: keeps `--help` fast
    from runner.client.retry import RetryPolicy

    with _settings(playbook, flags) as settings:
        credential = settings.certificate.load() if settings.certificate else None
        # a check answers quickly: a few short retries, not a run's patience
        quick = RetryPolicy(max_attempts=3, base_delay=0.25, max_delay=1.0, max_total=5.0)
        client = InsightsClient(settings, credential=credential, retry=quick)
        with client:
            token = client.auth.token()
            discovery = client.auth.discovery()
        expires = dt.datetime.fromtimestamp(token.expires_at, dt.UTC)
        result: dict[str, Any] = {
            "base_url": settings.base_url,
            "identity_url": settings.identity_url,
            "token_endpoint": discovery.token_endpoint,
            "client_id": settings.client_id,
            "scope": token.scope,
            "expires_at": expires.isoformat(timespec="seconds"),
            "expires_in_seconds": int(token.lifetime),
            "certificate": {
                "subject": client.auth.credential.subject,
                "thumbprint": client.auth.credential.thumbprint_hex,
                "not_after": client.auth.credential.not_after.isoformat(timespec="seconds"),
            },
            "verify_tls": settings.verify_tls,
        }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"ok: token obtained for client {result['client_id']}")
    click.echo(f"  base URL:     {result['base_url']}")
    click.echo(f"  identity:     {result['identity_url']}")
    click.echo(f"  scope:        {result['scope']}")
    click.echo(
        f"  expires:      {result['expires_at']} (in {result['expires_in_seconds'] // 60} min)"
    )
    click.echo(
        f"  certificate:  {result['certificate']['subject']} "
        f"(thumbprint {result['certificate']['thumbprint']}, "
        f"valid until {result['certificate']['not_after']})"
    )
    if not settings.verify_tls:
        click.echo("  warning: TLS verification is off", err=True)


@contextlib.contextmanager
def _settings(playbook: Path | None, flags: dict[str, Any]) -> Iterator[ConnectionSettings]:
    """Settings from the playbook or the flags; an embedded simulator lives for the check."""
    if playbook is not None:
        mapping, base_dir, locate = _from_playbook(playbook, flags.get("inventory"),
                                                   flags.get("limit"))
        settings = resolve_connection(mapping, base_dir, locate=locate)
    else:
        try:
            settings = resolve_connection(_from_flags(flags), Path.cwd())
        except UserError as exc:  # speak of the flags the user typed, not playbook fields
            raise UserError(_as_flags(str(exc))) from None
    if not settings.simulator:
        yield settings
        return
    from runner.sim import SimConfig, Simulator

    with Simulator(SimConfig()) as sim:
        yield settings_for_simulator(sim, verify_tls=settings.verify_tls)


# Connection fields as the flags that set them, for messages about flags (shared with the
# one-shot commands, which take the same flags).
CONNECTION_FLAG_NAMES = {
    "connection.certificate.password": "--cert-password-env",
    "connection.certificate.pfx_base64": "--pfx-base64-env",
    "connection.certificate.key_path": "--cert-key",
    "connection.certificate.path": "--cert",
    "connection.certificate": "--cert",
    "connection.client_id": "--client-id",
    "connection.region": "--region",
    "connection.base_url": "--base-url",
    "connection.identity_url": "--identity-url",
    "connection.cloud": "--cloud",
    "connection.verify_tls": "--no-verify-tls",
    "connection": "flags",
}


def _as_flags(message: str) -> str:
    lines = []
    for line in message.splitlines():
        field, sep, rest = line.partition(": ")
        lines.append(f"{CONNECTION_FLAG_NAMES.get(field, field)}{sep}{rest}")
    return "\n".join(lines)


def _from_flags(flags: dict[str, Any], secret: Any = None) -> dict[str, Any]:
    """The connection mapping the flags describe.  ``secret(NAME, flag)`` gives the value
    for a secret read from the environment (default: the value itself; the one-shot
    commands pass a function that gives an ``env()`` template, so no secret is written)."""
    secret = secret or _env
    mapping: dict[str, Any] = {}
    for name in ("region", "base_url", "identity_url", "cloud", "client_id"):
        if flags.get(name):
            mapping[name] = flags[name]
    if flags.get("no_verify_tls"):
        mapping["verify_tls"] = False
    certificate: dict[str, Any] = {}
    if flags.get("cert"):
        certificate["path"] = str(flags["cert"])
    if flags.get("cert_key"):
        certificate["key_path"] = str(flags["cert_key"])
    if flags.get("cert_password_env"):
        certificate["password"] = secret(flags["cert_password_env"], "--cert-password-env")
    if flags.get("pfx_base64_env"):
        certificate["pfx_base64"] = secret(flags["pfx_base64_env"], "--pfx-base64-env")
    if certificate:
        mapping["certificate"] = certificate
    return mapping


def _env(name: str, flag: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise CredentialError(f"{flag}: environment variable {name} is not set")
    return value


def _from_playbook(path: Path, inventory: str | None = None, limit: str | None = None):
    """The playbook's ``connection`` mapping (inline, or its inventory tenant's), its
    templates (``env()``) rendered."""
    from runner.inventory import targets
    from runner.manifest import load_playbook

    _, found = targets(load_playbook(path), inventory, limit)
    if len(found) > 1:
        raise UserError(f"{path} targets {len(found)} tenants ("
                        + ", ".join(str(t.tenant) for t in found)
                        + "); auth check checks one: add --limit TENANT")
    playbook = found[0].playbook
    source = playbook.source
    connection = playbook.connection
    if connection is None:
        raise PlaybookError(source.diagnostic((), "the playbook has no connection"))
    if not isinstance(connection, dict):
        raise PlaybookError(
            source.diagnostic(
                ("connection",),
                f"connection {connection!r} names an inventory entry; auth check "
                "needs an inline connection mapping (or use the flags)",
            )
        )

    def locate(dotted: str) -> tuple[str, int, int]:
        if hasattr(source, "locate"):  # an inventory tenant's connection
            return source.locate(dotted)  # type: ignore[no-any-return]
        line, column = source.where(tuple(dotted.split(".")))
        return playbook.file, line, column

    return _render(playbook, connection), playbook.directory, locate


def _render(playbook: Any, connection: dict[str, Any]) -> dict[str, Any]:
    """Every template in the connection rendered (sandboxed), errors pointing at the field."""
    from runner.templating import Templar, TemplateError, describe

    templar = Templar(playbook.directory)
    context = {**playbook.vars, **playbook.extra_vars}
    problems = []

    def render(value: Any, where: tuple[str | int, ...]) -> Any:
        if isinstance(value, dict):
            return {k: render(v, (*where, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v, (*where, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        try:
            return templar.render(value, context)
        except TemplateError as exc:
            problems.append(playbook.source.diagnostic(where, describe(exc)))
            return None

    rendered = render(connection, ("connection",))
    if problems:
        raise PlaybookError(problems)
    return rendered
