"""``register``: the results of a task, handed to the tasks that wait for them.

A task with ``register: NAME`` makes ``NAME`` a variable for later tasks: the records of a
query (read back from the file its Steps wrote) or, for an export, one entry per file.
Tasks whose templates use a register are compiled only when it exists (``DeferredTask``);
if the registering task fails, the tasks waiting on it are not run.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.execute import outputs
from runner.execute.scheduler import Outcome


def read_records(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The records a finished query wrote, for ``register``."""
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if fmt == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class Registry:
    """Collects each ``register`` task's results and releases the tasks that wait for them."""

    def __init__(self, plan: Any, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.values: dict[str, Any] = {}
        self.failed: set[str] = set()
        self._remaining: dict[int, int] = defaultdict(int)
        self._outcomes: dict[int, list[Outcome]] = defaultdict(list)
        self._register_of: dict[int, str] = {}
        self.waiting = list(plan.deferred)

    def expect(self, steps: Sequence[Any]) -> None:
        for step in steps:
            self._remaining[step.task_index] += 1
            if step.register:
                self._register_of[step.task_index] = step.register

    def step_done(self, outcome: Outcome) -> str | None:
        """Note a finished Step; the register name completed by it, if any."""
        task = outcome.step.task_index
        self._outcomes[task].append(outcome)
        self._remaining[task] -= 1
        name = self._register_of.get(task)
        if self._remaining[task] or name is None:
            return None
        outcomes = sorted(self._outcomes[task], key=lambda o: o.step.chunk_number)
        if any(o.status != "succeeded" for o in outcomes):
            self.failed.add(name)
            return name
        values: list[Any] = []
        for o in outcomes:
            if o.step.kind == "query":
                target = outputs.resolve_output(self.output_dir, o.step.output)
                values.extend(read_records(target, o.step.format))
            else:
                values.append({"file": o.step.output, "bytes": o.bytes, "sha256": o.sha256,
                               "job_id": o.job_id})
        self.values[name] = values
        return name

    def ready(self) -> list[Any]:
        """Deferred tasks whose registers now all exist (taken off the waiting list)."""
        out = [t for t in self.waiting if all(n in self.values for n in t.needs)]
        self.waiting = [t for t in self.waiting if t not in out]
        return out

    def blocked(self) -> list[Any]:
        """Deferred tasks that can never run because a register they need failed."""
        out = [t for t in self.waiting if any(n in self.failed for n in t.needs)]
        self.waiting = [t for t in self.waiting if t not in out]
        return out
