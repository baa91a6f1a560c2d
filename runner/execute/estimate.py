"""How long a run of a plan should take, from the state's history (``insights-runner plan``).

What the state remembers: how long each Step's export job last ran (``durations``, as the
scheduler's LPT order reads it) and when each Step last started and finished.  A Step
with no history of its own takes the median of its operation's.  Export jobs are laid out
longest first on the tenant's slots (the scheduler's LPT order), queries on the worker
threads beside them; a deferred task's Steps (as the state last registered them) come
after the Steps it waits for.  The estimate is of a run from scratch: a run that resumes
reuses the Steps already done, and takes less.  Pure: the caller reads the state.
"""

from __future__ import annotations

import heapq
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Estimate:
    seconds: float | None  # None: no Step has a history to go by
    exports: int
    queries: int
    unknown: int  # Steps with no history, not counted
    slots: int

    def text(self) -> str:
        if self.seconds is None:
            return ("estimate: none: the state holds no durations of these Steps or of their "
                    "operations (a run records them)")
        parts = [f"{self.exports:,} export job{'s' if self.exports != 1 else ''} on "
                 f"{self.slots} slot{'s' if self.slots != 1 else ''}"]
        if self.queries:
            parts.append(f"{self.queries:,} quer{'ies' if self.queries != 1 else 'y'}")
        line = (f"estimate: about {clock(self.seconds)} for {' and '.join(parts)}, from the "
                "durations of earlier runs in the state")
        if self.unknown:
            line += f"; {self.unknown:,} Steps with no history are not counted"
        return line


def clock(seconds: float) -> str:
    whole = max(0, int(round(seconds)))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def estimate(phases: Sequence[Sequence[Any]], states: Mapping[str, Any],
             job_seconds: Mapping[str, float], *, slots: int, workers: int = 4) -> Estimate:
    """``phases``: the Steps to run, in groups that run one after another (the plan's,
    then each deferred task's); each Step has ``id``, ``operation`` and ``kind``.
    ``states``: the state's Steps by id (``StepState``); ``job_seconds``: the export jobs'
    lengths by Step id (``StateStore.durations``)."""
    steps = [step for phase in phases for step in phase]
    exports_by_op: dict[str, list[float]] = defaultdict(list)
    queries_by_op: dict[str, list[float]] = defaultdict(list)
    operation_of = {s.id: s.operation for s in steps}
    operation_of.update({key: state.operation for key, state in states.items()})
    for key, seconds in job_seconds.items():
        if key in operation_of:
            exports_by_op[operation_of[key]].append(seconds)
    for state in states.values():
        ran = _ran(state) if state.kind != "export" else None
        if ran is not None:
            queries_by_op[state.operation].append(ran)
    export_median = {op: statistics.median(v) for op, v in exports_by_op.items()}
    query_median = {op: statistics.median(v) for op, v in queries_by_op.items()}
    total = 0.0
    exports = queries = unknown = 0
    known_any = False
    for phase in phases:
        jobs: list[float] = []
        pages: list[float] = []
        for step in phase:
            value: float | None
            if step.kind == "export":
                exports += 1
                value = job_seconds.get(step.id)
                value = export_median.get(step.operation) if value is None else value
            else:
                queries += 1
                state = states.get(step.id)
                own = _ran(state) if state is not None else None
                value = own if own is not None else query_median.get(step.operation)
            if value is None:
                unknown += 1
            else:
                (jobs if step.kind == "export" else pages).append(value)
        known_any = known_any or bool(jobs or pages)
        total += max(lpt(jobs, slots), lpt(pages, workers))
    return Estimate(total if known_any else None, exports, queries, unknown, slots)


def _ran(state: Any) -> float | None:
    if state.status == "succeeded" and state.started_at and state.finished_at:
        return float(max(0.0, state.finished_at - state.started_at))
    return None


def lpt(lengths: Iterable[float], machines: int) -> float:
    """The makespan of ``lengths`` laid out longest first, each on the machine free first."""
    ends = [0.0] * max(1, machines)
    for length in sorted(lengths, reverse=True):
        heapq.heapreplace(ends, ends[0] + length)
    return max(ends)


def deferred_steps(plan: Any, states: Mapping[str, Any]) -> list[list[Any]]:
    """Each deferred task's Steps as the state last registered them (by task index)."""
    by_task: dict[int, list[Any]] = defaultdict(list)
    for state in states.values():
        by_task[state.task_index].append(state)
    return [by_task[task.task_index] for task in plan.deferred if by_task.get(task.task_index)]
