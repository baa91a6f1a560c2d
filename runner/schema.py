"""The playbook JSON Schema, generated from the catalog (``insights-runner schema`` prints it).

``schemas/playbook.schema.json`` is the committed copy for editors; a test keeps the two equal.
Every module argument accepts its friendly name or the API's spelling, and any argument value
may instead be a Jinja template string, which is checked again once it has been expanded.
"""

from __future__ import annotations

import json
from typing import Any

from runner import aliases, argrules, catalog, regions

SCHEMA_ID = "https://github.com/insights-runner/insights-runner/schemas/playbook.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
TEMPLATE_PATTERN = r"\{\{|\{%"
# A date (2024-01-31) or a date-time (2024-01-31T08:00:00, optional fraction and zone).
DATETIME_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
QUERY_FORMATS = ("jsonl", "json", "csv")
CONVERT_FORMATS = ("csv",)  # runner.execute.postprocess
CLOUDS = tuple(regions.IDENTITY_SERVICES)

# Task keywords beside the one module key.
TASK_KEYWORDS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "description": "What the task does; shown in plans and reports."},
    "output": {
        "type": "string",
        "minLength": 1,
        "description": "Where each Step writes, relative to output_dir; a template with "
        "chunk.number, chunk.total, item and task.",
    },
    "register": {
        "type": "string",
        "pattern": NAME_PATTERN,
        "description": "Keep the task's results under this name for later tasks' templates.",
    },
    "loop": {
        "anyOf": [{"type": "array"}, {"$ref": "#/$defs/template"}],
        "description": "Run the task once per item (bound to `item`).",
    },
    "when": {
        "anyOf": [{"type": "boolean"}, {"type": "string", "minLength": 1}],
        "description": "A Jinja expression (no braces needed); the task is skipped when false.",
    },
    "tags": {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "description": "Names for --tags / --skip-tags.",
    },
    "ignore_errors": {
        "type": "boolean",
        "description": "A failed Step does not fail the run.",
    },
    "retries": {
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "description": "How many more times a failed Step is tried (default 3).",
    },
    "format": {
        "enum": list(QUERY_FORMATS),
        "description": "File format of a query's records: jsonl (default), json or csv.",
    },
    "extract": {
        "type": "boolean",
        "description": "Exports: unpack the downloaded .zip into a folder beside it, named "
        "after it (safely: no member may land outside that folder).",
    },
    "convert": {
        "enum": list(CONVERT_FORMATS),
        "description": "Exports: write each sheet of each .xlsx report as a CSV in the "
        "folder beside the .zip (the .xlsx are kept only with extract: true).",
    },
}


def build_schema() -> dict[str, Any]:
    """The whole playbook schema, as a JSON-ready dict (stable key order)."""
    modules = tuple(catalog.playbook_operation(name) for name in catalog.all_module_names())
    defs: dict[str, Any] = {
        "template": {
            "type": "string",
            "pattern": TEMPLATE_PATTERN,
            "description": "A Jinja template, expanded before the value is checked.",
        },
        "connection": _connection(),
        "task": _task(modules),
    }
    for key, api_enum in catalog.ENUMS.items():
        if any(_uses(op, api_enum) for op in modules):
            defs[key] = {"enum": api_enum.spellings(), "description": api_enum.doc or
                         f"A {api_enum.name}: " + api_enum.choices()}
    for op in modules:
        defs[args_def(op.name)] = _arguments(op)
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "insights-runner playbook",
        "description": "A playbook: which Insights reports to fetch, and where to write them.",
        "type": "object",
        "required": ["tasks"],
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1, "description": "Playbook format version (1)."},
            "name": {"type": "string", "description": "Name of the playbook."},
            "hosts": {"type": "string", "minLength": 1,
                      "description": "The inventory tenants to run for: a tenant, a group, "
                      "all, wildcards (eu-*), joined by , or :, !name to leave one out."},
            "connection": {
                "anyOf": [
                    {"type": "string", "minLength": 1, "description": "An inventory tenant."},
                    {"$ref": "#/$defs/connection"},
                ],
                "description": "An inventory tenant's name, or the connection written inline.",
            },
            "vars": {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "description": "Variables for templates; -e/--extra-vars win over these.",
            },
            "output_dir": {
                "type": "string",
                "minLength": 1,
                "description": "Root of every task output (default: the playbook's directory).",
            },
            "tasks": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/task"},
            },
        },
        "$defs": defs,
    }


def schema_json() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def args_def(module: str) -> str:
    return f"{module}_args"


