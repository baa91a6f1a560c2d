"""Where the state lives, as users choose it: --state DIR|URL (alias --state-dir),
INSIGHTS_RUNNER_STATE, an inventory's state:.  Runs the CLI against the simulator with the
state on a real PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import yaml
from run_support import env_for, report, runner, submits, twelve_link_exports, write_playbook
from test_inventory import env_for_two, two_tenants

from runner.execute.state import StateStore, StepStatus


def test_a_run_keeps_its_state_in_postgresql_and_resumes_from_it(sim, pg_url: str,
                                                                 tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports()[:1] + [
        {"name": "Users", "user_summary": {}, "output": "users.jsonl"}])
    first = runner("run", playbook, "--state", pg_url, "--quiet", env=env_for(sim))
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / ".insights-runner" / "state.db").exists()  # nothing local
    with StateStore.open(pg_url, readonly=True) as store:
        counts = store.counts()
    assert counts[StepStatus.SUCCEEDED] == 13 and sum(counts.values()) == 13
    jobs = len(submits(sim))
    assert jobs == 12
    # The same state from the environment: everything is reused, nothing is submitted.
    env = {**env_for(sim), "INSIGHTS_RUNNER_STATE": pg_url}
    again = runner("run", playbook, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert all(step["reused"] for step in json.loads(again.stdout)["steps"])
    assert len(submits(sim)) == jobs
    shown = runner("status", playbook, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["counts"]["succeeded"] == 13
    assert status["state_dir"] == pg_url  # no password in this URL to hide
    assert report(playbook)["summary"]["succeeded"] == 13


def test_the_flag_wins_over_the_environment_and_state_dir_is_an_alias(sim, pg_url: str,
                                                                      tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "output": "users.jsonl"}])
    env = {**env_for(sim), "INSIGHTS_RUNNER_STATE": pg_url}
    result = runner("run", playbook, "--state-dir", tmp_path / "here", "-q", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "here" / "state.db").exists()
    with psycopg.connect(pg_url) as conn:  # the database was not touched
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE "
                            "'insights_runner%'").fetchone()[0] == 0


def test_an_inventory_names_the_state_and_each_tenant_has_its_namespace(
        sim, make_sim, pg_url: str, tmp_path: Path) -> None:
    second = make_sim(seed=11, scale="small")
    playbook = two_tenants(tmp_path, sim, second)
    inventory = yaml.safe_load((tmp_path / "inventory.yml").read_text("utf-8"))
    inventory["state"] = pg_url
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    result = runner("run", playbook, "-q", env=env_for_two(sim, second))
    assert result.returncode == 0, result.stderr
    for tenant in ("contoso", "fabrikam"):
        with StateStore.open(pg_url, readonly=True, namespace=tenant) as store:
            assert store.counts()[StepStatus.SUCCEEDED] == 2
    shown = runner("status", playbook, "--state", pg_url, "--json")
    assert set(json.loads(shown.stdout)["tenants"]) == {"contoso", "fabrikam"}


def test_an_unreachable_state_database_is_exit_2_without_the_password(sim,
                                                                      tmp_path: Path) -> None:
    from servers import free_port

    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "output": "users.jsonl"}])
    url = f"postgresql://runner:hunter2@127.0.0.1:{free_port()}/state"
    result = runner("run", playbook, "--state", url, env=env_for(sim))
    assert result.returncode == 2, result.stderr
    assert "cannot connect to the state database postgresql://runner:***@127.0.0.1" in \
        result.stderr
    assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert submits(sim) == []


def test_a_one_shot_keeps_its_own_namespace_of_a_database_state(sim, pg_url: str,
                                                                 tmp_path: Path) -> None:
    from test_oneshot import connection_flags, oneshot_env

    env = {**oneshot_env(sim, tmp_path / "home"), "INSIGHTS_RUNNER_STATE": pg_url}
    command = ["export", "links", "--link-type", "anyone", *connection_flags(sim),
               "-o", tmp_path / "out"]
    assert runner(*command, env=env).returncode == 0
    again = runner(*command, env=env)
    assert again.returncode == 0, again.stderr
    assert len(submits(sim)) == 1  # the second time reused the Step kept in the database
    with psycopg.connect(pg_url) as conn:
        names = sorted(n for (n,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'insights_runner%'"))
    # Its own namespace, beside the leases every namespace shares (runners, claims, slots).
    assert len(names) == 2 and names[0].startswith("insights_runner:oneshot/"), names
    assert names[1] == "insights_runner_leases"
