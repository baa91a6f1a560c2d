"""Outputs in object storage: output_dir az://... (Azurite) or s3://... (moto's S3
server), both real servers on 127.0.0.1.  Files are verified locally, uploaded whole, the
ledger's sha256 is the blob's, a re-run checks the blob, credentials stay out of the state
and the logs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from run_support import env_for, runner, submits, write_playbook

TASKS = [
    {"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links/anyone.zip"},
    {"name": "Users", "user_summary": {}, "output": "users.csv", "format": "csv"},
]


def ledger(state_dir: Path) -> dict[str, tuple]:
    with sqlite3.connect(state_dir / "state.db") as db:
        return {output: (status, size, sha, etag) for output, status, size, sha, etag in
                db.execute("SELECT output, status, bytes, sha256, etag FROM steps")}


def test_outputs_go_to_the_bucket_whole_and_a_rerun_checks_the_blobs(sim, bucket,
                                                                     tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, TASKS, output_dir=bucket.url)
    env = {**env_for(sim), **bucket.env}
    first = runner("-vv", "run", playbook, env=env)
    assert first.returncode == 0, first.stderr
    fs = bucket.fs()
    root = bucket.url.split("://", 1)[1]
    states = ledger(tmp_path / ".insights-runner")
    for output in ("links/anyone.zip", "users.csv"):
        data = fs.cat_file(f"{root}/{output}")
        status, size, sha, etag = states[output]
        assert status == "succeeded" and etag
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha)
    assert zipfile.ZipFile(BytesIO(fs.cat_file(f"{root}/links/anyone.zip"))).testzip() is None
    report = json.loads(fs.cat_file(f"{root}/run-report.json"))
    assert report["summary"]["succeeded"] == 2
    # Credentials: in neither the state nor the logs, even at -vv.
    secrets = [value for key, value in bucket.env.items() if "KEY" in key or "CONNECTION" in key]
    state_bytes = (tmp_path / ".insights-runner" / "state.db").read_bytes()
    for secret in secrets:
        for piece in ([secret.split("AccountKey=")[1].split(";")[0]] if "AccountKey=" in secret
                      else [secret]):
            assert piece.encode() not in state_bytes
            assert piece not in first.stderr + first.stdout
    assert len(submits(sim)) == 1

    again = runner("run", playbook, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert all(step["reused"] for step in json.loads(again.stdout)["steps"])
    assert len(submits(sim)) == 1  # no new job: the blob was checked, not a local file
    assert runner("plan", playbook, "--detailed-exitcode", env=env).returncode == 0

    # A blob deleted, or replaced by other bytes, is made again; the other is reused.
    fs.rm(f"{root}/links/anyone.zip")
    with fs.open(f"{root}/users.csv", "wb") as replaced:
        replaced.write(b"edited by hand\n")
    assert runner("plan", playbook, "--detailed-exitcode", env=env).returncode == 4
    third = runner("run", playbook, "--json", env=env)
    assert third.returncode == 0, third.stderr
    assert not any(step["reused"] for step in json.loads(third.stdout)["steps"])
    assert len(submits(sim)) == 2
    assert fs.cat_file(f"{root}/users.csv") != b"edited by hand\n"
    status, size, sha, _ = ledger(tmp_path / ".insights-runner")["links/anyone.zip"]
    assert hashlib.sha256(fs.cat_file(f"{root}/links/anyone.zip")).hexdigest() == sha


def test_no_credentials_for_the_bucket_fails_the_steps_with_a_clear_message(
        sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, TASKS[1:], output_dir="az://nowhere/reports")
    env = {k: v for k, v in env_for(sim).items() if not k.startswith(("AZURE_", "AWS_"))}
    result = runner("run", playbook, env=env)
    assert result.returncode == 2, result.stderr
    assert "no credentials for the storage account" in result.stderr
    assert "Traceback" not in result.stderr
    assert submits(sim) == [] and sim.log.entries == []  # nothing was asked of the service


def test_a_missing_bucket_is_exit_2_before_any_job(sim, bucket, tmp_path: Path) -> None:
    missing = bucket.url.replace("://", "://missing", 1)
    playbook = write_playbook(tmp_path, sim, TASKS, output_dir=missing)
    result = runner("run", playbook, env={**env_for(sim), **bucket.env})
    assert result.returncode == 2, result.stderr
    assert "does not exist, or these credentials cannot see it" in result.stderr
    assert submits(sim) == []


def test_a_shared_report_replaced_by_another_runner_between_put_and_check_is_no_error(
    bucket, tmp_path: Path) -> None:
    """Runners sharing a plan each upload the combined report to one blob, the last one
    wins; another runner's PUT can land between ours and its size check (CI saw it)."""
    from runner.execute.remote import RemoteOutputs, UploadError, publish_reports

    fs = bucket.fs()
    remote = RemoteOutputs(bucket.url, tmp_path, fs=fs)
    report = tmp_path / "run-report.json"
    report.write_text('{"summary": {"succeeded": 3}}')
    other = b'{"summary": {"succeeded": 3, "from": "another runner"}}'
    put_file = fs.put_file

    def put_then_another_runner(local: str, key: str, **kwargs) -> None:
        put_file(local, key, **kwargs)
        fs.pipe_file(key, other)  # the other runner's whole upload, just after ours

    fs.put_file = put_then_another_runner
    publish_reports(remote, report)
    assert fs.cat_file(remote.key("run-report.json")) == other
    # A Step's own file has one writer: a blob of another size there is still an error.
    step_file = tmp_path / "users.csv"
    step_file.write_text("id,name\n1,Ada\n")
    with pytest.raises(UploadError, match="not the 14 bytes sent"):
        remote.upload(step_file, "users.csv")
    # And a shared blob that is missing after the PUT is one too.
    fs.put_file = lambda local, key, **kwargs: None
    with pytest.raises(UploadError, match="missing"):
        publish_reports(RemoteOutputs(f"{bucket.url}/elsewhere", tmp_path, fs=fs), report)
