"""``insights-runner sim serve`` as a user runs it: a process that prints how to connect,
serves until Ctrl-C, and leaves the certificate files where it said."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import requests
from cryptography.hazmat.primitives.serialization import pkcs12


def start(tmp_path, *args):
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "sim", "serve", "--port", "0", "--out",
         str(tmp_path / "creds"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            break
    text = "\n".join(lines)
    assert "Press Ctrl-C" in text, (text, process.stderr.read())
    return process, text


def stop(process):
    """Ctrl-C, as a user stops it; the rest of stderr."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)
    return stderr


def field(text, name):
    return re.search(rf"^  {re.escape(name)}:\s+(\S+)", text, re.MULTILINE).group(1)


def test_serve_prints_how_to_connect_and_stops_on_ctrl_c(tmp_path):
    import time
    import uuid

    import jwt

    process, text = start(tmp_path, "--seed", "11", "--job-seconds", "1-2")
    try:
        base, identity = field(text, "Web API URL"), field(text, "Identity URL")
        client_id, pfx = field(text, "Client ID"), field(text, "Certificate")
        password = field(text, ".pfx password")
        assert pfx == str(tmp_path / "creds" / "simulator.pfx")
        key, _, _ = pkcs12.load_key_and_certificates(Path(pfx).read_bytes(), password.encode())
        disco = requests.get(f"{identity}/.well-known/openid-configuration", timeout=5).json()
        now = int(time.time())
        assertion = jwt.encode({"iss": client_id, "sub": client_id,
                                "aud": disco["token_endpoint"], "exp": now + 300,
                                "jti": str(uuid.uuid4())}, key, algorithm="RS256")
        token = requests.post(disco["token_endpoint"], data={
            "grant_type": "client_credentials", "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "scope": "insights.graph.readwrite.all"}, timeout=5).json()["access_token"]
        page = requests.post(f"{base}/api/v1/User/summary", json={"StartPage": 1},
                             headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert page.status_code == 200 and len(page.json()["results"]) == 100
    finally:
        stderr = stop(process)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert (tmp_path / "creds" / "simulator.crt").exists()


def test_sigterm_stops_it_cleanly_too(tmp_path):
    process, text = start(tmp_path, "--tls")
    bundle = field(text, "TLS CA bundle")
    identity = field(text, "Identity URL")
    assert identity.startswith("https://")
    discovery = requests.get(f"{identity}/.well-known/openid-configuration", verify=bundle,
                             timeout=5)
    assert discovery.status_code == 200
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0 and "Traceback" not in stderr


def test_bad_options_exit_2_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "runner", "sim", "serve", "--fault-error-rate", "2"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--fault-error-rate" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "runner", "sim", "serve", "--job-seconds", "soon"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--job-seconds" in result.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path):
    process, text = start(tmp_path)
    try:
        port = re.search(r":(\d+)/insights", text).group(1)
        result = subprocess.run(
            [sys.executable, "-m", "runner", "sim", "serve", "--port", port, "--out",
             str(tmp_path / "other")], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        stop(process)


def test_serve_says_it_serves_a_drifted_tenant(tmp_path):
    # what the drift changes over HTTP is tested embedded, in test_sim_drift.py
    process, text = start(tmp_path, "--drift", "3")
    try:
        assert "Insights simulator (seed 7, scale small, drift 3) is listening." in text
    finally:
        stop(process)
    assert process.returncode == 0


def test_serve_takes_the_client_secret_from_the_environment_and_a_slot_limit(tmp_path):
    import os

    from runner import catalog

    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "sim", "serve", "--port", "0", "--out",
         str(tmp_path / "creds"), "--client-secret-env", "SIM_SECRET", "--max-exports", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SIM_SECRET": "s3cret-of-the-rehearsal"})
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            break
    text = "\n".join(lines)
    try:
        assert "s3cret-of-the-rehearsal" not in text
        assert "  Client secret: from $SIM_SECRET" in text.splitlines()
        assert field(text, "Export slots") == "2"
        identity = field(text, "Identity URL")
        disco = requests.get(f"{identity}/.well-known/openid-configuration", timeout=5).json()
        form = {"grant_type": "client_credentials", "client_id": field(text, "Client ID"),
                "scope": catalog.SCOPE}
        good = requests.post(disco["token_endpoint"], timeout=5,
                             data={**form, "client_secret": "s3cret-of-the-rehearsal"})
        assert good.status_code == 200, good.text
        bad = requests.post(disco["token_endpoint"], timeout=5,
                            data={**form, "client_secret": "guess"})
        assert bad.status_code in (400, 401)
    finally:
        stop(process)
    assert process.returncode == 0


def test_an_unset_client_secret_variable_is_a_clear_error(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "SIM_SECRET_UNSET"}
    result = subprocess.run(
        [sys.executable, "-m", "runner", "sim", "serve", "--port", "0",
         "--client-secret-env", "SIM_SECRET_UNSET"],
        capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 2
    assert "SIM_SECRET_UNSET" in result.stderr and "Traceback" not in result.stderr
