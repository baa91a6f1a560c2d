"""Playbooks on the Graph API (v2): the v2 demo end to end, set_tag's safety rules, and the
v1 demo moved to v2 by changing its connection's api."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
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


# ------------------------------------------- demo.yml moved to v2 by one line: api: v2

V1_ONLY = {  # what validate says about demo.yml on api: v2, each naming the alternative
    "detail_records": "look up each site's id with site_ids",
    "export_option": "v2 removed export_option from user access exports",
    "language": "v2 has no language",
    "filters.module": "v2 dropped the module filter of site_overview; it keeps: risk",
    "detail_records_by_site.filters": "v2 has no server-side filters on detail records",
}


def _without_v1_only(document: dict) -> dict:
    """demo.yml with what v2 refuses taken out (the tasks and fields validate named)."""
    document["tasks"] = [t for t in document["tasks"] if "detail_records" not in t]
    for task in document["tasks"]:
        for module, args in task.items():
            if not isinstance(args, dict) or module not in catalog.all_module_names():
                continue
            args.pop("language", None)
            if module == "user_access_export":
                args.pop("export_option")
            if module == "site_overview":
                args["filters"].pop("module")
            if module == "detail_records_by_site":
                args.pop("filters")
    return document


def _ids_in_zips(folder: Path, pattern: str) -> set[str]:
    """The users (emails) and site collections that a run's .zip reports name."""
    import io
    import re
    import zipfile

    import openpyxl

    found: set[str] = set()
    for path in sorted(folder.glob(pattern)):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                book = openpyxl.load_workbook(io.BytesIO(archive.read(name)), read_only=True)
                for sheet in book.worksheets:
                    for row in sheet.iter_rows(values_only=True):
                        for value in row:
                            for token in re.findall(r"https://\S+|[\w.#-]+@[\w.-]+",
                                                    str(value or "")):
                                found.add(re.sub(r"^(https://[^/]+/(?:sites|teams)/[^/\s]+).*",
                                                 r"\1", token))
    return found


def _records(folder: Path, pattern: str) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(folder.glob(pattern)):
        text = path.read_text("utf-8")
        if path.suffix == ".json":
            rows += json.loads(text)
        elif path.suffix == ".csv":
            import csv
            import io

            rows += list(csv.DictReader(io.StringIO(text)))
        else:
            rows += [json.loads(line) for line in text.splitlines() if line]
    return rows


def _keys(rows: list[dict], *names: str) -> set[tuple]:
    return {tuple(row[n] for n in names) for row in rows}


@pytest.mark.slow  # ~35 s: v2 makes the demo's 2 access export jobs 182, through 5 slots
def test_demo_on_api_v2_reports_the_same_users_groups_sites_and_links(make_sim, tmp_path):
    sim = make_sim(seed=7, scale="small", job_seconds=0.02)
    demo = yaml.safe_load((REPO / "playbooks" / "demo.yml").read_text(encoding="utf-8"))
    runs = {}
    for api in ("v1", "v2"):
        folder = tmp_path / api
        folder.mkdir()
        document = copy.deepcopy(demo)
        document["connection"] = {**connection_for(sim), "api": api}
        document["output_dir"] = "reports"
        playbook = folder / "demo.yml"
        playbook.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        if api == "v2":
            refused = runner("validate", playbook, env=env_for(sim))
            assert refused.returncode == 2
            for where, words in V1_ONLY.items():
                assert any(where in line and words in line
                           for line in refused.stdout.splitlines()), (where, refused.stdout)
            playbook.write_text(yaml.safe_dump(_without_v1_only(document), sort_keys=False),
                                encoding="utf-8")
        ran = runner("run", playbook, "--quiet", env=env_for(sim))
        assert ran.returncode == 0, ran.stdout + ran.stderr
        runs[api] = folder / "reports"
    v1, v2 = runs["v1"], runs["v2"]

    assert _keys(_records(v1, "users/summary.jsonl"), "loginName") == \
        _keys(_records(v2, "users/summary.jsonl"), "loginName")
    assert _keys(_records(v1, "groups/summary.json"), "groupId") == \
        _keys(_records(v2, "groups/summary.json"), "groupId")
    assert _keys(_records(v1, "links/anyone*.jsonl"), "linkId", "objectUrl") == \
        _keys(_records(v2, "links/anyone*.jsonl"), "linkId", "objectUrl")
    assert _keys(_records(v1, "sites/permissions-fr.jsonl"), "url", "principalName") == \
        _keys(_records(v2, "sites/permissions-fr.jsonl"), "url", "principalName")
    assert _keys(_records(v1, "users/permissions.jsonl"), "location", "permission") == \
        _keys(_records(v2, "users/permissions.jsonl"), "location", "permission")
    assert _keys(_records(v1, "sites/ids*.jsonl"), "siteId", "siteUrl") == \
        _keys(_records(v2, "sites/ids*.jsonl"), "siteId", "siteUrl")
    # v2 lost the module filter and the record filters: what v1 found is among v2's
    assert _keys(_records(v1, "risk/overview.csv"), "siteUrl") <= \
        _keys(_records(v2, "risk/overview.csv"), "siteUrl")
    assert _keys(_records(v1, "risk/by-site/*.jsonl"), "id") <= \
        _keys(_records(v2, "risk/by-site/*.jsonl"), "id")
    for pattern in ("users/access-part-*.zip", "groups/access-*.zip", "links/*.zip",
                    "activity/*.zip", "sites/permissions-*.zip"):
        assert _ids_in_zips(v1, pattern) == _ids_in_zips(v2, pattern), pattern
    assert len(list(v2.glob("users/access-part-*.zip"))) > 50 * len(
        list(v1.glob("users/access-part-*.zip")))  # one job per user on v2


