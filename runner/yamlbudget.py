"""What a user's file may cost before it is parsed: its size, its bytes, its YAML shape.

Every file a user hands the runner (playbook, inventory, ``-e @file``, saved plan,
``lookup('file')``) is read through ``read_limited``: larger than ``MAX_BYTES`` is refused
before a byte is read, NUL bytes and invalid UTF-8 are refused naming their line, and a
UTF-8 byte-order mark is dropped.  ``check_yaml`` then walks the YAML event stream once
(libyaml's parser keeps its own stack, so no depth can overflow ours) and refuses, at the
line where the budget runs out:

* nesting deeper than ``MAX_DEPTH`` mappings and lists;
* aliases that together stand for more than ``MAX_ALIAS_NODES`` nodes (the "billion laughs":
  nine levels of ``[*a, *a, ...]`` are a 1 KB file and a billion nodes);
* one value longer than ``MAX_SCALAR`` characters;
* tags other than YAML's standard ones (``!!python/object`` and friends).

Real playbooks are nowhere near these limits; hostile ones are refused in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from runner import inputs
from runner.errors import Diagnostic

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIAS_NODES = 100_000
MAX_SCALAR = 1_000_000  # characters in one value
_STANDARD = "tag:yaml.org,2002:"
_TAGS = {f"{_STANDARD}{name}" for name in
         ("str", "int", "float", "bool", "null", "seq", "map", "timestamp", "merge")}

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


def limit_text() -> str:
    return f"{MAX_BYTES // (1024 * 1024)} MB"


def too_big(file: str, size: int, what: str) -> Diagnostic:
    return Diagnostic(file, 1, 1, f"the {what} is {size:,} bytes, over the {limit_text()} "
                                  f"limit on files the runner reads")


def read_limited(path: str | Path, what: str) -> str | Diagnostic:
    """The text of ``path``, or the Diagnostic that says why it cannot be used.
    OSErrors (missing file, no permission) are the caller's to word."""
    file = str(path)
    with open(path, "rb") as handle:
        size = Path(handle.name).stat().st_size if Path(handle.name).is_file() else 0
        if size > MAX_BYTES:
            return too_big(file, size, what)
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:  # a pipe or a file growing while we read
        return too_big(file, len(data), what)
    inputs.file(path, data)  # a memoised plan is checked against it (runner.planmemo)
    return decode(data, file, what)


def decode(data: bytes, file: str, what: str) -> str | Diagnostic:
    """UTF-8 text (a leading byte-order mark dropped), or where it stops being text."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\0")
    if nul >= 0:
        line, column = _position(data, nul)
        return Diagnostic(file, line, column, f"the {what} holds a NUL byte: it is not a "
                                              f"text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        return Diagnostic(file, line, column, f"the {what} is not UTF-8 text (byte "
                                              f"0x{data[exc.start]:02x} at offset {exc.start})")


def _position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def check_yaml(text: str, file: str) -> list[Diagnostic]:
    """What makes ``text`` too costly or unsafe to compose; [] when it is fine.
    Syntax errors are left to the loader, which words them better."""
    if len(text) > MAX_BYTES:
        return [too_big(file, len(text.encode("utf-8", "replace")), "YAML text")]
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    counts: list[tuple[int, str | None]] = []  # open collections: nodes so far, anchor
    through_aliases = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            mark = event.start_mark
            tag = getattr(event, "tag", None)
            if tag and tag != "!" and tag not in _TAGS:
                return [_at(file, mark, f"the YAML tag {_short(tag)} is not allowed: "
                                        f"only plain values, lists and mappings are")]
            if isinstance(event, yaml.CollectionStartEvent):
                counts.append((1, event.anchor))
                if len(counts) > MAX_DEPTH:
                    return [_at(file, mark, f"nested more than {MAX_DEPTH} lists or "
                                            f"mappings deep")]
            elif isinstance(event, yaml.CollectionEndEvent):
                nodes, anchor = counts.pop()
                if anchor:
                    sizes[anchor] = nodes
                _add(counts, nodes)
            elif isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR:
                    return [_at(file, mark, f"a value of {len(event.value):,} characters, "
                                            f"over the {MAX_SCALAR:,} a value may hold")]
                if event.anchor:
                    sizes[event.anchor] = 1
                _add(counts, 1)
            elif isinstance(event, yaml.AliasEvent):
                nodes = sizes.get(event.anchor or "", 1)
                through_aliases += nodes
                if through_aliases > MAX_ALIAS_NODES:
                    return [_at(file, mark, f"aliases here stand for more than "
                                            f"{MAX_ALIAS_NODES:,} nodes: a playbook needs "
                                            f"far fewer (is this an alias bomb?)")]
                _add(counts, nodes)
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem):  # libyaml's own limit, met while scanning ahead
            return [_at(file, exc.problem_mark, f"nested more than {MAX_DEPTH} lists or "
                                                f"mappings deep")]
        return []  # the loader reports it with its line
    except yaml.YAMLError:  # pragma: no cover - unmarked errors are rare
        return []
    return []


def _add(counts: list[tuple[int, str | None]], nodes: int) -> None:
    if counts:
        total, anchor = counts[-1]
        counts[-1] = (total + nodes, anchor)


def _at(file: str, mark: yaml.Mark | None, message: str) -> Diagnostic:
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Diagnostic(file, line, column, message)


def _short(tag: str) -> str:
    return "!!" + tag[len(_STANDARD):] if tag.startswith(_STANDARD) else tag
