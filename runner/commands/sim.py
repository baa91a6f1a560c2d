"""``insights-runner sim serve``: run the Insights simulator alone until Ctrl-C.

Prints what a playbook needs to connect (Web API URL, identity URL, client id, where the
fresh certificate was written and its password); every option maps onto ``SimConfig``
and ``Faults`` (see README, "The simulator").
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path

import click

from runner.errors import UserError


def _job_seconds(ctx: click.Context, param: click.Parameter,
                 value: str) -> float | tuple[float, float]:
    low, sep, high = value.partition("-")
    try:
        seconds = (float(low), float(high)) if sep else float(value)
    except ValueError:
        raise click.BadParameter("give seconds (2.5) or a range (1-30)") from None
    if (isinstance(seconds, tuple) and not 0 <= seconds[0] <= seconds[1]) or \
            (isinstance(seconds, float) and seconds < 0):
        raise click.BadParameter("seconds must be >= 0, and a range low-high with low <= high")
    return seconds


def _status_codes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        codes = tuple(int(code) for code in value.split(",") if code.strip())
    except ValueError:
        raise click.BadParameter("give HTTP status codes separated by commas: 500,503") from None
    if not codes or not all(500 <= code <= 599 for code in codes):
        raise click.BadParameter("give 5xx status codes separated by commas: 500,503")
    return codes


_RATE = click.FloatRange(0, 1)


@click.group(name="sim")
def sim() -> None:
    """Run the Insights simulator."""


@sim.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0 picks a free one).")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the tenant.")
@click.option("--scale", default="small", show_default=True,
              type=click.Choice(["small", "medium", "large"]), help="Size of the tenant.")
@click.option("--job-seconds", default="5", show_default=True, callback=_job_seconds,
              help="How long an export job runs: seconds, or a range LOW-HIGH drawn per job.")
@click.option("--drift", default=0, show_default=True, type=click.IntRange(0, None),
              help="Serve the tenant some time later: N>0 adds anyone-links, removes users "
                   "and raises the risk of some objects, the same for the same N (0: none).")
@click.option("--max-exports", default=None, type=click.IntRange(1, None),
              help="Export jobs a tenant may have in progress at once (default: the "
                   "service's 5); the next one is refused as the service refuses it.")
@click.option("--client-secret-env", metavar="NAME",
              help="Take the app's client secret (the Graph API's client-secret flow) from "
                   "this environment variable, so it is never on a command line; default: "
                   "a random one, printed below.")
@click.option("--token-lifetime", default=3600.0, show_default=True,
              type=click.FloatRange(1, None), help="Access-token lifetime in seconds.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the certificate files (default: a temporary one, removed "
                   "on exit).")
@click.option("--tls", is_flag=True,
              help="Serve HTTPS with a self-signed certificate (written beside the .pfx; "
                   "trust it with REQUESTS_CA_BUNDLE).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Append every request and job event to this file as JSON lines.")
@click.option("--fault-seed", default=0, show_default=True, type=int,
              help="Seed of the fault draws.")
@click.option("--fault-error-rate", default=0.0, type=_RATE, help="Share of 5xx answers.")
@click.option("--fault-status-codes", default="500,503", show_default=True,
              callback=_status_codes,
              help="5xx codes drawn from for --fault-error-rate.")
@click.option("--fault-rate-limit-rate", default=0.0, type=_RATE,
              help="Share of 429 answers (with Retry-After).")
@click.option("--fault-retry-after", default=1.0, show_default=True,
              type=click.FloatRange(0, None), help="Retry-After seconds of a 429.")
@click.option("--fault-drop-rate", default=0.0, type=_RATE,
              help="Share of connections closed without an answer.")
@click.option("--fault-truncate-rate", default=0.0, type=_RATE,
              help="Share of export downloads cut off halfway.")
@click.option("--fault-job-failure-rate", default=0.0, type=_RATE,
              help="Share of export jobs that end failed (status 3).")
@click.option("--fault-job-exception-rate", default=0.0, type=_RATE,
              help="Share of export jobs that end 'exported with exceptions' (status 4).")
@click.option("--fault-slow-job-rate", default=0.0, type=_RATE,
              help="Share of export jobs that run --fault-slow-job-factor times longer.")
@click.option("--fault-slow-job-factor", default=5.0, show_default=True,
              type=click.FloatRange(1, None))
@click.option("--fault-token-early-expiry-rate", default=0.0, type=_RATE,
              help="Share of API requests whose token is revoked early (answered 401).")
@click.option("--fault-identity/--no-fault-identity", default=False,
              help="Let 5xx/429/drop faults hit the token endpoint too.")
@click.option("--fault-hostile-names", is_flag=True,
              help="Export files named '../../...' with zip members that climb out of the "
                   "folder or are absolute (to test a client's safe extraction).")
def serve(host: str, port: int, seed: int, scale: str, job_seconds: float | tuple[float, float],
          drift: int, max_exports: int | None, client_secret_env: str | None,
          token_lifetime: float,
          out: Path | None, tls: bool, log_path: Path | None, fault_seed: int,
          fault_error_rate: float,
          fault_status_codes: tuple[int, ...], fault_rate_limit_rate: float,
          fault_retry_after: float,
          fault_drop_rate: float, fault_truncate_rate: float, fault_job_failure_rate: float,
          fault_job_exception_rate: float, fault_slow_job_rate: float,
          fault_slow_job_factor: float, fault_token_early_expiry_rate: float,
          fault_identity: bool, fault_hostile_names: bool) -> None:
    """Serve the identity service and every Insights endpoint over a synthetic tenant."""
    import os

    from runner.sim import Faults, SimConfig, Simulator

    client_secret = None
    if client_secret_env is not None:
        client_secret = os.environ.get(client_secret_env)
        if not client_secret:
            raise UserError(f"--client-secret-env {client_secret_env}: that environment "
                            "variable is not set or empty")

    faults = Faults(
        seed=fault_seed, error_rate=fault_error_rate,
        status_codes=fault_status_codes, rate_limit_rate=fault_rate_limit_rate,
        retry_after=fault_retry_after, drop_rate=fault_drop_rate,
        truncate_rate=fault_truncate_rate, job_failure_rate=fault_job_failure_rate,
        job_exception_rate=fault_job_exception_rate, hostile_names=fault_hostile_names,
        slow_job_rate=fault_slow_job_rate, slow_job_factor=fault_slow_job_factor,
        token_early_expiry_rate=fault_token_early_expiry_rate, identity=fault_identity,
    )
    config = SimConfig(seed=seed, scale=scale, job_seconds=job_seconds,
                       token_lifetime=token_lifetime, faults=faults, credentials_dir=out,
                       host=host, port=port, log_path=log_path, fresh_certificate=True,
                       tls=tls, drift=drift, client_secret=client_secret)
    if max_exports is not None:
        config = dataclasses.replace(config, max_exports=max_exports)
    simulator = Simulator(config)
    try:
        simulator.start()
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # `docker stop` and CI runners send SIGTERM: stop as cleanly as on Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _announce(simulator, faults.any, client_secret_env)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("stopping the simulator", err=True)
    finally:
        simulator.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _announce(simulator, faulty: bool, client_secret_env: str | None) -> None:
    creds = simulator.credentials
    cfg = simulator.config
    scale = cfg.scale if isinstance(cfg.scale, str) else "custom"
    lines = [
        f"Insights simulator (seed {cfg.seed}, scale {scale}"
        f"{f', drift {cfg.drift}' if cfg.drift else ''}) is listening.",
        f"  Web API URL:   {simulator.base_url}",
        f"  Identity URL:  {simulator.identity_url}",
        f"  Client ID:     {simulator.client_id}",
        f"  Certificate:   {creds.pfx_path}",
        f"  .pfx password: {creds.pfx_password}",
        f"  PEM files:     {creds.cert_pem_path}  {creds.key_pem_path}",
        f"  Thumbprint:    {creds.thumbprint}",
        # A simulator's secret, like its .pfx password: printed unless the user chose it.
        f"  Client secret: "
        f"{f'from ${client_secret_env}' if client_secret_env else simulator.client_secret}",
        f"  Export slots:  {cfg.max_exports}",
        f"  Faults:        {'on' if faulty else 'off'}",
        *([f"  TLS CA bundle: {simulator.ca_bundle}  (export REQUESTS_CA_BUNDLE=...)"]
          if simulator.ca_bundle else []),
        "",
        "A playbook connects with:",
        "  connection:",
        f"    base_url: {simulator.base_url}",
        f"    identity_url: {simulator.identity_url}",
        f"    client_id: {simulator.client_id}",
        "    certificate:",
        f"      path: {creds.pfx_path}",
        "      password: \"{{ env('SIM_PFX_PASSWORD') }}\"",
        "",
        "Press Ctrl-C to stop.",
    ]
    click.echo("\n".join(lines))
