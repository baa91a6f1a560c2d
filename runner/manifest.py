"""Playbooks in: read one file, check it against the schema and the catalog, return a Playbook.

``load_playbook`` runs load (YAML with positions) → normalise (argument names in any
spelling become the catalog's) → validate (the JSON Schema, in human words) → check what a
schema cannot say (template syntax, register names and order, output paths), and raises
one ``PlaybookError`` carrying every problem it found.  Templates are not expanded here;
``runner.plan`` does that, and reuses ``argument_problem`` and ``output_problem`` to check
expanded values with the same rules.
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from runner import (
    aliases,
    argrules,
    catalog,
    diagnose,
    layout,
    schema,
    templating,
    yamlbudget,
    yamlsource,
)
from runner.errors import Diagnostic, PlaybookError
from runner.yamlsource import Source, dotted

Path_ = tuple[str | int, ...]
MODULE_NAMES = catalog.all_module_names()
DEFAULT_RETRIES = 3
DEFAULT_QUERY_FORMAT = "jsonl"
EXPORT_FORMAT = "zip"
ACTION_FORMAT = "jsonl"  # set_tag writes one record per object it tagged


@dataclass(frozen=True)
class Task:
    """One task as written (values not yet expanded), with what its templates need."""

    index: int
    name: str | None
    module: str
    args: Mapping[str, Any]  # catalog field names -> values as written
    output: str | None
    register: str | None
    loop: Any
    when: Any
    tags: tuple[str, ...]
    ignore_errors: bool
    retries: int
    format: str
    needs: frozenset[str]  # register names its templates read, directly or through vars
    extract: bool = False  # exports: unpack the .zip into a folder beside it
    convert: str | None = None  # exports: "csv", each .xlsx sheet as a CSV
    api: str = catalog.DEFAULT_GENERATION  # the connection's generation (see retarget)

    @property
    def operation(self) -> catalog.Operation:
        generation = catalog.GENERATIONS[self.api]
        if generation.has(self.module):
            return generation.get(self.module)
        return catalog.playbook_operation(self.module)  # not yet retargeted (inventory)

    @property
    def title(self) -> str:
        return self.name or self.module

    @property
    def path(self) -> Path_:
        return ("tasks", self.index)

    def arg_path(self, field: str) -> Path_:
        return ("tasks", self.index, self.module, field)


@dataclass(frozen=True)
class Playbook:
    """A loaded, validated playbook; ``runner.plan.compile_plan`` turns it into a Plan."""

    path: Path  # absolute
    file: str  # as the user named it, for messages
    text: str
    name: str
    version: int
    connection: Any
    hosts: str | None
    vars: Mapping[str, Any]
    extra_vars: Mapping[str, Any]
    output_dir: str | None
    tasks: tuple[Task, ...]
    source: Source
    var_refs: Mapping[str, frozenset[str]]  # names read by each var's templates
    # arguments renamed to the catalog's name (dotted path) -> the path as written
    written: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def registers(self) -> dict[str, int]:
        return {t.register: t.index for t in self.tasks if t.register}


# ------------------------------------------------------------------------ loading


def load_playbook(path: str | Path, extra_vars: Sequence[str] = ()) -> Playbook:
    """Read and validate a playbook; raise ``PlaybookError`` with every problem found."""
    return parse_playbook(yamlsource.read_text(path, "playbook"), Path(path), extra_vars)


def parse_playbook(text: str, path: Path, extra_vars: Sequence[str] = ()) -> Playbook:
    file = str(path)
    document, source = diagnose.load_mapping(
        text, file, empty="the playbook is empty; it needs at least 'tasks:' with one task",
        not_mapping="a playbook is a mapping (version, name, tasks...)")
    written: dict[str, str] = {}
    problems = _normalise(document, source, written)
    problems += diagnose.schema_diagnostics(document, source)
    extra, extra_problems = parse_extra_vars(extra_vars)
    checks = _Checks(document, source, extra)
    problems += checks.run() + extra_problems
    if problems:
        raise PlaybookError([as_written(p, written) for p in problems])
    playbook = Playbook(
        path=path.resolve(),
        file=file,
        text=text,
        name=document.get("name") or path.stem,
        version=document.get("version", 1),
        connection=document.get("connection"),
        hosts=document.get("hosts"),
        vars=MappingProxyType(document.get("vars") or {}),
        extra_vars=MappingProxyType(extra),
        output_dir=document.get("output_dir"),
        tasks=tuple(checks.tasks),
        source=source,
        var_refs=MappingProxyType(checks.var_refs),
        written=MappingProxyType(written),
    )
    if playbook.hosts is not None or isinstance(playbook.connection, str):
        return playbook  # each inventory tenant's connection decides (inventory.targets)
    from runner.generation import retarget  # it reads Playbook and Task from here

    return retarget(playbook)


def _normalise(document: dict[str, Any], source: Source,
               written: dict[str, str]) -> list[Diagnostic]:
    """Rename arguments and filters written in another spelling to the catalog's name
    (``written`` maps each renamed path, dotted, to the path as the user wrote it), and
    fill the fields that ``argrules`` lets a playbook leave out."""
    problems: list[Diagnostic] = []
    connection = document.get("connection")
    if isinstance(connection, dict):
        for key in ("region", "cloud"):  # aliases are case-insensitive, as the client reads them
            value = connection.get(key)
            if isinstance(value, str) and not templating.is_template(value):
                connection[key] = value.strip().lower()
    tasks = document.get("tasks")
    for index, task in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(task, dict):
            continue
        for module in [k for k in task if k in MODULE_NAMES]:
            if task[module] is None:  # `user_summary:` with nothing after it
                task[module] = {}
            args = task[module]
            if not isinstance(args, dict):
                continue
            op = catalog.playbook_operation(module)
            path: Path_ = ("tasks", index, module)
            problems += _rename(args, path, source, op.fields, written)
            filters = args.get("filters")
            if isinstance(filters, dict):
                problems += _rename(filters, (*path, "filters"), source, op.filters, written)
            argrules.fill_defaults(op, args)
    return problems


def _rename(mapping: dict[str, Any], path: Path_, source: Source,
            items: Iterable[catalog.Field | catalog.Filter],
            written: dict[str, str]) -> list[Diagnostic]:
    problems = []
    renamed: dict[str, Any] = {}
    written_as: dict[str, str] = {}
    for key, value in mapping.items():
        try:
            name = aliases.resolve(items, str(key)).name
        except aliases.AmbiguousName as exc:
            problems.append(source.diagnostic((*path, key), f"{dotted((*path, key))}: {exc}",
                                              key=True))
            continue
        except KeyError:
            name = key  # unknown: the schema reports it, with a did-you-mean
        if name in renamed:
            problems.append(source.diagnostic(
                (*path, key), f"{dotted((*path, key))}: '{key}' and '{written_as[name]}' both "
                f"set {name}", key=True))
            continue
        if name != key:
            source.rename((*path, key), name)
            written[dotted((*path, name))] = dotted((*path, key))
        renamed[name] = value
        written_as[name] = key
    mapping.clear()
    mapping.update(renamed)
    return problems


def as_written(problem: Diagnostic, written: Mapping[str, str]) -> Diagnostic:
    """``problem`` naming the argument as the user wrote it (``export_link_type``), not
    by the catalog name it was renamed to."""
    for canonical, original in written.items():
        for text in (problem.message, problem.field):
            if text == canonical or text.startswith((f"{canonical}:", f"{canonical}.",
                                                     f"{canonical}[")):
                return dataclasses.replace(
                    problem,
                    message=_swap(problem.message, canonical, original),
                    field=_swap(problem.field, canonical, original))
    return problem


def _swap(text: str, canonical: str, original: str) -> str:
    if text == canonical or text.startswith((f"{canonical}:", f"{canonical}.", f"{canonical}[")):
        return original + text[len(canonical):]
    return text


# ----------------------------------------------------------------- extra vars


def parse_extra_vars(specs: Sequence[str]) -> tuple[dict[str, Any], list[Diagnostic]]:
    """``-e`` values, later ones winning: ``key=value ...``, JSON/YAML mappings, ``@file``."""
    merged: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    for number, spec in enumerate(specs, start=1):
        label = f"<-e #{number}>"
        if spec.startswith("@"):
            label = spec[1:]
            try:
                text = yamlbudget.read_limited(label, "extra vars file")
            except OSError as exc:
                problems.append(Diagnostic(label, 1, 1, f"cannot read extra vars: "
                                                        f"{exc.strerror or exc}"))
                continue
            if isinstance(text, Diagnostic):
                problems.append(text)
                continue
            values, more = _mapping_from_yaml(text, label)
        elif spec.lstrip().startswith("{"):
            values, more = _mapping_from_yaml(spec, label)
        else:
            values, more = _key_values(spec, label)
        problems += more
        for key in values:
            problem = name_problem(str(key), "extra var")
            if problem:
                problems.append(Diagnostic(label, 1, 1, problem, str(key)))
        merged.update(values)
    return merged, problems


def _mapping_from_yaml(text: str, label: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    values, _, problems = yamlsource.load(text, label)
    if problems:
        return {}, problems
    if not isinstance(values, dict):
        return {}, [Diagnostic(label, 1, 1, "extra vars must be a mapping of names to values")]
    return values, []


def _key_values(spec: str, label: str) -> tuple[dict[str, Any], list[Diagnostic]]:
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        return {}, [Diagnostic(label, 1, 1, f"cannot split extra vars: {exc}")]
    values: dict[str, Any] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            return {}, [Diagnostic(label, 1, 1, f"extra var {word!r} needs the form key=value "
                                                "(or JSON, or @file)")]
        values[key] = value
    return values, []


def name_problem(name: str, what: str) -> str | None:
    if not re.match(schema.NAME_PATTERN, name):
        return f"{what} {name!r} is not a valid name: use letters, digits and _"
    if name in templating.RESERVED_NAMES:
        return f"{what} name {name!r} is reserved; the runner provides it to templates"
    return None


# ------------------------------------------------------------- shared value checks


_DRIVE = re.compile(r"^[A-Za-z]:")  # compiled once: checked for each of a plan's Steps


def output_problem(value: str) -> tuple[str, str | None]:
    """The normalised POSIX form of an output path, and what is wrong with it, if anything."""
    if not value or not value.strip():
        return value, "must name a file"
    path = value.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return value, f"{value!r} is absolute; outputs are relative to output_dir"
    if path.endswith("/"):
        return value, f"{value!r} names a directory; it must name a file"
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../"):
        return value, f"{value!r} leaves output_dir"
    if normal == ".":
        return value, "must name a file"
    return normal, layout.reserved_output_problem(normal)


@functools.cache
def _spellings(enum: catalog.ApiEnum) -> frozenset[Any]:
    return frozenset(enum.spellings())


def _enum_ok(enum: catalog.ApiEnum, value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, str | int) and \
        value in _spellings(enum)


def argument_problem(op: catalog.Operation, field: catalog.Field, value: Any) -> str | None:
    """What is wrong with an expanded argument value; the same rules as the schema's."""
    kind = field.kind
    got = diagnose.kind_of(value)
    if kind == "string":
        return None if isinstance(value, str) else f"must be a string, not {got}"
    if kind == "int":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number, not {got}"
        if value < 1:
            return f"must be at least 1, not {value}"
        if field.maximum is not None and value > field.maximum:
            return f"must be at most {field.maximum} (the API's cap), not {value}"
        return None
    if kind == "datetime":
        if isinstance(value, str) and re.match(schema.DATETIME_PATTERN, value):
            return None
        return diagnose.pattern_problem(schema.DATETIME_PATTERN, value)
    if kind in ("string_list", "enum_list"):
        if not isinstance(value, list | tuple):
            return f"must be a list, not {got}"
        if not value and not field.empty_allowed:
            return "must not be empty"
        if kind == "string_list":
            if all(type(v) is str for v in value):
                return None
            index = next(i for i, v in enumerate(value) if not isinstance(v, str))
            return f"item {index} must be a string, not {diagnose.kind_of(value[index])}"
        assert field.enum is not None
        for index, item in enumerate(value):
            if not _enum_ok(field.enum, item):
                return f"item {index}: {_bad_enum(field.enum, item)}"
        return None
    if kind == "enum":
        assert field.enum is not None
        return None if _enum_ok(field.enum, value) else _bad_enum(field.enum, value)
    if kind == "filters":
        return _filters_problem(op, value)
    raise AssertionError(kind)


