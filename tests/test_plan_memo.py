"""The memo of the whole compiled plan (runner.planmemo), through the CLI: a re-run of an
unchanged playbook takes its plan from the memo (and so imports no template or schema
stack), and any change to what the plan was compiled from misses it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from run_support import env_for, report, runner, work_requests, write_playbook

USERS = {"name": "Users", "user_summary": {}, "output": "users.jsonl"}


def memos(playbook: Path) -> list[Path]:
    return sorted((playbook.parent / ".insights-runner" / "compiled").glob("plan-*.json"))


def imported(result: Any) -> set[str]:
    """The modules a ``python -X importtime`` child imported (from its stderr)."""
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def run_importtime(playbook: Path, *args: str, env: dict[str, str]) -> Any:
    import subprocess

    return subprocess.run([sys.executable, "-X", "importtime", "-m", "runner", "run",
                           str(playbook), "-q", *args], capture_output=True, text=True,
                          env=env, timeout=240)


def test_a_rerun_takes_the_plan_from_the_memo_without_the_template_stack(sim, tmp_path: Path
                                                                         ) -> None:
    playbook = write_playbook(tmp_path, sim, [USERS])
    first = runner("run", playbook, "-q", env=env_for(sim))
    assert first.returncode == 0, first.stderr
    [memo] = memos(playbook)
    assert "SIM_PFX_PASSWORD" not in memo.read_text(encoding="utf-8")
    assert sim.credentials.pfx_password not in memo.read_text(encoding="utf-8")

    sim.log.clear()
    again = run_importtime(playbook, env=env_for(sim))
    assert again.returncode == 0, again.stderr
    modules = imported(again)
    assert "runner.steps" in modules  # (the importtime lines are read right)
    assert not modules & {"jinja2", "jsonschema", "yaml", "runner.plan", "runner.manifest"}
    assert all(step["reused"] for step in report(playbook)["steps"])
    assert sim.log.entries == []


def test_a_step_to_redo_opens_the_connection_of_a_memoised_plan(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [USERS])
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    users = tmp_path / "reports" / "users.jsonl"
    before = users.read_bytes()
    users.unlink()
    again = run_importtime(playbook, env=env_for(sim))  # the memo's plan; its connection
    assert again.returncode == 0, again.stderr          # is compiled again to connect
    assert "runner.plan" in imported(again)
    assert users.read_bytes() == before
    assert [s["reused"] for s in report(playbook)["steps"]] == [False]


def test_a_deferred_task_compiles_again_from_a_memoised_plan(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [
        {**USERS, "register": "users"},
        {"name": "Access", "user_access_export": {
            "emails": "{{ users | map(attribute='email') | list }}",
            "data_sources": ["teams"], "export_option": "summary_only"},
         "output": "access/part-{{ chunk.number }}.zip"}])
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    for task_memo in (tmp_path / ".insights-runner" / "compiled").glob("task*"):
        task_memo.unlink()  # the deferred task's own memo is gone: compiled from the playbook
    sim.log.clear()
    again = runner("run", playbook, "-q", env=env_for(sim))
    assert again.returncode == 0, again.stderr
    steps = report(playbook)["steps"]
    assert len(steps) > 1 and all(step["reused"] for step in steps)
    assert work_requests(sim) == []


def _edit_playbook(directory: Path, env: dict[str, str]) -> str:
    path = directory / "playbook.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["tasks"][0]["output"] = "renamed.jsonl"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return "renamed.jsonl"


def _edit_env(directory: Path, env: dict[str, str]) -> str:
    env["USERS_FILE"] = "from-env-2"
    return "from-env-2.jsonl"


def _edit_lookup(directory: Path, env: dict[str, str]) -> str:
    (directory / "name.txt").write_text("from-file-2\n", encoding="utf-8")
    return "from-file-2.jsonl"


def _edit_vars_file(directory: Path, env: dict[str, str]) -> str:
    (directory / "vars.yml").write_text("from_vars: from-vars-2\n", encoding="utf-8")
    return "from-vars-2.jsonl"


CHANGES: dict[str, tuple[dict[str, Any], Callable[[Path, dict[str, str]], str]]] = {
    "the playbook": ({"output": "users.jsonl"}, _edit_playbook),
    "an environment variable a task reads": (
        {"output": "{{ env('USERS_FILE') }}.jsonl"}, _edit_env),
    "a file a template reads": ({"output": "{{ lookup('file', 'name.txt') }}.jsonl"},
                                _edit_lookup),
    "an -e @file": ({"output": "{{ from_vars }}.jsonl"}, _edit_vars_file),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_to_the_inputs_misses_the_memo(sim, tmp_path: Path, change: str) -> None:
    task, edit = CHANGES[change]
    playbook = write_playbook(tmp_path, sim, [{**USERS, **task}])
    (tmp_path / "name.txt").write_text("from-file-1\n", encoding="utf-8")
    (tmp_path / "vars.yml").write_text("from_vars: from-vars-1\n", encoding="utf-8")
    env = {**env_for(sim), "USERS_FILE": "from-env-1"}
    first = runner("run", playbook, "-q", "-e", "@vars.yml", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert len(memos(playbook)) == 1

    expected = edit(tmp_path, env)
    again = runner("run", playbook, "-q", "-e", "@vars.yml", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [s["output"] for s in report(playbook)["steps"]] == [expected]
    assert (tmp_path / "reports" / expected).is_file()


def test_other_command_line_values_have_their_own_memo(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [{**USERS, "output": "{{ name }}.jsonl"}])
    for name in ("a", "b", "a"):
        result = runner("run", playbook, "-q", "-e", f"name={name}", env=env_for(sim))
        assert result.returncode == 0, result.stderr
        assert [s["output"] for s in report(playbook)["steps"]] == [f"{name}.jsonl"]
    assert len(memos(playbook)) == 2


def test_a_plan_that_reads_run_is_never_memoised(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [{**USERS, "output": "{{ run.date }}.jsonl"}])
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    assert memos(playbook) == []


def test_a_broken_memo_is_compiled_again(sim, tmp_path: Path) -> None:
    playbook = write_playbook(tmp_path, sim, [USERS])
    assert runner("run", playbook, "-q", env=env_for(sim)).returncode == 0
    [memo] = memos(playbook)
    document = json.loads(memo.read_text(encoding="utf-8"))
    document["tenants"][0]["plan"]["steps"][0].pop("format")
    memo.write_text(json.dumps(document), encoding="utf-8")
    again = runner("run", playbook, "-q", env=env_for(sim))
    assert again.returncode == 0, again.stderr
    assert all(step["reused"] for step in report(playbook)["steps"])
