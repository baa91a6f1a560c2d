"""Two machines, simulated by two working folders that share one PostgreSQL state and one
bucket: a run started on the first is cancelled, the second resumes it and finishes with no
second job and every file in the bucket (the issue's "done when")."""

from __future__ import annotations

import json
import shutil
import signal
import time
import zipfile
from collections import Counter
from io import BytesIO
from pathlib import Path

import pytest
from run_support import (
    MONTHS,
    env_for,
    runner,
    start_runner,
    submits,
    twelve_link_exports,
    write_playbook,
)

from runner.execute.state import StateStore, StepStatus
from runner.sim import SimConfig, Simulator


@pytest.fixture
def slow_sim():
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=1.5)) as running:
        yield running


def counts(pg_url: str) -> Counter:
    with StateStore.open(pg_url, readonly=True) as store:
        return Counter({str(k): v for k, v in store.counts().items() if v})


def test_cancelled_on_one_machine_resumed_on_another(slow_sim, pg_url: str, azurite,
                                                     tmp_path: Path) -> None:
    from servers import new_bucket

    bucket = new_bucket("az", azurite)
    sim = slow_sim
    first, second = tmp_path / "machine-a", tmp_path / "machine-b"
    first.mkdir()
    playbook = write_playbook(first, sim, twelve_link_exports(), output_dir=bucket.url)
    env = {**env_for(sim), **bucket.env, "INSIGHTS_RUNNER_STATE": pg_url}
    process = start_runner("run", playbook, env=env)
    deadline = time.monotonic() + 90
    while not (len(submits(sim)) >= 6 and counts(pg_url)["succeeded"] >= 1):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the run never got half way"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # the pipeline cancels the job
    process.communicate(timeout=60)
    assert process.returncode == 130
    left = counts(pg_url)
    assert left["succeeded"] < 12 and left["submitted"] + left["downloading"] >= 1, left
    jobs_before = len(submits(sim))

    # The other machine: a fresh checkout (no .insights-runner/), same database and bucket.
    second.mkdir()
    shutil.copy(playbook, second / playbook.name)
    resumed = runner("run", second / playbook.name, "--json", env=env)

    assert resumed.returncode == 0, resumed.stderr
    per_month = Counter(entry.fields.get("startTime") for entry in submits(sim))
    assert set(per_month) == set(MONTHS) and max(per_month.values()) == 1, per_month
    assert len(submits(sim)) - jobs_before == 12 - jobs_before  # only the never-submitted
    steps = json.loads(resumed.stdout)["steps"]
    assert sum(step["reused"] for step in steps) == left["succeeded"]
    fs = bucket.fs()
    root = bucket.url.split("://", 1)[1]
    with StateStore.open(pg_url, readonly=True) as store:
        states = store.steps()
    assert {s.status for s in states.values()} == {StepStatus.SUCCEEDED}
    for state in states.values():
        data = fs.cat_file(f"{root}/{state.output}")
        assert len(data) == state.bytes
        assert zipfile.ZipFile(BytesIO(data)).testzip() is None
    assert json.loads(fs.cat_file(f"{root}/run-report.json"))["summary"]["succeeded"] == 12
