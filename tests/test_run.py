"""Running playbooks through the CLI against the simulator: outputs, slots, resumption, faults."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from run_support import (
    MONTHS,
    demo_against,
    env_for,
    report,
    runner,
    submits,
    twelve_link_exports,
    work_requests,
    write_playbook,
)

from runner.sim import Faults


def test_demo_runs_every_module_and_leaves_verified_files(sim, tmp_path: Path) -> None:
    playbook = demo_against(sim, tmp_path)

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 0, result.stderr + result.stdout
    run = report(playbook)
    assert run["status"] == "succeeded"
    operations = {step["operation"] for step in run["steps"]}
    from runner import catalog

    assert operations == set(catalog.module_names()), "demo.yml must use every module"
    for step in run["steps"]:
        assert step["status"] == "succeeded", step
        path = playbook.parent / "reports" / step["output"]
        data = path.read_bytes()
        assert len(data) == step["bytes"]
        assert hashlib.sha256(data).hexdigest() == step["sha256"]
        if step["operation"].endswith("_export"):
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None
                names = archive.namelist()
                assert names and all(name.endswith(".xlsx") for name in names)
    assert sim.log.max_concurrent_jobs() <= 5
    # no partial file is left behind
    assert not [p for p in (playbook.parent / "reports").rglob("*") if ".partial" in p.name]


def test_more_exports_than_slots_never_run_more_than_five_at_once(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 0, result.stderr
    assert len(submits(sim)) == 12
    assert sim.log.max_concurrent_jobs() == 5  # the slots were used, and never exceeded
    assert len(list((tmp_path / "reports" / "links").glob("*.zip"))) == 12


def test_rerunning_a_finished_playbook_makes_no_export_or_query_request(sim, tmp_path: Path
                                                                        ) -> None:
    playbook = demo_against(sim, tmp_path)
    assert runner("run", playbook, env=env_for(sim)).returncode == 0
    first = report(playbook)
    sim.log.clear()

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    assert work_requests(sim) == []
    second = report(playbook)
    assert {s["id"] for s in second["steps"]} == {s["id"] for s in first["steps"]}
    assert all(step["reused"] for step in second["steps"])


def test_a_changed_file_is_made_again_and_only_that_one(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    assert runner("run", playbook, env=env_for(sim)).returncode == 0
    damaged = tmp_path / "reports" / "links" / "2025-03.zip"
    damaged.write_bytes(b"not the report any more")
    sim.log.clear()

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    assert len(submits(sim)) == 1
    assert zipfile.is_zipfile(damaged)


def test_a_run_through_every_fault_finishes_with_every_step_succeeded(sim, tmp_path: Path
                                                                      ) -> None:
    sim.set_faults(Faults(seed=11, error_rate=0.08, rate_limit_rate=0.05, retry_after=0.05,
                          drop_rate=0.05, truncate_rate=0.3, job_failure_rate=0.25,
                          token_early_expiry_rate=0.05))
    tasks = twelve_link_exports(retries=6) + [{
        "name": "Records", "detail_records": {"page_size": 20}, "output": "records.jsonl",
    }]
    playbook = write_playbook(tmp_path, sim, tasks)

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 0, result.stderr + result.stdout
    assert all(step["status"] == "succeeded" for step in report(playbook)["steps"])
    faults = {entry.fault for entry in sim.log.entries if entry.fault}
    # the run really went through the faults it claims to survive
    assert {"error", "rate_limit", "drop", "truncate"} <= {f.split(":")[0] for f in faults}
    failed_jobs = [e for e in sim.log.job_events if e.event == "end" and e.status == 3]
    assert failed_jobs, "no job failed: the retry path was not exercised"
    records = (tmp_path / "reports" / "records.jsonl").read_text("utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in records]
    assert len(ids) == len(set(ids)) > 0


def test_a_step_that_keeps_failing_fails_the_run_with_exit_1(sim, tmp_path: Path) -> None:
    sim.set_faults(Faults(job_failure_rate=1.0))
    playbook = write_playbook(tmp_path, sim, twelve_link_exports(retries=1)[:1])

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 1
    steps = report(playbook)["steps"]
    assert {s["status"] for s in steps} == {"failed"}
    assert len(submits(sim)) == 24  # each of the 12 Steps: first try + 1 retry


def test_ignore_errors_keeps_the_run_green(sim, tmp_path: Path) -> None:
    sim.set_faults(Faults(job_failure_rate=1.0))
    tasks = twelve_link_exports()
    tasks[0]["ignore_errors"] = True
    playbook = write_playbook(tmp_path, sim, tasks)

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 0, result.stderr


def test_tags_select_tasks(sim, tmp_path: Path) -> None:
    tasks = [
        {"name": "Users", "user_summary": {}, "output": "users.jsonl", "tags": ["users"]},
        {"name": "Groups", "group_summary": {}, "output": "groups.jsonl", "tags": ["groups"]},
    ]
    playbook = write_playbook(tmp_path, sim, tasks)

    assert runner("run", playbook, "--tags", "users", env=env_for(sim)).returncode == 0
    assert (tmp_path / "reports" / "users.jsonl").exists()
    assert not (tmp_path / "reports" / "groups.jsonl").exists()

    assert runner("run", playbook, "--skip-tags", "users", env=env_for(sim)).returncode == 0
    assert (tmp_path / "reports" / "groups.jsonl").exists()


def test_check_authenticates_and_submits_nothing(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())

    result = runner("run", playbook, "--check", env=env_for(sim))

    assert result.returncode == 0, result.stderr
    assert "check ok" in result.stdout
    assert work_requests(sim) == []
    assert any(e.operation == "token" and e.status == 200 for e in sim.log.entries)
    assert not (tmp_path / "reports").exists()


def test_a_second_run_on_the_same_state_is_refused(sim, tmp_path: Path) -> None:
    from runner.execute.state import StateStore

    playbook = write_playbook(tmp_path, sim, twelve_link_exports()[:1])
    with StateStore.open(tmp_path / ".insights-runner"):
        result = runner("run", playbook, env=env_for(sim))
    assert result.returncode == 2
    assert "in use by another run" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_service_exits_3(tmp_path: Path, sim) -> None:
    playbook = write_playbook(tmp_path, sim, [{"name": "Users", "user_summary": {}}])
    text = playbook.read_text("utf-8").replace(sim.base_url, "http://127.0.0.1:9/insights")
    text = text.replace(sim.identity_url, "http://127.0.0.1:9/identity")
    playbook.write_text(text, "utf-8")

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    run = report(playbook)  # this run's report, not a stale one: it says why it stopped
    assert run["status"] == "failed" and "127.0.0.1:9" in run["error"]


def test_status_shows_what_the_state_holds(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [{"name": "Users", "user_summary": {}}])
    assert runner("run", playbook, env=env_for(sim)).returncode == 0

    result = runner("status", playbook, "--json")

    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["counts"]["succeeded"] == 1
    assert status["last_run"]["status"] == "succeeded"


def test_junit_and_json_results_for_pipelines(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [{"name": "Users", "user_summary": {}}])
    junit = tmp_path / "junit.xml"

    result = runner("run", playbook, "--json", "--junit", junit, env=env_for(sim))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert "<testcase" in junit.read_text("utf-8")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_query_formats(sim, tmp_path: Path, fmt: str) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {"page_size": 7}, "format": fmt,
         "output": f"users.{fmt}"}])

    assert runner("run", playbook, env=env_for(sim)).returncode == 0
    text = (tmp_path / "reports" / f"users.{fmt}").read_text("utf-8")
    expected = sim.tenant.user_count
    if fmt == "jsonl":
        assert len(text.splitlines()) == expected
    elif fmt == "json":
        assert len(json.loads(text)) == expected
    else:
        assert len(text.splitlines()) == expected + 1  # the header row


def test_slots_held_by_another_client_are_waited_for_not_failed(tmp_path: Path) -> None:
    from client_support import make_client

    from runner.sim import SimConfig, Simulator
    from runner.sim.jobs import FIRST_JOB_ID

    def seconds(job_id: int) -> float:  # the other tool's three jobs run long
        return 2.0 if job_id < FIRST_JOB_ID + 3 else 0.2

    with Simulator(SimConfig(seed=7, scale="small", job_seconds=seconds)) as sim:
        other = make_client(sim)
        for month in MONTHS[:3]:
            other.submit("link_export", {"link_type": "organization", "start_time": month})
        playbook = write_playbook(tmp_path, sim, twelve_link_exports()[:1])

        result = runner("run", playbook, env=env_for(sim))

        assert result.returncode == 0, result.stderr
        refused = [e for e in sim.log.entries if e.operation == "link_export" and e.status == 400]
        assert refused, "the service never refused: the test did not fill the slots"
        assert sim.log.max_concurrent_jobs() <= 5
        assert len(list((tmp_path / "reports" / "links").glob("*.zip"))) == 12
        other.close()


def test_no_secret_reaches_the_state_the_reports_or_the_output(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports()[:1] + [
        {"name": "Users", "user_summary": {}, "output": "users.jsonl"}])
    junit = tmp_path / "junit.xml"

    result = runner("run", playbook, "--junit", junit, env=env_for(sim))

    assert result.returncode == 0, result.stderr
    password = sim.credentials.pfx_password
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".zip"]
    written = [p for p in written if p.name != "playbook.yml"]
    assert any(p.name == "state.db" for p in written)
    texts = [result.stdout, result.stderr] + [p.read_bytes().decode("utf-8", "replace")
                                              for p in written]
    for text in texts:
        assert password not in text
        assert "eyJ" not in text  # no JWT: neither an access token nor a client assertion
        assert "PRIVATE KEY" not in text
