"""Runners that share the work (issue 12, items 2 and 5): three `insights-runner run`
processes, each in its own working folder (three machines), on one PostgreSQL state and one
bucket, against three tenants, each its own `insights-runner sim serve` process with a
request log.  One runner is SIGKILLed mid-run and started again; a one-shot export on one
tenant runs meanwhile with the same state URL.  Then the logs and the bucket must show:
every file whole, no job submitted twice, never more than five jobs of a tenant at once (no
refusal either), and a one-shot that waited for a slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import SimProcess, most_at_once, new_bucket

from runner import catalog
from runner.execute.state import StateStore, StepStatus

TENANTS = ("contoso", "fabrikam", "northwind")
DATES = [f"{year}-{month:02d}-01T00:00:00" for year in (2024, 2025) for month in range(1, 13)]
EXPORTS = {op.name for op in catalog.modules() if op.is_export}
LEASE = "3"


def start(args: list[str], cwd: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    """The CLI as a subprocess, its output in files (a full pipe would stall it)."""
    with (cwd / f"{name}.out").open("w") as out, (cwd / f"{name}.err").open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "runner", *args], cwd=cwd, env=env,
                                stdout=out, stderr=err, text=True)


def finish(process: subprocess.Popen, cwd: Path, name: str, timeout: float) -> dict[str, Any]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # PYTHONFAULTHANDLER: SIGABRT prints every thread
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=10)
        pytest.fail(f"{name} did not end within {timeout} s: "
                    f"{(cwd / f'{name}.err').read_text()[-6000:]}")
    err = (cwd / f"{name}.err").read_text()
    assert process.returncode == 0, f"{name} exited {process.returncode}: {err[-3000:]}"
    assert "Traceback" not in err
    return json.loads((cwd / f"{name}.out").read_text())


def machine(root: Path, name: str, sims: dict[str, SimProcess], output_dir: str) -> Path:
    """A working folder with the inventory and the playbook, as a checkout would have."""
    folder = root / name
    folder.mkdir()
    inventory = {"version": 1, "tenants": {
        tenant: {"connection": sim.connection(f"{tenant.upper()}_PFX")}
        for tenant, sim in sims.items()}}
    (folder / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    playbook = {"version": 1, "name": "shared", "hosts": "all", "output_dir": output_dir,
                "tasks": [{"name": "Links", "link_export": {"link_type": "anyone",
                                                            "start_time": "{{ item }}"},
                           "loop": DATES, "output": "{{ tenant }}/{{ item[:7] }}.zip"}]}
    (folder / "playbook.yml").write_text(yaml.safe_dump(playbook), encoding="utf-8")
    return folder


def left_by(pg_url: str, pid: int) -> dict[str, dict[str, StepStatus]]:
    """Per tenant, the unfinished Steps a runner (by pid) held, by startTime: those in
    `submitting` are the documented window where a killed runner's job may go twice."""
    import psycopg

    found: dict[str, dict[str, StepStatus]] = {}
    for tenant in TENANTS:
        with psycopg.connect(pg_url) as conn:
            held = {row[0] for row in conn.execute(
                "SELECT step_id FROM insights_runner_leases.claims WHERE namespace = %s AND "
                "owner LIKE %s", (tenant, f"%-{pid}-%"))}
        with StateStore.open(pg_url, namespace=tenant, readonly=True) as store:
            found[tenant] = {json.loads(state.request)["startTime"]: state.status
                             for state in store.steps_of(held).values()
                             if state.status != StepStatus.SUCCEEDED}
    return found


