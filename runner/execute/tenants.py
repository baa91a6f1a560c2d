"""Several tenants side by side: one engine run per tenant, each in its own thread.

Each tenant has its own connection, its own scheduler (so its own five export slots) and
its own state (``<state dir>/<tenant>/`` with its own lock, or its own namespace of a
PostgreSQL state), so one slow or unreachable
tenant neither holds back nor breaks another.  When the threads are done there is one run
report listing the Steps of every tenant (each Step says its ``tenant``; ``output`` is
relative to the report's folder), and the exit code is the worst of the tenants'.

Ctrl-C stops waiting; every tenant's state is committed at each step, so the next run
resumes them all.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import Interrupted, RunnerError
from runner.execute.engine import REPORT_NAME, RunOptions, RunResult, run_plan
from runner.execute.remote import (
    RemoteOutputs,
    local_output_dir,
    publish_reports,
    url_for_staging,
)
from runner.execute.scheduler import Stop
from runner.execute.state.location import TenantState, for_tenant


@dataclass
class TenantRun:
    """One tenant's plan, and how its run ended (a result, or the error that stopped it)."""

    tenant: str | None
    playbook: Any  # runner.manifest.Playbook, as the tenant sees it
    plan: Any  # runner.plan.Plan
    result: RunResult | None = None
    error: RunnerError | None = None

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        return self.result.exit_code if self.result is not None else 1


@dataclass
class TenantsResult:
    runs: list[TenantRun]
    report: dict[str, Any]
    report_path: Path | None

    @property
    def exit_code(self) -> int:
        codes = [run.exit_code for run in self.runs]
        return 130 if 130 in codes else max(codes, default=0)


def state_dir_for(options: RunOptions, playbook_path: str | Path, tenant: str | None) -> Path:
    """The tenant's own local state folder: ``<state dir>/<tenant>`` (the state dir
    without one)."""
    return state_for(options, playbook_path, tenant).local_dir


def state_for(options: RunOptions, playbook_path: str | Path, tenant: str | None
              ) -> TenantState:
    """The tenant's own state: a sub-folder of the state folder, or a namespace of the
    PostgreSQL state."""
    return for_tenant(options.state or options.state_dir, playbook_path, tenant)


def run_one(run: TenantRun, options: RunOptions,
            on_event: Callable[[Any], None] | None = None) -> TenantRun:
    """A tenant's run with its own state folder (errors propagate)."""
    where = state_for(options, run.plan.playbook, run.tenant)
    mine = dataclasses.replace(options, tenant_state=where,
                               state_dir=None if where.shared else where.local_dir)
    run.result = run_plan(run.playbook, run.plan, mine, on_event=on_event)
    return run


def run_tenants(runs: Sequence[TenantRun], options: RunOptions,
                on_event: Callable[[Any], None] | None = None) -> TenantsResult:
    """Run every tenant's plan at once and write one combined run report."""
    from runner.report import write_junit, write_run_reports

    stop = Stop()
    shared = dataclasses.replace(options, write_report=False, junit=None, stop=stop)
    lock = threading.Lock()

    class Tagged:
        """A tenant's events, with its name added, for the one progress display."""

        def __init__(self, tenant: str | None) -> None:
            self.tenant = tenant
            self.wants_history = getattr(on_event, "wants_history", False)

        def __call__(self, value: Any) -> None:
            if on_event is not None:
                with lock:  # one progress display for every thread
                    on_event((*value, self.tenant))

    failures: list[BaseException] = []

    def work(run: TenantRun) -> None:
        try:
            run_one(run, shared, Tagged(run.tenant))
        except RunnerError as error:  # this tenant stops; the others go on
            run.error = error
        except BaseException as exc:  # a bug: re-raised in the main thread
            failures.append(exc)

    started = time.time()
    threads = [threading.Thread(target=work, args=(run,), name=f"tenant-{run.tenant}",
                                daemon=True) for run in runs]
    with stop.on_sigint():  # Ctrl-C reaches every tenant's scheduler between two steps
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    report = combined_report(runs, started, time.time())
    folder = report_folder(runs)
    path = write_run_reports(options.report_path or folder / REPORT_NAME, report, folder)
    url = url_for_staging(runs[0].plan.playbook, folder)
    if url is not None and options.report_path is None:  # beside the files, in the bucket
        publish_reports(RemoteOutputs(url, folder), path)
    if options.junit:
        write_junit(options.junit, report)
    if stop.is_set():
        raise Interrupted("interrupted; submitted jobs are recorded for the next run")
    return TenantsResult(list(runs), report, path)


def report_folder(runs: Sequence[TenantRun]) -> Path:
    """Where the combined report goes: the folder every tenant's output_dir lies in (their
    staging folders' when the outputs are in object storage)."""
    return Path(os.path.commonpath([str(local_output_dir(run.plan)) for run in runs]))


def combined_report(runs: Sequence[TenantRun], started: float, finished: float
                    ) -> dict[str, Any]:
    """One report for every tenant: each Step with its ``tenant``, plus a line per tenant."""
    from runner.report import build_report, report_from_result

    folder = report_folder(runs)
    steps: list[dict[str, Any]] = []
    tenants: dict[str, Any] = {}
    skipped: list[str] = []
    for run in runs:
        name = str(run.tenant)
        if run.result is None:  # it stopped before its Steps ran: one failed entry says why
            tenants[name] = {"status": "failed", "summary": {}, "exit_code": run.exit_code,
                             "error": str(run.error)}
            steps.append(_stopped(name, str(run.error)))
            continue
        own = report_from_result(run.result)
        prefix = os.path.relpath(local_output_dir(run.plan), folder)
        for step in own["steps"]:
            if step["output"] is not None and prefix != ".":
                step["output"] = f"{Path(prefix).as_posix()}/{step['output']}"
            steps.append({"tenant": name, **step})
        skipped += [f"{name}: {task}" for task in own["skipped_tasks"]]
        tenants[name] = {"status": own["status"], "summary": own["summary"],
                         "exit_code": run.exit_code, "error": None}
    statuses = {t["status"] for t in tenants.values()}
    status = "interrupted" if "interrupted" in statuses else \
        "failed" if "failed" in statuses else "succeeded"
    report = build_report(playbook=runs[0].plan.playbook, run_id=None, started=started,
                          finished=finished, status=status, rows=(),
                          name=runs[0].plan.name, skipped_tasks=skipped)
    counts = Counter(step["status"] for step in steps)
    report["summary"] = {k: counts.get(k, 0) for k in sorted({*report["summary"], *counts})}
    report["steps"] = steps
    report["tenants"] = tenants
    return report


def _stopped(tenant: str, error: str) -> dict[str, Any]:
    """A report entry for a tenant that never got to its Steps (so JUnit shows it too)."""
    return {"tenant": tenant, "id": f"tenant-{tenant}", "task": f"tenant {tenant}",
            "operation": "connection", "status": "failed", "output": None, "bytes": None,
            "sha256": None, "job_id": None, "attempts": 0, "started": None, "finished": None,
            "seconds": None, "error": error, "records": None, "reused": False,
            "ignored": False, "warnings": []}
