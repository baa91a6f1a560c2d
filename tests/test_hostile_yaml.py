"""Hostile files (alias bombs, deep nesting, huge values, NUL, bad UTF-8, !!python tags,
100 MB) are refused with exit 2 naming their file and line, through the CLI, wherever a
user's file comes in: playbooks, inventories, ``-e @file``, saved plans, lookup('file').
BOM + CRLF is an ordinary file.  How fast: benchmarks/hostile.py (not a timed test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_support import CASES, HEAD, TASKS, alias_bomb, deep
from run_support import runner


def refused(result, file: Path, line: int, words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert f"{file}:{line}:" in out, out[:500]
    assert words in out, out[:500]
    assert "Traceback" not in out


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_validate_answers_each_hostile_playbook(case, tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    case.write(playbook)

    result = runner("validate", playbook)

    if case.line == 0:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        refused(result, playbook, case.line, case.words)


def test_an_alias_bomb_in_the_inventory_is_refused(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text("version: 1\nname: hostile\nhosts: all\n" + TASKS, encoding="utf-8")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(alias_bomb().replace(HEAD.rstrip("\n"), "# inventory\n#\n#\n#"),
                         encoding="utf-8")

    refused(runner("validate", playbook, "-i", inventory), inventory, 10, "alias")


def test_deep_extra_vars_from_a_file_are_refused(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(HEAD + TASKS, encoding="utf-8")
    extra = tmp_path / "vars.yml"
    extra.write_text("a: 1\nb: " + "{x: " * 70 + "1" + "}" * 70 + "\n", encoding="utf-8")

    refused(runner("validate", playbook, "-e", f"@{extra}"), extra, 2, "nested")


def test_a_huge_extra_vars_file_names_the_limit(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(HEAD + TASKS, encoding="utf-8")
    extra = tmp_path / "vars.yml"
    with open(extra, "wb") as handle:
        handle.truncate(11 * 1024 * 1024)  # sparse: the runner must refuse before reading

    refused(runner("validate", playbook, "-e", f"@{extra}"), extra, 1, "10 MB")


@pytest.mark.parametrize("content,line,words", [
    (b'{"format": "insights-runner-plan",\n "x": "\0"}', 2, "NUL"),
    (b'{"format":\n\n "\xff"}', 3, "UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, 1, "nested"),
])
def test_a_hostile_saved_plan_is_refused(tmp_path: Path, content: bytes, line: int,
                                         words: str) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(content)

    refused(runner("run", plan), plan, line, words)


def test_a_saved_plan_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    with open(plan, "wb") as handle:
        handle.write(b'{"format": "insights-runner-plan"}')
        handle.truncate(50 * 1024 * 1024)

    refused(runner("run", plan), plan, 1, "10 MB")


def test_lookup_file_has_the_same_size_budget(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(HEAD + TASKS.replace("users.jsonl", "\"{{ lookup('file', 'sites.txt')"
                                             " }}.jsonl\""), encoding="utf-8")
    with open(tmp_path / "sites.txt", "wb") as handle:
        handle.truncate(20 * 1024 * 1024)

    result = runner("validate", playbook)

    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "sites.txt" in out and "10 MB" in out and "Traceback" not in out
    assert f"{playbook}:8:" in out


def test_a_long_line_is_cut_to_the_terminal_width_around_the_column(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    long_line = "  note: [" + "a, " * 1000 + "b: c: d" + ", z" * 1000 + "\n"
    playbook.write_text(HEAD + "vars:\n" + long_line + TASKS, encoding="utf-8")

    result = runner("validate", playbook, env={**os.environ, "COLUMNS": "80"})

    assert result.returncode == 2
    out = result.stdout + result.stderr
    assert f"{playbook}:6:" in out
    quoted = [line for line in out.splitlines() if " | " in line]
    assert len(quoted) == 2, out
    assert all(len(line) <= 80 for line in quoted), quoted
    source, caret = quoted
    assert source.rstrip().endswith("...") and "..." in source.split("|", 1)[1][:5]
    column = int(out.split(f"{playbook}:6:")[1].split(":")[0])
    assert long_line[column - 1] in source[caret.index("^") - 1: caret.index("^") + 2]


def test_deep_nesting_just_inside_the_limit_is_accepted(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(deep(60), encoding="utf-8")

    result = runner("validate", playbook)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "nested" not in result.stdout + result.stderr