# ------------------------------------------------------------------------ pieces


def _uses(op: catalog.Operation, api_enum: catalog.ApiEnum) -> bool:
    return any(f.enum is api_enum for f in op.fields) or \
        any(f.enum is api_enum for f in op.filters)


def _enum(api_enum: catalog.ApiEnum) -> dict[str, Any]:
    """A reference to the enum's definition (every spelling the catalog accepts)."""
    key = next(k for k, v in catalog.ENUMS.items() if v is api_enum)
    return {"$ref": f"#/$defs/{key}"}


def _or_template(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"$ref": "#/$defs/template"}]}


def _connection() -> dict[str, Any]:
    string = {"type": "string", "minLength": 1}
    flag = _or_template({"type": "boolean"})
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "api": {"enum": list(catalog.GENERATIONS),
                    "description": "API generation: v1 (the legacy Web API, the default) or "
                    "v2 (the Graph API, Microsoft 365 and Google Workspace)."},
            "region": _or_template(
                {"enum": [dc.alias for dc in regions.DATA_CENTERS],
                 "description": "Data-center alias (see `insights-runner regions`)."}
            ),
            "base_url": {**string, "description": "Web API URL (a proxy, the simulator); "
                         "overrides region."},
            "cloud": _or_template({"enum": list(CLOUDS), "description": "Identity service."}),
            "identity_url": {**string, "description": "Identity service URL; overrides cloud "
                             "and region."},
            "client_id": {**string, "description": "Application (client) ID of the app."},
            "certificate": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "path": {**string,
                             "description": ".pfx or PEM file (relative to the playbook)."},
                    "key_path": {**string,
                                 "description": "The private key's PEM file, when not in path."},
                    "password": {"type": "string", "description": "Use {{ env('NAME') }}."},
                    "pfx_base64": {**string,
                                   "description": "The .pfx itself, base64 (CI secrets)."},
                },
                "not": {"required": ["path", "pfx_base64"]},
            },
            "client_secret": {"type": "string", "minLength": 1,
                              "description": "The app's client secret, instead of a "
                              "certificate; use {{ env('NAME') }}."},
            "max_exports": {**_or_template({"type": "integer", "minimum": 1}),
                            "description": "Export jobs in progress at once for this tenant "
                            "(default 5)."},
            "verify_tls": flag,
            "simulator": flag,
            "timeout": {**_or_template({"type": "number", "exclusiveMinimum": 0}),
                        "description": "Seconds to wait for one HTTP answer (default 60)."},
        },
    }


def _task(modules: tuple[catalog.Operation, ...]) -> dict[str, Any]:
    properties: dict[str, Any] = dict(TASK_KEYWORDS)
    for op in modules:
        properties[op.name] = {
            "$ref": f"#/$defs/{args_def(op.name)}",
            "description": f"{op.kind}: {op.summary}",
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "oneOf": [{"required": [op.name]} for op in modules],
    }


def playbook_required(field: catalog.Field, op: catalog.Operation | None = None) -> bool:
    """Whether a playbook must write the field (the compiler fills page sizes itself, and
    a field of an ``argrules`` group may be left out)."""
    if op is not None and argrules.optional_in_playbook(op, field):
        return False
    return field.required and field.default is None


def _required_everywhere(op: catalog.Operation, field: catalog.Field) -> bool:
    """Required on every generation that serves the module: a field only one requires
    (export_option on v1's user access export) is checked once the connection's
    generation is known (runner.generation)."""
    for name in catalog.generations_of(op.name):
        try:
            other = catalog.operation(op.name, name).field(field.name)
        except KeyError:
            return False
        if not playbook_required(other, op):
            return False
    return playbook_required(field, op)


def _arguments(op: catalog.Operation) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[dict[str, Any]] = []
    plain: list[str] = []
    for field in op.fields:
        value = _field_schema(op, field)
        properties[field.name] = value
        names = aliases.spellings(field)
        for alias in names[1:]:
            properties[alias] = {"$ref": f"#/$defs/{args_def(op.name)}/properties/{field.name}"}
        if _required_everywhere(op, field):
            if len(names) == 1:
                plain.append(field.name)
            else:
                required.append({"anyOf": [{"required": [n]} for n in names]})
    group = argrules.group(op)
    if group:
        required.append({"anyOf": [{"required": [n]} for name in group
                                   for n in aliases.spellings(op.field(name))]})
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if plain:
        schema["required"] = plain
    schema["properties"] = properties
    if required:
        schema["allOf"] = required
    return schema


