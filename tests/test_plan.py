"""The compiler: chunking, request shapes, ids, deferral, loops, outputs; golden plans."""

from __future__ import annotations

import difflib
import json
import os
import textwrap
from collections.abc import Mapping
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import MappingProxyType

import pytest
from conftest import REPO
from hypothesis import given
from hypothesis import strategies as st

from runner import catalog
from runner.errors import PlanError, PlaybookError
from runner.manifest import load_playbook
from runner.plan import (
    FrozenRequest,
    Plan,
    chunk_product,
    chunks,
    compile_plan,
    compile_task,
    step_id,
)
from runner.secret import MASK
from runner.steps import Step
from runner.templating import RunFacts

FACTS = RunFacts("2025-01-31", "08-00-00", "2025-01-31T08:00:00Z", "run-1")
GOLDEN = Path(__file__).parent / "golden"


def plan_of(tmp_path: Path, text: str, **kwargs) -> Plan:
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return compile_plan(load_playbook(path), run_facts=FACTS, **kwargs)


# ---------------------------------------------------------------------- chunker


@given(st.lists(st.text(max_size=5), max_size=1000), st.integers(min_value=1, max_value=150))
def test_chunks_keep_every_value_once_in_order(values: list[str], size: int) -> None:
    cut = chunks(values, size)
    assert [v for chunk in cut for v in chunk] == values
    assert all(1 <= len(chunk) <= size for chunk in cut) or cut == [()]
    assert len(cut) == max(1, -(-len(values) // size))
    assert all(len(chunk) == size for chunk in cut[:-1])


@given(st.lists(st.integers(), max_size=450), st.lists(st.integers(), max_size=350))
def test_two_capped_lists_give_the_product_of_their_chunks(a: list[int], b: list[int]) -> None:
    combos = chunk_product({"a": a, "b": b})
    a_chunks, b_chunks = chunks(a), chunks(b)
    assert len(combos) == len(a_chunks) * len(b_chunks)
    assert [c["a"] for c in combos[:: len(b_chunks)]] == a_chunks  # the first varies slowest
    assert [c["b"] for c in combos[: len(b_chunks)]] == b_chunks
    pairs = {(x, y) for c in combos for x in c["a"] for y in c["b"]}
    assert pairs == {(x, y) for x in a for y in b}


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        chunks([1], 0)


@given(st.integers(min_value=0, max_value=1000))
def test_a_task_with_n_sites_makes_ceil_n_over_100_steps(tmp_path_factory, n: int) -> None:
    tmp_path = tmp_path_factory.mktemp("n")
    plan = plan_of(tmp_path, f"""\
        tasks:
          - site_ids: {{site_urls: "{{{{ range({n}) | map('string') | list }}}}"}}
        """)
    if n == 0:  # site_ids needs at least one URL: an empty list from a template skips it
        assert plan.steps == () and plan.skipped[0].reason == "site_urls is empty"
        return
    sent = [url for step in plan.steps for url in step.request["siteUrls"]]
    assert sent == [str(i) for i in range(n)]
    assert len(plan.steps) == -(-n // 100)
    assert all(len(s.request["siteUrls"]) <= catalog.MAX_LIST_VALUES for s in plan.steps)
    assert [s.chunk_number for s in plan.steps] == list(range(1, len(plan.steps) + 1))
    assert {s.chunk_total for s in plan.steps} == {len(plan.steps)}


# --------------------------------------------------------------------- requests


def test_requests_use_api_names_and_codes(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        tasks:
          - user_access_export:
              emails: [a@c.com]
              data_sources: [teams, SharePoint Online]
              export_option: summary_only
              language: fr
          - link_summary: {link_type: anyone}
          - link_export: {link_type: 64, start_time: 2025-01-01}
          - detail_records:
              filters: {sensitivity: [high, -2], module: [teams], tag_name: [Reviewed]}
          - site_overview:
              filters: [{id: riskLevel, values: [3, medium]}]
              page_size: 20
          - user_summary: {}
          - site_ids: {site_urls: [x]}
        """)
    requests = [dict(s.request) for s in plan.steps]
    assert requests[0] == {"emails": ("a@c.com",),
                           "dataSources": ("Microsoft Teams", "SharePoint Online"),
                           "Language": "fr-FR", "ExportOptionType": 3}
    assert requests[1] == {"PageSize": 100, "LinkType": "128"}
    assert requests[2] == {"exportLinkType": "64", "startTime": "2025-01-01"}
    assert plan.steps[3].to_json()["request"] == {
        "filters": [{"id": "module", "values": ["1"]}, {"id": "tagName", "values": ["Reviewed"]},
                    {"id": "sensitivityLevel", "values": ["3", "-2"]}],
        "pageSize": 100}
    assert plan.steps[4].to_json()["request"] == {
        "filters": [{"id": "riskLevel", "values": ["3", "2"]}], "pageSize": 20}
    assert requests[5] == {"PageSize": 100}
    assert requests[6] == {"siteUrls": ("x",)}  # site_ids is not paged
    assert [s.kind for s in plan.steps] == ["export", "query", "export"] + ["query"] * 4
    assert [s.format for s in plan.steps] == ["zip", "jsonl", "zip"] + ["jsonl"] * 4


def test_steps_are_immutable_and_json_is_plain(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "tasks:\n  - detail_records: {filters: {risk: [high]}}\n")
    (step,) = plan.steps
    assert isinstance(step.request, Mapping) and not isinstance(step.request, dict)
    with pytest.raises(TypeError):
        step.request["pageSize"] = 1  # type: ignore[index]
    assert step.request == {"filters": ({"id": "riskLevel", "values": ("3",)},),
                            "pageSize": 100}
    document = plan.to_json()
    assert json.loads(json.dumps(document)) == document
    assert type(document["steps"][0]["request"]["filters"][0]) is dict


def test_a_tasks_steps_share_its_fields_and_read_back_from_json_alike(tmp_path: Path) -> None:
    # A plan of v2 size holds 200,000 Steps: each keeps its id, request, output and chunk
    # number, and points at one record of what its task's Steps share.
    plan = plan_of(tmp_path, "tasks:\n  - name: Sites\n    site_permission_export:\n"
                   "      site_urls: " + json.dumps([f"https://x/{i}" for i in range(250)]) +
                   "\n    retries: 2\n    tags: [weekly]\n")
    first, *rest = plan.steps
    assert len(plan.steps) == 3 and all(s._task is first._task for s in rest)
    assert [(s.task_name, s.retries, s.tags, s.chunk_number, s.chunk_total)
            for s in plan.steps] == [("Sites", 2, ("weekly",), n, 3) for n in (1, 2, 3)]
    again = Step.from_json(json.loads(json.dumps(first.to_json())))
    assert again == first and again._task is first._task and repr(again) == repr(first)
    assert again != rest[0]
    with pytest.raises(FrozenInstanceError):
        first.retries = 5  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        first.id = "other"  # type: ignore[misc]

    import tracemalloc

    # What a Step itself holds (its id, request and output strings are its own either way):
    # 168 B when its 17 fields were its own slots.
    many: list[Step | None] = [None] * 20_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(len(many)):
            many[index] = Step(first.id, first.task_index, first.task_name, first.operation,
                               first.kind, first.request, first.output, first.format,
                               first.chunk_number, first.chunk_total, first.retries,
                               first.ignore_errors, first.register, first.tags)
        each = (tracemalloc.get_traced_memory()[0] - before) / len(many)
    finally:
        tracemalloc.stop()
    assert each < 100, f"{each:.0f} B a Step"


def test_ids_are_stable_and_change_with_the_request_or_output(tmp_path: Path) -> None:
    first = plan_of(tmp_path, "tasks:\n  - site_ids: {site_urls: [a, b]}\n")
    again = plan_of(tmp_path, "name: renamed\ntasks:\n  - site_ids: {siteUrls: [a, b]}\n")
    assert first.steps[0].id == again.steps[0].id
    assert first.fingerprint != again.fingerprint
    other = plan_of(tmp_path, "tasks:\n  - site_ids: {site_urls: [a, c]}\n")
    moved = plan_of(tmp_path, "tasks:\n  - site_ids: {site_urls: [a, b]}\n    output: x.jsonl\n")
    assert len({first.steps[0].id, other.steps[0].id, moved.steps[0].id}) == 3
    step = first.steps[0]
    assert step.id == step_id(step.operation, step.request, step.output, step.format)
    assert len(step.id) == 16


def test_user_and_site_lists_are_chunked_as_a_product(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        tasks:
          - user_permissions:
              emails: "{{ range(150) | map('string') | list }}"
              site_urls: "{{ range(250) | map('string') | list }}"
            output: "p/{{ chunk.number }}-of-{{ chunk.total }}.jsonl"
        """)
    assert len(plan.steps) == 6
    # the catalog's field order: SiteUrls (3 chunks) varies slowest, then Emails (2 chunks)
    assert [len(s.request["SiteUrls"]) for s in plan.steps] == [100, 100, 100, 100, 50, 50]
    assert [len(s.request["Emails"]) for s in plan.steps] == [100, 50] * 3
    assert plan.steps[-1].output == "p/6-of-6.jsonl"


# ------------------------------------------------------------- tasks and outputs


def test_default_outputs_are_per_task_and_numbered(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        tasks:
          - name: Site reports!
            site_permission_export: {site_urls: "{{ range(101) | map('string') | list }}"}
          - user_summary: {}
            format: csv
        """)
    assert [s.output for s in plan.steps] == [
        "site-reports/part-1.zip", "site-reports/part-2.zip", "user-summary/part-1.csv"]


def test_loop_and_when(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        vars: {wanted: [b, c]}
        tasks:
          - site_ids: {site_urls: ["{{ item }}"]}
            loop: [a, b, c]
            when: item in wanted
            output: "ids/{{ item }}.jsonl"
          - user_summary: {}
            when: false
          - group_summary: {}
            loop: []
        """)
    assert [s.output for s in plan.steps] == ["ids/b.jsonl", "ids/c.jsonl"]
    assert [(s.task_index, s.reason) for s in plan.skipped] == [
        (1, "when is false"), (2, "loop has no items")]


def test_an_empty_list_from_a_template_skips_the_task(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        tasks:
          - user_access_export:
              emails: "{{ [] }}"
              data_sources: [teams]
              export_option: 3
        """)
    assert plan.steps == ()
    assert plan.skipped[0].reason == "emails is empty"


def test_registered_results_defer_and_then_compile(tmp_path: Path) -> None:
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent("""\
        tasks:
          - user_summary: {}
            register: users
          - user_access_export:
              emails: >-
                {{ users | selectattr('userStatus', 'eq', 'Active')
                         | map(attribute='email') | list }}
              data_sources: [teams]
              export_option: 1
            output: "access/{{ chunk.number }}.zip"
        """), encoding="utf-8")
    book = load_playbook(path)
    plan = compile_plan(book, run_facts=FACTS)
    assert [s.task_index for s in plan.steps] == [0]
    assert plan.deferred[0].task_index == 1 and plan.deferred[0].needs == ("users",)
    with pytest.raises(PlanError, match="still waits for: users"):
        compile_task(book, 1, registered={}, run_facts=FACTS)
    users = [{"email": f"u{i}@c.com", "userStatus": "Active" if i % 2 else "Blocked"}
             for i in range(300)]
    steps = compile_task(book, 1, registered={"users": users}, run_facts=FACTS,
                         existing=plan.steps)
    assert len(steps) == 2
    assert steps[0].request["emails"][:2] == ("u1@c.com", "u3@c.com")
    assert sum(len(s.request["emails"]) for s in steps) == 150
    full = compile_plan(book, registered={"users": users}, run_facts=FACTS)
    assert full.deferred == () and [s.id for s in full.steps[1:]] == [s.id for s in steps]


def test_two_steps_writing_one_path_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        plan_of(tmp_path, """\
            tasks:
              - site_ids: {site_urls: [a]}
                output: out/Same.jsonl
              - site_ids: {site_urls: [b]}
                output: out/same.jsonl
              - site_ids: {site_urls: "{{ range(101) | map('string') | list }}"}
                output: one.jsonl
            """)
    found = [(d.line, d.message) for d in caught.value.diagnostics]
    assert found == [
        (5, "tasks[1].output: 'out/same.jsonl' is also written by tasks[0] (site_ids); give "
            "each task its own output"),
        (7, "tasks[2].output: 'one.jsonl' is written by more than one Step of this task; add "
            "{{ chunk.number }} to the output"),
    ]


def test_connection_templates_are_expanded_and_secrets_masked(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("INSIGHTS_RUNNER_TEST_PASSWORD", "hunter2")
    text = """\
        connection:
          region: ne
          client_id: "{{ env('INSIGHTS_RUNNER_TEST_PASSWORD') | length }}"
          certificate:
            path: cert.pfx
            password: "{{ env('INSIGHTS_RUNNER_TEST_PASSWORD') }}"
        tasks:
          - user_summary: {}
        """
    plan = plan_of(tmp_path, text)
    assert plan.connection["client_id"] == 7
    assert plan.connection["certificate"]["password"].reveal() == "hunter2"
    printed = json.dumps(plan.to_json())
    assert "hunter2" not in printed and MASK in printed
    raw = plan_of(tmp_path, text, expand_connection=False)
    assert raw.connection["certificate"]["password"].reveal().startswith("{{ env(")
    assert raw.to_json()["connection"]["certificate"]["password"] == MASK


def test_output_dir_is_relative_to_the_playbook(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "output_dir: out/{{ run.date }}\ntasks:\n  - user_summary: {}\n")
    assert plan.output_dir == str(tmp_path / "out" / "2025-01-31")
    assert plan_of(tmp_path, "tasks:\n  - user_summary: {}\n").output_dir == str(tmp_path)


# -------------------------------------------------------------------------- golden


def _normalised(plan: Plan) -> dict:
    document = plan.to_json()
    for key in ("playbook", "output_dir"):
        document[key] = Path(os.path.relpath(document[key], REPO)).as_posix()
    return document


GOLDEN_CASES = sorted(GOLDEN.glob("*.yml")) + [REPO / "playbooks" / "demo.yml"]


@pytest.mark.parametrize("playbook", GOLDEN_CASES, ids=lambda p: p.stem)
def test_golden_plans(playbook: Path) -> None:
    """playbook -> plan.json; regenerate with UPDATE_GOLDEN=1 after a deliberate change."""
    expected_file = GOLDEN / f"{playbook.stem}.plan.json"
    actual = json.dumps(_normalised(compile_plan(load_playbook(playbook), run_facts=FACTS)),
                        indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_file.write_text(actual, encoding="utf-8")
    expected = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
    if actual != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=str(expected_file), tofile="compiled now", n=2))
        pytest.fail(f"the plan of {playbook.name} changed (UPDATE_GOLDEN=1 to accept):\n{diff}",
                    pytrace=False)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4).map(MappingProxyType)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4).map(FrozenRequest),
    max_leaves=20)


@given(_JSON)
def test_the_canonical_json_of_step_ids_is_json_dumps_sorted(value) -> None:
    # Step ids hash this text; the fast encoder must write what json.dumps writes.
    from runner.plan import _canonical, _json_default

    assert _canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False, default=_json_default)