# ------------------------------------------------------------ concurrency, inventories


def test_max_exports_caps_a_tenant_and_a_refusal_is_backed_off(make_sim, tmp_path):
    sim = make_sim(seed=7, scale="small", job_seconds=0.3, max_exports=2)
    months = [f"2025-{m:02d}-01T00:00:00" for m in range(1, 7)]
    tasks = [{"name": "Google links by month", "google_link_export": {
        "link_type": "anyone", "start_time": "{{ item }}"}, "loop": months,
        "output": "links/{{ item[:7] }}.zip"}]
    for slots, folder in ((1, "one"), (5, "five")):  # five: more than the service allows
        (tmp_path / folder).mkdir()
        playbook = tmp_path / folder / "links.yml"
        playbook.write_text(yaml.safe_dump({
            "version": 1, "connection": {**connection_for(sim), "api": "v2",
                                         "max_exports": slots},
            "output_dir": "reports", "tasks": tasks}, sort_keys=False), encoding="utf-8")
        sim.log.clear()
        ran = runner("run", playbook, "--quiet", env=env_for(sim))
        assert ran.returncode == 0, ran.stderr
        assert len(list((tmp_path / folder / "reports" / "links").glob("*.zip"))) == 6
        assert sim.log.max_concurrent_jobs() <= min(slots, 2)
        refused = sim.log.count("google_link_export", status=400)
        assert (refused == 0) if slots == 1 else (refused > 0)


def test_each_inventory_tenant_speaks_its_own_generation(tmp_path):
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"version": 1, "tenants": {
        "legacy": {"connection": {"simulator": True}},
        "modern": {"connection": {"simulator": True, "api": "v2"}},
    }}), encoding="utf-8")
    playbook = tmp_path / "p.yml"
    playbook.write_text(yaml.safe_dump({
        "version": 1, "hosts": "all", "output_dir": "reports/{{ tenant }}",
        "tasks": [{"google_link_export": {"link_type": "anyone"}}]}), encoding="utf-8")

    both = runner("validate", playbook)
    modern = runner("validate", playbook, "--limit", "modern")

    assert both.returncode == 2
    assert "google_link_export is a Graph API (v2) module: set api: v2" in both.stdout
    assert "(tenant 'legacy' connects with api: v1)" in both.stdout
    assert "modern" not in both.stdout
    assert modern.returncode == 0, modern.stdout + modern.stderr


def test_a_client_secret_from_env_never_shows_in_plan_or_state(sim, tmp_path):
    playbook = tmp_path / "secret.yml"
    connection = {key: value for key, value in connection_for(sim).items()
                  if key != "certificate"}
    playbook.write_text(yaml.safe_dump({
        "version": 1, "connection": {**connection, "api": "v2",
                                     "client_secret": "{{ env('APP_SECRET') }}"},
        "output_dir": "reports",
        "tasks": [{"group_summary": {}, "output": "groups.jsonl"}]}), encoding="utf-8")
    env = {**env_for(sim), "APP_SECRET": sim.client_secret}

    planned = runner("plan", playbook, "--json", env=env)
    ran = runner("run", playbook, "--json", env=env)

    assert planned.returncode == 0 and ran.returncode == 0, ran.stdout + ran.stderr
    assert (tmp_path / "reports" / "groups.jsonl").read_text("utf-8").strip()
    for text in (planned.stdout, ran.stdout, ran.stderr,
                 *(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
                   if p.is_file())):
        assert sim.client_secret not in text
