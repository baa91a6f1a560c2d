"""The run report: ``run-report.json`` (versioned, with its JSON Schema) and the plain
summary printed at the end of a run; JUnit XML (``runner.report.junit``) and
``run-report.html`` beside the JSON (``runner.report.html``, its pictures drawn by
``runner.report.svg`` from the data and the risk queries' output files read by
``runner.report.risk``).  Every name is importable from ``runner.report``.

A report is built from rows, one per Step, read by attribute: the scheduler's ``Outcome``
(``row.step`` is the plan's Step) or a ``StepState`` from the state store (for ``status``).
A report's ``steps`` are a ``StepEntries`` (``runner.report.entries``): each entry made from
its row when read, and summed once into the ``ReportDigest`` (``runner.report.digest``) that
the summary and the HTML page read; a combined report's are a list of entry dicts.
``write_run_report``, ``write_junit`` and ``summary_table`` take either a report dict or the
engine's ``RunResult`` (playbook, run_id, outcomes, skipped_tasks, started, finished,
interrupted), which ``report_from_result`` turns into one.
Times are written as ISO 8601 UTC strings; sizes in bytes.  Nothing secret reaches a report:
rows carry no credentials, and the JSON encoder refuses a ``Secret``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from runner import crashpoint
from runner.execute.outputs import AtomicFile, FileInfo, own_partial_id, remove_stale_partials
from runner.report.digest import ReportDigest
from runner.report.entries import StepEntries, digest_of, ignored, iso_time, step_entry
from runner.report.prepared import PreparedSteps
from runner.secret import Secret

REPORT_VERSION = 1
STEP_STATUSES = ("succeeded", "failed", "skipped", "pending", "interrupted")

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
_TIME = {"type": ["string", "null"], "format": "date-time"}

RUN_REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://insights-runner.example/schemas/run-report.v1.json",
    "title": "insights-runner run report",
    "type": "object",
    "required": ["version", "playbook", "run_id", "started", "finished", "status", "summary",
                 "steps"],
    "properties": {
        "version": {"const": REPORT_VERSION},
        "playbook": {"type": "string"},
        "name": _NULLABLE_STR,
        "run_id": {"type": ["integer", "string", "null"]},
        "started": _TIME,
        "finished": _TIME,
        "status": {"type": "string"},
        "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
        "skipped_tasks": {"type": "array", "items": {"type": "string"}},
        "error": _NULLABLE_STR,
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "task", "operation", "status", "output", "bytes", "sha256",
                             "job_id", "attempts", "started", "finished", "error"],
                "properties": {
                    "id": {"type": "string"},
                    "task": {"type": "string"},
                    "operation": {"type": "string"},
                    "status": {"type": "string"},
                    "output": _NULLABLE_STR,
                    "bytes": _NULLABLE_INT,
                    "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                    "job_id": {"type": ["integer", "string", "null"]},
                    "attempts": {"type": "integer", "minimum": 0},
                    "started": _TIME,
                    "finished": _TIME,
                    "seconds": {"type": ["number", "null"], "minimum": 0},
                    "error": _NULLABLE_STR,
                    "records": _NULLABLE_INT,
                    "reused": {"type": "boolean"},
                    "ignored": {"type": "boolean"},
                    "warnings": {"type": "array", "items": {"type": "string"}},
                    "files": {"type": "array", "items": {"type": "string"},
                              "description": "Files extracted or converted from the output "
                              "(extract, convert), relative to the output folder."},
                    "jobs": {
                        "type": "array",
                        "description": "The export jobs of this Step in this run, each "
                        "holding one of the tenant's slots from submitted to ended.",
                        "items": {
                            "type": "object",
                            "required": ["job_id", "submitted", "ended", "status"],
                            "properties": {
                                "job_id": {"type": ["integer", "string"]},
                                "submitted": _TIME,
                                "ended": _TIME,
                                "status": _NULLABLE_STR,
                            },
                        },
                    },
                },
            },
        },
    },
}


# ----------------------------------------------------------------------------- build


def build_report(*, playbook: str | Path, run_id: int | str | None, started: float | None,
                 finished: float | None, status: str, rows: Iterable[Any],
                 name: str | None = None, skipped_tasks: Iterable[str] = (),
                 error: str | None = None,
                 statuses: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The run report as a dict (``version`` 1; ``steps`` a ``StepEntries`` of ``rows``,
    which ``report_json`` writes as ``RUN_REPORT_SCHEMA`` says).

    ``error``: why the run stopped before its Steps were done (unreachable service, ...).
    ``statuses``: how many rows have each status, when the caller knows without reading
    them (rows made as they are read: ``runner.execute.rerun_view``).
    """
    steps = StepEntries(rows)
    summary = Counter(statuses if statuses is not None else
                      (str(getattr(row, "status", "pending")) for row in steps.rows))
    return {
        "version": REPORT_VERSION,
        "playbook": str(playbook),
        "name": name,
        "run_id": run_id,
        "started": iso_time(started),
        "finished": iso_time(finished),
        "status": str(status),
        "summary": {key: summary.get(key, 0) for key in sorted({*STEP_STATUSES, *summary})},
        "skipped_tasks": [str(task) for task in skipped_tasks],
        "error": error,
        "steps": steps,
    }


