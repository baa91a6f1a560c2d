"""What a compile reads besides its arguments: files, environment variables, ``run``.

``runner.planmemo`` keys its memo of a compiled plan on them.  The readers call ``file``,
``env`` and ``impure`` (no-ops unless a ``recording()`` is active).  Reads made while the
connection is expanded (``connection()``) are not recorded: a plan from the memo compiles
its connection afresh whenever the run opens it, so a secret read there is never kept,
not even as a hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Reads:
    files: dict[str, str] = field(default_factory=dict)  # absolute path -> sha256 of bytes
    env: dict[str, str | None] = field(default_factory=dict)  # name -> sha256 of the value
    impure: set[str] = field(default_factory=set)  # why the plan may differ from run to run


_active: list[Reads] = []
_in_connection = [0]


def digest(data: bytes | str | None) -> str | None:
    if data is None:
        return None
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


@contextlib.contextmanager
def recording() -> Iterator[Reads]:
    reads = Reads()
    _active.append(reads)
    try:
        yield reads
    finally:
        _active.remove(reads)


@contextlib.contextmanager
def connection() -> Iterator[None]:
    _in_connection[0] += 1
    try:
        yield
    finally:
        _in_connection[0] -= 1


def _recording() -> bool:
    return bool(_active) and not _in_connection[0]


def file(path: str | os.PathLike[str], data: bytes) -> None:
    if _recording():
        for reads in _active:
            reads.files[os.path.abspath(path)] = digest(data) or ""


def env(name: str, value: str | None) -> None:
    if _recording():
        for reads in _active:
            reads.env[name] = digest(value)


def impure(why: str) -> None:
    if _recording():
        for reads in _active:
            reads.impure.add(why)
