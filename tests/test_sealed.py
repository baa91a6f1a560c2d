"""A finished plan's seal (runner.execute.sealed), through the CLI: the re-run of a sealed
plan reports what a Step-by-Step re-run would, makes no request, and anything that could
make them differ (a file changed, moved or swapped for a link, another run in the state,
--tags, --fresh) sends the run the usual way, which redoes what needs redoing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from run_support import env_for, report, runner, submits, work_requests, write_playbook

SITES = [f"https://contoso.sharepoint.com/sites/site0000{n}" for n in (3, 4)]
# The register first: a first run reports the deferred task's Steps after every other Step
# (they are planned when its query ends), a re-run beside their register (reused at once).
TASKS = [
    {"name": "Ids", "site_ids": {"site_urls": SITES}, "register": "known",
     "output": "ids.jsonl"},
    {"name": "Per site", "site_permission_export": {"site_urls": ["{{ item.siteUrl }}"]},
     "loop": "{{ known }}", "output": "by-site/{{ item.siteUrl.split('/')[-1] }}.zip"},
    {"name": "Sites", "site_permission_export": {"site_urls": SITES}, "output": "sites.zip",
     "extract": True, "convert": "csv"},
    {"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links/anyone.zip"},
]


def seals(playbook: Path) -> list[Path]:
    return sorted((playbook.parent / ".insights-runner" / "compiled").glob("sealed-*"))


def sealed_rerun(result: Any) -> bool:
    """Did the run take the seal?  (-v logs it; the report alone cannot tell.)"""
    return "sealed plan" in result.stderr


def steps_of(playbook: Path) -> list[dict[str, Any]]:
    return report(playbook)["steps"]


def stamps(playbook: Path) -> set[int]:
    with sqlite3.connect(playbook.parent / ".insights-runner" / "state.db") as db:
        return {run for (run,) in db.execute(
            "SELECT DISTINCT stamps.run_id FROM steps JOIN stamps ON stamps.id = steps.stamp")}


def last_run(playbook: Path) -> tuple[int, str]:
    with sqlite3.connect(playbook.parent / ".insights-runner" / "state.db") as db:
        return db.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()


def finished_and_sealed(playbook: Path, env: dict[str, str]) -> None:
    """The first run: it does the Steps and seals the plan with its re-run's report."""
    first = runner("run", playbook, "-q", env=env)
    assert first.returncode == 0, first.stderr
    assert len(seals(playbook)) == 3  # the header, the run it stands for, the entries


def test_a_sealed_rerun_reports_what_a_step_by_step_one_does(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, TASKS)
    env = env_for(sim)
    finished_and_sealed(playbook, env)
    made = len(submits(sim))
    sim.log.clear()

    fast = runner("-v", "run", playbook, env=env)
    assert fast.returncode == 0, fast.stderr
    assert sealed_rerun(fast), fast.stderr
    assert sim.log.entries == []  # not even a token
    fast_report = report(playbook)
    assert stamps(playbook) == {last_run(playbook)[0]} and last_run(playbook)[1] == "succeeded"
    assert "reused" in fast.stdout + fast.stderr and "from an earlier run" in fast.stdout

    for seal in seals(playbook):  # no seal: the same re-run, a Step at a time
        seal.unlink()
    slow = runner("-v", "run", playbook, env=env)
    assert slow.returncode == 0, slow.stderr
    assert not sealed_rerun(slow)
    slow_report = report(playbook)
    assert sim.log.entries == []
    assert len(fast_report["steps"]) == made + 1  # the exports and the site ids query
    assert all(step["reused"] for step in fast_report["steps"])
    assert fast_report["steps"] == slow_report["steps"]  # in the same order too
    assert [step["task"] for step in fast_report["steps"]][:2] == ["Ids", "Per site"]
    assert {k: v for k, v in fast_report.items() if k not in ("run_id", "started", "finished")} \
        == {k: v for k, v in slow_report.items() if k not in ("run_id", "started", "finished")}
    html = (tmp_path / "reports" / "run-report.html").read_text(encoding="utf-8")
    assert 'id="run-status">succeeded' in html and "Per site" in html
    assert len(seals(playbook)) == 3  # the Step-by-Step re-run sealed it again

    # --json and --junit from a sealed re-run: every entry, reused
    junit = tmp_path / "junit.xml"
    printed = runner("-v", "run", playbook, "--json", "--junit", junit, env=env)
    assert printed.returncode == 0 and sealed_rerun(printed), printed.stderr
    assert json.loads(printed.stdout)["steps"] == slow_report["steps"]
    assert junit.read_text(encoding="utf-8").count("<testcase") == len(slow_report["steps"])
    assert len(submits(sim)) == 0


