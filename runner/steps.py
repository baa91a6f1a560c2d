"""The values a compiled plan is made of: ``Plan``, its ``Step``s, deferred and skipped tasks.

Kept apart from the compiler (``runner.plan``) so that a run that takes its plan from the
memo (``runner.planmemo``) builds them without importing the template and schema stacks.
"""

from __future__ import annotations

import weakref
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from dataclasses import FrozenInstanceError, dataclass
from dataclasses import field as dataclass_field
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from runner import catalog
from runner.secret import Secret

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True, weakref_slot=True)
class StepTask:
    """The fields every Step of a task shares, held once for all of them (``Step``)."""

    task_index: int
    task_name: str
    operation: str
    kind: str  # "export" | "query"
    format: str  # "zip" | "jsonl" | "json" | "csv"
    chunk_total: int
    retries: int
    ignore_errors: bool
    register: str | None
    tags: tuple[str, ...]
    extract: bool  # unpack the downloaded .zip beside it (runner.execute.postprocess)
    convert: str | None  # "csv": each .xlsx sheet as a CSV
    api: str  # the generation whose operation this is


# One StepTask for equal fields while a Step holds it: a compile and a memo's Steps share
# theirs without either keeping a table of its own.
_step_tasks: weakref.WeakValueDictionary[tuple[Any, ...], StepTask] = \
    weakref.WeakValueDictionary()


def _step_task(*fields: Any) -> StepTask:
    task = _step_tasks.get(fields)
    if task is None:
        task = _step_tasks[fields] = StepTask(*fields)
    return task


