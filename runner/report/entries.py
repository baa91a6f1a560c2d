"""A report's Step entries: ``step_entry`` makes one from its row, ``StepEntries`` stands in
for the list of them.

A report of 200,000 Steps would hold 200,000 entry dicts (about 600 B each) while its files
are written; ``StepEntries`` holds only the rows (the scheduler's ``Outcome``s, held anyway)
and makes each entry when it is read.  Its first full pass (the JSON text's) also sums the
entries into the ``ReportDigest`` that the terminal summary and the HTML page read, so an
entry is made once for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from runner.report.digest import ReportDigest


class StepEntries(Sequence[dict[str, Any]]):
    """The ``steps`` of a report: an entry a row, made when read (a fresh dict each time)."""

    __slots__ = ("rows", "_digest")

    def __init__(self, rows: Iterable[Any]) -> None:
        # (a list, or a Sequence that makes its rows when read: runner.execute.rerun_view)
        self.rows = rows if isinstance(rows, Sequence) else list(rows)
        self._digest: ReportDigest | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [step_entry(row) for row in self.rows[index]]
        return step_entry(self.rows[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(step_entry, self.rows) if self._digest is not None else self._summing()

    def _summing(self) -> Iterator[dict[str, Any]]:
        digest = ReportDigest()
        for row in self.rows:
            entry = step_entry(row)
            digest.add(entry)
            yield entry
        self._digest = digest  # (only a pass that reached the end)

    def __eq__(self, other: object) -> bool:
        """Equal to a list (or another ``StepEntries``) of the same entries."""
        if not isinstance(other, (list, tuple, StepEntries)):
            return NotImplemented
        return len(self) == len(other) and all(
            mine == theirs for mine, theirs in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # (as a list's)

    @property
    def digest(self) -> ReportDigest:
        if self._digest is None:
            for _ in self._summing():
                pass
        assert self._digest is not None
        return self._digest


def digest_of(steps: Iterable[Any]) -> ReportDigest:
    """The digest of a report's ``steps`` (a ``StepEntries`` sums itself as it is written)."""
    if isinstance(steps, StepEntries):
        return steps.digest
    return ReportDigest.of(steps)


def ignored(row: Any) -> bool:
    """A failed Step of a task that ignores errors."""
    step = getattr(row, "step", row)
    return str(getattr(row, "status", "")) == "failed" and bool(
        getattr(step, "ignore_errors", False))


def step_entry(row: Any) -> dict[str, Any]:
    """One Step's entry, from an ``Outcome`` (with ``.step``) or a ``StepState``."""
    step = getattr(row, "step", row)
    started = _first(row, "started", "started_at")
    finished = _first(row, "finished", "finished_at")
    output = getattr(step, "output", None)
    operation = getattr(step, "operation", "")
    entry: dict[str, Any] = {
        "id": str(step.id),
        "task": str(getattr(step, "task_name", "") or ""),
        "operation": str(getattr(operation, "name", operation)),
        "status": str(getattr(row, "status", "pending")),
        "output": None if output is None else str(output),
        "bytes": getattr(row, "bytes", None),
        "sha256": getattr(row, "sha256", None),
        "job_id": getattr(row, "job_id", None),
        "attempts": int(getattr(row, "attempts", 0) or 0),
        "started": iso_time(started),
        "finished": iso_time(finished),
        "seconds": (round(finished - started, 3)
                    if started is not None and finished is not None else None),
        "error": getattr(row, "error", None),
        "records": getattr(row, "records", None),
        "reused": bool(getattr(row, "reused", False)),
        "ignored": ignored(row),
        "warnings": [str(w) for w in getattr(row, "warnings", ()) or ()],
    }
    files = getattr(row, "files", None)
    if files:  # only Steps that extract or convert have them
        entry["files"] = [str(f) for f in files]
    jobs = getattr(row, "jobs", None)
    if jobs:  # export Steps that held a slot this run
        entry["jobs"] = [{"job_id": job.job_id, "submitted": iso_time(job.submitted),
                          "ended": iso_time(job.ended), "status": job.status}
                         for job in jobs]
    if entry["status"] == "succeeded":
        entry["error"] = None  # an error from an earlier, retried attempt is not the outcome
    return entry


def _first(row: Any, *names: str) -> float | None:
    for name in names:
        value = getattr(row, name, None)
        if value is not None:
            return float(value)
    return None


def iso_time(epoch: float | None) -> str | None:
    """``2026-11-28T09:15:02.125Z`` for an epoch time (None stays None)."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