SITES_B = [f"https://contoso.sharepoint.com/sites/site0000{n}" for n in (5, 6)]
# Registers read by deferred tasks that register in turn, and one task that reads two: a
# re-run queues each deferred task's Steps the moment its last register is complete.
CHAINED = [
    {"name": "Ids A", "site_ids": {"site_urls": SITES}, "register": "a",
     "output": "a.jsonl"},
    {"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links.zip"},
    {"name": "Ids again", "site_ids": {"site_urls": "{{ a | map(attribute='siteUrl') | list }}"},
     "register": "again", "output": "again.jsonl"},
    {"name": "Per site", "site_permission_export": {"site_urls": ["{{ item.siteUrl }}"]},
     "loop": "{{ again }}", "output": "per/{{ item.siteUrl.split('/')[-1] }}.zip"},
    {"name": "Ids B", "site_ids": {"site_urls": SITES_B}, "register": "b",
     "output": "b.jsonl"},
    {"name": "Both", "site_permission_export": {"site_urls": ["{{ item.siteUrl }}"]},
     "loop": "{{ b }}", "when": "{{ a | length > 0 }}",
     "output": "both/{{ item.siteUrl.split('/')[-1] }}.zip", "extract": True},
]


def test_a_first_runs_seal_is_its_step_by_step_reruns_report(sim, tmp_path: Path) -> None:
    """The first run reports its deferred tasks' Steps after all the plan's others; its
    seal holds what a re-run reports (each beside the register it waited for), as the
    state has them: the sealed re-run and a Step-by-Step one report the same."""
    playbook = write_playbook(tmp_path, sim, CHAINED)
    env = env_for(sim)
    finished_and_sealed(playbook, env)
    first_order = [step["task"] for step in steps_of(playbook)]
    sim.log.clear()

    fast = runner("-v", "run", playbook, env=env)
    assert fast.returncode == 0 and sealed_rerun(fast), fast.stderr
    assert sim.log.entries == []
    fast_report = report(playbook)
    for seal in seals(playbook):
        seal.unlink()
    slow = runner("-v", "run", playbook, env=env)
    assert slow.returncode == 0 and not sealed_rerun(slow), slow.stderr
    slow_report = report(playbook)
    assert fast_report["steps"] == slow_report["steps"]
    assert all(step["reused"] for step in slow_report["steps"])
    rerun_order = [step["task"] for step in slow_report["steps"]]
    assert rerun_order != first_order and sorted(rerun_order) == sorted(first_order)
    assert rerun_order[:3] == ["Ids A", "Ids again", "Per site"]
    assert any(step.get("files") for step in slow_report["steps"])  # extracted, listed


def changed_file(reports: Path) -> None:
    target = reports / "links" / "anyone.zip"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))


def extracted_file_gone(reports: Path) -> None:
    [csv_file, *_] = sorted((reports / "sites").rglob("*.csv"))
    csv_file.unlink()


def folder_swapped_for_a_link(reports: Path) -> None:
    elsewhere = reports.parent / "elsewhere"
    shutil.move(reports / "by-site", elsewhere)
    (reports / "by-site").symlink_to(elsewhere, target_is_directory=True)


@pytest.mark.parametrize("change", [changed_file, extracted_file_gone,
                                    folder_swapped_for_a_link])
def test_a_file_not_as_sealed_sends_the_run_the_usual_way(sim, tmp_path: Path, change) -> None:
    playbook = write_playbook(tmp_path, sim, TASKS)
    env = env_for(sim)
    finished_and_sealed(playbook, env)
    change(tmp_path / "reports")
    sim.log.clear()
    again = runner("-v", "run", playbook, env=env)
    assert not sealed_rerun(again)
    if change is folder_swapped_for_a_link:  # the usual check refuses the link
        assert again.returncode != 0 and "Traceback" not in again.stderr
        return
    assert again.returncode == 0, again.stderr
    if change is extracted_file_gone:  # extracted again, from the .zip: no request
        assert sim.log.entries == []
        assert sorted((tmp_path / "reports" / "sites").rglob("*.csv"))
    # a touched file with the same bytes is hashed and kept by the Step-by-Step check
    assert all(step["reused"] for step in steps_of(playbook))
    third = runner("-v", "run", playbook, env=env)  # sealed again by the run before
    assert third.returncode == 0 and sealed_rerun(third), third.stderr


def test_another_run_in_between_tags_and_fresh_are_not_sealed_reruns(sim, tmp_path: Path
                                                                      ) -> None:
    playbook = write_playbook(tmp_path, sim, TASKS)
    env = env_for(sim)
    finished_and_sealed(playbook, env)
    tagged = runner("-v", "run", playbook, "--skip-tags", "nothing", env=env)
    assert tagged.returncode == 0 and not sealed_rerun(tagged), tagged.stderr
    # that run (of part of the plan, in the state's eyes) came after the seal's
    after = runner("-v", "run", playbook, env=env)
    assert after.returncode == 0 and not sealed_rerun(after), after.stderr
    assert sealed_rerun(runner("-v", "run", playbook, env=env))
    jobs = len(submits(sim))
    fresh = runner("-v", "run", playbook, "--fresh", env=env)
    assert fresh.returncode == 0 and not sealed_rerun(fresh), fresh.stderr
    assert len(submits(sim)) > jobs  # the state forgotten: every export made again
    assert not any(step["reused"] for step in steps_of(playbook))
    again = runner("-v", "run", playbook, env=env)  # sealed by the fresh run, finished
    assert sealed_rerun(again) and all(step["reused"] for step in steps_of(playbook))


