"""``insights-runner plan`` estimates the run's duration from the state's history
(runner.execute.estimate), or says it has none."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from run_support import env_for, runner, twelve_link_exports, write_playbook

from runner.execute.estimate import estimate, lpt
from runner.execute.state import StateStore

ESTIMATE = re.compile(r"^estimate: about (\d+):(\d\d):(\d\d) for 12 export jobs on 5 slots, "
                      r"from the durations of earlier runs in the state$", re.MULTILINE)


def test_plan_says_it_has_no_estimate_before_any_run(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    planned = runner("plan", playbook, env=env_for(sim))
    assert planned.returncode == 0, planned.stderr
    assert "estimate: none: no earlier run in the state" in planned.stdout
    assert not (tmp_path / ".insights-runner").exists()  # plan writes nothing


def test_plan_estimates_from_the_durations_of_the_last_run(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    with StateStore.open(tmp_path / ".insights-runner", readonly=True) as store:
        states = store.steps()
        lengths = store.durations(states)
    assert len(lengths) == 12  # every job's length is in the history

    planned = runner("plan", playbook, env=env_for(sim))
    assert planned.returncode == 0, planned.stderr
    found = ESTIMATE.search(planned.stdout)
    assert found, planned.stdout
    hours, minutes, seconds = map(int, found.groups())
    assert hours * 3600 + minutes * 60 + seconds == round(lpt(lengths.values(), 5))


def test_new_steps_of_a_known_operation_take_its_median(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    moved = write_playbook(tmp_path, sim, twelve_link_exports(output="moved/{{ item[:7] }}.zip"))
    planned = runner("plan", moved, env=env_for(sim))
    assert ESTIMATE.search(planned.stdout), planned.stdout  # other ids, same operation
    assert "not counted" not in planned.stdout


def test_steps_of_an_operation_never_run_are_not_counted(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    more = write_playbook(tmp_path, sim, [*twelve_link_exports(), {
        "name": "Groups", "group_access_export": {"group_ids": ["g1"], "data_sources": ["teams"],
                                                  "export_option": "summary_only"},
        "output": "groups.zip"}])
    planned = runner("plan", more, env=env_for(sim))
    assert planned.returncode == 0, planned.stderr
    assert "for 13 export jobs on 5 slots" in planned.stdout
    assert "; 1 Steps with no history are not counted" in planned.stdout


def _step(step_id: str, operation: str = "link_export", kind: str = "export") -> SimpleNamespace:
    return SimpleNamespace(id=step_id, operation=operation, kind=kind)


def test_the_estimate_lays_jobs_longest_first_on_the_slots() -> None:
    assert lpt([2, 3, 2, 3, 2], 2) == 7  # 3+2+2 | 3+2: LPT, as the scheduler orders them
    steps = [_step(str(n)) for n in range(5)]
    known = {"0": 2.0, "1": 3.0, "2": 2.0, "3": 3.0}  # "4" takes the operation's median
    result = estimate([steps], {}, known, slots=2)
    assert (result.seconds, result.exports, result.unknown) == (7.0, 5, 0)
    deferred = [_step("q", "user_summary", "query")]
    queries = {"q": SimpleNamespace(status="succeeded", started_at=10.0, finished_at=14.0,
                                    operation="user_summary", kind="query")}
    both = estimate([deferred, steps], queries, known, slots=2)
    assert both.seconds == 11.0  # the query, then the jobs that wait for it
    assert estimate([steps], {}, {}, slots=2).seconds is None
