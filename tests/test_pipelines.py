"""Pipelines: the CI examples under examples/ (parsed, and their insights-runner commands run
against the simulator), GitHub annotations, -v/-vv without secrets, no animation off a
terminal or with NO_COLOR, --quiet."""

from __future__ import annotations

import base64
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_support import REPO, runner, write_playbook

EXAMPLES = REPO / "examples"
SECRETS = {"INSIGHTS_CLIENT_ID", "INSIGHTS_PFX_BASE64", "INSIGHTS_PFX_PASSWORD"}


def github_workflow() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "github-actions.yml").read_text(encoding="utf-8"))


def azure_pipeline() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "azure-pipelines.yml").read_text(encoding="utf-8"))


def ci_env(sim: Any) -> dict[str, str]:
    """What the CI's secret store would give, pointed at the simulator."""
    env = dict(os.environ)
    env.update({
        "INSIGHTS_CLIENT_ID": sim.client_id,
        "INSIGHTS_PFX_BASE64": base64.b64encode(sim.credentials.pfx_path.read_bytes()).decode(),
        "INSIGHTS_PFX_PASSWORD": sim.credentials.pfx_password,
        "INSIGHTS_BASE_URL": sim.base_url,
        "INSIGHTS_IDENTITY_URL": sim.identity_url,
        "NO_COLOR": "1",
    })
    scripts = Path(sys.executable).parent  # the installed `insights-runner` console script
    assert (scripts / "insights-runner").exists(), "pip install -e . first"
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"
    return env


def commands(steps: list[dict[str, Any]], key: str) -> list[str]:
    """The steps' shell scripts that call insights-runner."""
    return [step[key] for step in steps if "insights-runner" in step.get(key, "")]


def run_scripts(scripts: list[str], env: dict[str, str], cwd: Path) -> None:
    for script in scripts:
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"


def workspace(tmp_path: Path) -> Path:
    """A checkout as the CI sees it: examples/ (and nothing from earlier runs)."""
    shutil.copytree(EXAMPLES, tmp_path / "examples",
                    ignore=shutil.ignore_patterns(".insights-runner"))
    return tmp_path


def check_outputs(root: Path) -> None:
    result = json.loads((root / "reports" / "result.json").read_text("utf-8"))
    assert result["status"] == "succeeded", result
    assert (root / "reports" / "junit.xml").read_text("utf-8").startswith("<?xml")
    assert list((root / "reports" / "sites" / "permissions-1").glob("*.csv"))
    assert (root / "reports" / "users.csv").read_text("utf-8").startswith("displayName,")


def test_github_workflow_validates_pull_requests_and_runs_on_schedule(sim, tmp_path: Path
                                                                      ) -> None:
    flow = github_workflow()
    triggers = flow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers and triggers["schedule"][0]["cron"]
    jobs = flow["jobs"]
    assert "pull_request" in jobs["validate"]["if"] and "!=" in jobs["report"]["if"]
    for name in SECRETS:  # from the secret store, never written in the file
        assert jobs["report"]["env"][name] == "${{ secrets." + name + " }}"
    validate = commands(jobs["validate"]["steps"], "run")
    report = commands(jobs["report"]["steps"], "run")
    assert validate and any("--format github" in s for s in validate)
    assert any(" run " in s and "--junit" in s and "--json" in s for s in report)
    root = workspace(tmp_path)

    run_scripts(validate + report, ci_env(sim), root)

    check_outputs(root)


