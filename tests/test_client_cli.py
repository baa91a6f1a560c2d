"""``insights-runner auth check`` as a user runs it: a subprocess, against the simulator."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap

from client_support import closed_port

from runner import catalog, regions


def _run(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runner", "auth", "check", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def _flags(sim, *extra: str) -> list[str]:
    return [
        "--base-url",
        sim.base_url,
        "--identity-url",
        sim.identity_url,
        "--client-id",
        sim.client_id,
        *extra,
    ]


def _no_secret(result, sim) -> None:
    shown = result.stdout + result.stderr
    assert "eyJ" not in shown  # no JWT (token or assertion)
    assert sim.credentials.pfx_password not in shown


def test_flags_with_a_pfx(sim):
    env = {"CERT_PW": sim.credentials.pfx_password}
    result = _run(
        *_flags(sim, "--cert", str(sim.credentials.pfx_path), "--cert-password-env", "CERT_PW"),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert sim.base_url in result.stdout and catalog.SCOPE in result.stdout
    assert "expires:" in result.stdout and sim.credentials.thumbprint in result.stdout
    _no_secret(result, sim)


def test_flags_with_a_base64_pfx_as_json(sim):
    env = {
        "CERT_PW": sim.credentials.pfx_password,
        "PFX": base64.b64encode(sim.credentials.pfx_path.read_bytes()).decode(),
    }
    result = _run(
        *_flags(sim, "--pfx-base64-env", "PFX", "--cert-password-env", "CERT_PW", "--json"), env=env
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scope"] == catalog.SCOPE and report["base_url"] == sim.base_url
    assert report["expires_in_seconds"] == catalog.TOKEN_LIFETIME_SECONDS
    assert "token" not in {k for k in report if k != "token_endpoint"}
    _no_secret(result, sim)


def test_a_playbook_connection_with_env_templates(sim, tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "app.pfx").write_bytes(sim.credentials.pfx_path.read_bytes())
    playbook = tmp_path / "review.yml"
    playbook.write_text(
        textwrap.dedent(f"""\
        version: 1
        name: review
        connection:
          base_url: {sim.base_url}
          identity_url: {sim.identity_url}
          client_id: "{{{{ env('APP_ID') }}}}"
          certificate:
            path: certs/app.pfx
            password: "{{{{ env('CERT_PW') }}}}"
        tasks:
          - name: Users
            user_summary: {{}}
            output: users.jsonl
        """)
    )
    env = {"APP_ID": sim.client_id, "CERT_PW": sim.credentials.pfx_password}
    result = _run(str(playbook), env=env, cwd="/")
    assert result.returncode == 0, result.stderr
    assert sim.base_url in result.stdout
    _no_secret(result, sim)

    missing = _run(str(playbook), env={"APP_ID": sim.client_id})
    assert missing.returncode == 2
    assert f"{playbook}:9:" in missing.stderr and "CERT_PW is not set" in missing.stderr


def test_the_embedded_simulator(tmp_path):
    playbook = tmp_path / "demo.yml"
    playbook.write_text(
        "version: 1\nname: d\nconnection:\n  simulator: true\n"
        "tasks:\n  - user_summary: {}\n    output: u.jsonl\n"
    )
    result = _run(str(playbook))
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1" in result.stdout


def test_wrong_password_is_exit_2_without_the_password(sim):
    env = {"CERT_PW": "definitely-wrong-pw"}
    result = _run(
        *_flags(sim, "--cert", str(sim.credentials.pfx_path), "--cert-password-env", "CERT_PW"),
        env=env,
    )
    assert result.returncode == 2
    assert "wrong certificate password" in result.stderr
    assert "definitely-wrong-pw" not in result.stderr and "Traceback" not in result.stderr


def test_unknown_region_lists_the_aliases():
    result = _run("--region", "atlantis", "--client-id", "x", "--cert", "x.pfx")
    assert result.returncode == 2
    assert "atlantis" in result.stderr
    assert all(dc.alias in result.stderr for dc in regions.data_centers("v1"))


def test_a_refused_client_is_exit_3(sim):
    env = {"CERT_PW": sim.credentials.pfx_password}
    result = _run(
        "--base-url",
        sim.base_url,
        "--identity-url",
        sim.identity_url,
        "--client-id",
        "not-registered",
        "--cert",
        str(sim.credentials.pfx_path),
        "--cert-password-env",
        "CERT_PW",
        env=env,
    )
    assert result.returncode == 3
    assert "refused the client assertion" in result.stderr and "unknown client" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_identity_service_is_exit_3(sim):
    env = {"CERT_PW": sim.credentials.pfx_password}
    dead = f"http://127.0.0.1:{closed_port()}/identity"
    result = _run(
        "--base-url",
        sim.base_url,
        "--identity-url",
        dead,
        "--client-id",
        sim.client_id,
        "--cert",
        str(sim.credentials.pfx_path),
        "--cert-password-env",
        "CERT_PW",
        env=env,
    )
    assert result.returncode == 3
    assert "cannot connect" in result.stderr and "Traceback" not in result.stderr
