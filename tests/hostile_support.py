"""The hostile corpus: files that once knocked a validator out, each with the line its error
must name.  Shared by tests/test_hostile_yaml.py and benchmarks/hostile.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEAD = "version: 1\nname: hostile\nconnection:\n  simulator: true\n"
TASKS = "tasks:\n  - name: Users\n    user_summary: {}\n    output: users.jsonl\n"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [HEAD.rstrip("\n"), "x0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"x{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + f"\ntasks: *a{levels - 1}\n"


def deep(depth: int = 10_000) -> str:
    return HEAD + "vars:\n  deep: " + "[" * depth + "]" * depth + "\n" + TASKS


def huge_scalar(size: int = 8 * 1024 * 1024) -> str:
    return HEAD + "vars:\n  big: " + "x" * size + "\n" + TASKS


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[Path], None]
    line: int  # the line the error names (0: accepted, exit 0)
    words: str  # a phrase the message holds


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(text.encode("utf-8"))


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _hundred_mb(path: Path) -> None:
    block = (HEAD + "# padding " + "x" * 1013 + "\n").encode()
    with open(path, "wb") as handle:
        handle.write(HEAD.encode())
        for _ in range(100 * 1024 * 1024 // len(block)):
            handle.write(block)


CASES = [
    Case("alias bomb (9 levels of 9)", _text(alias_bomb()), 10, "alias"),
    Case("alias bomb (30 levels of 2)", _text(alias_bomb(30, 2)), 19, "alias"),
    Case("deep nesting (10,000 lists)", _text(deep()), 6, "nested"),
    Case("deep nesting (mappings)", _text(HEAD + "vars:\n" + "".join(
        "  " * (level + 1) + f"k{level}:\n" for level in range(100)) + "    x: 1\n"), 69,
        "nested"),
    Case("huge scalar (8 MB)", _text(huge_scalar()), 6, "characters"),
    Case("NUL byte", _bytes((HEAD + "vars:\n  a: b\0c\n" + TASKS).encode()), 6, "NUL"),
    Case("invalid UTF-8", _bytes((HEAD + "vars:\n").encode() + b"  a: caf\xe9\n"
                                 + TASKS.encode()), 6, "UTF-8"),
    Case("!!python tag", _text(HEAD + "vars:\n  a: !!python/object/apply:os.system "
                                      "['echo pwned']\n" + TASKS), 6, "!!python"),
    Case("100 MB file", _hundred_mb, 1, "10 MB"),
    Case("BOM + CRLF (accepted)", _bytes(b"\xef\xbb\xbf" + (HEAD + TASKS).replace(
        "\n", "\r\n").encode()), 0, ""),
]
