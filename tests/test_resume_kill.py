"""SIGKILL the runner at its worst moments, run it again, and check that nothing is lost,
nothing is corrupt, and no export job is submitted twice outside the documented window
(a Step left in ``submitting``: killed between the POST and the commit of its job id)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from run_support import (
    MONTHS,
    env_for,
    report,
    runner,
    start_runner,
    submits,
    twelve_link_exports,
    write_playbook,
)

from runner.sim import SimConfig, Simulator


@pytest.fixture
def slow_sim():
    """Export jobs long enough (1.5 s) that a kill lands while they are in progress."""
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=1.5)) as running:
        yield running


def kill_when(process, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the runner ended before the kill point: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the kill point was never reached")
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)  # reap it and close its pipes
    assert process.returncode == -signal.SIGKILL


def step_states(state_dir: Path) -> Counter:
    with sqlite3.connect(state_dir / "state.db") as db:
        return Counter(status for (status,) in db.execute("SELECT status FROM steps"))


def submitting_requests(state_dir: Path) -> list[dict]:
    with sqlite3.connect(state_dir / "state.db") as db:
        return [json.loads(request) for (request,) in
                db.execute("SELECT request FROM steps WHERE status = 'submitting'")]


def test_killed_after_submitting_resumes_by_polling_not_resubmitting(slow_sim, tmp_path: Path
                                                                      ) -> None:
    sim = slow_sim
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    process = start_runner("run", playbook, env=env_for(sim))

    kill_when(process, lambda: len(submits(sim)) >= 3)
    in_window = submitting_requests(tmp_path / ".insights-runner")
    first_run = len(submits(sim))

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    per_step = Counter(entry.fields.get("startTime") for entry in submits(sim))
    assert set(per_step) == set(MONTHS)
    twice = {month for month, count in per_step.items() if count > 1}
    allowed = {request["startTime"] for request in in_window}
    assert twice <= allowed, "a job was submitted twice outside the documented window"
    assert first_run >= 3
    for month in MONTHS:
        with zipfile.ZipFile(tmp_path / "reports" / "links" / f"{month[:7]}.zip") as archive:
            assert archive.testzip() is None
    assert all(step["status"] == "succeeded" for step in report(playbook)["steps"])


def test_killed_mid_pagination_goes_on_from_the_last_token(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {"name": "Records", "detail_records": {"page_size": 5}, "output": "records.jsonl"}])
    process = start_runner("run", playbook, env=env_for(sim))

    def pages() -> list:
        return [e for e in sim.log.entries if e.operation == "detail_records"]

    kill_when(process, lambda: len(pages()) >= 6)
    assert step_states(tmp_path / ".insights-runner")["paging"] == 1
    assert not (tmp_path / "reports" / "records.jsonl").exists()  # never half-written

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    first_pages = [e for e in pages() if not e.fields.get("token")]
    assert len(first_pages) == 1, "the second run started over instead of resuming"
    lines = (tmp_path / "reports" / "records.jsonl").read_text("utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)), "a record was written twice"
    # every record, compared with an uninterrupted run into another folder
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    reference = write_playbook(fresh, sim, [
        {"name": "Records", "detail_records": {"page_size": 5}, "output": "records.jsonl"}])
    assert runner("run", reference, env=env_for(sim)).returncode == 0
    expected = (fresh / "reports" / "records.jsonl").read_text("utf-8").splitlines()
    assert lines == expected


def test_killed_mid_download_goes_on_from_the_bytes_it_has(tmp_path: Path) -> None:
    size = 200 * 1024 * 1024  # big enough to be caught in the middle of its transfer
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=0.2,
                             export_bytes=size)) as sim:
        playbook = write_playbook(tmp_path, sim, [{
            "name": "Sites", "site_permission_export": {
                "site_urls": ["https://contoso.sharepoint.com/sites/site00003"]},
            "output": "sites.zip"}])
        reports = tmp_path / "reports"
        process = start_runner("run", playbook, env=env_for(sim))

        def partial_bytes() -> int:
            return sum(p.stat().st_size for p in reports.glob(".sites.zip.partial-*"))

        kill_when(process, lambda: partial_bytes() > 8 * 1024 * 1024)
        assert not (reports / "sites.zip").exists()  # never half-written under its name
        had = partial_bytes()

        again = runner("run", playbook, env=env_for(sim))

        assert again.returncode == 0, again.stderr
        assert len(submits(sim)) == 1, "the job was submitted again"
        resumed = [e for e in sim.log.requests("permission_export_file") if e.status == 206]
        assert resumed, f"the second run fetched the whole file again (had {had} bytes)"
        final = reports / "sites.zip"
        assert final.stat().st_size == size
        with zipfile.ZipFile(final) as archive:
            assert archive.testzip() is None
        assert not list(reports.glob(".*partial*"))


def test_ctrl_c_stops_cleanly_and_the_next_run_polls_the_jobs_it_left(slow_sim, tmp_path: Path
                                                                       ) -> None:
    sim = slow_sim
    playbook = write_playbook(tmp_path, sim, twelve_link_exports())
    process = start_runner("run", playbook, env=env_for(sim))
    deadline = time.monotonic() + 60
    while len(submits(sim)) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    states = step_states(tmp_path / ".insights-runner")
    assert states["submitted"] + states["downloading"] + states["succeeded"] >= 5
    before = Counter(e.fields.get("startTime") for e in submits(sim))

    again = runner("run", playbook, env=env_for(sim))

    assert again.returncode == 0, again.stderr
    after = Counter(e.fields.get("startTime") for e in submits(sim))
    assert all(count == 1 for count in after.values()), "a job was submitted twice"
    assert set(after) == set(MONTHS) and set(before) < set(after)


def test_ctrl_c_reaches_every_tenant_of_an_inventory_run(tmp_path: Path) -> None:
    from test_inventory import env_for_two, two_tenants

    tasks = twelve_link_exports(output="{{ tenant }}/{{ item[:7] }}.zip")
    with Simulator(SimConfig(seed=7, job_seconds=1.5)) as first, \
            Simulator(SimConfig(seed=8, job_seconds=1.5)) as second:
        playbook = two_tenants(tmp_path, first, second, tasks)
        env = env_for_two(first, second)
        process = start_runner("run", playbook, env=env)
        deadline = time.monotonic() + 60
        while (len(submits(first)) < 5 or len(submits(second)) < 5) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)

        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr

        again = runner("run", playbook, env=env)

        assert again.returncode == 0, again.stderr
        for sim in (first, second):
            per_step = Counter(e.fields.get("startTime") for e in submits(sim))
            assert set(per_step) == set(MONTHS)
            assert all(count == 1 for count in per_step.values()), "submitted twice"