def test_azure_pipeline_validates_pull_requests_and_runs_on_schedule(sim, tmp_path: Path
                                                                     ) -> None:
    pipeline = azure_pipeline()
    assert pipeline["pr"] and pipeline["schedules"][0]["cron"]
    jobs = {job["job"]: job for job in pipeline["jobs"]}
    assert "PullRequest" in jobs["validate"]["condition"]
    validate = commands(jobs["validate"]["steps"], "script")
    steps = [s for s in jobs["report"]["steps"] if "insights-runner" in s.get("script", "")]
    for step in steps:  # secret variables reach a script only when mapped explicitly
        assert {k: v for k, v in step["env"].items() if k in SECRETS} == {
            name: f"$({name})" for name in SECRETS}
    root = workspace(tmp_path)

    run_scripts(validate + [s["script"] for s in steps], ci_env(sim), root)

    check_outputs(root)
    junit = (root / "reports" / "junit.xml").read_text("utf-8")
    assert 'failures="0"' in junit


def test_validate_format_github_prints_one_annotation_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\ntasks:\n  - user_summary: {page_size: 500}\n"
                   "  - link_export: {link_type: sideways}\n", encoding="utf-8")

    result = runner("validate", "--format", "github", bad)

    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("::error file=") for line in lines)
    assert ",line=3,col=" in lines[0] and ",line=4,col=" in lines[1]


def secret_run(sim: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    connection = {"base_url": sim.base_url, "identity_url": sim.identity_url,
                  "client_id": sim.client_id,
                  "certificate": {"pfx_base64": "{{ env('INSIGHTS_PFX_BASE64') }}",
                                  "password": "{{ env('INSIGHTS_PFX_PASSWORD') }}"}}
    tasks = [{"name": "Users", "user_summary": {"page_size": 50}, "output": "users.jsonl"},
             {"name": "Sites", "site_permission_export": {
                 "site_urls": ["https://contoso.sharepoint.com/sites/site00003"]},
              "output": "sites.zip"}]
    playbook = write_playbook(tmp_path, sim, tasks, connection=connection)
    return playbook, ci_env(sim)


def test_run_vv_logs_every_request_and_no_secret(sim, tmp_path: Path) -> None:
    playbook, env = secret_run(sim, tmp_path)

    result = runner("-vv", "run", playbook, env=env)

    assert result.returncode == 0, result.stderr
    assert "DEBUG" in result.stderr and "runner.client.transport" in result.stderr
    assert "/connect/token -> 200" in result.stderr and "User/summary -> 200" in result.stderr
    written = result.stdout + result.stderr + "".join(
        p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix != ".zip")
    for name in ("INSIGHTS_PFX_BASE64", "INSIGHTS_PFX_PASSWORD"):
        assert env[name] not in written, name
        assert env[name][:24] not in written, name
    assert "eyJ" not in written and "Bearer" not in written  # no token, no assertion


def test_v_is_info_and_default_is_quiet_logging(sim, tmp_path: Path) -> None:
    playbook, env = secret_run(sim, tmp_path)

    info = runner("-v", "run", "--fresh", playbook, env=env)

    assert info.returncode == 0, info.stderr
    assert "INFO" in info.stderr and "DEBUG" not in info.stderr
    quiet = runner("run", "--fresh", "--quiet", playbook, env=env)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def _under_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run with stderr on a pseudo-terminal (where a live progress line would be drawn)."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "runner", *args], env=env,
                                   stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.communicate(timeout=120)
    finally:
        os.close(master)
    return process.returncode, b"".join(chunks)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_no_animation_off_a_terminal_or_with_no_color(sim, tmp_path: Path) -> None:
    playbook, env = secret_run(sim, tmp_path)
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm"

    piped = runner("run", "--fresh", playbook, env=env)
    code, live = _under_a_terminal(["run", "--fresh", str(playbook)], env)
    code_plain, plain = _under_a_terminal(["run", "--fresh", str(playbook)],
                                          {**env, "NO_COLOR": "1"})

    assert piped.returncode == code == code_plain == 0
    assert "\x1b[" not in piped.stderr and "\r" not in piped.stderr
    assert "done" in piped.stderr  # plain, greppable event lines instead
    assert b"\x1b[" in live  # a terminal gets the redrawn status line
    assert b"\x1b[" not in plain
