"""The values a compiled plan is made of: ``Plan``, its ``Step``s, deferred and skipped tasks.

Kept apart from the compiler (``runner.plan``) so that a run that takes its plan from the
memo (``runner.planmemo``) builds them without importing the template and schema stacks.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from dataclasses import MISSING, dataclass
from dataclasses import field as dataclass_field
from types import MappingProxyType
from typing import Any

from runner import catalog
from runner.secret import Secret

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)  # slots: a plan of v2 size holds 200,000 of them
class Step:
    """One API request: an export job, or one paged query, and the file it writes."""

    id: str
    task_index: int
    task_name: str
    operation: str
    kind: str  # "export" | "query"
    request: Mapping[str, Any]  # API field names, enum codes resolved, no paging token
    output: str  # POSIX, relative to the plan's output_dir
    format: str  # "zip" | "jsonl" | "json" | "csv"
    chunk_number: int
    chunk_total: int
    retries: int
    ignore_errors: bool
    register: str | None
    tags: tuple[str, ...]
    extract: bool = False  # unpack the downloaded .zip beside it (runner.execute.postprocess)
    convert: str | None = None  # "csv": each .xlsx sheet as a CSV
    api: str = catalog.DEFAULT_GENERATION  # the generation whose operation this is

    @property
    def changes_tenant(self) -> bool:
        """set_tag writes to the tenant: never under --check, shown as a change by plan."""
        return catalog.operation(self.operation, self.api).changes_tenant

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Step:
        """The Step that ``to_json`` wrote (a memo's), built without the dataclass's
        ``__init__``: a re-run builds one per Step of the plan, 200,000 for some."""
        values = {**_STEP_DEFAULTS, **document}
        values.pop("changes_tenant", None)  # derived: plan JSON shows it
        if values.keys() != _STEP_FIELDS:
            raise KeyError(f"not a Step's JSON: {sorted(values.keys() ^ _STEP_FIELDS)}")
        request = values["request"]
        if type(request) is not dict:
            raise KeyError("not a Step's JSON: its request is not an object")
        values["request"] = FrozenRequest.of_json(request)
        values["tags"] = tuple(values["tags"])
        step = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(step, name, value)
        return step

    def to_json(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "task_index": self.task_index,
            "task_name": self.task_name,
            "operation": self.operation,
            "kind": self.kind,
            "request": thaw(self.request),
            "output": self.output,
            "format": self.format,
            "chunk_number": self.chunk_number,
            "chunk_total": self.chunk_total,
            "retries": self.retries,
            "ignore_errors": self.ignore_errors,
            "register": self.register,
            "tags": list(self.tags),
        }
        out.update(_postprocessing(self))  # only when set: older plans read the same
        if self.changes_tenant:
            out["changes_tenant"] = True
        return out


_STEP_FIELDS = frozenset(Step.__dataclass_fields__)
_STEP_DEFAULTS = {name: f.default for name, f in Step.__dataclass_fields__.items()
                  if f.default is not MISSING}


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