def report_from_result(result: Any) -> dict[str, Any]:
    """The report of the engine's ``RunResult``.  Its status: ``interrupted``, ``failed``
    (a Step failed that does not ``ignore_errors``) or ``succeeded``."""
    prepared = getattr(result, "prepared", None)
    if prepared is not None:  # a sealed plan's re-run: every Step reused, entries made
        return {"version": REPORT_VERSION, "playbook": str(result.playbook),
                "name": getattr(result, "name", None), "run_id": result.run_id,
                "started": iso_time(result.started), "finished": iso_time(result.finished),
                "status": "succeeded", "summary": dict(prepared.summary),
                "skipped_tasks": [], "error": None, "steps": prepared}
    outcomes = list(result.outcomes)
    if getattr(result, "interrupted", False):
        status = "interrupted"
    elif any(o.status != "succeeded" and not ignored(o) for o in outcomes):
        status = "failed"
    else:
        status = "succeeded"
    return build_report(playbook=result.playbook, run_id=getattr(result, "run_id", None),
                        started=getattr(result, "started", None),
                        finished=getattr(result, "finished", None), status=status,
                        rows=outcomes, name=getattr(result, "name", None),
                        skipped_tasks=getattr(result, "skipped_tasks", ()),
                        error=getattr(result, "error", None))


def _as_report(report_or_result: Any) -> Mapping[str, Any]:
    if isinstance(report_or_result, Mapping):
        return report_or_result
    return report_from_result(report_or_result)


# ---------------------------------------------------------------------------- write


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        raise TypeError("refusing to write a secret into the run report")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} into the run report")


def report_json(report: Mapping[str, Any]) -> bytes:
    """One key per line, and one line per Step: ``json.dumps`` without ``indent`` takes the
    C encoder, several times faster than the indented one on a report of 200,000 Steps."""
    return b"".join(_encoded(_json_chunks(report)))


STEPS_PER_CHUNK = 1024  # Steps encoded per write: few calls, and little text held at once


def _encoded(chunks: Iterable[str | bytes]) -> Iterator[bytes]:
    return (chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in chunks)


def _json_chunks(report: Mapping[str, Any]) -> Iterator[str | bytes]:
    """``report_json``'s text in pieces, so a report of 200,000 Steps is written without
    its whole text (86 MB, and as many again joined and encoded) held at once.  The first
    piece ends just inside ``steps``: ``_write``'s crash point follows it."""
    head = "{\n"
    for number, (key, value) in enumerate(report.items()):
        head += ("  " if number == 0 else ",\n  ") + f"{json.dumps(key, ensure_ascii=False)}: "
        if key == "steps":
            pieces = step_chunks(value)
            yield head + str(next(pieces))
            yield from pieces
            head = ""
        else:
            head += _compact(value)
    yield head + "\n}\n"


