"""JSON Schema errors turned into messages a person can act on.

jsonschema says "is not valid under any of the given schemas"; a user needs the field, the
line, what was found and what is allowed.  ``schema_diagnostics`` walks every error of the
playbook schema (all at once) and words it from what the catalog knows: the module's fields
with a did-you-mean, an enum's valid choices, the API's caps.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from runner import aliases, catalog, schema, yamlsource
from runner.errors import Diagnostic, PlaybookError
from runner.yamlsource import Source, dotted

Path_ = tuple[str | int, ...]

MODULE_NAMES = catalog.all_module_names()


@functools.cache
def _document() -> dict[str, Any]:
    return schema.build_schema()


@functools.cache
def _validator() -> Any:
    return jsonschema.Draft202012Validator(_document())


def schema_diagnostics(document: Any, source: Source, *, validator: Any = None,
                       translator: type[_Translator] | None = None) -> list[Diagnostic]:
    """Every way ``document`` breaks the playbook schema, one Diagnostic each.

    Another document (the inventory) passes its own validator and translator; its schema
    may ``$ref`` only the playbook schema's ``template`` and ``connection`` definitions.
    """
    seen: set[tuple[int, int, str]] = set()
    out: list[Diagnostic] = []
    words = (translator or _Translator)(document, source)
    for error in (validator or _validator()).iter_errors(document):
        for diagnostic in words.translate(error):
            key = (diagnostic.line, diagnostic.column, diagnostic.message)
            if key not in seen:
                seen.add(key)
                out.append(diagnostic)
    return out


def did_you_mean(word: str, choices: Iterable[str] | Mapping[str, str]) -> str:
    """``; did you mean 'x'?`` or nothing, matching case-insensitively.

    ``choices`` may map each spelling to the name to suggest (an API name to its own).
    """
    names = choices if isinstance(choices, Mapping) else {c: c for c in choices}
    by_lower = {spelling.lower(): name for spelling, name in names.items()}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


def _spellings(items: Iterable[catalog.Field | catalog.Filter]) -> dict[str, str]:
    """Every spelling of the fields (or filters) -> the name a playbook should use."""
    out: dict[str, str] = {}
    for item in items:
        out[item.api] = item.name
        out[item.name] = item.name
    return out


def show(value: Any) -> str:
    """A value as a user would recognise it in their YAML (shortened)."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_mapping(text: str, file: str, *, empty: str, not_mapping: str
                 ) -> tuple[dict[str, Any], Source]:
    """A document that must be a mapping, with its positions; YAML problems, an empty
    document (``empty``: what it needs) or another kind (``not_mapping``: what a mapping
    holds) raise ``PlaybookError``."""
    document, source, problems = yamlsource.load(text, file)
    if problems:
        raise PlaybookError(problems)
    if document is None:
        raise PlaybookError(Diagnostic(file, 1, 1, empty))
    if not isinstance(document, dict):
        raise PlaybookError(source.diagnostic(
            (), f"{not_mapping}, not {kind_of(document)}"))
    return document, source