def _field_schema(op: catalog.Operation, field: catalog.Field) -> dict[str, Any]:
    described = {"description": field.help} if field.help else {}
    if field.kind == "string":
        return {"type": "string", **described}
    if field.kind == "int":
        number: dict[str, Any] = {"type": "integer", "minimum": 1}
        if field.maximum is not None:
            number["maximum"] = field.maximum
        return {**_or_template(number), **described}
    if field.kind == "datetime":
        return {"type": "string", "anyOf": [{"pattern": DATETIME_PATTERN},
                                            {"pattern": TEMPLATE_PATTERN}], **described}
    if field.kind == "string_list":
        items: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
        if not field.empty_allowed:
            items["minItems"] = 1
        return {**_or_template(items), **described}
    if field.kind == "enum":
        assert field.enum is not None
        return {**_or_template(_enum(field.enum)), **described}
    if field.kind == "enum_list":
        assert field.enum is not None
        listed: dict[str, Any] = {"type": "array", "items": _enum(field.enum)}
        if not field.empty_allowed:
            listed["minItems"] = 1
        return {**_or_template(listed), **described}
    if field.kind == "filters":
        return {
            "anyOf": [_filters_by_name(op), _filters_raw(op), {"$ref": "#/$defs/template"}],
            "description": "Filters by name (sensitivity: [high, medium]) or the API's "
            "[{id, values}] list.",
        }
    raise AssertionError(f"no schema for field kind {field.kind}")


def _filter_values(flt: catalog.Filter) -> dict[str, Any]:
    if flt.kind == "enum":
        assert flt.enum is not None
        item: dict[str, Any] = _enum(flt.enum)
    elif flt.kind == "datetime":
        item = {"type": "string", "pattern": DATETIME_PATTERN}
    else:
        item = {"type": "string"}
    values: dict[str, Any] = {"type": "array", "items": item}
    if flt.max_values is not None:
        values["maxItems"] = flt.max_values
    if flt.help:
        values["description"] = flt.help
    return _or_template(values)


def _filters_by_name(op: catalog.Operation) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for flt in op.filters:
        properties[flt.name] = _filter_values(flt)
        for alias in aliases.spellings(flt)[1:]:
            properties[alias] = properties[flt.name]
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _filters_raw(op: catalog.Operation) -> dict[str, Any]:
    ids = []
    for flt in op.filters:
        ids.append(flt.api)
    return {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "values"],
            "properties": {
                "id": {"enum": ids},
                "values": {"type": "array", "items": {"type": ["string", "integer"]}},
            },
        },
    }


# ------------------------------------------------------------------------- docs


def modules_markdown(operations: tuple[catalog.Operation, ...] | None = None) -> str:
    """The README's table of modules and their fields, generated so that it cannot drift."""
    lines = []
    for op in catalog.modules() if operations is None else operations:
        lines.append(f"#### `{op.name}` ({op.kind}) - {op.method} `{op.path}`")
        lines.append("")
        lines.append(op.summary)
        lines.append("")
        lines.append("| field | API name | value | notes |")
        lines.append("|---|---|---|---|")
        for field in op.fields:
            group = argrules.group(op)
            if field.name in group:
                others = " or ".join(f"`{n}`" for n in group if n != field.name)
                need = f"default empty; it or {others} required"
            else:
                need = "required" if playbook_required(field, op) else (
                    f"default {field.default}" if field.default is not None else "optional")
            if field.help and field.kind in ("string", "datetime", "string_list"):
                need += f"; {field.help}"
            lines.append(f"| `{field.name}` | `{field.api}` | {_field_words(field)} | {need} |")
        if op.filters:
            lines.append("")
            lines.append("Filters, `filters: {name: [values, ...]}` (names or the API's codes):")
            lines.append("")
            lines.extend(
                f"- `{f.name}` (`{f.api}`): {f.enum.choices() if f.enum else f.help or f.kind}"
                + (f"; at most {f.max_values} values" if f.max_values else "")
                for f in op.filters)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _field_words(field: catalog.Field) -> str:
    if field.kind == "filters":
        return "filters by name (below)"
    if field.enum is not None:
        choices = field.enum.choices()
        return f"list of: {choices}" if field.kind == "enum_list" else f"one of: {choices}"
    words = {
        "string": "string",
        "int": f"1..{field.maximum}" if field.maximum else "whole number",
        "datetime": "date or date-time (2024-01-31T08:00:00)",
        "string_list": "list of strings" + (f", chunked by {field.cap}" if field.cap else ""),
    }
    return words[field.kind]
