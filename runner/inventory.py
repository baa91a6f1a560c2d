"""The inventory: which tenants a playbook runs against, and how each one is reached.

``inventory.yml`` names tenants (each with a connection, written like a playbook's inline
connection, and vars) and groups of tenants.  A playbook targets them with
``hosts: <pattern>`` (or ``connection: <tenant>``); ``--limit`` narrows the pattern.
``targets`` answers one ``Target`` per tenant: the playbook as that tenant sees it (its
connection, the inventory's vars under the playbook's own, and ``tenant`` for templates),
so the compiler and the engine need to know nothing about inventories.

Patterns (hosts and --limit), Ansible's: names of tenants or groups, ``all``, shell
wildcards (``eu-*``), joined by ``,`` or ``:``; ``!name`` removes.  Variable precedence, as
in Ansible: inventory vars < the tenant's vars < the playbook's vars < -e extra vars.

When a playbook runs for several tenants, their files must not land on one another: the
output_dir or every task's output must mention ``tenant`` (a validation error otherwise).

This module is pure: it reads files and returns values; it imports no network or database.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

from runner import diagnose, schema, templating, yamlsource
from runner.errors import Diagnostic, PlaybookError, UserError
from runner.generation import retarget
from runner.manifest import Playbook, closure, name_problem
from runner.yamlsource import Source, dotted

Path_ = tuple[str | int, ...]
INVENTORY_NAME = "inventory.yml"
SCHEMA_ID = "https://github.com/insights-runner/insights-runner/schemas/inventory.schema.json"
# Tenant and group names become folder names (state, outputs): keep them plain.
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
TENANT_VAR = "tenant"
ALL = "all"


@dataclass(frozen=True)
class Tenant:
    name: str
    connection: Mapping[str, Any]  # as written (templates not expanded)
    vars: Mapping[str, Any]


@dataclass(frozen=True)
class Inventory:
    path: Path  # absolute
    file: str  # as the user named it
    text: str
    vars: Mapping[str, Any]
    tenants: Mapping[str, Tenant]  # in the order written
    groups: Mapping[str, tuple[str, ...]]  # group -> tenant names, nested groups flattened
    source: Source
    state: str | None = None  # where its playbooks keep their state (a folder or a URL)

    def select(self, pattern: str) -> list[str]:
        """Tenant names matched by ``pattern``, in inventory order; KeyError names an
        unknown word."""
        chosen: set[str] = set()
        removed: set[str] = set()
        for word in _words(pattern):
            negate = word.startswith("!")
            names = self._expand(word[1:] if negate else word)
            (removed if negate else chosen).update(names)
        return [name for name in self.tenants if name in chosen - removed]

    def _expand(self, word: str) -> set[str]:
        if word == ALL:
            return set(self.tenants)
        if word in self.tenants:
            return {word}
        if word in self.groups:
            return set(self.groups[word])
        if any(c in word for c in "*?["):
            names = {n for n in self.tenants if fnmatch.fnmatchcase(n, word)}
            for group in self.groups:
                if fnmatch.fnmatchcase(group, word):
                    names |= set(self.groups[group])
            return names
        raise KeyError(word)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Target:
    """One tenant's view of the playbook (``tenant`` is None without an inventory)."""

    tenant: str | None
    playbook: Playbook


def _words(pattern: str) -> list[str]:
    return [w.strip() for w in re.split(r"[,:]", pattern) if w.strip()]


# ------------------------------------------------------------------------- schema