def _bad_enum(enum: catalog.ApiEnum, value: Any) -> str:
    return f"{diagnose.show(value)} is not a valid {enum.name}; choose one of: {enum.choices()}"


def _filters_problem(op: catalog.Operation, value: Any) -> str | None:
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list | tuple) and all(isinstance(v, dict) for v in value):
        pairs = [(v.get("id"), v.get("values")) for v in value]
    else:
        return f"must be a mapping of filter names to values, not {diagnose.kind_of(value)}"
    for name, values in pairs:
        try:
            flt = op.filter(str(name))
        except KeyError:
            return f"unknown filter {diagnose.show(name)}; its filters are: " + ", ".join(
                f.name for f in op.filters)
        if not isinstance(values, list | tuple):
            return f"{flt.name} must be a list of values, not {diagnose.kind_of(values)}"
        if flt.max_values is not None and len(values) > flt.max_values:
            return f"{flt.name} takes at most {flt.max_values} values, not {len(values)}"
        for item in values:
            if flt.enum is not None and not _enum_ok(flt.enum, item):
                return f"{flt.name}: {_bad_enum(flt.enum, item)}"
            if flt.enum is None and not isinstance(item, str):
                return f"{flt.name} values must be strings, not {diagnose.kind_of(item)}"
    return None


