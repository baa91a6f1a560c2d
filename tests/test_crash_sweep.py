"""Every crash point, not a sample (in the spirit of SQLite's crash tests).

For each scenario (exports with extract + convert, the three query formats, a deferred
task) and each point in ``runner.crashpoint.POINTS``: a run is killed (SIGKILL, by the
runner itself) at the point's first pass, then run again until it finishes.  Then:

* the outputs equal a clean run's: the same bytes for queries and converted CSVs, the same
  members for zips; no hidden partial file is left;
* the simulator's log shows each Step's job submitted once, except at the one documented
  window (``after-submit``: the POST went out, the job id was not yet committed);
* no Step is left that a later run cannot finish: the re-run ends with exit 0, every Step
  succeeded, in at most a few runs.
"""

from __future__ import annotations

import json
import re
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from run_support import REPO, env_for, report, runner, submits, write_playbook

from runner import crashpoint
from runner.sim import SimConfig, Simulator

SITES = [f"https://contoso.sharepoint.com/sites/site0000{n}" for n in (3, 4)]
WINDOW = "after-submit"  # the documented window: a job the state has no id for
MAX_RUNS = 4


def records(fmt: str) -> list[dict]:
    return [{"name": "Records", "detail_records": {"page_size": 7}, "format": fmt,
             "output": f"records.{fmt}"}]


SCENARIOS = {
    "exports": [
        {"name": "Sites", "site_permission_export": {"site_urls": SITES}, "output": "sites.zip",
         "extract": True, "convert": "csv"},
        {"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links.zip"},
    ],
    "jsonl": records("jsonl"),
    "json": records("json"),
    "csv": records("csv"),
    "deferred": [
        {"name": "Ids", "site_ids": {"site_urls": SITES}, "register": "known",
         "output": "ids.jsonl"},
        {"name": "Per site", "site_permission_export": {"site_urls": ["{{ item.siteUrl }}"]},
         "loop": "{{ known }}", "output": "by-site/{{ item.siteUrl.split('/')[-1] }}.zip"},
    ],
}


def outputs(reports: Path) -> dict[str, object]:
    """What a user gets: zips (and .xlsx) by their members, every other file by its bytes."""
    seen: dict[str, object] = {}
    for path in sorted(reports.rglob("*")):
        name = path.relative_to(reports).as_posix()
        if name == "run-report.html":  # it carries this run's times; it must be whole
            assert path.read_bytes().endswith(b"</html>\n"), name
            continue
        if path.is_dir() or path.name.startswith(".") or name in ("run-report.json",
                                                                   "junit.xml"):
            continue
        if path.suffix in (".zip", ".xlsx"):  # their bytes hold the job's time stamp
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, name
                seen[name] = sorted(archive.namelist())
        else:
            seen[name] = path.read_bytes()
    return seen


def run_until_done(playbook: Path, sim) -> int:
    for number in range(1, MAX_RUNS + 1):
        again = runner("run", playbook, "--junit", playbook.parent / "reports" / "junit.xml",
                       env=env_for(sim))
        if again.returncode == 0:
            return number
        assert again.returncode == -9 or "Traceback" not in again.stderr, again.stderr
    pytest.fail(f"{playbook}: not finished after {MAX_RUNS} runs: {again.stderr[-2000:]}")


def test_every_point_is_passed_somewhere_and_named_once() -> None:
    source = "\n".join(p.read_text("utf-8") for p in (REPO / "runner").rglob("*.py"))
    called = re.findall(r'crashpoint\.hit\("([a-z-]+)"\)', source)
    called += re.findall(r'return _write\(Path\(path\), .*, "([a-z-]+)"\)', source)  # report.py
    assert sorted(called) == sorted(crashpoint.POINTS)
    state_py = REPO / "runner" / "execute" / "state.py"
    if state_py.exists():
        assert "crashpoint" not in state_py.read_text("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kill_at_every_point_then_run_again(scenario: str, tmp_path: Path) -> None:
    tasks = SCENARIOS[scenario]
    started = time.monotonic()
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=0.05)) as sim:
        clean = tmp_path / "clean"
        clean.mkdir()
        assert runner("run", write_playbook(clean, sim, tasks), env=env_for(sim)
                      ).returncode == 0
        expected = outputs(clean / "reports")
        assert expected
        reached, duplicates = [], Counter()
        for point in crashpoint.POINTS:
            folder = tmp_path / point
            folder.mkdir()
            playbook = write_playbook(folder, sim, tasks)
            mark = len(sim.log.entries)
            env = {**env_for(sim), crashpoint.ENV: f"{point}:1"}
            killed = runner("run", playbook, "--junit", folder / "reports" / "junit.xml",
                            env=env)
            if killed.returncode == 0:
                continue  # this scenario never passes the point
            assert killed.returncode == -9, (point, killed.stderr[-2000:])
            reached.append(point)

            runs = run_until_done(playbook, sim)

            assert runs <= 2, (point, runs)
            assert outputs(folder / "reports") == expected, point
            assert not list((folder / "reports").rglob(".*partial*")), point
            assert all(step["status"] == "succeeded" for step in report(playbook)["steps"])
            per_step = Counter(json.dumps(e.fields, sort_keys=True)
                               for e in submits(sim) if sim.log.entries.index(e) >= mark)
            twice = sum(count - 1 for count in per_step.values())
            if point != WINDOW:
                assert twice == 0, (point, per_step)
            duplicates[point] += twice
    seconds = time.monotonic() - started
    print(f"\n{scenario}: {len(reached)} points reached of {len(crashpoint.POINTS)} "
          f"({', '.join(reached)}); duplicate submits {sum(duplicates.values())} "
          f"(all at {WINDOW}); {seconds:.1f} s")
    must = {"exports": {"before-submit", "after-submit", "job-id-committed", "download-chunk",
                        "download-last-byte", "download-fsynced", "download-renamed",
                        "extract", "convert", "run-report", "junit"},
            "deferred": {"deferred-compile", "before-submit", "download-renamed",
                         "before-page-checkpoint"}}.get(
        scenario, {"before-page-checkpoint", "after-page-checkpoint", "run-report", "junit"})
    assert must <= set(reached), must - set(reached)
