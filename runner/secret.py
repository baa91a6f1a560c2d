"""A value that must never be printed: tokens, certificate passwords, private keys.

``Secret`` masks itself in ``repr``/``str``/f-strings and in JSON produced with
``default=str``; code that really needs the value calls ``reveal()``, which makes every
place a secret leaves its box easy to find with grep.
"""

from __future__ import annotations

MASK = "********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        self._value = value

    def reveal(self) -> str | bytes:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # never pickled into a state file by accident
        raise TypeError("a Secret cannot be pickled")