def test_a_seal_is_of_its_state_not_of_a_run_id_a_new_state_gives_again(sim, tmp_path: Path
                                                                        ) -> None:
    """The state file is deleted and another playbook of the folder runs first: its second
    run has the seal's run id, but is not the seal's run (the id alone let it through)."""
    playbook = write_playbook(tmp_path, sim, TASKS)
    env = env_for(sim)
    finished_and_sealed(playbook, env)
    for database in (tmp_path / ".insights-runner").glob("state.db*"):
        database.unlink()
    other = tmp_path / "other.yml"
    other.write_text(playbook.read_text(encoding="utf-8").replace(
        "output_dir: reports", "output_dir: other"), encoding="utf-8")
    assert runner("run", other, "-q", env=env).returncode == 0
    assert runner("run", other, "-q", env=env).returncode == 0  # two runs: the seal's id
    sim.log.clear()
    again = runner("-v", "run", playbook, env=env)
    assert again.returncode == 0 and not sealed_rerun(again), again.stderr


def test_a_run_killed_in_a_sealed_rerun_leaves_the_next_run_a_step_by_step_one(
        sim, tmp_path: Path) -> None:
    """After the seal's run is moved on and the run ends in the state, before the seal
    says so: the next run is not sealed (the state's last run is not the seal's)."""
    playbook = write_playbook(tmp_path, sim, TASKS)
    env = env_for(sim)
    finished_and_sealed(playbook, env)
    killed = runner("-v", "run", playbook, env={**env, "INSIGHTS_RUNNER_CRASH_AT": "run-report:1"})
    assert killed.returncode != 0 and sealed_rerun(killed)
    sim.log.clear()
    after = runner("-v", "run", playbook, env=env)
    assert after.returncode == 0 and not sealed_rerun(after), after.stderr
    assert all(step["reused"] for step in steps_of(playbook)) and work_requests(sim) == []


def test_a_shared_postgresql_state_is_never_sealed(sim, tmp_path: Path, pg_url: str) -> None:
    """Other runners may change a shared state's Steps at any time, and its run ids follow
    their start, not their end: a run there always checks every Step."""
    playbook = write_playbook(tmp_path, sim, TASKS)
    env = env_for(sim)
    for _ in range(3):
        done = runner("-v", "run", playbook, "--state", pg_url, env=env)
        assert done.returncode == 0 and not sealed_rerun(done), done.stderr
    assert all(step["reused"] for step in steps_of(playbook))
    assert seals(playbook) == []


def test_a_folder_listing_is_written_a_slice_at_a_time_as_json_would_write_it(
        tmp_path: Path) -> None:
    """The header's text comes in pieces (a folder of 200,000 files is never one string):
    put together, it is the JSON of each folder's three columns, names cut to the folder."""
    from runner.execute.sealed import _HEADER_SLICE, FolderListing, _header_pieces

    found = os.stat(tmp_path)
    expected: dict[str, list[list[Any]]] = {}
    listings: dict[str, FolderListing] = {}
    counts = {"": 3, "access": 2 * _HEADER_SLICE + 5, "access/1/é": 1}
    for folder, count in counts.items():
        listing = listings[folder] = FolderListing(folder)
        for number in range(count):
            relative = f"{folder}/f{number}.zip" if folder else f"f{number}.zip"
            listing.add(relative, found)
        expected[folder] = [[f"f{n}.zip" for n in range(count)], [found.st_size] * count,
                            [found.st_mtime_ns] * count]
    text = "".join(_header_pieces("k", "t", listings, {"summary": {"steps": 1}}))
    header = json.loads(text)
    assert header["files"] == expected
    assert header["report"] == {"summary": {"steps": 1}} and header["key"] == "k"
    assert text.endswith(json.dumps({"files": expected}, ensure_ascii=False)[1:])


def test_a_reruns_order_follows_the_registers_and_is_none_when_it_cannot_be_told() -> None:
    from types import SimpleNamespace

    from runner.execute.rerun_view import rerun_order

    def step(ident: str, task: int, register: str | None = None) -> Any:
        return SimpleNamespace(id=ident, task_index=task, register=register)

    def waits(task: int, *needs: str) -> Any:
        return SimpleNamespace(task_index=task, needs=needs)

    plan = [step("a1", 0, "a"), step("a2", 0, "a"), step("l1", 1), step("b1", 2, "b")]
    deferred = [waits(3, "a"), waits(4, "a", "b"), waits(5, "c")]
    compiled = {3: [step("d1", 3, "c")], 4: [step("e1", 4)], 5: [step("f1", 5)]}
    order = rerun_order(plan, deferred, compiled)
    assert [s.id for s in order or ()] == ["a1", "a2", "d1", "f1", "l1", "b1", "e1"]
    assert rerun_order(plan, deferred, {3: compiled[3], 4: compiled[4]}) is None
    assert rerun_order(plan, deferred, {**compiled, 4: [step("a1", 4)]}) is None
    assert rerun_order(plan, [*deferred, waits(6, "never")], {**compiled, 6: []}) is None
