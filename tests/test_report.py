"""The run report: JSON (versioned, valid against its schema), JUnit XML, terminal summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # noqa: S405 - parsing our own output
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner.execute.state import StateStore
from runner.layout import REPORT_NAME
from runner.report import (
    RUN_REPORT_SCHEMA,
    build_report,
    human_size,
    iso_time,
    junit_xml,
    report_from_result,
    report_json,
    step_entry,
    summary_table,
    write_junit,
    write_report,
    write_run_report,
    write_run_reports,
)
from runner.secret import Secret

SHA = "0f" * 32
T0 = 1_795_852_800.0  # 2026-11-28T08:00:00Z


@dataclass(frozen=True)
class Step:
    id: str
    task_name: str
    operation: str
    output: str | None
    task_index: int = 0
    kind: str = "export"
    format: str | None = None
    ignore_errors: bool = False
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """The attributes of the scheduler's Outcome that the report reads."""

    step: Step
    status: str
    reused: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    job_id: int | str | None = None
    attempts: int = 0
    bytes: int | None = None
    sha256: str | None = None
    records: int | None = None
    started: float | None = None
    finished: float | None = None


def outcomes() -> list[Outcome]:
    sites = [Step(f"s{i}", "Site permission reports", "site_permission_export",
                  f"reports/sites/part-{i}.zip") for i in range(3)]
    users = Step("u1", "Users", "user_summary", "reports/users.jsonl", kind="query")
    return [
        Outcome(sites[0], "succeeded", job_id=11, attempts=1, bytes=2048, sha256=SHA,
                started=T0, finished=T0 + 12.5),
        Outcome(sites[1], "succeeded", reused=True, bytes=4 << 20, sha256=SHA, attempts=1,
                warnings=["the service exported this report with exceptions"]),
        Outcome(sites[2], "failed", job_id=13, attempts=3, started=T0, finished=T0 + 30,
                error="job 13 ended: failed (3)\nafter 3 attempts\x00"),
        Outcome(users, "interrupted", attempts=1, records=300, started=T0),
        Outcome(Step("x", "Tagged", "link_export", "links.zip"), "skipped",
                error="skipped by --skip-tags links"),
    ]


