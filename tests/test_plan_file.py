"""Review, then apply: plan --out, run plan.json, and plan --detailed-exitcode."""

from __future__ import annotations

import json
from pathlib import Path

from run_support import env_for, runner, work_requests, write_playbook

USERS = {"name": "Users", "user_summary": {}, "register": "users",
         "output": "{{ run.id }}/users.jsonl"}
ACCESS = {"name": "Access of two users",
          "user_access_export": {"emails": "{{ (users | map(attribute='email') | list)[:2] }}",
                                 "export_option": "summary_only", "data_sources": ["teams"]},
          "output": "access.zip"}
SITES = {"name": "Sites", "site_permission_export": {
    "site_urls": "{{ lookup('file', 'sites.txt').splitlines() }}"}, "output": "sites.zip"}


def test_run_applies_exactly_the_saved_plan_and_the_plan_holds_no_secret(sim, tmp_path: Path
                                                                         ) -> None:
    playbook = write_playbook(tmp_path, sim, [USERS, ACCESS])
    env = env_for(sim)

    made = runner("plan", playbook, "--out", tmp_path / "plan.json", env=env)

    assert made.returncode == 0, made.stderr
    text = (tmp_path / "plan.json").read_text("utf-8")
    assert sim.credentials.pfx_password not in text
    saved = json.loads(text)
    assert saved["format"] == "insights-runner-plan" and saved["version"] == 1
    assert saved["playbook"] == "playbook.yml"
    assert set(saved["fingerprints"]) == {"playbook", "inventory", "variables"}
    planned = saved["tenants"][0]["plan"]
    assert set(planned["connection"]["certificate"]["password"]) == {"*"}
    assert [d["needs"] for d in planned["deferred"]] == [["users"]]
    assert not work_requests(sim), "plan makes no API call"

    applied = runner("run", tmp_path / "plan.json", "--json", env=env)

    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    first = next(s for s in report["steps"] if s["task"] == "Users")
    assert first["id"] == planned["steps"][0]["id"]
    # the templates saw the plan's run values, not the apply's
    assert first["output"] == f"{saved['run']['id']}/users.jsonl"
    assert (tmp_path / "reports" / saved["run"]["id"] / "users.jsonl").is_file()
    assert {s["task"] for s in report["steps"]} == {"Users", "Access of two users"}


def test_a_changed_playbook_inventory_or_input_file_is_refused(sim, tmp_path: Path) -> None:
    (tmp_path / "sites.txt").write_text("https://contoso.sharepoint.com/sites/site00003\n",
                                        encoding="utf-8")
    playbook = write_playbook(tmp_path, sim, [SITES])
    env = env_for(sim)
    plan_file = tmp_path / "plan.json"
    assert runner("plan", playbook, "--out", plan_file, env=env).returncode == 0

    (tmp_path / "sites.txt").write_text("https://contoso.sharepoint.com/sites/site00004\n",
                                        encoding="utf-8")
    changed_input = runner("run", plan_file, env=env)

    assert changed_input.returncode == 2
    assert "the inputs changed since the plan was made: 2 Steps differ" in changed_input.stderr
    playbook.write_text(playbook.read_text("utf-8").replace("name: test", "name: edited"),
                        encoding="utf-8")

    changed_playbook = runner("run", plan_file, env=env)

    assert changed_playbook.returncode == 2
    assert changed_playbook.stderr.startswith(
        f"{plan_file}: playbook changed since the plan was made")
    assert "Traceback" not in changed_playbook.stderr
    assert not work_requests(sim), "a refused plan makes no API call"
    assert not (tmp_path / "reports").exists()
    assert runner("run", plan_file, "-e", "x=1", env=env).returncode == 2


def test_detailed_exitcode_answers_4_while_work_is_pending_and_0_when_done(sim, tmp_path: Path
                                                                           ) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Users", "user_summary": {}, "register": "users", "output": "users.jsonl"},
        {**ACCESS}])
    env = env_for(sim)

    def pending() -> int:
        return runner("plan", playbook, "--detailed-exitcode", env=env).returncode

    assert pending() == 4
    assert runner("run", playbook, env=env).returncode == 0
    assert pending() == 0, "every Step, the register-fed one too, is done"
    (tmp_path / "reports" / "access.zip").write_bytes(b"not the export")
    assert pending() == 4, "a file that no longer matches is work to do"
    assert runner("run", playbook, env=env).returncode == 0
    assert pending() == 0
    playbook.write_text(playbook.read_text("utf-8").replace("user_summary:", "user_sumary:"),
                        encoding="utf-8")
    assert pending() == 2
