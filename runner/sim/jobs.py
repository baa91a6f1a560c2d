"""Export jobs: submitted, in progress for a while, then succeeded or failed, by the clock.

No thread runs a job: a job's end time is fixed at submission (its duration, times a slow
factor when a fault says so) and its status is read from the clock whenever it is asked,
so thousands of jobs cost nothing and tests can use fractions of a second.  At most
``limit`` jobs (``catalog.MAX_CONCURRENT_EXPORTS`` unless configured) may be in progress
for a tenant, v1 and v2 jobs together; the next submission is refused with ``SlotsFull``.
Both generations draw ids from one number space.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner import catalog
from runner.catalog import Operation
from runner.sim.faults import Faults
from runner.sim.log import JobEvent, RequestLog

# A job's duration: seconds, a (low, high) range drawn per job, or a function of the job id.
JobSeconds = float | tuple[float, float] | Callable[[int], float]
FIRST_JOB_ID = 1001


class SlotsFull(Exception):
    pass


@dataclass
class Job:
    id: int
    operation: str
    family: str
    values: dict[str, Any]
    client_id: str
    submitted: float
    ends: float
    outcome: int  # the terminal status it reaches at ``ends``
    hostile: bool = False  # its file has hostile names (a fault)
    generation: str = "v1"  # the API generation that started it (whose routes see it)


class JobBook:
    def __init__(self, clock: Callable[[], float], seconds: JobSeconds,
                 faults: Callable[[], Faults], log: RequestLog,
                 limit: int = catalog.MAX_CONCURRENT_EXPORTS):
        self.clock = clock
        self.seconds = seconds
        self.faults = faults
        self.log = log
        self.limit = limit
        self._jobs: dict[int, Job] = {}
        # The jobs whose end is not logged yet: the only ones a submission or a settle has
        # to look at, so a book of 200,000 finished jobs costs what a book of five does.
        self._open: list[Job] = []
        self._next = FIRST_JOB_ID
        self._lock = threading.Lock()

    def duration(self, job_id: int) -> float:
        if callable(self.seconds):
            base = float(self.seconds(job_id))
        elif isinstance(self.seconds, tuple):
            low, high = self.seconds
            base = low + (high - low) * self.faults().draw("job_seconds", job_id)
        else:
            base = float(self.seconds)
        return base * self.faults().job_factor(job_id)

    def submit(self, op: Operation, values: dict[str, Any], client_id: str) -> Job:
        self.settle()
        with self._lock:
            now = self.clock()
            running = sum(1 for job in self._open if job.ends > now)
            if running >= self.limit:
                raise SlotsFull(
                    f"{catalog.EXPORT_LIMIT_MESSAGE} via APIs; {running} export jobs are in "
                    f"progress. Try again when one of them has finished.")
            job_id = self._next
            self._next += 1
            faults = self.faults()
            job = Job(job_id, op.name, op.job_family or "", values, client_id, now,
                      now + self.duration(job_id), faults.job_outcome(job_id),
                      faults.hostile_names, generation=op.generation)
            self._jobs[job_id] = job
            self._open.append(job)
        self.log.record(JobEvent(now, job_id, "start", op.name))
        return job

    def get(self, job_id: int) -> Job | None:
        self.settle()
        with self._lock:
            return self._jobs.get(job_id)

    def status(self, job: Job) -> int:
        if self.clock() < job.ends:
            return catalog.STATUS_IN_PROGRESS
        return job.outcome

    def in_progress(self) -> int:
        now = self.clock()
        with self._lock:
            return sum(1 for job in self._open if job.ends > now)

    def settle(self) -> None:
        """Log the end of every job whose time has come (at the time it ended)."""
        now = self.clock()
        with self._lock:
            if not self._open:
                return
            ended = [job for job in self._open if job.ends <= now]
            if not ended:
                return
            self._open = [job for job in self._open if job.ends > now]
        for job in ended:
            self.log.record(JobEvent(job.ends, job.id, "end", job.operation,
                                     status=self.status(job)))

    @property
    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())
