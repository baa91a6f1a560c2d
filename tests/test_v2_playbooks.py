"""Playbooks on the Graph API (v2): the v2 demo end to end, set_tag's safety rules, and the
v1 demo moved to v2 by changing its connection's api."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from run_support import REPO, connection_for, env_for, runner

from runner import catalog
from runner.client.api import InsightsClient
from runner.client.connection import settings_for_simulator


def _copy(name: str, directory: Path, **changes) -> Path:
    document = yaml.safe_load((REPO / "playbooks" / name).read_text(encoding="utf-8"))
    document["output_dir"] = "reports"
    document.update(changes)
    path = directory / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_demo_v2_uses_every_v2_module_and_runs_against_the_embedded_simulator(tmp_path):
    playbook = _copy("demo-v2.yml", tmp_path)
    document = yaml.safe_load(playbook.read_text("utf-8"))
    used = {key for task in document["tasks"] for key in task if key in catalog.all_module_names()}
    assert used == set(catalog.module_names("v2"))
    assert document["connection"] == {"api": "v2", "simulator": True}

    first = runner("run", playbook, "--json", env=env_for_embedded())

    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert report["status"] == "succeeded"
    by_operation: dict[str, list[dict]] = {}
    for step in report["steps"]:
        by_operation.setdefault(step["operation"], []).append(step)
        assert (tmp_path / "reports" / step["output"]).is_file(), step["output"]
    assert len(by_operation["user_access_export"]) == 3  # one job per user
    assert {"user_activity_export", "object_activity_export"} <= set(by_operation)
    tagged = [json.loads((tmp_path / "reports" / s["output"]).read_text("utf-8"))
              for s in by_operation["set_tag"]]
    assert tagged and all(t["status"] == 200 and t["tag_name"] == "NeedsReview" for t in tagged)

    again = runner("run", playbook, "--json", env=env_for_embedded())

    assert again.returncode == 0, again.stderr
    rerun = [s for s in json.loads(again.stdout)["steps"] if s["operation"] == "set_tag"]
    assert rerun and all(s["reused"] for s in rerun)  # a finished set_tag is not repeated


def env_for_embedded() -> dict[str, str]:
    import os

    return {**os.environ, "NO_COLOR": "1"}


def test_set_tag_is_a_change_in_plan_never_runs_under_check_and_runs_once(sim, tmp_path):
    client = InsightsClient(settings_for_simulator(sim, api="v2"))
    [site] = client.iter_records("site_ids", {"site_urls": "https://contoso.sharepoint.com/sites/site00004"})
    target = next(iter(client.iter_records("detail_records_by_site", {"site_id": site["siteId"]})))
    assert target["tagName"] != "Checked"
    playbook = tmp_path / "tag.yml"
    playbook.write_text(yaml.safe_dump({
        "version": 1, "connection": {**connection_for(sim), "api": "v2"},
        "output_dir": "reports",
        "tasks": [{"name": "Tag one file", "set_tag": {
            "site_id": site["siteId"], "object_url": target["location"], "tag_name": "Checked"},
            "output": "tagged.jsonl"}],
    }, sort_keys=False), encoding="utf-8")
    env = env_for(sim)

    planned = runner("plan", playbook, env=env)
    checked = runner("run", playbook, "--check", env=env)

    assert planned.returncode == 0, planned.stderr
    assert "set_tag (CHANGES the tenant)" in planned.stdout
    assert "1 change to the tenant" in planned.stdout
    assert checked.returncode == 0, checked.stderr
    assert "nothing was changed" in checked.stdout + checked.stderr
    assert sim.log.count("set_tag") == 0
    assert not (tmp_path / "reports" / "tagged.jsonl").exists()

    ran = runner("run", playbook, env=env)
    again = runner("run", playbook, env=env)

    assert ran.returncode == 0 and again.returncode == 0, ran.stderr + again.stderr
    assert sim.log.count("set_tag") == 1  # the re-run did not tag again
    after = {r["location"]: r for r in client.iter_records(
        "detail_records_by_site", {"site_id": site["siteId"]})}
    assert after[target["location"]]["tagName"] == "Checked"
