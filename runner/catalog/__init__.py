"""The one catalog of the Insights API: every operation, field, limit, paging style and enum
code, for both generations.

The compiler, the client, the simulator, the schema generator and the docs all read this
package; no other module writes an endpoint path, a field name or an enum code again.

* ``enums``  - the vocabularies (``ApiEnum``), shared by both generations;
* ``limits`` - the service's numbers (100 values, 100 records a page, 5 jobs);
* ``model``  - what an ``Operation``, a ``Field`` and a ``Generation`` are;
* ``v1``     - the legacy Web API's 18 operations (``V1``);
* ``v2``     - the Graph API's 24 operations, Microsoft 365 and Google Workspace (``V2``);
* ``encoding`` - values in the API's form, URL paths filled and matched;
* ``questions`` - how each open question of the v2 reference (§10) is settled.

Vocabulary:

* **module name** - the snake_case name a playbook task uses (``site_permission_export``);
  on both generations it means the same report where v2 has an equivalent.
* **field** - one request element; ``name`` is the playbook spelling, ``api`` the
  reference's spelling (the service matches request keys case-insensitively).
* **cap** - the most values a list field may carry in one request; the compiler splits a
  longer list into several Steps (their product, when a request has two capped lists).
  v2's path values have cap 1: one user, group or object per job.
* **filters** - the DetailRecord endpoints' ``[{id, values}]`` list; each filter has its
  own enum.
"""

from __future__ import annotations

from collections.abc import Iterable

from .encoding import (
    decode_until_stable,
    encode,
    encode_filters,
    fill_path,
    flat_filter,
    match_path,
    path_names,
    path_value,
)
from .enums import (
    DATA_SOURCE,
    DEFAULT_LANGUAGE,
    DOWNLOADABLE_STATUSES,
    ENUMS,
    EXPORT_OPTION,
    EXPORT_STATUS,
    EXPOSURE_LEVEL,
    GOOGLE_DATA_SOURCE,
    GOOGLE_EXPORT_OPTION,
    GOOGLE_LINK_TYPE,
    LANGUAGE,
    LINK_TYPE,
    MODULE,
    OBJECT_TYPE,
    RISK_LEVEL,
    SENSITIVITY_LEVEL,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_NONE,
    STATUS_STOPPED,
    STATUS_STOPPING,
    STATUS_SUCCEEDED,
    STATUS_SUCCEEDED_WITH_EXCEPTIONS,
    TERMINAL_STATUSES,
    ApiEnum,
    Member,
)
from .limits import (
    ASSERTION_LIFETIME_SECONDS,
    CLIENT_ASSERTION_TYPE,
    EXPORT_LIMIT_CODE,
    EXPORT_LIMIT_MESSAGE,
    MAX_CONCURRENT_EXPORTS,
    MAX_LIST_VALUES,
    MAX_PAGE_SIZE,
    SCOPE,
    TOKEN_LIFETIME_SECONDS,
)
from .model import (
    JOB_ENDPOINTS,
    Field,
    FieldKind,
    Filter,
    Generation,
    Operation,
    OperationKind,
    Paging,
    Placement,
    Split,
)
from .v1 import V1
from .v2 import V2

GENERATIONS: dict[str, Generation] = {"v1": V1, "v2": V2}
DEFAULT_GENERATION = "v1"


def operation(name: str, generation: str = DEFAULT_GENERATION) -> Operation:
    return GENERATIONS[generation].get(name)


def modules(generation: str = DEFAULT_GENERATION) -> tuple[Operation, ...]:
    return GENERATIONS[generation].modules


def module_names(generation: str = DEFAULT_GENERATION) -> tuple[str, ...]:
    return tuple(op.name for op in modules(generation))


def all_module_names() -> tuple[str, ...]:
    """Every module a playbook may name on some generation (v1's first, in catalog order)."""
    names: list[str] = []
    for generation in GENERATIONS.values():
        names += [op.name for op in generation.modules if op.name not in names]
    return tuple(names)


def playbook_operation(module: str) -> Operation:
    """The operation whose fields a playbook task of ``module`` is written with (and the
    schema describes): v1's where v1 has it, else the v2-only module.  A v2 connection then
    checks the task against v2's operation (``runner.manifest.retarget``)."""
    for generation in GENERATIONS.values():
        if generation.has(module) and generation.get(module).is_module:
            return generation.get(module)
    raise KeyError(module)


def generations_of(module: str) -> tuple[str, ...]:
    """The generations that serve ``module`` (``()`` for an unknown name)."""
    return tuple(name for name, gen in GENERATIONS.items()
                 if gen.has(module) and gen.get(module).is_module)


def find_by_path(method: str, path: str, generation: str = DEFAULT_GENERATION) -> Operation | None:
    """The operation served at ``path`` (case-insensitive, as the service matches paths).

    For a generation whose paths carry values (v2), use ``match_path``, which also
    answers the values.
    """
    found = match_path(method, path, routed(generation))
    return found[0] if found else None


def routed(generation: str = DEFAULT_GENERATION) -> tuple[Operation, ...]:
    """The operations that have a route of their own (not v2's split ``activity_export``)."""
    return tuple(op for op in GENERATIONS[generation].operations if op.path)


def iter_operations(generation: str = DEFAULT_GENERATION) -> Iterable[Operation]:
    return iter(GENERATIONS[generation].operations)


__all__ = [
    "ASSERTION_LIFETIME_SECONDS", "CLIENT_ASSERTION_TYPE", "DATA_SOURCE", "DEFAULT_GENERATION",
    "DEFAULT_LANGUAGE", "DOWNLOADABLE_STATUSES", "ENUMS", "EXPORT_LIMIT_CODE",
    "EXPORT_LIMIT_MESSAGE", "EXPORT_OPTION", "EXPORT_STATUS", "EXPOSURE_LEVEL",
    "GENERATIONS", "GOOGLE_DATA_SOURCE", "GOOGLE_EXPORT_OPTION", "GOOGLE_LINK_TYPE",
    "JOB_ENDPOINTS", "LANGUAGE", "LINK_TYPE", "MAX_CONCURRENT_EXPORTS", "MAX_LIST_VALUES",
    "MAX_PAGE_SIZE", "MODULE", "OBJECT_TYPE", "RISK_LEVEL", "SCOPE", "SENSITIVITY_LEVEL",
    "STATUS_FAILED", "STATUS_IN_PROGRESS", "STATUS_NONE", "STATUS_STOPPED", "STATUS_STOPPING",
    "STATUS_SUCCEEDED", "STATUS_SUCCEEDED_WITH_EXCEPTIONS", "TERMINAL_STATUSES",
    "TOKEN_LIFETIME_SECONDS", "V1", "V2", "ApiEnum", "Field", "FieldKind", "Filter",
    "Generation", "Member", "Operation", "OperationKind", "Paging", "Placement", "Split",
    "all_module_names", "decode_until_stable", "encode", "encode_filters", "fill_path",
    "find_by_path", "flat_filter", "generations_of", "iter_operations", "match_path",
    "module_names", "modules", "operation", "path_names", "path_value", "playbook_operation",
    "routed",
]