def report(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(playbook="playbooks/review.yml", run_id=7, started=T0,
                                  finished=T0 + 75, status="failed", rows=outcomes(),
                                  name="Quarterly access review")
    values.update(overrides)
    return build_report(**values)


def test_the_report_is_versioned_and_valid_against_its_schema() -> None:
    data = report()
    jsonschema.Draft202012Validator.check_schema(RUN_REPORT_SCHEMA)
    jsonschema.validate(json.loads(report_json(data)), RUN_REPORT_SCHEMA)  # as written
    assert data["version"] == 1
    assert data["started"] == "2026-11-28T08:00:00.000Z"
    assert data["summary"] == {"failed": 1, "interrupted": 1, "pending": 0, "skipped": 1,
                               "succeeded": 2}
    first = data["steps"][0]
    assert first == {
        "id": "s0", "task": "Site permission reports", "operation": "site_permission_export",
        "status": "succeeded", "output": "reports/sites/part-0.zip", "bytes": 2048,
        "sha256": SHA, "job_id": 11, "attempts": 1, "started": "2026-11-28T08:00:00.000Z",
        "finished": "2026-11-28T08:00:12.500Z", "seconds": 12.5, "error": None,
        "records": None, "reused": False, "ignored": False, "warnings": []}


def test_a_report_can_be_built_from_the_state_store(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state", clock=lambda: T0) as store:
        run_id = store.begin_run("pb.yml", "fp")
        step = Step("q1", "Users", "user_summary", "users.jsonl", kind="query", format="jsonl")
        store.register_steps(run_id, [step])
        store.start_paging("q1")
        store.succeeded("q1", bytes=10, sha256=SHA, records=3)
        run = store.run(run_id)
        data = build_report(playbook=run.playbook, run_id=run.id, started=run.started,
                            finished=run.finished, status=run.status,
                            rows=store.steps(run_id).values())
    jsonschema.validate(json.loads(report_json(data)), RUN_REPORT_SCHEMA)  # as written
    entry = data["steps"][0]
    assert (entry["task"], entry["status"], entry["records"], entry["attempts"]) == (
        "Users", "succeeded", 3, 1)
    assert data["status"] == "running" and data["finished"] is None


def test_the_report_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / REPORT_NAME
    path.write_text("the last run's report")
    info = write_report(path, report())
    assert json.loads(path.read_text()) == report()
    assert info.size == path.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == [REPORT_NAME]


def test_a_secret_never_reaches_a_report() -> None:
    leaky = Outcome(Step("a", "t", "user_summary", "u.jsonl"), "failed",
                    error=Secret("eyJhbGciOi.token"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="secret"):
        report_json(report(rows=[leaky]))


def test_junit_has_one_testcase_per_step() -> None:
    root = ET.fromstring(junit_xml(report()))  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"),
            root.get("skipped")) == ("5", "1", "1", "1")
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "Quarterly access review"
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases][:3] == ["Site permission reports"] * 3
    assert cases[0].get("name") == "site_permission_export reports/sites/part-0.zip"
    assert cases[0].get("time") == "12.500"
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("message") == "job 13 ended: failed (3)"
    assert failure.text == "job 13 ended: failed (3)\nafter 3 attempts?"  # NUL made printable
    assert cases[3].find("error") is not None
    assert cases[4].find("skipped").get("message") == "skipped by --skip-tags links"
    out = cases[1].find("system-out").text
    assert "warning: the service exported this report with exceptions" in out
    assert f"sha256 {SHA}" in out


def test_junit_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "ci" / "junit.xml"
    write_junit(path, report())
    assert ET.parse(path).getroot().get("tests") == "5"  # noqa: S314 - our own output


def test_the_summary_has_a_line_per_task_the_failures_and_totals() -> None:
    text = summary_table(report())
    lines = text.splitlines()
    assert lines[0].split() == ["TASK", "STEPS", "OK", "FAILED", "SKIPPED", "OTHER", "SIZE"]
    assert lines[1].split() == ["Site", "permission", "reports", "3", "2", "1", "0", "0",
                                "4.0", "MiB"]
    assert "  reports/sites/part-2.zip: job 13 ended: failed (3)" in lines
    assert lines[-1] == ("failed: 2 succeeded (1 from an earlier run), 1 failed, "
                         "1 interrupted, 1 skipped; 2 files, 4.0 MiB; 1m15s")


def test_the_summary_lists_a_bounded_number_of_failures() -> None:
    many = [Outcome(Step(f"f{i}", "Users", "user_summary", f"u{i}.jsonl"), "failed",
                    error="boom") for i in range(30)]
    text = summary_table(report(rows=many), max_failures=5)
    assert "... and 25 more (see the run report)" in text


def test_an_empty_plan_still_reports() -> None:
    data = report(rows=[], status="succeeded")
    jsonschema.validate(json.loads(report_json(data)), RUN_REPORT_SCHEMA)  # as written
    assert summary_table(data).splitlines()[-1].startswith("succeeded: 0 succeeded; 0 files")
    assert ET.fromstring(junit_xml(data)).get("tests") == "0"  # noqa: S314


def test_helpers() -> None:
    assert iso_time(None) is None
    assert iso_time(T0 + 0.5) == "2026-11-28T08:00:00.500Z"
    assert [human_size(n) for n in (0, 1023, 1024, 5 << 30)] == [
        "0 B", "1023 B", "1.0 KiB", "5.0 GiB"]
    assert step_entry(Outcome(Step("a", "", "user_summary", None), "pending"))["task"] == ""


@dataclass
class RunResult:
    """The attributes of the engine's RunResult that the report reads."""

    run_id: str
    playbook: str
    outcomes: list[Outcome]
    skipped_tasks: list[str]
    started: float
    finished: float
    interrupted: bool = False


def test_a_run_result_is_reported_with_its_status(tmp_path: Path) -> None:
    ok = Outcome(Step("a", "Users", "user_summary", "u.jsonl"), "succeeded", bytes=3,
                 sha256=SHA, started=T0, finished=T0 + 1)
    ignored = Outcome(Step("b", "Links", "link_export", "l.zip", ignore_errors=True), "failed",
                      error="job 5 ended: failed (3)")
    result = RunResult("k1", "pb.yml", [ok, ignored], ["Access: its inputs never arrived"],
                       T0, T0 + 2)
    path = write_run_report(tmp_path / REPORT_NAME, result)
    data = json.loads(path.read_text())
    jsonschema.validate(json.loads(report_json(data)), RUN_REPORT_SCHEMA)  # as written
    assert (data["status"], data["run_id"], data["skipped_tasks"]) == (
        "succeeded", "k1", ["Access: its inputs never arrived"])
    assert [s["ignored"] for s in data["steps"]] == [False, True]
    case = ET.fromstring(junit_xml(result)).findall("testsuite/testcase")[1]  # noqa: S314
    assert case.find("failure") is None
    assert case.find("skipped").get("message") == (
        "failed (errors ignored): job 5 ended: failed (3)")
    text = summary_table(result)
    assert "  l.zip (ignored): job 5 ended: failed (3)" in text
    assert "Tasks not run:\n  Access: its inputs never arrived" in text
    assert text.splitlines()[-1].startswith("succeeded: 1 succeeded, 1 failed;")
    ignored.step = Step("b", "Links", "link_export", "l.zip")
    assert report_from_result(result)["status"] == "failed"
    result.interrupted = True
    assert report_from_result(result)["status"] == "interrupted"


@pytest.mark.parametrize("count", [1, 2048, 2500])  # written in pieces of 1,024 Steps
def test_a_large_report_is_written_whole_one_step_a_line(tmp_path: Path, count: int) -> None:
    rows = [Outcome(Step(f"s{i}", "Users", "user_summary", f"u{i}.jsonl"), "succeeded",
                    bytes=i, sha256=SHA, attempts=1) for i in range(count)]
    data = report(rows=rows, status="succeeded")
    info = write_report(tmp_path / REPORT_NAME, data)
    text = info.path.read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert text.encode() == report_json(data)
    assert text.count('\n    {"id": "s') == count  # one line per Step
    assert [p.name for p in tmp_path.iterdir()] == [REPORT_NAME]  # no partial file left


def test_the_reports_of_many_steps_hold_no_entry_a_step(tmp_path: Path) -> None:
    """The entries are made as the reports are written, and summed once: a report of
    20,000 Steps never holds 20,000 entry dicts (about 600 B each: 12 MB).  What it holds
    is mostly the same at any size: the JSON text's batch, each task's first rows."""
    import tracemalloc

    count = 20_000
    rows = [Outcome(Step(f"s{i}", f"Task {i % 3}", "user_access_export", f"access/{i}.zip"),
                    "succeeded" if i % 50 else "failed", reused=i % 2 == 0, bytes=i,
                    sha256=SHA, attempts=1, job_id=i, started=T0 + i, finished=T0 + i + 2,
                    error=None if i % 50 else "job failed")
            for i in range(count)]
    tracemalloc.start()  # (the rows, held by the run anyway, are not counted)
    try:
        data = report(rows=rows, status="failed")
        written = write_run_reports(tmp_path / REPORT_NAME, data, tmp_path)
        summary = summary_table(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < count * 320, f"{peak / count:.0f} B a Step"  # (836 B before: entry dicts)
    document = json.loads(written.read_text(encoding="utf-8"))
    assert len(document["steps"]) == count and document["summary"]["failed"] == count // 50
    assert document["steps"][-1]["output"] == f"access/{count - 1}.zip"
    assert summary.splitlines()[-1].startswith(
        f"failed: {count - count // 50} succeeded ({count // 2} from an earlier run), "
        f"{count // 50} failed; {count - count // 50} files")
    page = written.with_suffix(".html").read_text(encoding="utf-8")
    assert f"<b>{count}</b><span>Steps</span>" in page
    assert f"Failed Steps ({count // 50})" in page


def test_the_schedulers_outcome_reports_its_digest_as_hex_and_its_jobs_in_order():
    # The scheduler keeps a file's sha256 as its 32 bytes and one job span outside a tuple
    # (memory at 200,000 Steps): the report reads them as before.
    from runner.execute.scheduler import JobSpan
    from runner.execute.scheduler import Outcome as SchedulerOutcome

    step = Step("a", "Access", "user_access_export", "access/1.zip")
    outcome = SchedulerOutcome(step)
    assert outcome.sha256 is None and outcome.jobs == ()
    outcome.sha256 = SHA
    assert outcome.digest == bytes.fromhex(SHA) and outcome.sha256 == SHA
    first = JobSpan("1001", T0, T0 + 2, "failed")
    outcome.add_job(first)
    assert outcome.jobs == (first,)
    outcome.add_job(JobSpan("1002", T0 + 3, T0 + 5, "succeeded"))
    assert outcome.job_id == "1002"
    outcome.status, outcome.bytes = "succeeded", 3
    entry = step_entry(outcome)
    assert entry["sha256"] == SHA
    assert [(job["job_id"], job["status"]) for job in entry["jobs"]] == [
        ("1001", "failed"), ("1002", "succeeded")]
    outcome.sha256 = None
    assert outcome.digest is None and step_entry(outcome)["sha256"] is None
    # A state edited by hand: text that is not a sha256's hex reads back as it was.
    for text in ("not a digest", "0F" * 32, "0g" * 32, "0f " * 21 + "0"):
        outcome.sha256 = text
        assert outcome.sha256 == text


def test_a_job_that_ended_well_is_kept_as_its_end_time_and_reported_as_before():
    # One job per Step, ended well: kept as a float beside the Outcome's job_id and
    # started (64 B a Step less at 200,000); a second job after it keeps the first's id.
    from runner.execute.scheduler import JobSpan
    from runner.execute.scheduler import Outcome as SchedulerOutcome

    step = Step("a", "Access", "user_access_export", "access/1.zip")
    outcome = SchedulerOutcome(step)
    submitted = T0 + 0.5
    outcome.started = submitted
    span = JobSpan("1001", submitted)
    outcome.add_job(span)
    outcome.end_job(span, T0 + 2.25, "succeeded")
    assert isinstance(outcome.spans, float)
    assert outcome.jobs == (JobSpan("1001", submitted, T0 + 2.25, "succeeded"),)
    outcome.add_job(JobSpan("1002", T0 + 3))  # its file did not verify: submitted again
    assert outcome.job_id == "1002"
    assert [(job.job_id, job.submitted, job.ended, job.status) for job in outcome.jobs] == [
        ("1001", submitted, T0 + 2.25, "succeeded"), ("1002", T0 + 3, None, None)]
    entry = step_entry(outcome)
    assert [job["job_id"] for job in entry["jobs"]] == ["1001", "1002"]
    # Anything else stays a JobSpan: a job that failed, or one re-attached from a run
    # before (its submit time is the state's, not this run's start).
    for how, started in (("failed", submitted), ("succeeded", None)):
        other = SchedulerOutcome(step)
        other.started = started
        lone = JobSpan("7", submitted)
        other.add_job(lone)
        other.end_job(lone, T0 + 4.0, how)
        assert other.spans is lone and other.jobs == (JobSpan("7", submitted, T0 + 4.0, how),)
