"""Values in the form the API wants, and URL paths built from (and matched against) templates.

``encode`` turns a playbook value into the API's (enum names become codes, filters the
v1 ``[{id, values}]`` list or v2's flat field, dates ISO strings); the compiler and the
client both use it, so a request means the same whoever builds it.

``fill_path`` percent-encodes each path value once, every reserved character included
(``/ : @ # ? %``), so a guest UPN ``a_b.com#ext#@t.onmicrosoft.com`` travels as
``a_b.com%23ext%23%40t.onmicrosoft.com``.  ``match_path`` is the server's side: it matches a
raw (still encoded) path against the templates and decodes each value until it is stable,
so that the single encoding the runner sends and the double encoding of some vendor samples
mean the same (open question 9).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from .model import Field, Operation

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def encode(op: Operation, field: Field, value: Any) -> Any:
    """``value`` in the form the API wants.  Raises ``ValueError`` naming the choices."""
    if value is None:
        return None
    if field.kind == "int":
        return int(value)
    if field.kind == "enum" and field.enum is not None:
        code = field.enum.resolve(value)
        return str(code) if field.code_as_string else code
    if field.kind == "enum_list" and field.enum is not None:
        return [field.enum.resolve(v) for v in _as_list(value)]
    if field.kind == "filters":
        if op.generation != "v1":
            return flat_filter(op, value)
        return encode_filters(op, value)
    if field.kind == "string_list":
        if field.single and not isinstance(value, list | tuple):
            return _text(value)
        return [_text(v) for v in _as_list(value)]
    if field.kind == "datetime":
        return _text(value)
    return value


def encode_filters(op: Operation, value: Any) -> list[dict[str, Any]]:
    """``{name: values}`` or ``[{id, values}]`` -> the API's ``[{id, values}]``.

    Values are strings (codes for enum filters), as the reference writes them; filters
    named twice are merged, and the list follows the catalog's order, so the request does
    not depend on how the playbook was written.
    """
    by_name = _filter_values(op, value)
    out = []
    for flt in op.filters:
        if flt.name in by_name:
            codes = [str(flt.enum.resolve(v)) if flt.enum is not None else _text(v)
                     for v in by_name[flt.name]]
            out.append({"id": flt.api, "values": codes})
    return out


def flat_filter(op: Operation, value: Any) -> list[Any]:
    """v2 keeps one filter as a plain field (sites/overview ``riskLevel: [2, 3]``): the
    codes of the operation's one filter, as integers (open question 22: an array)."""
    if isinstance(value, list | tuple) and not any(isinstance(v, Mapping) for v in value):
        # already the flat list (a compiled request): codes resolve to themselves
        value = {op.filters[0].name: list(value)}
    by_name = _filter_values(op, value)
    out: list[Any] = []
    for flt in op.filters:
        for v in by_name.get(flt.name, ()):
            out.append(flt.enum.resolve(v) if flt.enum is not None else _text(v))
    return out


def _filter_values(op: Operation, value: Any) -> dict[str, list[Any]]:
    if isinstance(value, dict) or hasattr(value, "items"):
        pairs = list(value.items())
    else:
        pairs = [(entry["id"], entry["values"]) for entry in value]
    by_name: dict[str, list[Any]] = {}
    for name, values in pairs:
        try:
            flt = op.filter(str(name))
        except KeyError:
            allowed = ", ".join(f.name for f in op.filters)
            raise ValueError(f"unknown filter {name!r}; filters: {allowed}") from None
        by_name.setdefault(flt.name, []).extend(_as_list(values))
    return by_name


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set | frozenset) else [value]


def _text(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# ---------------------------------------------------------------------------- paths


def path_value(value: Any) -> str:
    """One path value, percent-encoded once with nothing left raw (``@`` and ``#`` too)."""
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(f"a path segment takes one value, not {len(value)}")
        value = value[0]
    text = _text(value)
    if text == "":
        raise ValueError("a path segment cannot be empty")
    return quote(text, safe="")


def fill_path(op: Operation, values: Mapping[str, Any]) -> str:
    """``op.path`` with each ``{api}`` replaced by its encoded value from ``values``
    (keyed by API name).  Raises ``ValueError`` for a missing or empty value."""

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if values.get(key) in (None, "", [], ()):
            raise ValueError(f"{op.name}: {key} is needed in the URL path")
        return path_value(values[key])

    return _PLACEHOLDER.sub(one, op.path)


def path_names(op: Operation) -> tuple[str, ...]:
    """The API names of the path's placeholders, in order."""
    return tuple(_PLACEHOLDER.findall(op.path))


def decode_until_stable(text: str, limit: int = 5) -> str:
    """Percent-decode again and again until nothing changes (single or double encoding)."""
    for _ in range(limit):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def match_path(method: str, raw_path: str,
               operations: Iterable[Operation]) -> tuple[Operation, dict[str, str]] | None:
    """The operation whose template matches ``raw_path`` (still percent-encoded, relative
    to the ``/insights`` base), and its decoded path values.

    Literal segments match case-insensitively (the service is ASP.NET, whose routes are);
    when templates compete, the one with more literal segments wins
    (``sites/permission/export`` before ``sites/{siteUrl}/siteId``).
    """
    segments = raw_path.strip("/").split("/")
    best: tuple[int, Operation, dict[str, str]] | None = None
    for op in operations:
        if op.method != method.upper():
            continue
        pattern = op.path.strip("/").split("/")
        if len(pattern) != len(segments):
            continue
        values: dict[str, str] = {}
        literals = 0
        for want, got in zip(pattern, segments, strict=True):
            placeholder = _PLACEHOLDER.fullmatch(want)
            if placeholder:
                if got == "":
                    break
                values[placeholder.group(1)] = decode_until_stable(got)
            elif want.lower() != unquote(got).lower():
                break
            else:
                literals += 1
        else:
            if best is None or literals > best[0]:
                best = (literals, op, values)
    return (best[1], best[2]) if best else None
