"""What a run is doing right now, folded from the scheduler's events, and when it will end.

The scheduler emits ``(kind, payload)`` events (see ``runner.execute.scheduler``); several
tenants' runs add the tenant as a third item.  ``Tracker`` keeps the counts, the running
Steps (phase, elapsed, records paged), the slots each tenant's jobs hold, and the
durations seen, and estimates the time left (``eta``).  It draws nothing: the live and the
plain views read it.  Not thread-safe on its own; ``runner.progress.Progress`` locks.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner import catalog


@dataclass
class Running:
    """A Step this run has started and not yet finished."""

    step: Any
    tenant: str | None
    phase: str  # job | downloading | paging | retrying
    since: float  # when it started (the tracker's clock)
    holds_slot: bool = False
    records: int = 0
    paging_since: float | None = None

    def records_per_second(self, now: float) -> float | None:
        if self.paging_since is None or now - self.paging_since < 0.5:
            return None
        return self.records / (now - self.paging_since)


class Tracker:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 slots: int = catalog.MAX_CONCURRENT_EXPORTS, workers: int = 4) -> None:
        self.clock = clock
        self.started = clock()
        self.slot_limit = slots
        self.workers = workers
        self.total = self.done = self.failed = self.reused = 0
        self.running: dict[tuple[str | None, str], Running] = {}
        self.tenants: list[str | None] = []
        # Steps added but not started, by (tenant, operation, kind): the ETA's work left.
        self.queued: Counter[tuple[str | None, str, str]] = Counter()
        self.seen: dict[str, list[float]] = {}  # seconds per operation, this run
        self.history: dict[str, float] = {}  # median seconds per operation, earlier runs
        self.kinds: dict[str, str] = {}  # operation -> export | query, from the Steps added

    # ------------------------------------------------------------------ events

    def event(self, kind: str, payload: Any, tenant: str | None = None) -> None:
        if tenant not in self.tenants:
            self.tenants = sorted([*self.tenants, tenant], key=lambda t: (t is not None, t or ""))
        if kind == "history":
            self.add_history(payload)
        elif kind == "added":
            self._added(payload, tenant)
        elif kind in ("submitted", "reattached"):
            run = self._start(payload, tenant, "job")
            run.phase, run.holds_slot = "job", True
        elif kind == "job_finished":
            run = self._start(payload, tenant, "downloading")
            run.phase, run.holds_slot = "downloading", False
        elif kind == "downloading":
            self._start(payload, tenant, "downloading").phase = "downloading"
        elif kind == "retry":
            run = self._start(payload, tenant, "retrying")
            run.phase, run.holds_slot = "retrying", False
        elif kind == "paging":
            run = self._start(payload, tenant, "paging")
            run.phase, run.records, run.paging_since = "paging", 0, self.clock()
        elif kind == "page":
            step, count = payload
            run = self._start(step, tenant, "paging")
            run.records += int(count)
        elif kind in ("succeeded", "failed"):
            ended = self._end(payload, tenant)
            if kind == "succeeded":
                self.done += 1
                if ended is not None:
                    operation = str(getattr(payload, "operation", ""))
                    self.seen.setdefault(operation, []).append(self.clock() - ended.since)
            else:
                self.failed += 1
        elif kind == "reused":
            self._end(payload, tenant)
            self.done += 1
            self.reused += 1
        elif kind == "sealed":  # a sealed plan's re-run: this many Steps, all reused
            self.total += int(payload)
            self.done += int(payload)
            self.reused += int(payload)

    def add_history(self, durations: Mapping[str, Iterable[float]]) -> None:
        """Earlier runs' seconds per operation (from the state store)."""
        for operation, values in durations.items():
            values = [float(v) for v in values if v is not None and v >= 0]
            if values:
                self.history[str(operation)] = statistics.median(values)

    def _added(self, payload: Any, tenant: str | None) -> None:
        if isinstance(payload, int):
            self.total += payload
            self.queued[(tenant, "", "")] += payload
            return
        for step in payload:
            self.total += 1
            key = _key(step, tenant)
            self.queued[key] += 1
            self.kinds[key[1]] = key[2]

    def _start(self, step: Any, tenant: str | None, phase: str) -> Running:
        key = (tenant, str(step.id))
        run = self.running.get(key)
        if run is None:
            run = self.running[key] = Running(step, tenant, phase, self.clock())
            self._unqueue(step, tenant)
        return run

    def _end(self, step: Any, tenant: str | None) -> Running | None:
        run = self.running.pop((tenant, str(step.id)), None)
        if run is None:
            self._unqueue(step, tenant)
        return run

    def _unqueue(self, step: Any, tenant: str | None) -> None:
        for key in (_key(step, tenant), (tenant, "", "")):
            if self.queued.get(key, 0) > 0:
                self.queued[key] -= 1
                return

    # ------------------------------------------------------------------ views

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def waiting(self) -> int:
        return max(0, self.total - self.finished - len(self.running))

    def slots(self, tenant: str | None) -> int:
        return sum(1 for r in self.running.values() if r.tenant == tenant and r.holds_slot)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def expected(self, operation: str, kind: str) -> float | None:
        """Seconds a Step of ``operation`` is expected to take: this run's mean when some
        have finished, else earlier runs' median, else the same of its kind (an export
        lasts far longer than a query).  None when nothing of its kind is known yet."""
        seen = self.seen.get(operation)
        if seen:
            return statistics.fmean(seen)
        if operation in self.history:
            return self.history[operation]
        alike = [v for op, values in self.seen.items() if self.kinds.get(op) == kind
                 for v in values]
        if alike:
            return statistics.fmean(alike)
        earlier = [v for op, v in self.history.items() if self.kinds.get(op) == kind]
        return statistics.median(earlier) if earlier else None

    def eta(self) -> float | None:
        """Seconds until every Step is done, or None before there is anything to go on.

        Work left = the expected time of each queued Step plus what remains of each running
        one.  Exports share a tenant's slots, queries and downloads the worker threads: a
        pool ends after its work divided by its capacity, but never before its longest
        Step (one job of an hour takes an hour, whatever slots are free).  The slowest
        pool of the slowest tenant sets the end.
        """
        if self.finished >= self.total and not self.running:
            return 0.0
        now = self.clock()
        work: defaultdict[tuple[str | None, bool], float] = defaultdict(float)
        longest: defaultdict[tuple[str | None, bool], float] = defaultdict(float)
        items: list[tuple[str | None, str, str, float, int]] = []
        for (tenant, operation, kind), count in self.queued.items():
            if count > 0:
                items.append((tenant, operation, kind, 0.0, count))
        for run in self.running.values():
            tenant, operation, kind = _key(run.step, run.tenant)
            items.append((tenant, operation, kind, now - run.since, 1))
        for tenant, operation, kind, elapsed, count in items:
            expected = self.expected(operation, kind)
            if expected is None:
                return None
            left = max(expected - elapsed, 0.1 * expected) if elapsed else expected
            pool = (tenant, kind == "export")
            work[pool] += left * count
            longest[pool] = max(longest[pool], left)
        return max((max(total / (self.slot_limit if pool[1] else self.workers), longest[pool])
                    for pool, total in work.items()), default=0.0)


def _key(step: Any, tenant: str | None) -> tuple[str | None, str, str]:
    return (tenant, str(getattr(step, "operation", "")), str(getattr(step, "kind", "")))


def clock_text(seconds: float) -> str:
    """``0:01:05`` (hours:minutes:seconds)."""
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
