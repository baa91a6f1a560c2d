"""Sandboxed Jinja for playbooks: native values, strict variables, ``env()`` and ``lookup()``.

A string that is exactly one ``{{ expression }}`` yields the expression's own value (a list
stays a list, a number a number); any other template renders to a string.  Undefined names
are errors, attribute access that could escape the sandbox is refused, and nothing here
knows about files or lines: callers turn a ``TemplateError`` into a Diagnostic that points
at the template's place in the playbook.

Templates see: the playbook's ``vars`` (``-e`` wins), ``run`` (``date``, ``time``,
``timestamp``, ``id``), registered results, and per Step ``item``, ``chunk`` and ``task``.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.exceptions import TemplateError, TemplateRuntimeError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runner import inputs, yamlbudget

__all__ = [
    "RunFacts",
    "TemplateError",
    "Templar",
    "as_template",
    "is_template",
    "references",
    "syntax_error",
]

# Names templates get from the runner itself; vars and registers may not take them.
RESERVED_NAMES = frozenset({"run", "item", "chunk", "task", "env", "lookup", "playbook_dir"})


def is_template(value: Any) -> bool:
    # the three markers tested inline, not by any(): called twice per Step's output path
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def contains_template(value: Any) -> bool:
    """Whether a value, or anything inside a list or mapping of it, is a template."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    if isinstance(value, dict):
        return any(contains_template(v) for v in value.values())
    return False


@dataclass(frozen=True)
class RunFacts:
    """What ``run`` holds; injected so that tests and resumed runs see the same values."""

    date: str  # 2025-01-31
    time: str  # 14-05-09 (no colons: it goes into file names)
    timestamp: str  # 2025-01-31T14:05:09Z
    id: str  # 20250131T140509Z-3f9a1c

    @classmethod
    def now(cls, clock: Callable[[], datetime] | None = None) -> RunFacts:
        moment = (clock or (lambda: datetime.now(UTC)))().astimezone(UTC)
        stamp = moment.strftime("%Y%m%dT%H%M%SZ")
        return cls(
            date=moment.strftime("%Y-%m-%d"),
            time=moment.strftime("%H-%M-%S"),
            timestamp=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            id=f"{stamp}-{secrets.token_hex(3)}",
        )

    def as_dict(self) -> dict[str, str]:
        return {"date": self.date, "time": self.time, "timestamp": self.timestamp, "id": self.id}


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
_ENV.filters["to_json"] = _to_json


# --------------------------------------------------------------- static analysis


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> nodes.Template:
    return _ENV.parse(source)


def syntax_error(source: str) -> str | None:
    """A human description of what is wrong with the template ``source``, if anything."""
    try:
        references(source)
    except TemplateError as exc:
        return describe(exc)
    return None


def references(source: str) -> frozenset[str]:
    """The names a template reads from its context (vars, registers, ``item``...)."""
    return _references(source)


@functools.lru_cache(maxsize=4096)
def _references(source: str) -> frozenset[str]:
    return frozenset(jinja2.meta.find_undeclared_variables(_parse(source)))


def as_template(expression: str) -> str:
    """A bare ``when`` expression written as a template (``{{ ... }}`` is accepted too)."""
    return expression if is_template(expression) else "{{ " + expression + " }}"


def describe(exc: BaseException) -> str:
    """The message of a template failure, without Jinja's internals."""
    if isinstance(exc, jinja2.UndefinedError):
        message = str(exc)
        if message.endswith(" is undefined"):
            return f"undefined variable {message[: -len(' is undefined')]}"
        return message
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, TemplateError):
        return str(exc.message if exc.message else exc)
    return f"{type(exc).__name__}: {exc}"


# -------------------------------------------------------------------- rendering


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> tuple[bool, Any]:
    """``(True, expression)`` for a lone ``{{ expr }}``, else ``(False, template)``."""
    tree = _parse(source)
    if len(tree.body) == 1 and isinstance(tree.body[0], nodes.Output):
        parts = [
            node for node in tree.body[0].nodes
            if not (isinstance(node, nodes.TemplateData) and not node.data.strip())
        ]
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            inner = source.strip()[2:-2].removeprefix("-").removesuffix("-")
            return True, _ENV.compile_expression(inner, undefined_to_none=False)
    template = _ENV.from_string(tree)
    plain = _substitution_parts(tree)
    return False, (template if plain is None else _Substitution(plain, template))


_MISSING = object()


