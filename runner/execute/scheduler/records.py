"""What the scheduler keeps per Step and per job: the run report's rows and the jobs in flight."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from runner import catalog

# How a job that ended well is named in its span (the export status's member name).
ENDED_WELL = catalog.EXPORT_STATUS.member(catalog.STATUS_SUCCEEDED).name


@dataclass(slots=True)
class JobSpan:
    """One export job's hold on a slot (wall-clock times): from its submit to the poll that
    saw it end, or to the moment the scheduler stopped waiting for it (``ended`` stays None
    while it runs, and when the run was interrupted)."""

    job_id: int | str
    submitted: float | None
    ended: float | None = None
    status: str | None = None  # the job's end (succeeded, failed, ...) or "abandoned"


@dataclass(slots=True)  # one per Step: 200,000 in a plan of v2 size
class Outcome:
    """What became of one Step in this run (the run report's row)."""

    step: Any
    status: str = "pending"  # succeeded | failed | skipped | pending | interrupted
    reused: bool = False  # finished by an earlier run; its file still matches
    error: str | None = None
    # The sequences start as the shared empty tuple (most Steps never get any): three
    # empty lists were 168 B a Step, 34 MB of a 200,000-Step run.  Add through warn/add_job.
    warnings: Sequence[str] = ()
    job_id: int | str | None = None
    attempts: int = 0
    job_failures: int = 0  # tries of this Step that failed this run (jobs, downloads, pages)
    resubmitted_unknown: bool = False  # a re-attached job was unknown and submitted anew
    bytes: int | None = None
    # The file's sha256 as its 32 bytes (``sha256`` reads and sets it as hex): its hex
    # text was 48 B more a Step, 9 MB of a 200,000-Step run.  Text that is not a sha256's
    # hex (a state edited by hand) is kept as it is.
    digest: builtins.bytes | str | None = None
    mtime_ns: int | None = None  # of the file, as the state recorded it (a reused Step's)
    records: int | None = None
    started: float | None = None
    finished: float | None = None
    files: Sequence[str] = ()  # extracted/converted, output-relative
    # Every job of this Step this run (read as ``jobs``): the one most Steps have is kept
    # itself, not in a tuple of one (56 B a Step, 11 MB at 200,000); once it ended well
    # (``end_job``), only its end time, a float: its id and submit time are the Outcome's
    # ``job_id`` and ``started`` (its JobSpan was 64 B more, 12 MB at 200,000).
    spans: JobSpan | tuple[JobSpan, ...] | float = ()

    @property
    def sha256(self) -> str | None:
        digest = self.digest
        return digest.hex() if isinstance(digest, bytes) else digest

    @sha256.setter
    def sha256(self, value: str | None) -> None:
        self.digest = value
        if value is not None and len(value) == 64 and value == value.lower():
            with contextlib.suppress(ValueError):
                raw = bytes.fromhex(value)
                if len(raw) == 32:  # 64 hex digits, no spaces: it reads back the same
                    self.digest = raw

    @property
    def jobs(self) -> tuple[JobSpan, ...]:
        spans = self.spans
        if isinstance(spans, float):  # (end_job: job_id is that job's, never None)
            return (JobSpan(cast("int | str", self.job_id), self.started, spans, ENDED_WELL),)
        return (spans,) if isinstance(spans, JobSpan) else spans

    # Tuples, not lists: a Step's one job span in a list was 40 B more (8 MB at 200,000).
    def warn(self, text: str) -> None:
        self.warnings = (*self.warnings, text)

    def add_job(self, span: JobSpan) -> None:
        """A job of this Step was submitted (or found submitted): it is its ``job_id``."""
        self.spans = span if self.spans == () else (*self.jobs, span)  # (read before:
        self.job_id = span.job_id  # a job that ended well reads its id from job_id)

    def end_job(self, span: JobSpan, ended: float, how: str) -> None:
        """``span`` (one of this Step's jobs) no longer holds a slot: ``how`` it ended."""
        span.ended, span.status = ended, how
        if self.spans is span and how == ENDED_WELL and isinstance(ended, float) and \
                span.job_id == self.job_id and span.submitted == self.started:
            self.spans = ended  # what ``jobs`` gives back is the same span


@dataclass
class ActiveJob:
    """An export job this run polls: it holds one of the tenant's slots."""

    step: Any
    job_id: int | str
    submitted: float
    next_poll: float
    poll_errors: int = 0
    reattached: bool = False  # found submitted by an earlier run
    odd_answers: int = 0  # status codes that are not a job's (0, or unknown ones)
    span: JobSpan | None = None  # the run report's record of the slot it holds
    expected: float | None = None  # its Step's job length in an earlier run (seconds)
    running_at: float = 0.0  # the age at which a poll last saw it still running



def reused_values(state: Any) -> dict[str, Any]:
    """What a Step finished by an earlier run reports, from its state row (a ``StepState``):
    its file's size, hash and records, and when that run made it.  Nothing of the run that
    reuses it, so that every re-run reports it alike (``runner.execute.sealed`` relies on
    that)."""
    return {"attempts": state.attempts, "job_id": state.job_id, "bytes": state.bytes,
            "sha256": state.sha256, "mtime_ns": state.mtime_ns,
            "records": state.records or None,
            "started": state.started_at, "finished": state.finished_at}
