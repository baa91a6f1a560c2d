"""What a Step-by-Step re-run of a finished run would report, made at that run's end.

A run that ends with every Step succeeded seals its plan (``runner.execute.sealed``) with
the report of its re-run, so that the first re-run after it is already a sealed one (at
200,000 Steps: about a second where the Step-by-Step one took 20 s of CPU).  When every
Step was reused, the run's own report is that; otherwise it is made here, from the state:

- the order (``rerun_order``): a re-run finds each Step finished as it queues it, so a
  deferred task's Steps are queued, and reported, right after the Step that completed the
  last register they read, inside the queueing of the plan's Steps.  A first run reports
  them where it queued them: after every Step queued by the time that register's Step
  ended.  The order is worked out with the registry's own rule (``Registry``: a task's
  register is complete with its last Step; a waiting task is ready when all it reads is).
- the rows (``ReusedRows``): each Step as the re-run's scheduler reports a Step it reuses,
  from its state row (``reused_values``) and the files it extracted, made when read, a
  batch of state rows at a time: never 200,000 of them at once beside the run's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from runner.execute.scheduler.records import Outcome, reused_values
from runner.execute.state import StepStatus

ROWS_READ = 1_000  # state rows read at a time (a batch of StepStates: about 0.5 MiB)


def rerun_order(steps: Sequence[Any], deferred: Sequence[Any],
                compiled: Mapping[int, Sequence[Any]]) -> list[Any] | None:
    """The Steps in the order a re-run reports them: ``steps`` the plan's (as the run
    queued them), ``deferred`` its deferred tasks (in the plan's order), ``compiled`` the
    Steps each of those compiled to in this run.  None when a re-run's order cannot be
    told (a Step queued twice, a deferred task this run never compiled)."""
    remaining: Counter[int] = Counter()
    register_of: dict[int, str] = {}
    registered: set[str] = set()
    waiting = list(deferred)
    order: list[Any] = []
    seen: set[str] = set()

    def expect(batch: Sequence[Any]) -> None:  # Registry.expect
        for step in batch:
            remaining[step.task_index] += 1
            if step.register:
                register_of[step.task_index] = step.register

    def queue(batch: Sequence[Any]) -> bool:  # Scheduler.add, every Step reused at once
        nonlocal waiting
        for step in batch:
            if step.id in seen:
                return False
            seen.add(step.id)
            order.append(step)
            task = step.task_index
            remaining[task] -= 1  # Registry.step_done
            name = register_of.get(task)
            if name is None or remaining[task]:
                continue
            registered.add(name)
            ready = [t for t in waiting if all(n in registered for n in t.needs)]
            waiting = [t for t in waiting if t not in ready]
            for task_ready in ready:  # as the engine's on_step_done compiles and queues
                new = compiled.get(task_ready.task_index)
                if new is None:
                    return False
                expect(new)
                if not queue(new):
                    return False
        return True

    expect(steps)
    if not queue(steps) or waiting or len(compiled) != len(deferred):
        return None
    return order


class ReusedRow:
    """A Step a re-run reuses, as its scheduler reports it (an ``Outcome`` finished with
    ``reused_values``: the attributes the report reads), its sha256 kept as the state's
    hex text."""

    __slots__ = ("step", "files", "attempts", "job_id", "bytes", "sha256", "mtime_ns",
                 "records", "started", "finished")
    status = "succeeded"
    reused = True
    error = None
    warnings: tuple[str, ...] = ()
    jobs: tuple[Any, ...] = ()

    def __init__(self, step: Any, files: Sequence[str], **reused: Any) -> None:
        self.step = step
        self.files = files
        for name, value in reused.items():
            setattr(self, name, value)


class ReusedRows(Sequence[ReusedRow]):
    """The re-run's rows of ``steps`` (in its order), made when read from the state
    ``store`` (``files``: what each Step extracted, by id, for those that did).  Reading a
    Step that is not succeeded in the state raises ``NotFinished``."""

    def __init__(self, steps: Sequence[Any], store: Any,
                 files: Mapping[str, Sequence[str]]) -> None:
        self.steps = steps
        self.store = store
        self.files = files

    @property
    def statuses(self) -> dict[str, int]:
        return {"succeeded": len(self.steps)}  # (any other: NotFinished when read)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[ReusedRow]:
        steps = self.steps
        for start in range(0, len(steps), ROWS_READ):
            batch = steps[start:start + ROWS_READ]
            states = self.store.steps_of((step.id for step in batch), requests=False)
            for step in batch:
                yield self._row(step, states.get(step.id))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(ReusedRows(self.steps[index], self.store, self.files))
        step = self.steps[index]
        return self._row(step, self.store.steps_of([step.id], requests=False).get(step.id))

    def _row(self, step: Any, state: Any) -> ReusedRow:
        if state is None or state.status != StepStatus.SUCCEEDED:
            raise NotFinished(step.id)
        return ReusedRow(step, self.files.get(step.id, ()), **reused_values(state))


class NotFinished(Exception):
    """A Step the state does not have as succeeded: no re-run would reuse it."""


def rerun_rows(outcomes: Sequence[Outcome], plan_steps: Sequence[Any], deferred: Sequence[Any],
               store: Any) -> ReusedRows | None:
    """The rows a re-run of this run would report, or None when a Step did not succeed or
    the re-run's order cannot be told.  ``outcomes``: the run's own, every deferred task
    compiled (none waiting); each task's Steps are in them in the order it compiled them,
    as the scheduler queued them."""
    if any(o.status != "succeeded" for o in outcomes):
        return None
    compiled: dict[int, list[Any]] = {task.task_index: [] for task in deferred}
    for outcome in outcomes:
        steps = compiled.get(outcome.step.task_index)
        if steps is not None:
            steps.append(outcome.step)
    order = rerun_order(plan_steps, deferred, compiled)
    if order is None or len(order) != len(outcomes):
        return None
    files = {o.step.id: o.files for o in outcomes if o.files}
    return ReusedRows(order, store, files)