def build_schema() -> dict[str, Any]:
    """The inventory JSON Schema; it shares the playbook's connection definition."""
    playbook_defs = schema.build_schema()["$defs"]
    variables = {"type": "object", "propertyNames": {"pattern": schema.NAME_PATTERN},
                 "description": "Variables for the playbook's templates (the playbook's own "
                 "vars win over these; -e wins over both)."}
    tenant_name = {"pattern": TENANT_PATTERN}
    return {
        "$schema": schema.DRAFT,
        "$id": SCHEMA_ID,
        "title": "insights-runner inventory",
        "description": "The tenants playbooks run against (hosts: <tenant or group>), and how "
        "each is reached.",
        "type": "object",
        "additionalProperties": False,
        "required": ["tenants"],
        "properties": {
            "version": {"const": 1, "description": "Inventory format version (1)."},
            "vars": {**variables, "description": "Variables for every tenant."},
            "state": {"type": "string", "minLength": 1,
                      "description": "Where the state of its playbooks lives: a folder "
                      "(relative to this file) or postgresql://user@host/db (the password "
                      "from PGPASSWORD or ~/.pgpass, never written here). --state and "
                      "INSIGHTS_RUNNER_STATE win over it."},
            "tenants": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": tenant_name,
                "description": "Tenant name (letters, digits, _ . -) -> its connection and "
                "vars.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["connection"],
                    "properties": {
                        "connection": {"$ref": "#/$defs/connection"},
                        "vars": variables,
                    },
                },
            },
            "groups": {
                "type": "object",
                "propertyNames": tenant_name,
                "description": "Group name -> the tenants (or other groups) in it.",
                "additionalProperties": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": TENANT_PATTERN},
                },
            },
        },
        "$defs": {"template": playbook_defs["template"],
                  "connection": playbook_defs["connection"]},
    }


def schema_json() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def _validator() -> Any:
    return jsonschema.Draft202012Validator(build_schema())


class _Words(diagnose._Translator):
    """The playbook's wording, with what differs for an inventory."""

    def diag(self, path: Path_, problem: str, *, key: bool = False) -> Diagnostic:
        label = dotted(path) or "inventory"
        return self.source.diagnostic(path, f"{label}: {problem}", key=key, field=dotted(path))

    def missing(self, path: Path_, name: str) -> Diagnostic:
        if path == ():
            return self.diag(path, "missing 'tenants': an inventory names its tenants under "
                             "tenants:", key=True)
        if name == "connection":
            return self.diag(path, "missing 'connection': how to reach this tenant (region, "
                             "client_id, certificate...)", key=True)
        return super().missing(path, name)

    def unknown(self, path: Path_, key: str, allowed: list[str], instance: dict) -> str:
        if path == ():
            return f"unknown top-level key '{key}'" + (
                diagnose.did_you_mean(key, allowed) or "; an inventory has: " + ", ".join(allowed))
        if len(path) >= 3 and path[0] == "tenants" and path[2] == "connection":
            return f"unknown connection setting '{key}'" + (
                diagnose.did_you_mean(key, allowed) or "; allowed: " + ", ".join(allowed))
        if len(path) == 2 and path[0] == "tenants":
            return f"unknown tenant key '{key}'" + (
                diagnose.did_you_mean(key, allowed) or "; a tenant has: connection, vars")
        return super().unknown(path, key, allowed, instance)

    def _pattern(self, error: Any, path: Path_) -> list[Diagnostic]:
        if "propertyNames" in error.schema_path and path and path[0] in ("tenants", "groups"):
            return [self.diag((*path, error.instance), f"{diagnose.show(error.instance)} is "
                              "not a valid name: use letters, digits, _ . and -, starting "
                              "with a letter or digit", key=True)]
        if error.validator_value == TENANT_PATTERN:
            return [self.diag(path, f"{diagnose.show(error.instance)} is not a tenant or "
                              "group name")]
        return super()._pattern(error, path)

    def _minProperties(self, error: Any, path: Path_) -> list[Diagnostic]:
        return [self.diag(path, "name at least one tenant")]


# ------------------------------------------------------------------------ loading


