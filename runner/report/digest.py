"""What the summaries read of a report's Step entries, gathered in one pass.

The terminal summary, the HTML page and the totals line each want counts and sums over
every entry, and a few entries themselves: the failures, each task's first rows, the first
files written, the slot timeline's jobs, the risk tasks' Steps.  ``ReportDigest`` takes the
entries one at a time and keeps just that, so a report of 200,000 Steps is summed without
its entries held at once (as dicts, about 600 B each: 115 MiB).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runner.report.risk import DETAIL_OPERATIONS, SITE_OVERVIEW

FAILURES_KEPT = 1000  # failed entries kept: the page lists this many, the JSON report all
TASK_ROWS_KEPT = 500  # a task's first entries kept: its table on the page
WRITTEN_KEPT = 12  # files named by the terminal summary
TIMELINE_JOBS = 5000  # jobs drawn one by one on the page; more are only summed

Entry = Mapping[str, Any]
JobSpan = tuple[float, float | None, Mapping[str, Any], Entry]  # submitted, ended, job, step


def epoch(iso: Any) -> float | None:
    """The epoch time of a report's ISO 8601 time (None for none, or for no time)."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


@dataclass
class TaskTally:
    """One task's Steps: a line of the terminal summary, or a table of the page."""

    operation: str  # its first Step's
    statuses: Counter[str] = field(default_factory=Counter)
    size: int = 0  # bytes, over every status
    rows: list[Entry] = field(default_factory=list)  # its first entries (the page's)

    @property
    def count(self) -> int:
        return sum(self.statuses.values())


@dataclass
class TenantSlots:
    """One tenant's export jobs in this run, summed: how busy its slots were."""

    jobs: int = 0
    first_submit: float = math.inf
    last_end: float = -math.inf  # of the jobs that ended
    ended_seconds: float = 0.0  # of the jobs that ended
    running: int = 0  # jobs not seen to end
    running_submits: float = 0.0  # the sum of their submit times

    def window(self, finish: float) -> float:
        """Seconds from its first submit to its last job's end (still running: ``finish``)."""
        return (finish if self.running else self.last_end) - self.first_submit

    def busy(self, finish: float) -> float:
        """Seconds its jobs held a slot, a job still running until ``finish``."""
        return self.ended_seconds + self.running * finish - self.running_submits


@dataclass
class ReportDigest:
    """A report's entries, summed; ``add`` them in report order."""

    count: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    reused: int = 0  # entries reused, any status
    done_reused: int = 0  # succeeded entries: reused, with bytes, bytes, records
    done_files: int = 0
    done_bytes: int = 0
    done_records: int = 0
    lines: dict[str, TaskTally] = field(default_factory=dict)  # task or operation
    tables: dict[str, TaskTally] = field(default_factory=dict)  # "tenant: " task or operation
    failed: list[Entry] = field(default_factory=list)  # the first FAILURES_KEPT
    failed_tenant: bool = False  # a failed entry names its tenant (a combined report)
    written: list[Entry] = field(default_factory=list)  # the first WRITTEN_KEPT with a file
    written_count: int = 0
    slots: dict[str, TenantSlots] = field(default_factory=dict)  # by tenant ("" for one)
    jobs: int = 0
    first_submit: float | None = None  # of the first job in entry order
    earliest_submit: float = math.inf
    latest_moment: float = -math.inf  # every job's end, or its submit when it did not end
    spans: dict[str, list[JobSpan]] | None = field(default_factory=dict)  # None past the cap
    risk_steps: list[Entry] = field(default_factory=list)  # succeeded risk queries' entries

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> ReportDigest:
        digest = cls()
        for entry in entries:
            digest.add(entry)
        return digest

    def add(self, entry: Entry) -> None:
        self.count += 1
        status = entry["status"]
        self.by_status[status] += 1
        size = entry["bytes"] or 0
        reused = entry["reused"]
        if reused:
            self.reused += 1
        succeeded = status == "succeeded"
        if succeeded:
            self.done_reused += bool(reused)
            self.done_files += bool(entry["bytes"])
            self.done_bytes += size
            self.done_records += entry.get("records") or 0
            if entry["output"]:
                self.written_count += 1
                if len(self.written) < WRITTEN_KEPT:
                    self.written.append(entry)
                if entry["operation"] == SITE_OVERVIEW or entry["operation"] in DETAIL_OPERATIONS:
                    self.risk_steps.append(entry)
        elif status == "failed":
            self.failed_tenant = self.failed_tenant or "tenant" in entry
            if len(self.failed) < FAILURES_KEPT:
                self.failed.append(entry)
        name = entry["task"] or entry["operation"]
        line = self.lines.get(name)
        if line is None:
            line = self.lines[name] = TaskTally(entry["operation"])
        line.statuses[status] += 1
        line.size += size
        table_name = str(name) if "tenant" not in entry else f"{entry['tenant']}: {name}"
        table = self.tables.get(table_name)
        if table is None:
            table = self.tables[table_name] = TaskTally(entry["operation"])
        table.statuses[status] += 1
        if len(table.rows) < TASK_ROWS_KEPT:
            table.rows.append(entry)
        for job in entry.get("jobs") or ():
            submitted = epoch(job["submitted"])
            if submitted is not None:
                self._add_job(str(entry.get("tenant") or ""), submitted,
                              epoch(job["ended"]), job, entry)

    def _add_job(self, tenant: str, submitted: float, ended: float | None,
                 job: Mapping[str, Any], entry: Entry) -> None:
        self.jobs += 1
        if self.first_submit is None:
            self.first_submit = submitted
        self.earliest_submit = min(self.earliest_submit, submitted)
        self.latest_moment = max(self.latest_moment, ended or submitted)
        slots = self.slots.get(tenant)
        if slots is None:
            slots = self.slots[tenant] = TenantSlots()
        slots.jobs += 1
        slots.first_submit = min(slots.first_submit, submitted)
        if ended is None:
            slots.running += 1
            slots.running_submits += submitted
        else:
            slots.last_end = max(slots.last_end, ended)
            slots.ended_seconds += ended - submitted
        if self.spans is not None:
            if self.jobs > TIMELINE_JOBS:
                self.spans = None  # only summed from here on
            else:
                self.spans.setdefault(tenant, []).append((submitted, ended, job, entry))
