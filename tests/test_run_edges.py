"""What the runner does when the service misbehaves in ways its faults do not cover, and
when a playbook's tasks would step on each other's files: each ends, with a clear result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from run_support import PASSWORD_VAR, env_for, report, runner, submits, write_playbook

from runner.sim import Faults


def answer_status_with(sim, body: dict, status: str = "200 OK") -> None:
    """Every export status request gets ``body`` (a gateway or a service gone wrong)."""
    real: Callable = sim._server.app

    def app(environ, start_response):
        path = environ["PATH_INFO"].lower()
        if environ["REQUEST_METHOD"] == "GET" and path.endswith("/export/status"):
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        return real(environ, start_response)

    sim._server.app = app


LINKS = [{"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links.zip",
          "retries": 1}]


def test_a_job_the_service_does_not_know_is_retried_then_fails(sim, tmp_path: Path) -> None:
    answer_status_with(sim, {"status": 404, "message": "The export was not found."},
                       "404 Not Found")
    playbook = write_playbook(tmp_path, sim, LINKS)

    result = runner("run", playbook, env=env_for(sim), timeout=60)

    assert result.returncode == 1, result.stderr
    assert len(submits(sim)) == 2  # the first try and one retry, not one per poll
    step = report(playbook)["steps"][0]
    assert "no longer knows" in step["error"]


def test_a_status_that_means_nothing_ends_the_step(sim, tmp_path: Path) -> None:
    answer_status_with(sim, {"status": 0, "description": ""})
    playbook = write_playbook(tmp_path, sim, LINKS)

    result = runner("run", playbook, env=env_for(sim), timeout=60)

    assert result.returncode == 1, result.stderr
    assert "keeps answering status 0" in report(playbook)["steps"][0]["error"]


def test_downloads_that_keep_failing_are_retried_within_retries(sim, tmp_path: Path) -> None:
    sim.set_faults(Faults(truncate_rate=1.0))
    playbook = write_playbook(tmp_path, sim, LINKS)

    result = runner("run", playbook, env=env_for(sim), timeout=120)

    assert result.returncode == 1, result.stderr
    step = report(playbook)["steps"][0]
    assert any("trying again" in warning for warning in step["warnings"])
    assert len(submits(sim)) == 1  # the finished job's file is fetched again, not a new job
    assert not (tmp_path / "reports" / "links.zip").exists()


def test_a_deferred_task_may_not_write_another_tasks_file(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "register": "users", "output": "users.jsonl"},
        {"name": "Their permissions", "user_permissions": {
            "emails": "{{ users | map(attribute='email') | list }}"},
         "output": "users.jsonl"},
    ])

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 2, result.stderr
    assert "users.jsonl" in result.stderr and "Traceback" not in result.stderr
    lines = (tmp_path / "reports" / "users.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == sim.tenant.user_count  # the first task's report is intact


def test_a_submit_whose_answer_is_lost_is_sent_again_with_a_warning(sim, tmp_path: Path
                                                                    ) -> None:
    real: Callable = sim._server.app
    lost = []

    def app(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST" and "link/permission/export" in \
                environ["PATH_INFO"].lower() and not lost:
            lost.append(b"".join(real(environ, lambda *args: None)))  # the job is created...
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"The service is temporarily unavailable."]  # ...but its id is lost
        return real(environ, start_response)

    sim._server.app = app
    playbook = write_playbook(tmp_path, sim, LINKS)

    result = runner("run", playbook, env=env_for(sim))

    assert result.returncode == 0, result.stderr
    assert len(lost) == 1 and len(submits(sim)) == 2  # no silent retry inside the client
    warnings = report(playbook)["steps"][0]["warnings"]
    assert any("may hold a job" in warning for warning in warnings)


def test_an_output_may_not_take_the_runners_own_files(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "A", "user_summary": {}, "output": "run-report.json"},
        {"name": "B", "group_summary": {}, "output": ".insights-runner/state.db"},
        {"name": "C", "site_ids": {}, "output": "run-report.html"},
    ], output_dir=".")

    result = runner("validate", playbook)

    assert result.returncode == 2
    assert "'run-report.json' is where the run report goes" in result.stdout
    assert "'run-report.html' is where the run report goes" in result.stdout
    assert "the runner's state" in result.stdout


def test_fresh_forgets_only_its_own_playbooks_state(sim, tmp_path: Path) -> None:
    import yaml

    first = write_playbook(tmp_path, sim, LINKS)
    second = tmp_path / "second.yml"
    document = yaml.safe_load(first.read_text("utf-8"))
    document["tasks"] = [{"name": "Users", "user_summary": {}, "output": "users.jsonl"}]
    second.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert runner("run", first, env=env_for(sim)).returncode == 0
    assert runner("run", second, env=env_for(sim)).returncode == 0
    sim.log.clear()

    assert runner("run", second, "--fresh", env=env_for(sim)).returncode == 0
    assert runner("run", first, env=env_for(sim)).returncode == 0

    assert submits(sim) == []  # the first playbook's finished export was not forgotten


def test_a_job_that_never_finishes_is_given_up_after_the_longest_wait(tmp_path: Path,
                                                                       monkeypatch) -> None:
    from runner.execute.engine import RunOptions, run_plan
    from runner.execute.scheduler import PollPolicy
    from runner.manifest import load_playbook
    from runner.plan import compile_plan
    from runner.sim import SimConfig, Simulator

    with Simulator(SimConfig(seed=7, job_seconds=60.0)) as sim:
        path = write_playbook(tmp_path, sim, [
            {"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links.zip",
             "retries": 0}])
        monkeypatch.setenv(PASSWORD_VAR, sim.credentials.pfx_password)
        playbook = load_playbook(path)
        poll = PollPolicy(floor=0.1, ceiling=0.2, max_job_seconds=1.0)

        result = run_plan(playbook, compile_plan(playbook), RunOptions(poll=poll))

    assert result.exit_code == 1
    assert "still not finished" in result.outcomes[0].error