# ------------------------------------------------------------ semantic checks


def closure(names: Iterable[str], var_refs: Mapping[str, frozenset[str]],
            overridden: Mapping[str, Any]) -> frozenset[str]:
    """``names`` plus every name the vars among them read, transitively (extra vars are
    taken as written, so a var they override reads nothing)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in var_refs and name not in overridden:
            todo.extend(var_refs[name])
    return frozenset(seen)


class _Checks:
    """What the schema cannot say: template syntax, names, register order, outputs."""

    def __init__(self, document: dict[str, Any], source: Source, extra: Mapping[str, Any]):
        self.document = document
        self.source = source
        self.extra = extra
        self.problems: list[Diagnostic] = []
        self.tasks: list[Task] = []
        self.var_refs: dict[str, frozenset[str]] = {}

    def problem(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.problems.append(self.source.diagnostic(path, f"{dotted(path)}: {message}", key=key))

    def run(self) -> list[Diagnostic]:
        variables = self.document.get("vars")
        if isinstance(variables, dict):
            for name, value in variables.items():
                problem = name_problem(str(name), "variable")
                if problem and re.match(schema.NAME_PATTERN, str(name)):
                    self.problem(("vars", name), problem, key=True)
                self.var_refs[name] = self.refs(value, ("vars", name))
        for key in ("connection", "output_dir"):
            self.refs(self.document.get(key), (key,))
        tasks = self.document.get("tasks")
        if isinstance(tasks, list):
            registers = self.registers(tasks)
            for index, task in enumerate(tasks):
                if isinstance(task, dict):
                    self.task(index, task, registers)
        return self.problems

    def refs(self, value: Any, path: Path_, *, expression: bool = False) -> frozenset[str]:
        """The names the templates inside ``value`` read; syntax errors are reported."""
        if isinstance(value, str):
            if not (expression or templating.is_template(value)):
                return frozenset()
            source = templating.as_template(value) if expression else value
            problem = templating.syntax_error(source)
            if problem:
                self.problem(path, problem)
                return frozenset()
            return templating.references(source)
        found: set[str] = set()
        if isinstance(value, list):
            for index, item in enumerate(value):
                found |= self.refs(item, (*path, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                found |= self.refs(item, (*path, key))
        return frozenset(found)

    def registers(self, tasks: list[Any]) -> dict[str, int]:
        found: dict[str, int] = {}
        variables = self.document.get("vars") or {}
        for index, task in enumerate(tasks):
            name = task.get("register") if isinstance(task, dict) else None
            if not isinstance(name, str) or not re.match(schema.NAME_PATTERN, name):
                continue
            path: Path_ = ("tasks", index, "register")
            if name in found:
                self.problem(path, f"'{name}' is already registered by tasks[{found[name]}]")
            elif name in templating.RESERVED_NAMES:
                self.problem(path, f"'{name}' is reserved; the runner provides it to templates")
            elif isinstance(variables, dict) and name in variables:
                self.problem(path, f"'{name}' is also a variable in vars; pick another name")
            else:
                found[name] = index
        return found

    def task(self, index: int, task: dict[str, Any], registers: dict[str, int]) -> None:
        path: Path_ = ("tasks", index)
        modules = [k for k in task if k in MODULE_NAMES]
        if len(modules) != 1 or not isinstance(task[modules[0]], dict):
            return  # the schema has said why
        module = modules[0]
        op = catalog.playbook_operation(module)
        args = task[module]
        rule = argrules.problem(op, args)
        if rule:
            self.problem((*path, module), rule, key=True)
        names: set[str] = set()
        names |= self.refs(args, (*path, module))
        names |= self.refs(task.get("loop"), (*path, "loop"))
        when = task.get("when")
        if isinstance(when, str):
            names |= self.refs(when, (*path, "when"), expression=True)
        output = task.get("output")
        if isinstance(output, str):
            names |= self.refs(output, (*path, "output"))
            if not templating.is_template(output):
                _, problem = output_problem(output)
                if problem:
                    self.problem((*path, "output"), problem)
        if "format" in task and op.is_action:
            self.problem((*path, "format"), f"format applies to queries; {module} writes a "
                         ".jsonl record per object it changed", key=True)
        elif "format" in task and op.is_export:
            self.problem((*path, "format"), "format applies to queries; an export always "
                         "writes the service's .zip", key=True)
        for key in ("extract", "convert"):
            if key in task and op.is_query:
                self.problem((*path, key), f"{key} applies to exports (their .zip of .xlsx "
                             "reports); a query writes records: use format: csv", key=True)
        needs = closure(names, self.var_refs, self.extra) & set(registers)
        for name in sorted(needs):
            if registers[name] >= index:
                where = "this task" if registers[name] == index else f"tasks[{registers[name]}]"
                self.problem(path, f"reads '{name}', which {where} registers; a task can only "
                             "read what earlier tasks registered", key=False)
        tags = task.get("tags", ())
        self.tasks.append(Task(
            index=index,
            name=task.get("name"),
            module=module,
            args=MappingProxyType(args),
            output=output if isinstance(output, str) else None,
            register=task.get("register"),
            loop=task.get("loop"),
            when=when,
            tags=(tags,) if isinstance(tags, str) else tuple(tags or ()),
            ignore_errors=bool(task.get("ignore_errors", False)),
            retries=int(task.get("retries", DEFAULT_RETRIES)),
            format=EXPORT_FORMAT if op.is_export else
            ACTION_FORMAT if op.is_action else task.get("format", DEFAULT_QUERY_FORMAT),
            needs=frozenset(n for n in needs if registers[n] < index),
            extract=bool(task.get("extract", False)) and op.is_export,
            convert=task.get("convert") if op.is_export else None,
        ))
