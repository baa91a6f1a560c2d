"""``register``: the results of a task, handed to the tasks that wait for them.

A task with ``register: NAME`` makes ``NAME`` a variable for later tasks: the records of a
query or, for an export, one entry per file.  Tasks whose templates use a register are
compiled only when it exists (``DeferredTask``); if the registering task fails, the tasks
waiting on it are not run.

A query's records are NOT read into memory when the task finishes: ``NAME`` is a
``RecordFiles``, a read-only sequence that streams the records from the files the task's
Steps wrote each time a template iterates it.  Jinja's filters (``selectattr``, ``map``,
``length``...) take it as they take a list, so ``users | selectattr(...) | map(attribute=
'email') | list`` holds only the e-mails, never the 200,000 user records.  A template that
hands the whole value over (``loop: "{{ users }}"``) gets a plain list, read then.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from runner.execute import outputs
from runner.execute.scheduler import Outcome


def iter_records(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """The records a finished query wrote, one at a time, in file order."""
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    elif fmt == "json":
        yield from _json_array(path)
    else:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)


def _json_array(path: Path) -> Iterator[dict[str, Any]]:
    """A JSON array as ``RecordWriter`` writes it (one record per line, ``[``/``]`` alone),
    streamed; any other layout is parsed whole."""
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().strip()
        if first == "[]":
            return
        if first != "[":
            handle.seek(0)
            yield from json.load(handle)
            return
        for line in handle:
            text = line.strip()
            if text == "]":
                return
            if text:
                yield json.loads(text.removesuffix(","))


def read_records(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Every record of a finished query's file, as a list."""
    return list(iter_records(path, fmt))


class RecordFiles(Sequence[dict[str, Any]]):
    """The records of a query task's files, read from disk each time they are iterated.

    Indexing and ``len`` work (an index walks the files; the length is known from the
    state store's record counts or counted once); ``list(...)`` or ``materialize()`` reads
    everything when a template really needs it all.
    """

    def __init__(self, files: Sequence[tuple[Path, str]], count: int | None = None) -> None:
        self._files = tuple(files)
        self._count = count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for path, fmt in self._files:
            yield from iter_records(path, fmt)

    def __len__(self) -> int:
        if self._count is None:
            self._count = sum(1 for _ in self)
        return self._count

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None if self._count is None else self._count > 0

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            if (index.start or 0) >= 0 and (index.stop is None or index.stop >= 0) and \
                    (index.step or 1) > 0:
                return list(itertools.islice(self, index.start, index.stop, index.step))
            return self.materialize()[index]
        if index < 0:
            index += len(self)
        if index >= 0:
            for record in itertools.islice(self, index, None):
                return record
        raise IndexError("register index out of range")

    def __reversed__(self) -> Iterator[dict[str, Any]]:
        return reversed(self.materialize())

    def materialize(self) -> list[dict[str, Any]]:
        """Every record, as a list (for templates that hand the whole value over)."""
        return list(self)

    def __repr__(self) -> str:
        names = ", ".join(str(path.name) for path, _ in self._files)
        return f"<records of {names}>"


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
        name = self._register_of.get(task)
        self._remaining[task] -= 1
        if name is None:
            return None
        self._outcomes[task].append(outcome)
        if self._remaining[task]:
            return None
        outcomes = sorted(self._outcomes.pop(task), key=lambda o: o.step.chunk_number)
        if any(o.status != "succeeded" for o in outcomes):
            self.failed.add(name)
            return name
        self.values[name] = self._value(outcomes)
        return name

    def _value(self, outcomes: list[Outcome]) -> Any:
        if all(o.step.kind == "query" for o in outcomes):
            files = [(outputs.resolve_output(self.output_dir, o.step.output), o.step.format)
                     for o in outcomes]
            counts = [o.records for o in outcomes]
            known = None if any(c is None for c in counts) else sum(c or 0 for c in counts)
            return RecordFiles(files, known)
        return [{"file": o.step.output, "bytes": o.bytes, "sha256": o.sha256,
                 "job_id": o.job_id} for o in outcomes]

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
