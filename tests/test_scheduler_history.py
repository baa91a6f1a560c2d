"""Job lengths from earlier runs: the scheduler records them, orders its queue longest-known
first (LPT) and polls a job at its expected end.

The simulator and the scheduler share a virtual clock that only their sleeps move, so every
time below is exact and nothing waits for real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_support import PASSWORD_VAR, twelve_link_exports, write_playbook

from runner import catalog
from runner.client.api import InsightsClient
from runner.client.connection import settings_for_simulator
from runner.execute.engine import ClientJobApi
from runner.execute.scheduler import PollPolicy, Scheduler
from runner.execute.state import StateStore
from runner.manifest import load_playbook
from runner.plan import compile_plan
from runner.sim import SimConfig, Simulator
from runner.sim.jobs import FIRST_JOB_ID

POLL = PollPolicy(floor=0.5, ceiling=30.0, fraction=0.03)
START = catalog.operation("link_export").field("start_time").api
STATUS = catalog.operation("link_export").status_operation.name


class VirtualClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = time.time()  # tokens are checked against it
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def run_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, job_seconds: Any,
             history: Callable[[StateStore, list[Any]], None] | None = None,
             tasks: list[dict[str, Any]] | None = None) -> tuple[Simulator, list[Any], Path]:
    """Run a playbook's export Steps through a Scheduler on a virtual clock; the state
    (and its history) stays in ``tmp_path/state`` for the next call."""
    tmp_path.mkdir(exist_ok=True)
    clock = VirtualClock()
    sim = Simulator(SimConfig(seed=7, scale="small", job_seconds=job_seconds, clock=clock))
    with sim:
        path = write_playbook(tmp_path, sim, tasks or twelve_link_exports())
        monkeypatch.setenv(PASSWORD_VAR, sim.credentials.pfx_password)
        playbook = load_playbook(path)
        steps = list(compile_plan(playbook).steps)
        with StateStore.open(tmp_path / "state") as store, \
                InsightsClient(settings_for_simulator(sim), sleep=clock.sleep) as client:
            store.clear_steps()  # run the jobs again; the history is kept
            store.register_steps(store.begin_run(str(path), "test"), steps)
            if history is not None:
                history(store, steps)
            scheduler = Scheduler(ClientJobApi(client), store, tmp_path / "reports",
                                  poll=POLL, clock=clock, sleep=clock.sleep)
            outcomes = scheduler.run(steps)
    assert [o.status for o in outcomes.values()] == ["succeeded"] * len(steps)
    return sim, steps, tmp_path / "state"


def test_a_run_records_each_steps_job_length_and_the_next_orders_longest_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lengths = [3.0, 1.0, 8.0, 2.0, 5.0, 13.0, 0.7, 4.0, 6.5, 9.0, 1.5, 11.0]
    # The first run submits in plan order: job k belongs to Step k.
    _, steps, state = run_once(tmp_path, monkeypatch,
                               lambda job_id: lengths[job_id - FIRST_JOB_ID])
    with StateStore.open(state) as store:
        recorded = store.durations(s.id for s in steps)
    assert set(recorded) == {s.id for s in steps}
    for step, length in zip(steps, lengths, strict=True):
        # Polled every floor (0.5 s) at these ages: the middle of the last two polls.
        assert abs(recorded[step.id] - length) <= POLL.floor / 2

    sim, _, _ = run_once(tmp_path, monkeypatch, 1.0)

    submitted = [e.fields[START] for e in sim.log.entries
                 if e.operation == "link_export" and e.status == 200]
    by_length = sorted(steps, key=lambda s: -recorded[s.id])
    assert submitted == [s.request[START] for s in by_length]
    assert submitted != [s.request[START] for s in steps]  # the plan's order was not LPT


def test_steps_without_history_go_first_in_plan_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def some_known(store: StateStore, steps: list[Any]) -> None:
        for seconds, step in zip((2.0, 9.0, 4.0), steps[6:9], strict=True):
            store.record_durations({step.id: seconds})

    sim, steps, _ = run_once(tmp_path, monkeypatch, 0.5, some_known)

    submitted = [e.fields[START] for e in sim.log.entries
                 if e.operation == "link_export" and e.status == 200]
    unknown = [*steps[:6], *steps[9:]]
    expected = [*unknown, steps[7], steps[8], steps[6]]
    assert submitted == [s.request[START] for s in expected]


def noticed_and_polls(sim: Simulator) -> tuple[float, int]:
    """(age at which a status answer first said the job ended, status requests made)."""
    entries = sim.log.entries
    submit = next(e.time for e in entries if e.operation == "link_export")
    end = next(j.time for j in sim.log.job_events if j.event == "end")
    polls = [e.time for e in entries if e.operation == STATUS]
    return next(t for t in polls if t >= end) - submit, len(polls)


ONE = [{"name": "Links", "link_export": {"link_type": "anyone"}, "output": "links.zip"}]


@pytest.mark.parametrize("remembered, length", [(7.3, 7.2), (5.0, 5.2)])
def test_a_job_of_known_length_is_polled_at_its_expected_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remembered: float,
        length: float) -> None:
    sim, _, _ = run_once(tmp_path / "plain", monkeypatch, length, tasks=ONE)
    plain_noticed, plain_polls = noticed_and_polls(sim)

    def remember(store: StateStore, steps: list[Any]) -> None:
        store.record_durations({steps[0].id: remembered})

    sim, _, _ = run_once(tmp_path / "known", monkeypatch, length, remember, tasks=ONE)
    noticed, polls = noticed_and_polls(sim)

    # The age rule alone notices the end up to a floor late (every 0.5 s at these ages).
    assert plain_noticed == pytest.approx(7.5 if length == 7.2 else 5.5)
    if remembered >= length:
        assert noticed == pytest.approx(remembered)  # the poll at the expected end
    else:  # longer than last time: the close polls after the expected end
        assert length < noticed <= length + POLL.floor / POLL.close_polls + 1e-9
    assert noticed < plain_noticed
    assert polls <= plain_polls + POLL.close_polls + 1


def test_the_poll_delay_lands_on_the_expected_end_and_never_exceeds_the_age_rule() -> None:
    for age in (0.0, 0.3, 2.0, 40.0, 900.0, 5000.0):
        for expected in (None, 0.2, 1.0, 10.0, 60.0, 1000.0, 4000.0):
            delay = POLL.delay(age, expected)
            assert 0 < delay <= POLL.delay(age)
            if expected is not None and age < expected <= age + POLL.delay(age):
                assert delay == pytest.approx(expected - age)
    # Just after the expected end: close polls; a floor later, the age rule again.
    assert POLL.delay(10.0, 10.0) == POLL.floor / POLL.close_polls
    assert POLL.delay(100.0, 10.0) == POLL.delay(100.0)


def test_durations_survive_fresh_and_migrate_from_schema_1(tmp_path: Path) -> None:
    import sqlite3

    from runner.execute import state as state_module

    # A state directory written by the previous schema gains the history table.
    directory = tmp_path / "state"
    directory.mkdir()
    conn = sqlite3.connect(directory / state_module.DB_NAME)
    for statement in state_module.MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    with StateStore.open(directory) as store:
        assert store.durations(["a"]) == {}
        store.record_durations({"a": 12.5})
        store.clear_steps()
        with pytest.raises(ValueError, match="seconds"):
            store.record_durations({"b": -1.0})
    with StateStore.open(directory, readonly=True) as store:
        assert store.durations(["a", "b"]) == {"a": 12.5}
