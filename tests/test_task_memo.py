"""The deferred task's memo in the state folder (runner.execute.registry): its Steps a line
each, read back in batches, and any damage to it means a compile, not a wrong plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.execute.registry import _load_steps, _save_steps
from runner.steps import Step


def steps(count: int) -> list[Step]:
    return [Step(id=f"id{i}", task_index=1, task_name="Access", operation="user_access_export",
                 kind="export", request={"email": f"u{i}@contoso.example",
                                         "dataSources": ["Teams"]},
                 output=f"access/{i}.zip", format="zip", chunk_number=i + 1, chunk_total=count,
                 retries=3, ignore_errors=False, register=None, tags=("access",), api="v2")
            for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, 5_000])  # 5,000: several blocks
def test_the_memo_gives_back_the_steps_it_was_given(tmp_path: Path, count: int) -> None:
    memo = tmp_path / "compiled" / "task1-abc.jsonl"
    _save_steps(memo, steps(count))
    loaded = _load_steps(memo)
    assert loaded is not None
    assert [s.to_json() for s in loaded] == [s.to_json() for s in steps(count)]
    assert len(memo.read_text(encoding="utf-8").splitlines()) == count + 1  # header + lines


def test_a_request_list_every_step_repeats_is_held_once(tmp_path: Path) -> None:
    """dataSources is the same in each Step: one tuple for all of them.  A field whose
    lists all differ (each chunk's e-mails, here more of them than are looked at) still
    gives back each Step's own list."""
    given = [Step(id=f"id{i}", task_index=1, task_name="Access", operation="user_access_export",
                  kind="export", request={"emails": [f"u{i}@contoso.example", f"v{i}@x.example"],
                                          "dataSources": ["Teams", "SharePoint"]},
                  output=f"access/{i}.zip", format="zip", chunk_number=i + 1, chunk_total=200,
                  retries=3, ignore_errors=False, register=None, tags=(), api="v2")
             for i in range(200)]
    memo = tmp_path / "compiled" / "task1-abc.jsonl"
    _save_steps(memo, given)
    loaded = _load_steps(memo)
    assert loaded is not None
    assert [s.to_json() for s in loaded] == [s.to_json() for s in given]
    assert len({id(s.request["dataSources"]) for s in loaded}) == 1
    assert loaded[0].request["dataSources"] == ("Teams", "SharePoint")
    assert [s.request["emails"][0] for s in loaded[-2:]] == ["u198@contoso.example",
                                                              "u199@contoso.example"]


def test_a_damaged_or_older_memo_is_not_used(tmp_path: Path) -> None:
    memo = tmp_path / "compiled" / "task1-abc.jsonl"
    _save_steps(memo, steps(3))
    text = memo.read_text(encoding="utf-8")
    memo.write_text(text[: len(text) - 20], encoding="utf-8")  # half a line at the end
    assert _load_steps(memo) is None
    memo.write_text('{"version": 1, "steps": []}\n', encoding="utf-8")  # the old format
    assert _load_steps(memo) is None


def test_a_new_memo_replaces_the_tasks_older_ones(tmp_path: Path) -> None:
    folder = tmp_path / "compiled"
    folder.mkdir()
    (folder / "task1-old.json").write_text("{}", encoding="utf-8")  # MEMO_VERSION 1's name
    (folder / "task2-other.jsonl").write_text("{}", encoding="utf-8")
    _save_steps(folder / "task1-new.jsonl", steps(2))
    assert sorted(p.name for p in folder.iterdir()) == ["task1-new.jsonl", "task2-other.jsonl"]
