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

Re-running a finished playbook should not read 200,000 registered users again just to find
that the 2,000 Steps they lead to are done.  ``Registry.compile`` therefore keeps each
deferred task's compiled Steps in the state directory (``compiled/``), keyed by what they
were compiled from: the playbook's fingerprint (text, vars, extra vars), the task, and the
sha256 of every file of the registers it reads.  A task whose templates (or the vars they
read) use ``run``, ``env()``, ``lookup()``, ``playbook_dir`` or ``random`` may compile
differently from the same inputs, so it is always compiled afresh.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from runner.execute import outputs
from runner.execute.scheduler import Outcome

MEMO_DIRNAME = "compiled"
MEMO_VERSION = 2  # 2: JSON lines, a Step a line (1: one JSON document)
# Template names whose value is not a function of the playbook and the registers.
_IMPURE = frozenset({"run", "env", "lookup", "playbook_dir"})
_RANDOM = ("random", "lipsum")  # Jinja's random filter and lorem-ipsum global (by name)


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
        self.fingerprint = str(getattr(plan, "fingerprint", ""))
        self.values: dict[str, Any] = {}
        self._identity: dict[str, list[Any]] = {}  # register -> its files and digests
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
        self._identity[name] = [[o.step.output, o.sha256, o.bytes, o.job_id] for o in outcomes]
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

    def compile(self, playbook: Any, task_index: int, state_dir: Path | None,
                compile_task: Callable[..., Sequence[Any]]) -> Sequence[Any]:
        """The Steps of a deferred task whose registers exist: from the memo in
        ``state_dir`` when they were compiled from the same inputs before, else compiled
        (``compile_task(playbook, task_index, registered=...)``) and remembered."""
        memo = self._memo_path(playbook, task_index, state_dir)
        if memo is not None:
            remembered = _load_steps(memo)
            if remembered is not None:
                return remembered
        steps = compile_task(playbook, task_index, registered=self.values)
        if memo is not None:
            _save_steps(memo, steps)
        return steps

    def _memo_path(self, playbook: Any, task_index: int, state_dir: Path | None
                   ) -> Path | None:
        if state_dir is None or not self.fingerprint:
            return None
        needs, pure = task_facts(playbook, task_index)
        if not pure:
            return None
        inputs = {name: self._identity.get(name) for name in sorted(needs)}
        if any(value is None for value in inputs.values()):
            return None
        from runner.steps import PLAN_FORMAT_VERSION, STEP_FIELDS

        # The shape of a Step counts too: a runner that plans differently compiles again.
        shape = [PLAN_FORMAT_VERSION, sorted(STEP_FIELDS)]
        key = json.dumps([MEMO_VERSION, shape, self.fingerprint, task_index, inputs],
                         sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        return Path(state_dir) / MEMO_DIRNAME / f"task{task_index}-{digest}.jsonl"

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


# ------------------------------------------------------------------ the compile memo


def task_facts(playbook: Any, task_index: int) -> tuple[frozenset[str], bool]:
    """The registers a deferred task reads, and whether its Steps depend on nothing else
    (``_pure``).  A playbook from the plan memo (``runner.planmemo``) knows both without
    the template stack."""
    known = getattr(playbook, "task_facts", None)
    if known is not None:
        return known(task_index)  # type: ignore[no-any-return]
    task = playbook.tasks[task_index]
    return frozenset(task.needs), _pure(playbook, task)


def _pure(playbook: Any, task: Any) -> bool:
    """Whether the task's Steps depend only on the playbook and its registers."""
    from runner.templating import is_template, references

    names: set[str] = set()
    texts = [t for v in (task.args, task.output, task.loop, task.when) for t in _strings(v)]
    var_refs: Mapping[str, frozenset[str]] = getattr(playbook, "var_refs", {})
    seen: set[str] = set()
    while texts:
        text = texts.pop()
        if not is_template(text):
            continue
        if any(word in text for word in _RANDOM):
            return False
        read = references(text)
        names |= read
        for name in read - seen:  # the vars it reads, and the vars they read
            if name in playbook.vars:
                seen.add(name)
                names |= var_refs.get(name, frozenset())
                texts.extend(_strings(playbook.vars[name]))
    return not names & _IMPURE


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _load_steps(path: Path) -> list[Any] | None:
    """The memo's Steps, read a block of lines at a time: a memo of 200,000 Steps is never
    held whole (its text, or its decoded form, 270 MiB, beside the Steps).  A block is
    decoded at once, so that its Steps share their keys (and a v1 Step's 100 e-mails are
    not a line string of their own first), and the few values every Step of a task
    repeats are shared too, not held once per Step."""
    from runner.steps import Step

    shared: dict[str, str] = {}
    totals: dict[int, int] = {}
    request_values = _RequestValues()
    steps = []
    try:
        with path.open(encoding="utf-8") as memo:
            if json.loads(memo.readline() or "{}").get("version") != MEMO_VERSION:
                return None
            for block in _line_blocks(memo):
                # compact JSON has no newline but between lines: a block is their array
                for document in json.loads("[" + block.replace("\n", ",") + "]"):
                    for name in _SHARED_FIELDS:
                        value = document.get(name)
                        if type(value) is str:
                            document[name] = shared.setdefault(value, value)
                    total = document.get("chunk_total")
                    if type(total) is int:  # the same count in each of a task's Steps
                        document["chunk_total"] = totals.setdefault(total, total)
                    request = document.get("request")
                    if type(request) is dict:
                        request_values.share(request)
                    steps.append(Step.from_json(document))
        return steps
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # missing or unreadable: compile again


MEMO_BLOCK = 1 << 18  # characters of the memo decoded at a time (256 Ki: ~900 v2 Steps)


def _line_blocks(memo: Any) -> Iterator[str]:
    """The rest of ``memo`` in blocks of whole lines (about ``MEMO_BLOCK`` each), without
    their last newline; a last line without its newline is a damaged memo (ValueError)."""
    rest = ""
    while text := memo.read(MEMO_BLOCK):
        text = rest + text
        cut = text.rfind("\n")
        rest = text[cut + 1:]
        if cut > 0:
            yield text[:cut]
    if rest:
        raise ValueError("the memo's last line is cut short")


_SHARED_FIELDS = ("task_name", "operation", "kind", "format", "api")


class _RequestValues:
    """Shares the request fields whose value a task's Steps repeat (``dataSources``: the
    same list in each of 200,000 v2 Steps, 120 B a Step as a tuple and its string): each
    field's lists of strings, as one frozen tuple per distinct value.  A field whose values
    are not repeated (a chunk's e-mails) stops being looked at after ``DISTINCT`` of them,
    so that the table holds no more than that per field."""

    DISTINCT = 64

    def __init__(self) -> None:
        self._fields: dict[str, dict[tuple[str, ...], tuple[str, ...]] | None] = {}

    def share(self, request: dict[str, Any]) -> None:
        for name, value in request.items():
            if type(value) is not list:
                continue
            seen = self._fields.get(name, {})
            if seen is None or not all(type(item) is str for item in value):
                continue
            frozen = tuple(value)
            request[name] = seen.setdefault(frozen, frozen)  # a tuple: frozen as it is
            self._fields[name] = seen if len(seen) <= self.DISTINCT else None


def _save_steps(path: Path, steps: Sequence[Any]) -> None:
    """Write the memo atomically (a header line, then a Step a line) and drop the task's
    older ones; a failure only costs the next run a compile."""
    with contextlib.suppress(OSError, TypeError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with outputs.AtomicFile(path, outputs.own_partial_id("memo")) as out:
            out.write(json.dumps({"version": MEMO_VERSION}).encode() + b"\n")
            for start in range(0, len(steps), 1024):
                out.write("".join(map(_memo_line, steps[start:start + 1024])).encode())
        outputs.remove_stale_partials(path, "memo")
        prefix = path.name.split("-", 1)[0] + "-"
        for old in path.parent.glob(prefix + "*.json*"):  # *.json: MEMO_VERSION 1's
            if old != path:
                old.unlink(missing_ok=True)


def _memo_line(step: Any) -> str:
    return json.dumps(step.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