_OPEN, _BETWEEN, _CLOSE = "[\n    ", ",\n    ", "\n  ]"  # a Step a line, indented


def step_chunks(steps: Any) -> Iterator[str | bytes]:
    """The ``steps`` array's text in pieces, the first just its opening bracket (text; the
    others text, or bytes copied from prepared entries)."""
    if not steps:
        yield "[]"
        return
    yield _OPEN
    if isinstance(steps, PreparedSteps):  # made before, by this function (a sealed plan)
        yield from steps.pieces(len(_OPEN))
        return
    batch: list[str] = []
    separator = ""
    for step in steps:
        batch.append(_compact(step))
        if len(batch) == STEPS_PER_CHUNK:
            yield separator + _BETWEEN.join(batch)
            separator, batch = _BETWEEN, []
    yield (separator + _BETWEEN.join(batch) if batch else "") + _CLOSE


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_plain)


def write_report(path: str | Path, report: Any) -> FileInfo:
    """Write ``run-report.json`` atomically (readers never see half a report)."""
    return _write(Path(path), _encoded(_json_chunks(_as_report(report))), "run-report")


def write_run_report(path: str | Path, result: Any) -> Path:
    """Write the JSON report of a ``RunResult``; returns its path."""
    return write_report(path, result).path


def html_path(path: str | Path) -> Path:
    """Where the HTML report goes: beside the JSON one, ``run-report.json`` → ``.html``."""
    path = Path(path)
    return path.with_suffix(".html") if path.suffix.lower() == ".json" else \
        path.with_name(path.name + ".html")


def write_run_reports(path: str | Path, result: Any, output_dir: str | Path) -> Path:
    """The engine's entry point: ``run-report.json`` and ``run-report.html`` beside it (of a
    ``RunResult`` or a report dict; ``output_dir`` is where the Steps' outputs lie, for the
    risk charts).  Returns the JSON report's path."""
    from runner.report.html import write_html

    report = _as_report(result)
    written = write_report(path, report).path
    steps = report["steps"]
    write_html(html_path(written), report, Path(output_dir),
               body=steps.html_body if isinstance(steps, PreparedSteps) else None)
    return written