class Step:
    """One API request: an export job, or one paged query, and the file it writes.

    Read-only.  Only its id, request, output and chunk number are its own: the rest is its
    task's (``StepTask``), shared by the task's Steps, so that a Step is 72 B where 17 slots
    of its own were 168 (18 MiB of a plan of 200,000 Steps)."""

    __slots__ = ("id", "request", "output", "chunk_number", "_task")
    id: str
    request: Mapping[str, Any]  # API field names, enum codes resolved, no paging token
    output: str  # POSIX, relative to the plan's output_dir
    chunk_number: int
    _task: StepTask
    # its task's, read through _task (properties made below the class)
    task_index: int
    task_name: str
    operation: str
    kind: str
    format: str
    chunk_total: int
    retries: int
    ignore_errors: bool
    register: str | None
    tags: tuple[str, ...]
    extract: bool
    convert: str | None
    api: str

    def __init__(self, id: str, task_index: int, task_name: str, operation: str, kind: str,
                 request: Mapping[str, Any], output: str, format: str, chunk_number: int,
                 chunk_total: int, retries: int, ignore_errors: bool, register: str | None,
                 tags: tuple[str, ...], extract: bool = False, convert: str | None = None,
                 api: str = catalog.DEFAULT_GENERATION) -> None:
        own = object.__setattr__
        own(self, "id", id)
        own(self, "request", request)
        own(self, "output", output)
        own(self, "chunk_number", chunk_number)
        own(self, "_task", _step_task(task_index, task_name, operation, kind, format,
                                      chunk_total, retries, ignore_errors, register, tags,
                                      extract, convert, api))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in STEP_FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in STEP_FIELDS)
        return f"Step({fields})"

    @property
    def changes_tenant(self) -> bool:
        """set_tag writes to the tenant: never under --check, shown as a change by plan."""
        return catalog.operation(self.operation, self.api).changes_tenant

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Step:
        """The Step that ``to_json`` wrote (a memo's)."""
        values = {**_STEP_DEFAULTS, **document}
        values.pop("changes_tenant", None)  # derived: plan JSON shows it
        if values.keys() != _STEP_FIELD_SET:
            raise KeyError(f"not a Step's JSON: {sorted(values.keys() ^ _STEP_FIELD_SET)}")
        request = values["request"]
        if type(request) is not dict:
            raise KeyError("not a Step's JSON: its request is not an object")
        values["request"] = FrozenRequest.of_json(request)
        values["tags"] = tuple(values["tags"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        task = self._task
        out = {
            "id": self.id,
            "task_index": task.task_index,
            "task_name": task.task_name,
            "operation": task.operation,
            "kind": task.kind,
            "request": thaw(self.request),
            "output": self.output,
            "format": task.format,
            "chunk_number": self.chunk_number,
            "chunk_total": task.chunk_total,
            "retries": task.retries,
            "ignore_errors": task.ignore_errors,
            "register": task.register,
            "tags": list(task.tags),
        }
        out.update(_postprocessing(self))  # only when set: older plans read the same
        if self.changes_tenant:
            out["changes_tenant"] = True
        return out


for _name in StepTask.__dataclass_fields__:
    setattr(Step, _name, property(attrgetter(f"_task.{_name}")))  # attrgetter: made in C

# A Step's fields, in the order of its constructor (its JSON's keys, ids, memo keys).
STEP_FIELDS = ("id", "task_index", "task_name", "operation", "kind", "request", "output",
               "format", "chunk_number", "chunk_total", "retries", "ignore_errors", "register",
               "tags", "extract", "convert", "api")
_STEP_FIELD_SET = frozenset(STEP_FIELDS)
_STEP_DEFAULTS = {"extract": False, "convert": None, "api": catalog.DEFAULT_GENERATION}


def _postprocessing(step: Any) -> dict[str, Any]:
    """The keys only some Steps set (post-processing, a generation other than v1), for ids
    and plan JSON: a Step without them keeps the id and the JSON of earlier versions."""
    out: dict[str, Any] = {}
    api = getattr(step, "api", catalog.DEFAULT_GENERATION)
    if api != catalog.DEFAULT_GENERATION:
        out["api"] = api
    if getattr(step, "extract", False):
        out["extract"] = True
    if getattr(step, "convert", None):
        out["convert"] = step.convert
    return out


@dataclass(frozen=True)
class DeferredTask:
    task_index: int
    task_name: str
    needs: tuple[str, ...]  # the register names it waits for


@dataclass(frozen=True)
class SkippedTask:
    task_index: int
    task_name: str
    reason: str


@dataclass(frozen=True)
class Plan:
    playbook: str
    name: str
    output_dir: str  # absolute
    connection: Mapping[str, Any] | str | None
    steps: tuple[Step, ...]
    deferred: tuple[DeferredTask, ...]
    fingerprint: str
    skipped: tuple[SkippedTask, ...] = dataclass_field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_FORMAT_VERSION,
            "playbook": self.playbook,
            "name": self.name,
            "output_dir": self.output_dir,
            "fingerprint": self.fingerprint,
            "connection": thaw(self.connection),
            "steps": [step.to_json() for step in self.steps],
            "deferred": [
                {"task_index": d.task_index, "task_name": d.task_name, "needs": list(d.needs)}
                for d in self.deferred
            ],
            "skipped": [
                {"task_index": s.task_index, "task_name": s.task_name, "reason": s.reason}
                for s in self.skipped
            ],
        }


# ------------------------------------------------------------------ immutability


class FrozenRequest(Mapping[str, Any]):
    """A Step's request, read-only: its values in a tuple beside its keys', the keys' tuple
    shared by every request of the same fields.  104 B a request of two fields, where a
    ``MappingProxyType`` over its own dict was 232: 24 MiB of a plan of 200,000 Steps."""

    __slots__ = ("_keys", "_values")
    _key_sets: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __init__(self, items: Mapping[str, Any]) -> None:
        keys = tuple(items)
        self._keys = self._key_sets.setdefault(keys, keys)
        self._values = tuple(items.values())

    @classmethod
    def of_json(cls, request: dict[str, Any]) -> FrozenRequest:
        """Of a request as JSON parsed it, its lists frozen (``Step.from_json``)."""
        frozen = object.__new__(cls)
        keys = tuple(request)
        frozen._keys = cls._key_sets.setdefault(keys, keys)
        frozen._values = tuple(map(_freeze_json, request.values()))
        return frozen

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[self._keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def items(self) -> ItemsView[str, Any]:
        return _RequestItemsView(self)

    def values(self) -> ValuesView[Any]:
        return _RequestValuesView(self)

    def copy(self) -> dict[str, Any]:
        """A plain dict of it, made in C (what the JSON encoders are handed)."""
        return dict(zip(self._keys, self._values, strict=True))

    def __repr__(self) -> str:
        return f"FrozenRequest({self.copy()!r})"


class _RequestItemsView(ItemsView[str, Any]):
    _mapping: FrozenRequest

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return zip(self._mapping._keys, self._mapping._values, strict=True)


class _RequestValuesView(ValuesView[Any]):
    _mapping: FrozenRequest

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping._values)


def freeze(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, MappingProxyType | FrozenRequest):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain JSON-ready copy; secrets come out masked."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(type(v) is str for v in value):  # the common, long case: URLs and emails
            return list(value)
        return [thaw(v) for v in value]
    if isinstance(value, Secret):
        return str(value)
    return value


def _freeze_json(value: Any) -> Any:
    """``freeze`` for parsed JSON, with a fast path for the long lists of strings (e-mails,
    URLs) that capped fields hold."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze_json(v) for k, v in value.items()})
    if isinstance(value, list):
        if set(map(type, value)) <= {str}:
            return tuple(value)
        return tuple(_freeze_json(v) for v in value)
    return value
