"""Rules between the arguments of one module, which no single field's schema can say.

``EITHER`` names groups of string fields of which a request needs at least one to be
non-empty; each may be left out of a playbook, and is then sent empty (the API wants the
key).  The activity export takes a user (``email``), an object (``path``) or both.  The
schema (``runner.schema``), the manifest (which fills the empty defaults) and the compiler
(which checks expanded values) read this table; the names are the catalog's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner import catalog

EITHER: dict[str, tuple[str, ...]] = {
    "activity_export": ("email", "path"),
}


def group(op: catalog.Operation) -> tuple[str, ...]:
    return EITHER.get(op.name, ())


def optional_in_playbook(op: catalog.Operation, field: catalog.Field) -> bool:
    """Whether a field the API requires may be left out of a playbook (sent empty)."""
    return field.name in group(op)


def fill_defaults(op: catalog.Operation, args: dict[str, Any]) -> None:
    """Give the fields of a group left out the empty value, once one of them is written."""
    names = group(op)
    if any(name in args for name in names):
        for name in names:
            args.setdefault(name, "")


def problem(op: catalog.Operation, args: Mapping[str, Any]) -> str | None:
    """What is wrong with (expanded or literal string) values: all of a group empty."""
    names = group(op)
    values = [args.get(name) for name in names]
    if not names or not all(isinstance(v, str) for v in values):
        return None  # a template not expanded yet, or a type error reported elsewhere
    if any(str(v).strip() for v in values):
        return None
    return f"{op.name} needs {' or '.join(repr(n) for n in names)} (or both) to be set: " \
        "the report is of a user, of an object, or of both"