def _write(path: Path, data: bytes | Iterator[bytes], name: str) -> FileInfo:
    """``write_atomic``, with the crash point ``name`` between the two halves of the data
    (of data made piece by piece: after its first piece).  The partial file is this
    process's own: runners sharing an output folder each write the report whole, the
    last one's in place."""
    chunks = iter((data[: len(data) // 2], data[len(data) // 2:])) \
        if isinstance(data, bytes) else data
    with AtomicFile(path, own_partial_id(name)) as out:
        out.write(next(chunks, b""))
        crashpoint.hit(name)
        for chunk in chunks:
            out.write(chunk)
    assert out.info is not None
    remove_stale_partials(path, name)
    return out.info


# --------------------------------------------------------------------------- terminal


def summary_table(report: Any, *, max_failures: int = 20) -> str:
    """A plain-text summary: one line per task, then the failures, then the totals."""
    report = _as_report(report)
    steps = report["steps"]
    lines = (steps.summary_lines if isinstance(steps, PreparedSteps)
             else summary_body(report, max_failures=max_failures))
    return "\n".join([*lines, "", _totals(report)])


def summary_body(report: Mapping[str, Any], *, max_failures: int = 20) -> list[str]:
    """``summary_table`` but its last line (the totals, which name the run's duration)."""
    digest = digest_of(report["steps"])
    header = ("TASK", "STEPS", "OK", "FAILED", "SKIPPED", "OTHER", "SIZE")
    rows = [header]
    for task, tally in digest.lines.items():
        counts = tally.statuses
        total = tally.count
        other = total - counts["succeeded"] - counts["failed"] - counts["skipped"]
        rows.append((task, str(total), str(counts["succeeded"]), str(counts["failed"]),
                     str(counts["skipped"]), str(other), human_size(tally.size)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    widths[0] = min(widths[0], 48)
    lines = ["  ".join(_cell(value, width, i) for i, (value, width)
                       in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
    failed = digest.by_status["failed"]
    if failed:
        lines.append("")
        lines.append("Failed:")
        for step in digest.failed[:max_failures]:
            first = (step["error"] or "no error recorded").split("\n")[0]
            note = " (ignored)" if step.get("ignored") else ""
            lines.append(f"  {step['output'] or step['id']}{note}: {first}")
        if failed > max_failures:
            lines.append(f"  ... and {failed - max_failures} more (see the run report)")
    lines += _written(digest)
    if report.get("skipped_tasks"):
        lines.append("")
        lines.append("Tasks not run:")
        lines.extend(f"  {task}" for task in report["skipped_tasks"])
    return lines


def _written(digest: ReportDigest) -> list[str]:
    """What was written where: each file and, for an extracted .zip, its folder."""
    if not digest.written:
        return []
    lines = ["", "Written:"]
    for step in digest.written:
        line = f"  {step['output']}"
        if step["bytes"] is not None:
            line += f"  {human_size(step['bytes'])}"
        if step.get("records") is not None:
            line += f", {step['records']} records"
        files = step.get("files") or []
        if files:
            kinds = Counter(Path(f).suffix or "(none)" for f in files)
            what = ", ".join(f"{n} {suffix}" for suffix, n in sorted(kinds.items()))
            line += f"  -> {_common_folder(files)}/ ({what})"
        lines.append(line)
    if digest.written_count > len(digest.written):
        lines.append(f"  ... and {digest.written_count - len(digest.written)} more "
                     "(see the run report)")
    return lines


def _common_folder(files: list[str]) -> str:
    parents = [Path(f).parent.as_posix() for f in files]
    common = parents[0]
    for parent in parents[1:]:
        while common not in (".", "") and not (parent == common or
                                               parent.startswith(common + "/")):
            common = Path(common).parent.as_posix()
    return common


def _cell(value: str, width: int, column: int) -> str:
    if column == 0:
        value = value if len(value) <= width else value[: width - 1] + "…"
        return value.ljust(width)
    return value.rjust(width)


def step_totals(steps: Any) -> tuple[int, int, int]:
    """How many entries were reused; files and bytes the succeeded ones hold."""
    if isinstance(steps, PreparedSteps):
        return steps.totals
    digest = digest_of(steps)
    return digest.reused, digest.done_files, digest.done_bytes


def _totals(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    reused, files, size = step_totals(report["steps"])
    parts = [f"{summary.get('succeeded', 0)} succeeded"
             + (f" ({reused} from an earlier run)" if reused else "")]
    parts += [f"{summary[key]} {key}" for key in summary if key != "succeeded" and summary[key]]
    text = ", ".join(parts) + f"; {files} files, {human_size(size)}"
    started, finished = report.get("started"), report.get("finished")
    if started and finished:
        text += f"; {_duration(_epoch(finished) - _epoch(started))}"
    return f"{report['status']}: {text}"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# JUnit XML lives in its own module, which reads ``_as_report`` from this one (defined above).
from runner.report.junit import junit_xml, write_junit  # noqa: E402

__all__ = [
    "REPORT_VERSION", "RUN_REPORT_SCHEMA", "STEP_STATUSES", "build_report", "html_path",
    "human_size", "iso_time", "junit_xml", "report_from_result", "report_json", "step_entry",
    "summary_table", "write_junit", "write_report", "write_run_report", "write_run_reports",
]
