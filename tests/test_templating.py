"""The sandboxed Jinja environment: native values, strictness, env(), lookup(), run facts."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.errors import PlaybookError
from runner.manifest import load_playbook
from runner.plan import compile_plan
from runner.templating import (
    RunFacts,
    Templar,
    TemplateError,
    as_template,
    contains_template,
    is_template,
    references,
    syntax_error,
)

FACTS = RunFacts("2025-01-31", "08-00-00", "2025-01-31T08:00:00Z", "run-1")


@pytest.fixture
def templar(tmp_path: Path) -> Templar:
    return Templar(tmp_path, environ={"HOME_REGION": "ne"})


def test_a_lone_expression_keeps_its_native_type(templar: Templar) -> None:
    assert templar.render("{{ [1, 2] }}", {}) == [1, 2]
    assert templar.render("  {{- n + 1 -}} ", {"n": 41}) == 42
    assert templar.render("{{ flag }}", {"flag": False}) is False
    assert templar.render("{{ d }}", {"d": {"a": 1}}) == {"a": 1}
    assert templar.render("{{ '}}' }}", {}) == "}}"


def test_anything_else_renders_to_a_string(templar: Templar) -> None:
    assert templar.render("n={{ n }}", {"n": 1}) == "n=1"
    assert templar.render("{{ a }}{{ b }}", {"a": 1, "b": 2}) == "12"
    assert templar.render("{% if x %}yes{% endif %}", {"x": True}) == "yes"
    assert templar.render("no template", {}) == "no template"
    # a string that looks like a number stays a string (no literal_eval surprises)
    assert templar.render("{{ s }}", {"s": "007"}) == "007"


def test_expand_walks_lists_and_mappings(templar: Templar) -> None:
    value = {"a": ["{{ x }}", "lit"], "b": {"c": "{{ x * 2 }}"}, "n": 3}
    assert templar.expand(value, {"x": 2}) == {"a": [2, "lit"], "b": {"c": 4}, "n": 3}


def test_undefined_names_are_errors_even_inside_values(templar: Templar) -> None:
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        templar.render("{{ missing }}", {})
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        templar.render("{{ [1, missing] }}", {})
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        templar.render("x{{ missing }}", {})


def test_the_sandbox_refuses_unsafe_access(templar: Templar) -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        templar.render("{{ ''.__class__.__mro__ }}", {})
    with pytest.raises(TemplateError, match="unsafe"):
        templar.render("{{ items.append(1) }}", {"items": []})


def test_env_function(templar: Templar) -> None:
    assert templar.render("{{ env('HOME_REGION') }}", {}) == "ne"
    assert templar.render("{{ env('NOPE', 'us') }}", {}) == "us"
    assert templar.render("{{ lookup('env', 'HOME_REGION') }}", {}) == "ne"
    with pytest.raises(TemplateError, match="environment variable NOPE is not set"):
        templar.render("{{ env('NOPE') }}", {})


def test_file_lookup_is_relative_to_the_playbook_and_stays_inside(tmp_path: Path,
                                                                 templar: Templar) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "sites.txt").write_text("https://a\nhttps://b\n\n")
    assert templar.render("{{ lookup('file', 'lists/sites.txt').splitlines() }}", {}) == [
        "https://a", "https://b"]
    with pytest.raises(TemplateError, match="leaves the playbook's directory"):
        templar.render("{{ lookup('file', '../x.txt') }}", {})
    with pytest.raises(TemplateError, match="No such file"):
        templar.render("{{ lookup('file', 'missing.txt') }}", {})
    with pytest.raises(TemplateError, match="unknown lookup"):
        templar.render("{{ lookup('pipe', 'ls') }}", {})


def test_static_analysis() -> None:
    assert is_template("a {{ b }}") and is_template("{% raw %}") and not is_template("a { b }")
    assert contains_template({"a": ["x", "{{ y }}"]}) and not contains_template({"a": [1, "x"]})
    assert references("{{ a | map(attribute=b) | list }}{{ c.d }}") == {"a", "b", "c"}
    assert references("{% for x in xs %}{{ x }}{% endfor %}") == {"xs"}
    assert references(as_template("users | length > 0")) == {"users"}
    assert as_template("{{ x }}") == "{{ x }}"
    assert syntax_error("{{ a | }}").startswith("template syntax error")
    assert syntax_error("{{ a | no_such_filter }}") == (
        "template syntax error: No filter named 'no_such_filter'.")
    assert syntax_error("{{ a }}") is None


def test_run_facts_are_path_friendly() -> None:
    facts = RunFacts.now(lambda: datetime(2025, 1, 31, 8, 5, 9, tzinfo=UTC))
    assert (facts.date, facts.time, facts.timestamp) == (
        "2025-01-31", "08-05-09", "2025-01-31T08:05:09Z")
    assert facts.id.startswith("20250131T080509Z-")


# ---------------------------------------------------------- through the compiler


def plan_of(tmp_path: Path, text: str, extra: tuple[str, ...] = ()):
    path = tmp_path / "play.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return compile_plan(load_playbook(path, extra), run_facts=FACTS)


def test_vars_extra_vars_and_run_facts(tmp_path: Path) -> None:
    text = """\
        vars:
          lang: fr
          root: "reports/{{ run.date }}"
          out: "{{ root }}/{{ name }}.jsonl"
          name: users
        tasks:
          - user_summary: {language: "{{ lang }}"}
            output: "{{ out }}"
        """
    (step,) = plan_of(tmp_path, text).steps
    assert step.output == "reports/2025-01-31/users.jsonl"
    assert step.request["Language"] == "fr-FR"
    (step,) = plan_of(tmp_path, text, ("lang=ja", '{"name": "people"}')).steps
    assert step.request["Language"] == "ja-JP"  # extra vars win over play vars
    assert step.output == "reports/2025-01-31/people.jsonl"


def test_an_undefined_variable_names_the_template_line(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        plan_of(tmp_path, """\
            tasks:
              - user_summary: {}
              - site_ids:
                  site_urls: "{{ sitez }}"
            """)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (4, 18)
    assert diagnostic.message == ("tasks[1].site_ids.site_urls: undefined variable 'sitez' "
                                  "(in '{{ sitez }}')")


def test_a_missing_env_var_names_the_var_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("INSIGHTS_RUNNER_TEST_UNSET", raising=False)
    with pytest.raises(PlaybookError) as caught:
        plan_of(tmp_path, """\
            vars:
              token: "{{ env('INSIGHTS_RUNNER_TEST_UNSET') }}"
            tasks:
              - user_summary: {}
                output: "{{ token }}.jsonl"
            """)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.line == 2
    assert "environment variable INSIGHTS_RUNNER_TEST_UNSET is not set" in diagnostic.message


def test_vars_that_refer_to_each_other_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="variables refer to each other: a -> b -> a"):
        plan_of(tmp_path, """\
            vars: {a: "{{ b }}", b: "{{ a }}"}
            tasks:
              - user_summary: {}
                output: "{{ a }}"
            """)


def test_vars_may_use_item(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, """\
        vars:
          target: "sites/{{ item }}.jsonl"
        tasks:
          - site_ids: {site_urls: ["https://c/{{ item }}"]}
            loop: [a, b]
            output: "{{ target }}"
        """)
    assert [s.output for s in plan.steps] == ["sites/a.jsonl", "sites/b.jsonl"]
    assert [s.request["siteUrls"] for s in plan.steps] == [("https://c/a",), ("https://c/b",)]


@pytest.mark.parametrize("source", [
    "access/{{ chunk.number }}.zip",  # the fast substitution
    "{{ item.name }}-{{ chunk.number }}-of-{{ chunk.total }}.jsonl",
    "{{ item.items }}.json",  # a dict attribute: Jinja's answer, not the key's
    "{{ playbook_dir }}/x",  # a function the runner provides
    "{{ chunk.number * 2 }}",  # a lone expression: its native value
    "plain.txt",
])
def test_a_renderer_renders_as_render_does(templar: Templar, source: str) -> None:
    # The compiler renders each Step's output path through renderer(); it must give what
    # render() gives, for every kind of template.
    context = {"chunk": {"number": 3, "total": 4}, "item": {"name": "a", "items": "k"}}
    assert templar.renderer(source)(context) == templar.render(source, context)


def test_a_renderer_raises_what_render_raises(templar: Templar) -> None:
    with pytest.raises(TemplateError, match="missing"):
        templar.renderer("{{ missing.x }}.zip")({"chunk": {"number": 1}})