def default_inventory(playbook: str | Path) -> Path | None:
    """``inventory.yml`` beside the playbook, when there is one."""
    candidate = Path(playbook).resolve().parent / INVENTORY_NAME
    return candidate if candidate.is_file() else None


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory; raise ``PlaybookError`` with every problem found."""
    return parse_inventory(yamlsource.read_text(path, "inventory"), Path(path))


def parse_inventory(text: str, path: Path) -> Inventory:
    file = str(path)
    document, source = diagnose.load_mapping(
        text, file, empty="the inventory is empty; it needs 'tenants:' with at least one tenant",
        not_mapping="an inventory is a mapping (version, vars, tenants, groups)")
    _normalise(document)
    problems = diagnose.schema_diagnostics(document, source, validator=_validator(),
                                           translator=_Words)
    problems += _Checks(document, source).run()
    if problems:
        raise PlaybookError(problems)
    tenants = {
        name: Tenant(name, MappingProxyType(entry["connection"]),
                     MappingProxyType(entry.get("vars") or {}))
        for name, entry in document["tenants"].items()
    }
    groups = document.get("groups") or {}
    return Inventory(
        path=path.resolve(),
        file=file,
        text=text,
        vars=MappingProxyType(document.get("vars") or {}),
        tenants=MappingProxyType(tenants),
        groups=MappingProxyType({g: _members(g, groups) for g in groups}),
        source=source,
        state=document.get("state"),
    )


def _normalise(document: dict[str, Any]) -> None:
    tenants = document.get("tenants")
    for entry in (tenants.values() if isinstance(tenants, dict) else ()):
        connection = entry.get("connection") if isinstance(entry, dict) else None
        if isinstance(connection, dict):
            for key in ("region", "cloud"):  # aliases are case-insensitive, as in playbooks
                value = connection.get(key)
                if isinstance(value, str) and not templating.is_template(value):
                    connection[key] = value.strip().lower()


def _members(group: str, groups: Mapping[str, Any], seen: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The tenants of ``group``, nested groups flattened (cycles are reported by _Checks)."""
    out: list[str] = []
    for name in groups.get(group) or ():
        if name in groups and name not in seen:
            out += [n for n in _members(name, groups, (*seen, group)) if n not in out]
        elif name not in out and name not in groups:
            out.append(name)
    return tuple(out)


