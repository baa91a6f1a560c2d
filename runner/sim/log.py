"""The simulator's request log: every request and every export job's start and end.

Tests read it to assert what a client did (``count``, ``entries``), benchmarks to measure
slot use (``max_concurrent_jobs``).  Kept in memory and, when a path is given, appended as
JSON lines.  Authorization headers and client assertions never reach it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One answered request."""

    time: float
    method: str
    path: str
    operation: str  # catalog name, "token", "discovery", or "" for an unknown path
    fields: dict[str, Any]
    client_id: str | None
    status: int
    fault: str | None = None
    kind: str = "request"


@dataclass(frozen=True)
class JobEvent:
    """An export job started (``start``) or reached a terminal status (``end``)."""

    time: float
    job_id: int
    event: str  # "start" | "end"
    operation: str
    status: int | None = None
    kind: str = "job"


@dataclass
class RequestLog:
    path: Path | None = None
    _entries: list[Entry] = field(default_factory=list)
    _jobs: list[JobEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Jobs end by the clock, not by a thread: before reading job events, let the job book
    # log the ends that have passed since the last look.
    settle: Callable[[], None] | None = None

    def record(self, entry: Entry | JobEvent) -> None:
        with self._lock:
            if isinstance(entry, Entry):
                self._entries.append(entry)
            else:
                self._jobs.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(asdict(entry), default=str) + "\n")

    @property
    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    @property
    def job_events(self) -> list[JobEvent]:
        if self.settle is not None:
            self.settle()
        with self._lock:
            return sorted(self._jobs, key=lambda e: (e.time, e.event != "end"))

    def count(self, operation: str | None = None, status: int | None = None) -> int:
        """How many requests named ``operation`` (all when None) got ``status`` (any when None)."""
        return sum(1 for e in self.entries
                   if (operation is None or e.operation == operation)
                   and (status is None or e.status == status))

    def requests(self, operation: str) -> list[Entry]:
        return [e for e in self.entries if e.operation == operation]

    def max_concurrent_jobs(self) -> int:
        """The most export jobs that were in progress at the same moment."""
        running = peak = 0
        for event in self.job_events:  # ends sort before starts at the same instant
            running += 1 if event.event == "start" else -1
            peak = max(peak, running)
        return peak

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._jobs.clear()