@pytest.mark.slow
def test_three_runners_share_one_state_and_a_killed_one_is_taken_over(
        pg_url: str, moto, tmp_path: Path) -> None:
    bucket = new_bucket("s3", moto)
    # contoso's jobs are long: its first five hold every slot while the one-shot starts.
    sims = {tenant: SimProcess(tmp_path / "sims" / tenant, seed,
                               "5-6" if tenant == "contoso" else "1-2")
            for seed, tenant in enumerate(TENANTS, start=7)}
    processes: list[subprocess.Popen] = []
    try:
        env = {**os.environ, **bucket.env, "NO_COLOR": "1", "PYTHONFAULTHANDLER": "1",
               "INSIGHTS_RUNNER_STATE": pg_url,
               "INSIGHTS_RUNNER_LEASE_SECONDS": LEASE,
               **{f"{tenant.upper()}_PFX": sim.password for tenant, sim in sims.items()}}
        folders = [machine(tmp_path, f"machine-{i}", sims, bucket.url) for i in (1, 2, 3)]
        args = ["run", "playbook.yml", "-i", "inventory.yml", "--json"]
        runners = [start(args, folder, env, "run") for folder in folders]
        processes += runners

        def submitted() -> int:
            return sum(len(sim.submits()) for sim in sims.values())

        def wait_for(count: Any, least: int) -> None:
            deadline = time.monotonic() + 60
            while count() < least:
                assert all(p.poll() is None for p in runners), "a runner ended early"
                assert time.monotonic() < deadline, "the runners never got going"
                time.sleep(0.05)

        first = sims["contoso"]
        wait_for(lambda: len(first.submits()), 5)  # contoso's five slots are in use
        # A one-shot export on contoso with the same state: it must wait for a slot (the
        # five jobs holding them run for 5 s at least).
        oneshot_dir = tmp_path / "oneshot"
        oneshot_dir.mkdir()
        oneshot = start(["export", "links", "--link-type", "anyone",
                         "--start-time", "2023-06-01T00:00:00", "--base-url", first.base_url,
                         "--identity-url", first.identity_url, "--client-id", first.client_id,
                         "--cert", first.pfx, "--cert-password-env", "CONTOSO_PFX",
                         "-o", str(oneshot_dir / "out"), "--json"],
                        oneshot_dir, {**env, "INSIGHTS_RUNNER_STATE_HOME": str(tmp_path / "h")},
                        "oneshot")
        processes.append(oneshot)
        wait_for(submitted, 20)  # every runner is at work: kill the first
        runners[0].send_signal(signal.SIGKILL)
        runners[0].wait(timeout=30)
        left = left_by(pg_url, runners[0].pid)  # before anyone can take them over
        window = {tenant: {month for month, status in steps.items()
                           if status == StepStatus.SUBMITTING} for tenant, steps in left.items()}
        restarted = start(args, folders[0], env, "rerun")  # the killed machine comes back
        processes.append(restarted)

        reports = [finish(p, f, "run", 60) for p, f in ((runners[1], folders[1]),
                                                          (runners[2], folders[2]))]
        reports.append(finish(restarted, folders[0], "rerun", 60))
        single = finish(oneshot, oneshot_dir, "oneshot", 150)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        for sim in sims.values():
            sim.stop()

    total = len(TENANTS) * len(DATES)
    # Each runner's report covers the whole run: every Step, with its real status.
    for report in reports:
        assert report["summary"]["succeeded"] == total, report["summary"]
        assert len(report["steps"]) == total
    shared_by = Counter(w for r in reports for s in r["steps"] for w in s["warnings"])
    assert shared_by["done by another runner sharing this state"] > 0, shared_by
    # The killed runner's unfinished Steps were taken over (its jobs polled, not resubmitted).
    assert any(left.values()), left
    assert shared_by["taken over from a runner that stopped"] > 0, shared_by

    # No job submitted twice (but in the documented window of the killed runner), no more
    # than five at once on any tenant, and no refusal from the service either.
    for tenant, sim in sims.items():
        entries = sim.entries()
        per_month = Counter(e["fields"].get("startTime") for e in sim.submits())
        twice = {month for month, count in per_month.items() if count > 1}
        assert twice <= window[tenant], (tenant, twice, window[tenant])
        expected = set(DATES) | ({"2023-06-01T00:00:00"} if tenant == "contoso" else set())
        assert set(per_month) == expected
        assert most_at_once(entries) <= catalog.MAX_CONCURRENT_EXPORTS, tenant
        refused = [e for e in entries if e["kind"] == "request"
                   and e["operation"] in EXPORTS and e["status"] == 400]
        assert refused == [], refused[:3]

    # The one-shot waited for one of contoso's slots, held by the runners.
    (step,) = single["steps"]
    assert step["status"] == "succeeded"
    assert any(w.startswith("waited ") and "export slots" in w for w in step["warnings"]), step

    # Every file is whole in the bucket, as the state records it.
    fs = bucket.fs()
    root = bucket.url.split("://", 1)[1]
    for tenant in TENANTS:
        with StateStore.open(pg_url, namespace=tenant, readonly=True) as store:
            states = store.steps()
        assert len(states) == len(DATES)
        assert {s.status for s in states.values()} == {StepStatus.SUCCEEDED}
        for state in states.values():
            data = fs.cat_file(f"{root}/{state.output}")
            assert len(data) == state.bytes
            assert zipfile.ZipFile(BytesIO(data)).testzip() is None
    assert json.loads(fs.cat_file(f"{root}/run-report.json"))["summary"]["succeeded"] == total
