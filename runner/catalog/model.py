"""What an operation is: its fields, filters, paging, response envelope and job routes.

One ``Operation`` describes one endpoint of one generation well enough that the compiler,
the client, the simulator and the schema never spell its details again:

* where each ``Field`` goes (``placement``): the URL path, the query string (a list as
  repeated keys) or the JSON body; ``None`` means "by method" (v1: GET query, POST body);
* how many values one request may carry (``cap``): a longer list becomes several Steps;
  ``single`` fields take one value, sent as a scalar (a path segment, ``siteUrl``);
* how it pages (``start_page`` with a page number, ``token`` with an opaque cursor that is
  sent back) and under which keys the answer carries its records and its cursor, the
  first key being the documented one and the others tolerated (``records_keys``...);
* for exports, the id key and type of the job-start answer and the status/file routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from types import MappingProxyType
from typing import Any, Literal

from .enums import ApiEnum

FieldKind = Literal["string", "int", "datetime", "string_list", "enum", "enum_list", "filters"]
Placement = Literal["path", "query", "body"] | None
OperationKind = Literal["export", "query", "status", "file", "action", "health"]
Paging = Literal["start_page", "token"] | None
Method = Literal["GET", "POST", "PATCH"]
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def _nothing() -> Mapping[str, Any]:
    return _NOTHING


@dataclass(frozen=True)
class Field:
    """One request element of an operation."""

    name: str
    api: str
    kind: FieldKind
    required: bool = False
    cap: int | None = None  # most values in one request; longer lists are chunked
    enum: ApiEnum | None = None
    default: Any = None
    maximum: int | None = None  # for ints (page size)
    code_as_string: bool = False  # the API wants an enum code written as a string ("32")
    empty_allowed: bool = True  # a required list may be empty
    help: str = ""
    placement: Placement = None
    single: bool = False  # a list in the playbook, one value (cap 1) per request, as a scalar


@dataclass(frozen=True)
class Filter:
    """One DetailRecord filter: ``{"id": api, "values": [...]}``."""

    name: str
    api: str
    enum: ApiEnum | None = None
    kind: Literal["enum", "string", "datetime"] = "enum"
    max_values: int | None = None
    help: str = ""


@dataclass(frozen=True)
class Split:
    """A v1 module that v2 serves with one job per non-empty field (``activity_export``)."""

    field: str  # the module's field whose value decides
    operation: str  # the v2 operation that takes it


@dataclass(frozen=True)
class Operation:
    name: str
    kind: OperationKind
    method: Method
    path: str  # below the data center's .../insights base; {api} marks a path field
    summary: str
    fields: tuple[Field, ...] = ()
    filters: tuple[Filter, ...] = ()
    paging: Paging = None
    page_size_field: str | None = None  # api name: PageSize, Top or pageSize
    page_start_field: str | None = None  # StartPage / startPage for start_page paging
    first_page: int = 1
    token_field: str | None = None  # Token / token / nextLink for token paging
    job_family: str | None = None  # exports: whose status/file endpoints to use
    result_fields: tuple[str, ...] = ()  # record fields of a query's results
    generation: str = "v1"
    # -- the answer, read tolerantly: the first key is the documented one
    records_keys: tuple[str, ...] = ("results",)
    next_keys: tuple[str, ...] = ("nextToken",)
    job_id_keys: tuple[str, ...] = ("id",)  # exports: where the job-start answer puts the id
    job_id_type: type = int  # v2 answers a string of digits
    job_state_keys: tuple[str, ...] = ("status",)  # status routes: the job's state
    # alternative spellings of record keys -> the catalog's (result_fields) spelling
    record_aliases: Mapping[str, str] = dc_field(default_factory=_nothing, compare=False)
    # an answer whose records are bare values: the key to put each under, and the request
    # keys to echo into each record ({record key: request api key})
    scalar_record: str | None = None
    echo: Mapping[str, str] = dc_field(default_factory=_nothing, compare=False)
    # -- how the module maps across generations
    public: bool = True  # a playbook task may name it (v2's per-kind activity ops: no)
    splits: tuple[Split, ...] = ()  # a module served by several operations, one job each
    # module field -> why v2 refuses it, and what to do instead
    v1_only: Mapping[str, str] = dc_field(default_factory=_nothing, compare=False)
    changes_tenant: bool = False  # set_tag writes; it never runs under --check

    @property
    def is_export(self) -> bool:
        return self.kind == "export"

    @property
    def is_query(self) -> bool:
        return self.kind == "query"

    @property
    def is_action(self) -> bool:
        return self.kind == "action"

    @property
    def is_module(self) -> bool:
        return self.public and self.kind in ("export", "query", "action")

    @property
    def capped_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.cap is not None)

    @property
    def path_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if self.placement(f) == "path")

    def placement(self, f: Field) -> str:
        """Where ``f`` goes: path, query or body."""
        if f.placement is not None:
            return f.placement
        return "query" if self.method == "GET" else "body"

    def field(self, name: str) -> Field:
        """The field called ``name`` in either spelling (case-insensitive)."""
        key = name.lower()
        for f in self.fields:
            if key in (f.name.lower(), f.api.lower()):
                return f
        raise KeyError(name)

    def filter(self, name: str) -> Filter:
        key = name.lower()
        for f in self.filters:
            if key in (f.name.lower(), f.api.lower()):
                return f
        raise KeyError(name)

    @property
    def status_operation(self) -> Operation:
        assert self.job_family, f"{self.name} is not an export"
        return JOB_ENDPOINTS[(self.generation, self.job_family)][0]

    @property
    def file_operation(self) -> Operation:
        assert self.job_family, f"{self.name} is not an export"
        return JOB_ENDPOINTS[(self.generation, self.job_family)][1]


# (generation, job family) -> (status operation, file operation); filled by v1 and v2
JOB_ENDPOINTS: dict[tuple[str, str], tuple[Operation, Operation]] = {}


@dataclass(frozen=True)
class Generation:
    """One generation of the API: its operations, by name, and the modules it lacks."""

    name: str
    operations: tuple[Operation, ...] = ()
    # module names of the other generation this one cannot serve -> what to use instead
    unavailable: Mapping[str, str] = dc_field(default_factory=_nothing, compare=False)

    def __post_init__(self) -> None:
        names = [op.name for op in self.operations]
        assert len(names) == len(set(names)), "operation names must be unique"

    def get(self, name: str) -> Operation:
        for op in self.operations:
            if op.name == name:
                return op
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(op.name == name for op in self.operations)

    @property
    def modules(self) -> tuple[Operation, ...]:
        """The operations a playbook task can name: exports, queries and actions."""
        return tuple(op for op in self.operations if op.is_module)