class _Checks:
    """What the schema cannot say: names that collide, unknown members, template syntax."""

    def __init__(self, document: dict[str, Any], source: Source) -> None:
        self.document = document
        self.source = source
        self.problems: list[Diagnostic] = []

    def problem(self, path: Path_, message: str, *, key: bool = False) -> None:
        self.problems.append(self.source.diagnostic(path, f"{dotted(path)}: {message}", key=key))

    def run(self) -> list[Diagnostic]:
        tenants = self.document.get("tenants")
        tenants = tenants if isinstance(tenants, dict) else {}
        groups = self.document.get("groups")
        groups = groups if isinstance(groups, dict) else {}
        self.variables(self.document.get("vars"), ("vars",))
        for name, entry in tenants.items():
            if name == ALL:
                self.problem(("tenants", name), "'all' is reserved: it means every tenant",
                             key=True)
            if isinstance(entry, dict):
                self.variables(entry.get("vars"), ("tenants", name, "vars"))
                self.templates(entry.get("connection"), ("tenants", name, "connection"))
        for group, members in groups.items():
            path: Path_ = ("groups", group)
            if group == ALL or group in tenants:
                what = "reserved: it means every tenant" if group == ALL else "also a tenant"
                self.problem(path, f"'{group}' is {what}; give the group another name", key=True)
            for index, member in enumerate(members if isinstance(members, list) else []):
                if not isinstance(member, str) or member in tenants:
                    continue
                if member not in groups:
                    self.problem((*path, index), f"no tenant or group named '{member}'"
                                 + diagnose.did_you_mean(member, [*tenants, *groups]))
                elif self.cycle(member, groups, (group,)):
                    self.problem((*path, index), f"groups contain each other: '{group}' and "
                                 f"'{member}'")
        return self.problems

    def cycle(self, group: str, groups: Mapping[str, Any], seen: tuple[str, ...]) -> bool:
        if group in seen:
            return True
        members = groups.get(group)
        return any(self.cycle(m, groups, (*seen, group)) for m in
                   (members if isinstance(members, list) else []) if m in groups)

    def variables(self, values: Any, path: Path_) -> None:
        if not isinstance(values, dict):
            return
        for name, value in values.items():
            problem = TENANT_VAR_PROBLEM if name == TENANT_VAR else name_problem(name, "variable")
            if problem and re.match(schema.NAME_PATTERN, name):
                self.problem((*path, name), problem, key=True)
            self.templates(value, (*path, name))

    def templates(self, value: Any, path: Path_) -> None:
        if isinstance(value, str) and templating.is_template(value):
            problem = templating.syntax_error(value)
            if problem:
                self.problem(path, problem)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.templates(item, (*path, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                self.templates(item, (*path, key))


TENANT_VAR_PROBLEM = ("'tenant' is reserved; the runner sets it to each tenant's name "
                      "for templates")


# ------------------------------------------------------------------------ targeting


def pattern_of(playbook: Playbook) -> tuple[str | None, Path_]:
    """What the playbook targets in an inventory (``hosts`` or ``connection: <name>``)."""
    if playbook.hosts is not None:
        return playbook.hosts, ("hosts",)
    if isinstance(playbook.connection, str):
        return playbook.connection, ("connection",)
    return None, ()


def inventory_path(playbook: Playbook, given: str | Path | None) -> Path | None:
    return Path(given) if given is not None else default_inventory(playbook.path)


def targets(playbook: Playbook, inventory: str | Path | None = None,
            limit: str | None = None) -> tuple[Inventory | None, list[Target]]:
    """The tenants ``playbook`` runs for, each with the playbook as that tenant sees it.

    ``inventory``: the file given with -i (default: inventory.yml beside the playbook).
    A playbook with an inline connection targets no inventory: it is its own one Target.
    """
    pattern, where = pattern_of(playbook)
    if pattern is None:
        if limit:
            raise UserError("--limit narrows the tenants of an inventory, but "
                            f"{playbook.file} has no hosts: (it connects inline)")
        return None, [Target(None, playbook)]
    if playbook.hosts is not None and playbook.connection is not None:
        raise PlaybookError(playbook.source.diagnostic(
            ("connection",), "connection: set hosts (inventory tenants) or connection, not both",
            key=True))
    path = inventory_path(playbook, inventory)
    if path is None:
        raise PlaybookError(playbook.source.diagnostic(
            where, f"{dotted(where)}: {pattern!r} names inventory tenants, but there is no "
            f"inventory: pass -i FILE or put {INVENTORY_NAME} beside the playbook"))
    loaded = load_inventory(path)
    known = [*loaded.tenants, *loaded.groups]
    names = _select(loaded, pattern, lambda word: PlaybookError(playbook.source.diagnostic(
        where, f"{dotted(where)}: no tenant or group named {word!r} in {loaded.file}"
        + (diagnose.did_you_mean(word, known) or "; it has: " + ", ".join(known)))))
    if where == ("connection",) and len(names) != 1:
        raise PlaybookError(playbook.source.diagnostic(
            where, f"connection: {pattern!r} means {len(names)} tenants; connection names one "
            "tenant (use hosts: for several)"))
    if limit:
        within = _select(loaded, limit, lambda word: UserError(
            f"--limit: no tenant or group named {word!r} in {loaded.file}"
            + (diagnose.did_you_mean(word, known) or "; it has: " + ", ".join(known))))
        narrowed = [n for n in names if n in within]
        if not narrowed:
            raise UserError(f"--limit {limit!r} leaves no tenant: {dotted(where)} targets "
                            + (", ".join(names) or "none"))
        names = narrowed
    if not names:
        raise PlaybookError(playbook.source.diagnostic(
            where, f"{dotted(where)}: {pattern!r} matches no tenant in {loaded.file}"))
    _check_reserved(playbook)
    found = [Target(name, tenant_playbook(playbook, loaded, name)) for name in names]
    if len(found) > 1:
        _check_outputs_per_tenant(playbook, names)
    return loaded, found


def _select(inventory: Inventory, pattern: str, unknown: Any) -> list[str]:
    try:
        return inventory.select(pattern)
    except KeyError as exc:
        raise unknown(exc.args[0]) from None


def _check_reserved(playbook: Playbook) -> None:
    problems = []
    if TENANT_VAR in playbook.vars:
        problems.append(playbook.source.diagnostic(
            ("vars", TENANT_VAR), f"vars.tenant: {TENANT_VAR_PROBLEM}", key=True))
    if TENANT_VAR in playbook.extra_vars:
        problems.append(Diagnostic("<-e>", 1, 1, TENANT_VAR_PROBLEM, TENANT_VAR))
    if problems:
        raise PlaybookError(problems)


def _mentions_tenant(playbook: Playbook, value: Any) -> bool:
    if not isinstance(value, str) or not templating.is_template(value):
        return False
    names = closure(templating.references(value), playbook.var_refs, playbook.extra_vars)
    return TENANT_VAR in names


def _check_outputs_per_tenant(playbook: Playbook, names: Sequence[str]) -> None:
    """Several tenants may not write one file: each output must mention ``tenant``."""
    if _mentions_tenant(playbook, playbook.output_dir):
        return
    problems = []
    who = f"this playbook runs for {len(names)} tenants ({', '.join(names)})"
    for task in playbook.tasks:
        if task.output is None:
            problems.append(playbook.source.diagnostic(
                (*task.path, task.module), f"{dotted(task.path)}: {who}; give this task an "
                "output that mentions {{ tenant }} (or put it in output_dir), e.g. "
                f"'{{{{ tenant }}}}/{task.module}.{task.format}'", key=True))
        elif not _mentions_tenant(playbook, task.output):
            problems.append(playbook.source.diagnostic(
                (*task.path, "output"), f"{dotted((*task.path, 'output'))}: {who}; their files "
                f"would overwrite each other: write {{{{ tenant }}}} into it (e.g. "
                f"'{{{{ tenant }}}}/{task.output}') or into output_dir"))
    if problems:
        raise PlaybookError(problems)


def tenant_playbook(playbook: Playbook, inventory: Inventory, name: str) -> Playbook:
    """The playbook as tenant ``name`` sees it: its connection, its vars, ``tenant``."""
    tenant = inventory.tenants[name]
    merged = {**inventory.vars, **tenant.vars, **playbook.vars}
    refs = dict(playbook.var_refs)
    for key in merged:
        if key not in playbook.vars:
            refs[key] = _refs(merged[key])
    return retarget(dataclasses.replace(  # the tenant's api: v1 or v2 decides the operations
        playbook,
        connection=copy.deepcopy(dict(tenant.connection)),
        vars=MappingProxyType(merged),
        extra_vars=MappingProxyType({**playbook.extra_vars, TENANT_VAR: name}),
        var_refs=MappingProxyType(refs),
        source=TenantSource.of(playbook.source, inventory, name),
    ))


def _refs(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return templating.references(value) if templating.is_template(value) else frozenset()
    if isinstance(value, list):
        return frozenset().union(*(_refs(v) for v in value)) if value else frozenset()
    if isinstance(value, dict):
        return _refs(list(value.values()))
    return frozenset()


@dataclass
class TenantSource(Source):
    """The playbook's positions, except what came from the inventory: a mistake in a
    tenant's connection or vars is reported at its line in inventory.yml."""

    inventory: Source | None = None
    tenant: str = ""
    inventory_vars: frozenset[str] = frozenset()
    tenant_vars: frozenset[str] = frozenset()

    @classmethod
    def of(cls, source: Source, inventory: Inventory, name: str) -> TenantSource:
        tenant = inventory.tenants[name]
        return cls(source.file, source.text, source.values, source.keys,
                   inventory=inventory.source, tenant=name,
                   inventory_vars=frozenset(inventory.vars), tenant_vars=frozenset(tenant.vars))

    def _inventory_path(self, path: Path_) -> Path_ | None:
        if not path or self.inventory is None:
            return None
        if path[0] == "connection":
            return ("tenants", self.tenant, *path)
        if path[0] == "vars" and len(path) > 1 and (*path[:2],) not in self.values:
            if path[1] in self.tenant_vars:
                return ("tenants", self.tenant, *path)
            if path[1] in self.inventory_vars:
                return path
        return None

    def where(self, path: Any) -> tuple[int, int]:
        mapped = self._inventory_path(tuple(path))
        if mapped is not None and self.inventory is not None:
            return self.inventory.where(mapped)
        return super().where(path)

    def key_where(self, path: Any) -> tuple[int, int]:
        mapped = self._inventory_path(tuple(path))
        if mapped is not None and self.inventory is not None:
            return self.inventory.key_where(mapped)
        return super().key_where(path)

    def diagnostic(self, path: Any, message: str, *, key: bool = False,
                   field: str = "") -> Diagnostic:
        path = tuple(path)
        mapped = self._inventory_path(path)
        if mapped is not None and self.inventory is not None:
            return self.inventory.diagnostic(mapped, message, key=key, field=field or dotted(
                mapped))
        return super().diagnostic(path, message, key=key, field=field)

    def locate(self, dotted_path: str) -> tuple[str, int, int]:
        """file, line, column of a connection setting (for the client's messages)."""
        path = tuple(dotted_path.split("."))
        line, column = self.where(path)
        mapped = self._inventory_path(path)
        file = self.inventory.file if mapped is not None and self.inventory else self.file
        return file, line, column
