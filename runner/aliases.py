"""Spellings of argument and filter names, derived from the catalog's two names of each.

A playbook may write a field or a filter in any case style of either the catalog's name or
the API's (``link_type``, ``exportLinkType``, ``export_link_type``, ``ExportLinkType``,
``EXPORT-LINK-TYPE``): all are reduced to one *key* (lower case, no ``_``/``-``/space), and
a written name is the item whose key it matches.  Nothing here is a list of names: every
alias is computed from ``catalog`` data, so a field added there is aliased the same way.
The manifest resolves names with ``resolve``; the schema lists ``spellings`` for editors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def api(self) -> str: ...


N = TypeVar("N", bound=Named)

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_|$)|[A-Z]?[a-z]+|[A-Z]+|\d+")


class AmbiguousName(KeyError):
    """A written name that is a spelling of two different items."""

    def __init__(self, written: str, names: tuple[str, ...]) -> None:
        super().__init__(written)
        self.written = written
        self.names = names

    def __str__(self) -> str:
        return (f"'{self.written}' could mean {' or '.join(repr(n) for n in self.names)}; "
                "write one of those names")


def words(name: str) -> list[str]:
    """``exportLinkType`` / ``export_link_type`` / ``ExportLinkType`` -> export, link, type."""
    return [w.lower() for w in _WORD.findall(name)]


def snake(name: str) -> str:
    return "_".join(words(name))


def key(name: str) -> str:
    """What every case style of one name has in common."""
    return re.sub(r"[\s_\-]", "", name).lower()


def spellings(item: Named) -> tuple[str, ...]:
    """The names a schema lists for ``item``: the catalog's, the API's, and the API's in
    snake_case (any other case style is accepted too, but editors cannot match case)."""
    out: list[str] = []
    for spelling in (item.name, item.api, snake(item.api)):
        if spelling not in out:
            out.append(spelling)
    return tuple(out)


def resolve(items: Iterable[N], written: str) -> N:
    """The item ``written`` names in any case style; ``KeyError`` when none,
    ``AmbiguousName`` when it is a spelling of two different items."""
    wanted = key(written)
    found: list[N] = []
    for item in items:
        if wanted in (key(item.name), key(item.api)) and item not in found:
            found.append(item)
    if not found:
        raise KeyError(written)
    exact = [item for item in found if written in (item.name, item.api)]
    if len(found) > 1 and len(exact) != 1:
        raise AmbiguousName(written, tuple(item.name for item in found))
    return exact[0] if exact else found[0]
