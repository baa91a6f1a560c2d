"""The validate / plan / schema / regions commands, run as a user runs them (subprocesses).

tests/bad_playbooks holds malformed playbooks; the first line of each says what validate
must report: ``# expect: LINE FIELD :: message fragment`` (FIELD ``-`` when there is none).
All of them are validated in one process; a few more runs check exit codes one by one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from runner import regions, schema

BAD = sorted((Path(__file__).parent / "bad_playbooks").glob("*.yml"))
EXPECT = re.compile(r"^# expect: (\d+) (\S+) :: (.+)$")
DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+\.yml):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")


def runner(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("INSIGHTS_RUNNER_TEST_SURELY_UNSET", None)
    return subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True,
                          text=True, cwd=REPO, env=environment, timeout=120)


def expectation(path: Path) -> tuple[int, str, str]:
    match = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert match, f"{path.name}: the first line must be '# expect: LINE FIELD :: fragment'"
    return int(match.group(1)), match.group(2), match.group(3)


@pytest.fixture(scope="module")
def bad_results() -> tuple[subprocess.CompletedProcess[str], dict[str, list[tuple[int, str]]]]:
    result = runner("validate", *(str(p.relative_to(REPO)) for p in BAD))
    found: dict[str, list[tuple[int, str]]] = {}
    for line in result.stdout.splitlines():
        match = DIAGNOSTIC.match(line)
        if match:
            found.setdefault(Path(match["file"]).name, []).append(
                (int(match["line"]), match["message"]))
    return result, found


def test_the_corpus_is_large_enough() -> None:
    assert len(BAD) >= 30


def test_validating_the_corpus_exits_2_without_a_traceback(bad_results) -> None:
    result, found = bad_results
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{len(BAD)} of {len(BAD)} playbooks have problems" in result.stdout
    assert set(found) == {p.name for p in BAD}


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_each_bad_playbook_is_reported_at_its_line_and_field(bad_results, path: Path) -> None:
    line, field, fragment = expectation(path)
    reported = bad_results[1].get(path.name, [])
    matching = [m for n, m in reported if n == line and fragment in m
                and (field == "-" or m.startswith(f"{field}:"))]
    assert matching, f"{path.name}: wanted line {line}, {field}, {fragment!r}; got {reported}"


@pytest.mark.parametrize("name", ["01-empty.yml", "06-unknown-module.yml",
                                  "30-undefined-variable.yml"])
def test_one_bad_playbook_exits_2(name: str) -> None:
    result = runner("validate", f"tests/bad_playbooks/{name}")
    assert result.returncode == 2
    assert result.stdout.startswith(f"tests/bad_playbooks/{name}:")
    assert "Traceback" not in result.stderr


def test_plan_of_a_bad_playbook_exits_2_with_the_diagnostics_on_stderr() -> None:
    result = runner("plan", "tests/bad_playbooks/11-page-size-over-100.yml")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "11-page-size-over-100.yml:4:18: tasks[0].user_summary.page_size" in result.stderr


def test_github_annotations() -> None:
    result = runner("validate", "--format", "github", "tests/bad_playbooks/04-yaml-syntax.yml",
                    "playbooks/demo.yml")
    assert result.returncode == 2
    (annotation,) = result.stdout.splitlines()
    assert annotation.startswith(
        "::error file=tests/bad_playbooks/04-yaml-syntax.yml,line=3,col=36::YAML syntax error")
    assert "%0A" in annotation  # the quoted source line stays inside one annotation


def test_validate_and_plan_the_demo() -> None:
    result = runner("validate", "playbooks/demo.yml", "tests/golden/loops.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "playbooks/demo.yml: ok (11 steps, 3 deferred)"
    result = runner("plan", "playbooks/demo.yml")
    assert result.returncode == 0, result.stderr
    assert "deferred: tasks[2] (Access reports of active users) waits for users" in result.stdout
    summary, estimate = result.stdout.rstrip().splitlines()[-2:]
    assert summary.endswith("11 steps (3 exports, 8 queries), 3 deferred, 0 skipped")
    assert estimate.startswith("estimate: ")  # from the state's history, or says it has none


def test_plan_json_and_extra_vars() -> None:
    result = runner("plan", "--json", "-e", "lang=ja-JP", "-e", '{"include_activity": false}',
                    "playbooks/demo.yml")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["version"] == 1 and len(plan["steps"]) == 10
    assert plan["steps"][0]["request"]["language"] == "ja-JP"
    assert [s["task_index"] for s in plan["skipped"]] == [6]
    assert {d["task_index"]: d["needs"] for d in plan["deferred"]} == {
        2: ["users"], 4: ["groups"], 13: ["known_sites"]}
    bad = runner("plan", "-e", "lang=xx", "playbooks/demo.yml")
    assert bad.returncode == 2
    assert "'xx' is not a valid language" in bad.stderr


def test_schema_prints_the_committed_schema() -> None:
    result = runner("schema")
    assert result.returncode == 0
    assert result.stdout == schema.schema_json()
    assert result.stdout == (REPO / "schemas" / "playbook.schema.json").read_text()


def test_regions() -> None:
    result = runner("regions")
    assert result.returncode == 0
    for dc in regions.DATA_CENTERS:
        assert dc.base_url in result.stdout
    rows = json.loads(runner("regions", "--json").stdout)
    assert len(rows) == 24
    assert {r["region"]: r["identity_url"] for r in rows}["gov"] == regions.IDENTITY_SERVICES["gov"]
    by_region = {r["region"]: r["api"] for r in rows}
    assert by_region["cn"] == ["v1"] and by_region["qa"] == ["v2"]
    assert by_region["us"] == ["v1", "v2"]


def test_missing_arguments_are_usage_errors() -> None:
    result = runner("validate")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
