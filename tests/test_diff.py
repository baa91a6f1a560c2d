"""``insights-runner diff``, as a user runs it: two folders, then the demo run twice against a
simulator whose tenant drifted in between (``SimConfig(drift=3)``), where ``diff`` must
report exactly what the drift changed: new anyone-links, removed users, raised risk."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
from run_support import PASSWORD_VAR, REPO, demo_against, env_for, runner

from runner import catalog
from runner.diff import keys
from runner.sim import SimConfig, Simulator
from runner.sim import records as sim_records
from runner.sim.drift import DriftedTenant
from runner.sim.tenant import Tenant

DRIFT = 3
DEMO_SITES = ("sites/site00003", "sites/site00004", "sites/site00005", "teams/team00010",
              "sites/group00008")


def write_folder(folder: Path, files: dict[str, list[dict[str, Any]]],
                 modules: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    steps = []
    for name, rows in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        steps.append({"id": name, "task": name, "operation": modules[name],
                      "status": "succeeded", "output": name})
    (folder / "run-report.json").write_text(json.dumps({"steps": steps}), encoding="utf-8")
    return folder


def test_every_module_has_an_identity_made_of_its_record_fields() -> None:
    assert set(keys.IDENTITY) == set(catalog.module_names())
    for op in catalog.modules():
        assert set(keys.IDENTITY[op.name].records) <= set(op.result_fields), op.name
        assert not (op.is_export and keys.IDENTITY[op.name].records)


def test_two_folders_exit_codes_json_and_csv(tmp_path: Path) -> None:
    modules = {"users.jsonl": "user_summary", "events.jsonl": "user_permissions"}
    user = {"email": "a@x", "userStatus": "Active"}
    a = write_folder(tmp_path / "a", {"users.jsonl": [user, {"email": "b@x"}],
                                      "events.jsonl": [{"n": 1}]}, modules)
    b = write_folder(tmp_path / "b", {"users.jsonl": [{**user, "userStatus": "Blocked"},
                                                      {"email": "c@x"}],
                                      "events.jsonl": [{"n": 2}]}, modules)
    same = runner("diff", a, a, "--exit-code")
    assert same.returncode == 0, same.stderr
    assert "0 of 2 outputs differ" in same.stdout
    result = runner("diff", a, b, "--json", "--exit-code", "--csv-dir", tmp_path / "csv")
    assert result.returncode == 1, result.stderr
    found = {o["output"]: o for o in json.loads(result.stdout)["outputs"]}
    users = found["users.jsonl"]
    assert [r["key"] for r in users["added"]] == [{"email": "c@x"}]
    assert [r["key"] for r in users["removed"]] == [{"email": "b@x"}]
    assert users["changed"] == [{"sheet": "", "key": {"email": "a@x"}, "fields": {
        "userStatus": {"before": "Active", "after": "Blocked"}}}]
    assert found["events.jsonl"]["by_hash"] == {"": "changed"}  # no identity: by hash
    assert runner("diff", a, b).returncode == 0  # without --exit-code, as git diff
    with open(tmp_path / "csv" / "users.jsonl.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["change"], r["key"], r["changed_fields"]) for r in rows] == [
        ("added", "c@x", ""), ("removed", "b@x", ""),
        ("changed", "a@x", "userStatus: Active -> Blocked")]


def test_mistakes_exit_2_without_a_traceback(tmp_path: Path) -> None:
    playbook = tmp_path / "p.yml"
    playbook.write_text("tasks: [{user_summary: {}}]\n", encoding="utf-8")
    once = runner("diff", playbook)
    assert once.returncode == 2 and "0 run(s) kept" in once.stderr
    assert "Traceback" not in once.stderr
    assert runner("diff", tmp_path / "missing").returncode == 2
    assert runner("diff", playbook, tmp_path).returncode == 2
    for name, text in (("a", '{"id": "1"}\n'), ("b", '{"id": "1"}\n{oops\n')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jsonl").write_text(text, encoding="utf-8")
    broken = runner("diff", tmp_path / "a", tmp_path / "b")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert f"{tmp_path / 'b' / 'x.jsonl'}: record 2 is not JSON" in broken.stderr


# ---------------------------------------------------------------------- the drift test


def _index(base: Tenant) -> dict[str, int]:
    return {base.site(s).url: s for s in range(base.site_count)}


@pytest.fixture(scope="module")
def drift_diff(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    folder = tmp_path_factory.mktemp("drift")
    for drift, fresh in ((0, ()), (DRIFT, ("--fresh",))):
        with Simulator(SimConfig(seed=7, job_seconds=0.05, drift=drift)) as sim:
            playbook = demo_against(sim, folder)
            done = runner("run", playbook, "--quiet", *fresh, env=env_for(sim))
            assert done.returncode == 0, done.stderr
    as_json = runner("diff", playbook, "--json", "--exit-code")
    assert as_json.returncode == 1, as_json.stderr
    summary = runner("diff", playbook, "--summary")
    assert summary.returncode == 0, summary.stderr
    return json.loads(as_json.stdout), summary.stdout, playbook


def _keys(entries: list[dict[str, Any]], field: str) -> set[str]:
    return {e["key"][field] for e in entries}


def test_diff_reports_exactly_the_new_anyone_links(drift_diff) -> None:
    outputs = {o["output"]: o for o in drift_diff[0]["outputs"]}
    base, drifted = Tenant(7, "small"), DriftedTenant(7, "small", DRIFT)
    demo = [_index(base)[f"https://contoso.sharepoint.com/{s}"] for s in DEMO_SITES]
    new_links = {link["linkId"] for s, link in drifted.changes(demo).new_links}
    assert new_links  # drift 3 gives the demo's sites new links: the test has teeth
    links = outputs["links/anyone.jsonl"]
    assert _keys(links["added"], "linkId") == new_links
    assert links["removed"] == links["changed"] == []


def test_diff_reports_exactly_the_removed_users(drift_diff) -> None:
    outputs = {o["output"]: o for o in drift_diff[0]["outputs"]}
    removed = {u.email for u in DriftedTenant(7, "small", DRIFT).changes().removed_users}
    users = outputs["users/summary.jsonl"]
    assert _keys(users["removed"], "email") == removed
    assert users["added"] == users["changed"] == []
    # the access reports were asked for the active users still there: theirs are gone
    access = outputs["users/access-part-*.zip"]
    summary_gone = {r["key"]["Email"] for r in access["removed"] if "Email" in r["key"]}
    active_gone = {u.email for u in DriftedTenant(7, "small", DRIFT).changes().removed_users
                   if u.active}
    assert summary_gone == active_gone and access["added"] == access["changed"] == []


def test_diff_reports_exactly_the_raised_risk(drift_diff) -> None:
    outputs = {o["output"]: o for o in drift_diff[0]["outputs"]}
    base, drifted = Tenant(7, "small"), DriftedTenant(7, "small", DRIFT)
    # risk/teams-sensitive.jsonl: detail_records, sensitivity high or medium, in Teams
    raised = {base.object(s, j)["id"] for s, j, _, _ in drifted.changes().raised
              if base.site(s).module == 1 and base.object_codes(s, j)[1] in (2, 3)}
    teams = outputs["risk/teams-sensitive.jsonl"]
    assert _keys(teams["changed"], "id") == raised and raised
    assert all(c["fields"]["riskLevel"]["after"] == "High" and
               set(c["fields"]) <= {"riskLevel", "exposureLevel"} for c in teams["changed"])
    assert teams["added"] == teams["removed"] == []
    # risk/overview.csv: site_overview of Teams and SharePoint sites, risk high or medium
    filters = {"module": [1, 2], "risk": [3, 2]}
    expected: dict[str, set[str]] = {"added": set(), "removed": set(), "changed": set()}
    for s in range(base.site_count):
        if not sim_records.site_may_match(base, s, filters):
            continue
        old = sim_records.site_overview(base, s, filters)
        new = sim_records.site_overview(drifted, s, filters)
        if old != new:
            kind = "added" if old is None else "removed" if new is None else "changed"
            expected[kind].add(base.site(s).url)
    overview = outputs["risk/overview.csv"]
    assert expected["changed"]
    for kind, urls in expected.items():
        assert _keys(overview[kind], "siteUrl") == urls, kind
    went_up = {c["key"]["siteUrl"] for c in overview["changed"]
               if int(c["fields"]["riskItemCount"]["after"]) >
               int(c["fields"]["riskItemCount"]["before"])}
    assert went_up == expected["changed"]  # risk only rises under drift


def test_outputs_the_drift_does_not_touch_are_unchanged(drift_diff) -> None:
    status = {o["output"]: o["status"] for o in drift_diff[0]["outputs"]}
    for output in ("groups/summary.json", "sites/ids.jsonl", "users/permissions.jsonl",
                   "activity/liam.martin0.zip", "links/organization-links.zip",
                   "groups/access-1.zip", "risk/by-site/site00004.jsonl"):
        assert status[output] == "unchanged", output
    assert {o for o, s in status.items() if s != "unchanged"} == {
        "links/anyone.jsonl", "users/summary.jsonl", "users/access-part-*.zip",
        "risk/teams-sensitive.jsonl", "risk/overview.csv", "sites/permissions-fr.jsonl",
        "sites/permissions-1-of-1.zip", "risk/by-site/group00008.jsonl",
        "risk/by-site/site00003.jsonl", "risk/by-site/site00005.jsonl",
        "risk/by-site/team00010.jsonl"}


def test_the_readme_shows_the_drift_test_output(drift_diff) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    begin = readme.index("<!-- diff-drift:begin")
    block = readme[readme.index("\n", begin) + 1: readme.index("<!-- diff-drift:end -->")]
    skip = ("```", "$", "comparing ", "     with ")  # the commands; the runs' times
    shown = [line for line in block.splitlines() if line.strip() and not line.startswith(skip)]
    table = [line for line in drift_diff[1].splitlines()[2:] if line.strip()]
    assert len(table) > 10
    assert shown == table, "README's diff example is stale: paste the drift test's output"


def test_snapshots_are_hard_links_and_a_run_that_fetched_nothing_adds_none(drift_diff) -> None:
    from runner.diff import history

    playbook = drift_diff[2]
    state = playbook.parent / ".insights-runner"
    first, second = history.runs(state)
    output = playbook.parent / "reports" / "links" / "anyone.jsonl"
    assert (second / "links" / "anyone.jsonl").stat().st_ino == output.stat().st_ino
    assert (first / "links" / "anyone.jsonl").stat().st_ino != output.stat().st_ino
    # all reused: no request, so no simulator (the connection opens on first use)
    again = runner("run", playbook, "--quiet", env={**os.environ, PASSWORD_VAR: "unused"})
    assert again.returncode == 0, again.stderr
    assert history.runs(state) == [first, second]


def test_an_inventory_tenant_s_runs_are_compared_and_unchanged_data_exits_0(
        tmp_path: Path) -> None:
    assert runner("init", tmp_path).returncode == 0
    playbook = tmp_path / "playbook.yml"
    for fresh in ((), ("--fresh",)):  # the embedded simulator, the same tenant twice
        done = runner("run", playbook, "--limit", "demo", "--quiet", *fresh)
        assert done.returncode == 0, done.stderr
    same = runner("diff", playbook, "--exit-code", "--summary")  # its one tenant: demo
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines()[-1] == "0 of 2 outputs differ: 0 records added, " \
        "0 removed, 0 changed"
    unknown = runner("diff", playbook, "--tenant", "nope")
    assert unknown.returncode == 2
    assert "no runs of tenant 'nope' are kept; tenants with runs: demo" in unknown.stderr
