"""Compiling for the Graph API (v2): the same module, the catalog's caps, pure (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runner.errors import PlaybookError
from runner.manifest import parse_playbook
from runner.plan import compile_plan

EMAILS = [f"user{i}@contoso.com" for i in range(250)]


def _plan(tmp_path: Path, api: str, tasks: list[dict]):
    text = yaml.safe_dump({"version": 1, "connection": {"simulator": True, "api": api},
                           "vars": {"emails": EMAILS}, "tasks": tasks}, sort_keys=False)
    return compile_plan(parse_playbook(text, tmp_path / "p.yml"))


def test_250_emails_are_3_steps_on_v1_and_250_on_v2(tmp_path):
    task = {"user_access_export": {"emails": "{{ emails }}", "data_sources": ["teams"]},
            "output": "access/{{ chunk.number }}.zip"}
    v1 = _plan(tmp_path, "v1", [{**task, "user_access_export": {
        **task["user_access_export"], "export_option": 2}}])
    v2 = _plan(tmp_path, "v2", [task])
    assert [len(s.request["emails"]) for s in v1.steps] == [100, 100, 50]
    assert len(v2.steps) == 250
    assert [s.request["email"] for s in v2.steps] == EMAILS  # one scalar per job
    assert {s.api for s in v2.steps} == {"v2"} and {s.api for s in v1.steps} == {"v1"}
    assert not {s.id for s in v1.steps} & {s.id for s in v2.steps}


def test_an_activity_of_a_user_and_an_object_is_two_v2_jobs(tmp_path):
    plan = _plan(tmp_path, "v2", [{"activity_export": {
        "email": "a@contoso.com", "path": "https://contoso.sharepoint.com/sites/a",
        "end_time": "2025-06-30T00:00:00"}, "output": "activity/{{ chunk.number }}.zip"}])
    assert [(s.operation, dict(s.request)) for s in plan.steps] == [
        ("user_activity_export", {"email": "a@contoso.com", "finishTime": "2025-06-30T00:00:00"}),
        ("object_activity_export", {"path": "https://contoso.sharepoint.com/sites/a",
                                    "finishTime": "2025-06-30T00:00:00"}),
    ]


def test_a_v1_output_becomes_numbered_files_where_v2_takes_one_value(tmp_path):
    plan = _plan(tmp_path, "v2", [{"site_ids": {"site_urls": ["https://c/sites/a",
                                                              "https://c/sites/b"]},
                                   "output": "sites/ids.jsonl"}])
    assert [s.output for s in plan.steps] == ["sites/ids-1.jsonl", "sites/ids-2.jsonl"]


@pytest.mark.parametrize(("api", "task", "words"), [
    ("v2", {"detail_records": {}}, "has no v2 equivalent: look up each site's id"),
    ("v2", {"link_export": {"link_type": "anyone", "language": "fr"}}, "v2 has no language"),
    ("v2", {"group_access_export": {"group_ids": [], "export_option": 3,
                                    "data_sources": ["teams"]}}, "no v2 form"),
    ("v1", {"set_tag": {"site_id": "s", "object_url": "https://c/x", "tag_name": "T"}},
     r"set_tag is a Graph API \(v2\) module"),
    ("v1", {"user_access_export": {"emails": ["a@b.c"], "data_sources": ["teams"]}},
     "user_access_export needs 'export_option'"),
])
def test_what_a_generation_cannot_do_is_refused_with_the_alternative(tmp_path, api, task,
                                                                      words):
    with pytest.raises(PlaybookError, match=words):
        _plan(tmp_path, api, [task])


def test_set_tag_steps_are_changes_in_the_plan_json(tmp_path):
    plan = _plan(tmp_path, "v2", [{"set_tag": {"site_id": "s", "object_url": "https://c/x",
                                               "tag_name": "T"}}])
    [step] = plan.to_json()["steps"]
    assert step["changes_tenant"] is True and step["api"] == "v2"
    assert step["request"] == {"siteId": "s", "objectUrl": "https://c/x", "tagName": "T"}


def test_step_ids_are_those_of_earlier_versions(tmp_path):
    # Pinned: a state written by an earlier version resumes only if its Steps keep their
    # ids. A v2 job per user (non-ASCII e-mail, post-processing) and a v1 paged query
    # (nested filters, the page size).
    text = yaml.safe_dump({"version": 1, "connection": {"simulator": True, "api": "v2"},
                           "vars": {"emails": ["user0@contoso.com", "zoë@contoso.com"]},
                           "tasks": [{"user_access_export": {"emails": "{{ emails }}",
                                                             "data_sources": ["teams"]},
                                      "output": "access/{{ chunk.number }}.zip",
                                      "extract": True}]}, sort_keys=False)
    v2 = compile_plan(parse_playbook(text, tmp_path / "p.yml"))
    assert [(s.id, s.output) for s in v2.steps] == [
        ("8751e59136f48463", "access/1.zip"), ("12dc8c5689477d21", "access/2.zip")]
    v1 = _plan(tmp_path, "v1", [{"detail_records": {"filters": {"risk": ["high"]}}}])
    assert [s.id for s in v1.steps] == ["c0313a8f9eba897e"]