def kind_of(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def operation_at(path: Path_) -> catalog.Operation | None:
    """The module whose arguments ``path`` lies in (``tasks[i].<module>...``)."""
    is_args = len(path) >= 3 and path[0] == "tasks" and isinstance(path[1], int)
    return catalog.playbook_operation(str(path[2])) if is_args and path[2] in MODULE_NAMES else None


def enum_at(path: Path_) -> catalog.ApiEnum | None:
    """The catalog enum of the argument or filter value at ``path``."""
    op = operation_at(path)
    if op is None or len(path) < 4:
        return None
    names = [p for p in path[3:] if isinstance(p, str)]
    try:
        if names[0] == "filters" and len(names) > 1:
            return op.filter(names[1]).enum
        return op.field(names[0]).enum
    except (KeyError, IndexError):
        return None


def _canonical(op: catalog.Operation | None, name: str) -> str:
    try:
        return name if op is None else aliases.resolve(op.fields, name).name
    except KeyError:
        return name


def field_hint(op: catalog.Operation, field: catalog.Field) -> str:
    if field.enum is not None:
        return f"one of {field.enum.choices()}"
    return field.help


class _Translator:
    def __init__(self, document: Any, source: Source) -> None:
        self.document = document
        self.source = source

    def diag(self, path: Path_, problem: str, *, key: bool = False) -> Diagnostic:
        label = dotted(path) or "playbook"
        return self.source.diagnostic(path, f"{label}: {problem}", key=key, field=dotted(path))

    def translate(self, error: jsonschema.ValidationError) -> list[Diagnostic]:
        path: Path_ = tuple(error.absolute_path)
        handler = getattr(self, f"_{error.validator}", None)
        if handler is None:
            return [self.diag(path, error.message)]
        return handler(error, path)

    # ------------------------------------------------------------------ keywords

    def _required(self, error: Any, path: Path_) -> list[Diagnostic]:
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            self.missing(path, name) for name in error.validator_value if name not in present
        ]

    def missing(self, path: Path_, name: str) -> Diagnostic:
        op = operation_at(path)
        if path == ():
            problem = "missing 'tasks': a playbook lists what to run under tasks:"
        elif op is not None and len(path) == 3:
            field = op.field(name)
            hint = field_hint(op, field)
            problem = f"{op.name} needs '{name}'" + (f": {hint}" if hint else "")
        else:
            problem = f"missing required field '{name}'"
        return self.diag(path, problem, key=True)

    def _additionalProperties(self, error: Any, path: Path_) -> list[Diagnostic]:
        allowed = list(error.schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        return [self.diag((*path, k), self.unknown(path, k, allowed, error.instance), key=True)
                for k in extras]

    def unknown(self, path: Path_, key: str, allowed: list[str], instance: dict) -> str:
        op = operation_at(path)
        if path == ():
            return f"unknown top-level key '{key}'" + (
                did_you_mean(key, allowed) or "; a playbook has: " + ", ".join(allowed))
        if len(path) == 2 and path[0] == "tasks":
            keywords = list(schema.TASK_KEYWORDS)
            has_module = any(k in MODULE_NAMES for k in instance)
            keyword_hint = did_you_mean(key, keywords)
            module_hint = did_you_mean(key, MODULE_NAMES)
            if keyword_hint and (has_module or not module_hint):
                return f"unknown task keyword '{key}'{keyword_hint}"
            if not has_module or module_hint:
                return f"unknown module '{key}'" + (
                    module_hint or "; modules are: " + ", ".join(MODULE_NAMES))
            return (f"unknown task keyword '{key}'; a task has one module and: "
                    + ", ".join(keywords))
        if op is not None and len(path) == 3:
            return (f"unknown field '{key}' for {op.name}"
                    + (did_you_mean(key, _spellings(op.fields)) or ".")
                    + " Its fields are: " + ", ".join(f.name for f in op.fields))
        if op is not None and path[-1] == "filters":
            return (f"unknown filter '{key}' for {op.name}"
                    + (did_you_mean(key, _spellings(op.filters)) or ".")
                    + " Its filters are: " + ", ".join(f.name for f in op.filters))
        what = "connection setting" if path and path[0] == "connection" else "key"
        return f"unknown {what} '{key}'" + (
            did_you_mean(key, allowed) or "; allowed: " + ", ".join(allowed))

    def _oneOf(self, error: Any, path: Path_) -> list[Diagnostic]:
        if len(path) == 2 and path[0] == "tasks" and isinstance(error.instance, dict):
            named = [k for k in error.instance if k in MODULE_NAMES]
            if len(named) > 1:
                return [self.diag((*path, named[1]),
                                  "a task runs exactly one module, this one names "
                                  + " and ".join(named), key=True)]
            allowed = set(schema.TASK_KEYWORDS) | set(MODULE_NAMES)
            if any(k not in allowed for k in error.instance):
                return []  # the unknown key is reported as an unknown module
            return [self.diag(path, "this task names no module; add one of: "
                              + ", ".join(MODULE_NAMES))]
        return self._anyOf(error, path)

    def _anyOf(self, error: Any, path: Path_) -> list[Diagnostic]:
        branches = error.validator_value
        if all(set(b) == {"required"} for b in branches):
            op = operation_at(path)
            names = list(dict.fromkeys(_canonical(op, b["required"][0]) for b in branches))
            if op is not None and len(names) > 1:  # an argrules group: one of them at least
                return [self.diag(path, f"{op.name} needs " + " or ".join(
                    repr(n) for n in names) + " (or both)", key=True)]
            return [self.missing(path, branches[0]["required"][0])]
        by_branch: dict[int, list[Any]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [i for i, b in enumerate(branches) if _accepts(b, error.instance)]
        # a plain string that only "fits" as a template is a wrong type, not a bad template
        preferred = [i for i in fitting if not _is_template(branches[i])]
        for index in preferred:
            errors = by_branch.get(index, [])
            if errors:
                return [d for sub in errors for d in self.translate(sub)]
        return [self.diag(path, f"must be {describe(error.schema)}, not {kind_of(error.instance)}")]

    def _type(self, error: Any, path: Path_) -> list[Diagnostic]:
        if path == ("tasks",):
            return [self.diag(path, "must be a list of tasks, each starting with '- ', not "
                              + kind_of(error.instance))]
        return [self.diag(path, f"must be {describe(error.schema)}, not {kind_of(error.instance)}")]

    def _enum(self, error: Any, path: Path_) -> list[Diagnostic]:
        api_enum = enum_at(path)
        if api_enum is not None:
            problem = f"{show(error.instance)} is not a valid {api_enum.name}; choose one of: " \
                      f"{api_enum.choices()}"
        else:
            choices = ", ".join(str(v) for v in error.validator_value)
            what = "a data-center alias (see `insights-runner regions`)" \
                if path == ("connection", "region") else "allowed"
            problem = f"{show(error.instance)} is not {what}; choose one of: {choices}"
        return [self.diag(path, problem)]

    def _const(self, error: Any, path: Path_) -> list[Diagnostic]:
        return [self.diag(path, f"must be {show(error.validator_value)}, not "
                          f"{show(error.instance)}")]

    def _maximum(self, error: Any, path: Path_) -> list[Diagnostic]:
        cap = " (the API's cap)" if path and path[-1] == "page_size" else ""
        return [self.diag(path, f"must be at most {error.validator_value}{cap}, not "
                          f"{show(error.instance)}")]

    def _exclusiveMinimum(self, error: Any, path: Path_) -> list[Diagnostic]:
        return [self.diag(path, f"must be more than {error.validator_value}, not "
                          f"{show(error.instance)}")]

    def _minimum(self, error: Any, path: Path_) -> list[Diagnostic]:
        return [self.diag(path, f"must be at least {error.validator_value}, not "
                          f"{show(error.instance)}")]

    def _minItems(self, error: Any, path: Path_) -> list[Diagnostic]:
        if path == ("tasks",):
            return [self.diag(path, "a playbook needs at least one task")]
        if error.validator_value == 1:
            return [self.diag(path, "must not be empty")]
        return [self.diag(path, f"needs at least {error.validator_value} values")]

    def _maxItems(self, error: Any, path: Path_) -> list[Diagnostic]:
        return [self.diag(path, f"takes at most {error.validator_value} values, not "
                          f"{len(error.instance)}")]

    def _minLength(self, error: Any, path: Path_) -> list[Diagnostic]:
        return [self.diag(path, "must not be empty")]

    def _pattern(self, error: Any, path: Path_) -> list[Diagnostic]:
        if "propertyNames" in error.schema_path:  # the key itself is wrong
            return [self.diag((*path, error.instance), f"{show(error.instance)} is not a valid "
                              "variable name: use letters, digits and _, not starting with a "
                              "digit", key=True)]
        return [self.diag(path, pattern_problem(error.validator_value, error.instance))]

    def _not(self, error: Any, path: Path_) -> list[Diagnostic]:
        names = error.validator_value.get("required", [])
        if len(names) == 2:
            return [self.diag((*path, names[1]), f"set {names[0]} or {names[1]}, not both",
                              key=True)]
        return [self.diag(path, error.message)]


def pattern_problem(pattern: str, value: Any) -> str:
    if pattern == schema.NAME_PATTERN:
        return f"{show(value)} is not a valid name: use letters, digits and _, " \
               "not starting with a digit"
    if pattern == schema.DATETIME_PATTERN:
        return f"must be a date or date-time such as 2024-01-31T08:00:00, not {show(value)}"
    return f"{show(value)} does not match {pattern}"


# ------------------------------------------------------------- schema reading


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = _document()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _is_template(node: dict[str, Any]) -> bool:
    return node.get("$ref") == "#/$defs/template"


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _json_type_ok(name: str, value: Any) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _JSON_TYPES[name])


def _accepts(node: dict[str, Any], value: Any) -> bool:
    """Whether ``value``'s JSON type is one the (sub)schema could accept."""
    node = _resolve(node)
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return any(_json_type_ok(t, value) for t in types)
    if "enum" in node:
        return any(type(v) is type(value) or (isinstance(v, str) and isinstance(value, str))
                   for v in node["enum"])
    if "anyOf" in node:
        return any(_accepts(b, value) for b in node["anyOf"])
    return True


def describe(node: dict[str, Any], plural: bool = False) -> str:
    """What a (sub)schema accepts, in words: 'a list of strings or a template'."""
    ref = node.get("$ref", "")
    if ref == "#/$defs/template":
        return "templates" if plural else "a template ({{ ... }})"
    if ref:
        node = _resolve(node)
    if "anyOf" in node and "type" not in node:
        words: list[str] = []
        for branch in node["anyOf"]:
            word = describe(branch, plural)
            if word not in words:
                words.append(word)
        return " or ".join(words)
    if "enum" in node:
        values = ", ".join(str(v) for v in node["enum"][:10])
        return f"one of {values}" + (", ..." if len(node["enum"]) > 10 else "")
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(describe({"type": k}, plural) for k in kind)
    if kind == "array":
        return "a list of " + describe(node.get("items", {}), plural=True) \
            if "items" in node else "a list"
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        if low is not None and high is not None:
            return f"whole numbers from {low} to {high}" if plural \
                else f"a whole number from {low} to {high}"
        return "whole numbers" if plural else "a whole number"
    words_for = {
        "string": ("a string", "strings"),
        "boolean": ("true or false", "true/false values"),
        "object": ("a mapping", "mappings"),
        "number": ("a number", "numbers"),
        "null": ("null", "nulls"),
    }
    if kind in words_for:
        return words_for[kind][plural]
    return "values" if plural else "a value"