def _substitution_parts(tree: nodes.Template) -> list[str | tuple[str, ...]] | None:
    """Text and ``{{ name.attr... }}`` look-ups, when that is all the template is."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list[str | tuple[str, ...]] = []
    for node in tree.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
            continue
        names: list[str] = []
        while isinstance(node, nodes.Getattr):
            names.append(node.attr)
            node = node.node
        if not isinstance(node, nodes.Name):
            return None
        parts.append((node.name, *reversed(names)))
    return parts


class _Substitution:
    """A template that is only text and ``{{ name.attr }}`` look-ups (most output paths:
    ``access/{{ chunk.number }}.zip``), rendered without a new Jinja context for every
    Step: 200,000 Steps render it 200,000 times.  A look-up it cannot answer exactly as
    Jinja would (a name that is not there, an attribute that is not a plain dict key, a
    value that is not a str or an int) renders through the Jinja template, so every error
    and every edge case stays Jinja's."""

    def __init__(self, parts: list[str | tuple[str, ...]], template: jinja2.Template) -> None:
        self._parts = parts
        self._template = template
        self.names = frozenset(part[0] for part in parts if isinstance(part, tuple))
        # Jinja's a.b is getattr first, then a["b"]: only a plain dict key that is no
        # attribute of dict (a plain dict's attributes are its type's) is the same either
        # way, so a look-up of ``x.items`` or ``x.keys`` always goes to Jinja.
        self._jinja_only = any(isinstance(part, tuple) and any(hasattr(dict, a) for a in part[1:])
                               for part in parts)

    def render(self, scope: Mapping[str, Any]) -> str:
        if self._jinja_only:
            return self._template.render(scope)
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = scope.get(part[0], _MISSING)
            for attr in part[1:]:
                if type(value) is not dict or attr not in value:
                    return self._template.render(scope)
                value = value[attr]
            if type(value) is not str and type(value) is not int:
                return self._template.render(scope)
            out.append(str(value))
        return "".join(out)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _defined(value: Any) -> Any:
    """Raise the undefined error a lone ``{{ name }}`` hides inside a native value."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    elif callable(getattr(value, "materialize", None)):
        # A register read lazily from its files (runner.execute.registry.RecordFiles),
        # handed over whole: the caller expects a list.
        return value.materialize()
    elif isinstance(value, list | tuple):
        for item in value:
            if type(item) not in _PLAIN:
                _defined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _defined(item)
    return value


class Templar:
    """Renders one playbook's templates; ``env()`` and ``lookup()`` are bound to it."""

    def __init__(self, base_dir: Path, environ: Mapping[str, str] | None = None) -> None:
        self.base_dir = base_dir.resolve()
        self.environ = os.environ if environ is None else environ
        self.functions: dict[str, Any] = {
            "env": self._env,
            "lookup": self._lookup,
            "playbook_dir": str(self.base_dir),
        }

    def render(self, source: str, context: Mapping[str, Any]) -> Any:
        """The value of one template string; a non-template string is returned as it is."""
        if not is_template(source):
            return source
        native, compiled = _compiled(source)
        scope = {**context, **self.functions}
        if native:
            return _defined(compiled(**scope))
        return compiled.render(scope)

    def renderer(self, source: str) -> Callable[[Mapping[str, Any]], Any]:
        """``render`` of one template as a function of its context, the template looked
        up once: a task's output path is rendered once per Step, 200,000 times for some."""
        if not is_template(source):
            return lambda context: source
        native, compiled = _compiled(source)
        functions = self.functions
        if native:
            return lambda context: _defined(compiled(**{**context, **functions}))
        if isinstance(compiled, _Substitution) and not compiled.names & functions.keys():
            return compiled.render  # it reads no function: the context alone will do
        return lambda context: compiled.render({**context, **functions})

    def expand(self, value: Any, context: Mapping[str, Any]) -> Any:
        """``value`` with every template inside it (lists, mappings) rendered."""
        if isinstance(value, str):
            return self.render(value, context)
        if isinstance(value, list):
            return [self.expand(v, context) for v in value]
        if isinstance(value, dict):
            return {k: self.expand(v, context) for k, v in value.items()}
        return value

    # ------------------------------------------------------------ template functions

    def _env(self, name: str, default: Any = ...) -> Any:
        """``env('NAME')``: an environment variable; unset is an error unless defaulted."""
        if not isinstance(name, str):
            raise TemplateRuntimeError("env() takes the name of an environment variable")
        value = self.environ.get(name)
        inputs.env(name, value)  # a memoised plan is checked against it (runner.planmemo)
        if value is None:
            if default is not ...:
                return default
            raise TemplateRuntimeError(f"environment variable {name} is not set")
        return value

    def _lookup(self, kind: str, *terms: Any, **options: Any) -> Any:
        """``lookup('file', path)`` (relative to the playbook) and ``lookup('env', NAME)``."""
        if kind == "env":
            if len(terms) != 1:
                raise TemplateRuntimeError("lookup('env', NAME) takes one name")
            return self._env(terms[0], options.get("default", ...))
        if kind != "file":
            raise TemplateRuntimeError(f"unknown lookup {kind!r}; use 'file' or 'env'")
        if len(terms) != 1 or not isinstance(terms[0], str):
            raise TemplateRuntimeError("lookup('file', PATH) takes one path")
        return self._read(terms[0], rstrip=bool(options.get("rstrip", True)))

    def _read(self, name: str, *, rstrip: bool) -> str:
        path = (self.base_dir / name).resolve()
        if not path.is_relative_to(self.base_dir):
            raise TemplateRuntimeError(
                f"lookup('file', {name!r}) leaves the playbook's directory {self.base_dir}"
            )
        try:
            text = yamlbudget.read_limited(path, "file")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise TemplateRuntimeError(f"lookup('file', {name!r}): {reason}") from exc
        if not isinstance(text, str):
            raise TemplateRuntimeError(f"lookup('file', {name!r}): {text.message}")
        return text.rstrip() if rstrip else text


