"""Which API generation a playbook speaks, and what that generation refuses.

A connection (inline, or an inventory tenant's) says ``api: v1`` or ``api: v2``; v1 is the
default.  ``retarget`` points every task of a playbook at its generation's operation and
refuses, naming the alternative, what that generation cannot do:

* a module it does not have (``detail_records`` on v2, a Google module on v1);
* a field v2 removed (``language``, ``export_option`` on user access exports, the filters of
  detail records; the catalog's ``v1_only``), or a filter it dropped;
* a value v2 cannot take (an empty ``group_ids``, a link summary without sites).

Pure: it reads the catalog and the loaded playbook, and raises ``PlaybookError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from runner import catalog, diagnose, templating
from runner.catalog import v2 as catalog_v2
from runner.errors import Diagnostic, PlaybookError
from runner.yamlsource import dotted

GENERATIONS = tuple(catalog.GENERATIONS)


def api_of(connection: Any) -> str:
    """The generation a connection mapping asks for (v1 when it says nothing)."""
    if isinstance(connection, Mapping):
        value = connection.get("api")
        if isinstance(value, str) and value.strip().lower() in catalog.GENERATIONS:
            return value.strip().lower()
    return catalog.DEFAULT_GENERATION


def retarget(playbook: Any) -> Any:
    """``playbook`` with each task on its connection's generation; every refusal at once."""
    api = api_of(playbook.connection)
    problems: list[Diagnostic] = []
    tasks = []
    tenant = getattr(playbook.source, "tenant", "")
    whose = f" (tenant {tenant!r} connects with api: {api})" if tenant else ""
    for task in playbook.tasks:
        for path, message, key in _refusals(task, api):
            diagnostic = playbook.source.diagnostic(path, f"{dotted(path)}: {message}{whose}",
                                                    key=key)
            if diagnostic not in problems:
                problems.append(diagnostic)
        tasks.append(dataclasses.replace(task, api=api) if task.api != api else task)
    if problems:
        raise PlaybookError(problems)
    return dataclasses.replace(playbook, tasks=tuple(tasks))


def _refusals(task: Any, api: str) -> list[tuple[tuple[Any, ...], str, bool]]:
    module_path = (*task.path, task.module)
    generation = catalog.GENERATIONS[api]
    if task.module in generation.unavailable:
        return [(module_path, generation.unavailable[task.module], True)]
    if not generation.has(task.module) or not generation.get(task.module).is_module:
        others = ", ".join(g for g in catalog.generations_of(task.module))
        return [(module_path, f"{task.module} is a Graph API ({others}) module: set api: "
                 f"{others} on the connection to use it", True)]
    op = generation.get(task.module)
    out: list[tuple[tuple[Any, ...], str, bool]] = []
    if api == catalog.DEFAULT_GENERATION:
        for field in op.fields:
            if field.required and field.default is None and field.name not in task.args:
                hint = diagnose.field_hint(op, field)
                out.append((module_path, f"{task.module} needs '{field.name}'"
                            + (f": {hint}" if hint else ""), True))
        return out
    for name, value in task.args.items():
        path = task.arg_path(name)
        if name in op.v1_only:
            out.append((path, op.v1_only[name], True))
            continue
        try:
            op.field(name)
        except KeyError:
            out.append((path, f"{api} has no {name} on {task.module}", True))
            continue
        if name == "filters" and isinstance(value, Mapping):
            for flt in value:
                try:
                    op.filter(str(flt))
                except KeyError:
                    kept = ", ".join(f.name for f in op.filters) or "none"
                    out.append(((*path, flt), f"{api} dropped the {flt} filter of "
                                f"{task.module}; it keeps: {kept}", True))
        needed = catalog_v2.REQUIRED_ON_V2.get((task.module, name))
        if needed and value == [] and not templating.contains_template(value):
            out.append((path, needed, False))
    for field in op.fields:
        if field.required and field.default is None and field.name not in task.args:
            needed = catalog_v2.REQUIRED_ON_V2.get((task.module, field.name))
            out.append((module_path, needed or f"{api} needs {field.name} on {task.module}",
                        True))
    return out
