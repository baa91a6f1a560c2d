"""Safe YAML loading that remembers where every key and value was written.

``load(text, file)`` returns the plain document (dicts, lists, scalars) with a ``Source``
that maps each node's path (``("tasks", 0, "output")``) to its 1-based line and column, so
that any later stage can point a user at their own file.  Duplicate keys, tabs used for
indentation, non-string keys and syntax errors come back as Diagnostics, all at once.
Dates and times are kept as the strings the user wrote.  Files are read, and YAML text is
checked before it is composed, within the budgets of ``yamlbudget`` (size, depth, aliases,
tags).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from runner import yamlbudget
from runner.errors import Diagnostic, PlaybookError

Path_ = tuple[str | int, ...]

try:  # libyaml is much faster; the pure-Python loader gives the same nodes
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


@dataclass
class Source:
    """Where each node of one YAML file was written."""

    file: str
    text: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Iterable[str | int]) -> tuple[int, int]:
        """Line and column of the value at ``path``, or of its nearest recorded ancestor."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def key_where(self, path: Iterable[str | int]) -> tuple[int, int]:
        """Line and column of the key that introduces ``path`` (falls back to ``where``)."""
        path = tuple(path)
        return self.keys.get(path) or self.where(path)

    def diagnostic(self, path: Iterable[str | int], message: str, *, key: bool = False,
                   field: str = "") -> Diagnostic:
        path = tuple(path)
        line, column = self.key_where(path) if key else self.where(path)
        return Diagnostic(self.file, line, column, message, field or dotted(path))

    def rename(self, path: Path_, new_key: str) -> None:
        """Move the positions recorded under ``path`` to its sibling key ``new_key``."""
        new = (*path[:-1], new_key)
        size = len(path)
        for table in (self.values, self.keys):
            moved = {new + p[size:]: pos for p, pos in table.items() if p[:size] == path}
            table.update(moved)


def dotted(path: Iterable[str | int]) -> str:
    """``("tasks", 0, "output")`` -> ``tasks[0].output``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_text(path: str | Path, what: str) -> str:
    """A user's YAML file as text; a missing or unreadable file is a ``PlaybookError``
    naming it (``what``: "playbook", "inventory")."""
    file = str(path)
    try:
        text = yamlbudget.read_limited(path, what)
    except FileNotFoundError:
        raise PlaybookError(Diagnostic(file, 1, 1, f"no such {what} file")) from None
    except OSError as exc:
        raise PlaybookError(Diagnostic(file, 1, 1, f"cannot read the {what}: "
                                                   f"{exc.strerror or exc}")) from None
    if isinstance(text, Diagnostic):
        raise PlaybookError(text)
    return text


def load(text: str, file: str) -> tuple[Any, Source, list[Diagnostic]]:
    """The document in ``text`` (None when empty), its positions, and what is wrong with it."""
    source = Source(file, text)
    refused = yamlbudget.check_yaml(text, file)
    if refused:
        return None, source, refused
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        return None, source, _syntax_error(exc, text, file)
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        return None, source, [Diagnostic(file, 1, 1, f"YAML error: {exc}")]
    if node is None:
        return None, source, []
    builder = _Builder(source)
    document = builder.build(node, ())
    return document, source, builder.diagnostics


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> list[Diagnostic]:
    tabs = [
        Diagnostic(file, number, line.index("\t") + 1,
                   "tab character in indentation: YAML indents with spaces only")
        for number, line in enumerate(text.splitlines(), start=1)
        if "\t" in line[: len(line) - len(line.lstrip(" \t"))]
    ]
    if tabs:
        return tabs
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = " ".join(part for part in (exc.context, exc.problem) if part)
    lines = text.splitlines()
    quoted = ""
    if 0 < line <= len(lines):
        gutter = " " * len(str(line))
        shown, caret = excerpt(lines[line - 1], column, _width() - len(gutter) - 7)
        quoted = f"\n    {line} | {shown}\n    {gutter} | {' ' * caret}^"
    return [Diagnostic(file, line, column, f"YAML syntax error: {problem}{quoted}")]


def excerpt(line: str, column: int, width: int) -> tuple[str, int]:
    """``line`` cut to ``width`` characters around ``column`` (1-based), with "..." where
    it was cut, and where the caret goes under it (0-based)."""
    width = max(width, 20)
    if len(line) <= width:
        return line, column - 1
    start = max(0, min(column - 1 - width // 2, len(line) - width))
    end = start + width
    head = "..." if start else ""
    tail = "..." if end < len(line) else ""
    body = line[start + len(head): end - len(tail)]
    return head + body + tail, column - 1 - start


def _width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


class _Builder:
    """Turns composed nodes into plain values, recording positions on the way."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self._scalars = SafeConstructor()
        self._built: dict[int, Any] = {}  # aliases share one value (no exponential blow-up)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.source.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if id(node) in self._built:
            return self._built[id(node)]
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP:
                return node.value  # dates are kept as written
            try:
                return self._scalars.construct_object(node)
            except (yaml.YAMLError, ValueError, TypeError) as exc:  # e.g. !!int abc
                self.diagnostics.append(Diagnostic(
                    self.source.file, node.start_mark.line + 1, node.start_mark.column + 1,
                    f"{dotted(path) or 'value'}: {node.value!r} is not a {node.tag}: "
                    f"{str(exc).splitlines()[0]}", dotted(path)))
                return None
        if isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            self._built[id(node)] = items
            for index, child in enumerate(node.value):
                items.append(self.build(child, (*path, index)))
            return items
        assert isinstance(node, yaml.MappingNode)
        mapping: dict[str, Any] = {}
        self._built[id(node)] = mapping
        first_seen: dict[str, int] = {}
        for key_node, value_node in self._pairs(node):
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in first_seen:
                self.diagnostics.append(Diagnostic(
                    self.source.file, line, key_node.start_mark.column + 1,
                    f"{dotted(child)}: duplicate key '{key}' (first written on line "
                    f"{first_seen[key]})",
                    dotted(child),
                ))
                continue
            first_seen[key] = line
            self.source.keys[child] = (line, key_node.start_mark.column + 1)
            mapping[key] = self.build(value_node, child)
        return mapping

    def _pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        """The mapping's pairs with YAML merge keys (``<<: *defaults``) applied."""
        own: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            many = isinstance(value_node, yaml.SequenceNode)
            for source in value_node.value if many else [value_node]:
                if isinstance(source, yaml.MappingNode):
                    merged.extend(self._pairs(source))
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        inherited = [(k, v) for k, v in merged if getattr(k, "value", None) not in own_keys]
        # a later merged mapping does not override an earlier one; own keys override both
        seen: set[Any] = set()
        unique = []
        for k, v in inherited:
            if k.value not in seen:
                seen.add(k.value)
                unique.append((k, v))
        return unique + own

    def _key(self, node: yaml.Node, path: Path_) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        self.diagnostics.append(Diagnostic(
            self.source.file, node.start_mark.line + 1, node.start_mark.column + 1,
            f"{dotted(path) or 'playbook'}: a key must be a plain string, not a list or mapping",
            dotted(path),
        ))
        return None
