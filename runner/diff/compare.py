"""Matching two runs' outputs: by path, then their rows by identity (``keys``).

Each output is ``added``, ``removed``, ``changed`` or ``unchanged``.  Inside it, rows whose
identity is new are *added*, those gone are *removed*, and those whose identity is in both
with other values are *changed*, with the fields that changed.  A table without a usable
key is only said to be changed or unchanged, by the hash of its rows; an output that is not
readable as rows, by the hash of its file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.diff import keys
from runner.diff.history import Source
from runner.diff.readers import LazyRows, Output, Table, read_output

Key = tuple[str, ...]


@dataclass
class Row:
    sheet: str  # "" for a query's records
    key: dict[str, str]
    record: dict[str, Any]


@dataclass
class Change:
    sheet: str
    key: dict[str, str]
    fields: dict[str, tuple[Any, Any]]  # name -> (before, after)
    record: dict[str, Any]  # after


@dataclass
class OutputDiff:
    output: str
    module: str | None
    status: str = "unchanged"  # added | removed | changed | unchanged
    keys: dict[str, list[str]] = field(default_factory=dict)  # sheet -> key fields
    added: list[Row] = field(default_factory=list)
    removed: list[Row] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: int = 0  # rows with the same identity and values
    hashed: dict[str, str] = field(default_factory=dict)  # sheet ("" whole file) -> status

    @property
    def differs(self) -> bool:
        return self.status != "unchanged"


@dataclass
class Diff:
    before: str  # what was compared, for people: a folder or "run #3 (2025-01-31 ...)"
    after: str
    outputs: list[OutputDiff]

    @property
    def differs(self) -> bool:
        return any(o.differs for o in self.outputs)


def compare_outputs(before_root: Path, before: Mapping[str, Source], after_root: Path,
                    after: Mapping[str, Source]) -> list[OutputDiff]:
    """``before``/``after``: output path -> its module and chunk group, in their folders.
    The chunks of one task (``users/access-part-1.zip``, ``-2.zip``...) are compared as one
    output, their sheets merged, so that a record moving to another chunk is no change."""
    units: dict[str, tuple[list[str], list[str], str | None]] = {}
    groups: dict[str, str] = {}
    for side, sources in ((0, before), (1, after)):
        for path, source in sources.items():
            label = path if source.group is None else groups.setdefault(source.group, path)
            unit = units.setdefault(label, ([], [], source.module))
            (unit[1] if side else unit[0]).append(path)
    result = []
    for label in sorted(units, key=lambda k: _label(units[k][0] + units[k][1])):
        old_paths, new_paths, module = units[label]
        old = _merged(before_root, old_paths, module)
        new = _merged(after_root, new_paths, module)
        result.append(compare_one(_label(old_paths + new_paths), module, old, new))
    return result


def _label(paths: list[str]) -> str:
    """One path, or the pattern of several: ``users/access-part-*.zip``."""
    unique = sorted(set(paths))
    if len(unique) == 1:
        return unique[0]
    prefix = os.path.commonprefix(unique)
    suffix = os.path.commonprefix([p[len(prefix):][::-1] for p in unique])[::-1]
    return f"{prefix}*{suffix}"


def _merged(root: Path, paths: list[str], module: str | None) -> Output | None:
    if not paths:
        return None
    outputs = [read_output(root, path, module) for path in sorted(paths)]
    if len(outputs) == 1:
        return outputs[0]
    digest = hashlib.sha256("".join(o.sha256 for o in outputs).encode()).hexdigest()
    if any(o.tables is None for o in outputs):
        return Output(_label(paths), module, digest, None)
    tables: dict[str, Table] = {}
    for output in outputs:
        for table in output.tables or ():
            if table.name in tables:
                tables[table.name].rows = _concat(tables[table.name].rows, table.rows)
            else:
                tables[table.name] = table
    return Output(_label(paths), outputs[0].module or module, digest, list(tables.values()))


def _concat(first: Sequence[dict[str, Any]],
            second: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    if isinstance(first, LazyRows) and isinstance(second, LazyRows):
        return LazyRows(first.lines + second.lines)
    return [*first, *second]


def compare_one(path: str, module: str | None, old: Output | None,
                new: Output | None) -> OutputDiff:
    module = (new.module if new else None) or (old.module if old else None) or module
    out = OutputDiff(path, module)
    if (old is not None and old.tables is None) or (new is not None and new.tables is None):
        same = old is not None and new is not None and old.sha256 == new.sha256
        out.hashed[""] = _side_status(old, new, "unchanged" if same else "changed")
    else:
        before = {t.name: t for t in ((old.tables or []) if old else [])}
        after = {t.name: t for t in ((new.tables or []) if new else [])}
        for name in sorted(set(before) | set(after)):
            _compare_table(out, module, before.get(name), after.get(name))
    anything = out.added or out.removed or out.changed or \
        any(s != "unchanged" for s in out.hashed.values())
    out.status = _side_status(old, new, "changed" if anything else "unchanged")
    return out


def _side_status(old: object, new: object, both: str) -> str:
    return "added" if old is None else "removed" if new is None else both


def _compare_table(out: OutputDiff, module: str | None, old: Table | None,
                   new: Table | None) -> None:
    sheet = (new or old).name  # type: ignore[union-attr]
    key, first, second = _keyed(module, old, new)
    if not key:
        before = _rows_hash(old)
        after = _rows_hash(new)
        out.hashed[sheet] = _side_status(old, new, "unchanged" if before == after else "changed")
        return
    out.keys[sheet] = list(key)
    for ident, index in second.items():
        if ident in first and _same(old, first[ident], new, index):
            out.unchanged += 1  # without parsing the record again
            continue
        record = new.rows[index]  # type: ignore[union-attr]
        if ident not in first:
            out.added.append(Row(sheet, dict(zip(key, ident, strict=True)), record))
            continue
        fields = _changed_fields(old.rows[first[ident]], record)  # type: ignore[union-attr]
        if fields:
            out.changed.append(Change(sheet, dict(zip(key, ident, strict=True)), fields, record))
        else:
            out.unchanged += 1
    for ident, index in first.items():
        if ident not in second:
            out.removed.append(Row(sheet, dict(zip(key, ident, strict=True)),
                                   old.rows[index]))  # type: ignore[union-attr]


Index = dict[Key, int]


def _keyed(module: str | None, old: Table | None, new: Table | None) -> tuple[Key, Index, Index]:
    """The first candidate key that identifies every row on both sides, and each side's
    rows by it; ``()`` when none does (or there are no rows at all)."""
    tables = [t for t in (old, new) if t is not None]
    if not any(t.rows for t in tables):
        return (), {}, {}
    header = next((t.header for t in tables if t.header is not None), None)
    for candidate in keys.candidates(module, header):
        indexes = [_index(t, candidate) for t in (old, new)]
        if all(i is not None for i in indexes):
            return candidate, indexes[0] or {}, indexes[1] or {}
    return (), {}, {}


def _index(table: Table | None, key: Key) -> Index | None:
    """Row positions by identity; None when an identity is empty or repeated."""
    if table is None:
        return {}
    found: Index = {}
    for position, row in enumerate(table.rows):
        ident = keys.ident(row, key)
        if ident in found or all(v == "" for v in ident):
            return None
        found[ident] = position
    return found


def _same(old: Table | None, i: int, new: Table | None, j: int) -> bool:
    """Two JSON Lines records written alike are equal without being compared field by field."""
    return isinstance(old.rows if old else None, LazyRows) and \
        isinstance(new.rows if new else None, LazyRows) and \
        old.rows.raw(i) == new.rows.raw(j)  # type: ignore[union-attr]


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    names = list(before) + [n for n in after if n not in before]
    return {n: (before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)}


def _rows_hash(table: Table | None) -> str | None:
    if table is None:
        return None
    digest = hashlib.sha256()
    for row in table.rows:  # one row at a time: a large table is never dumped whole
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()
