"""Loading and validating playbooks: positions, YAML traps, schema messages, normalisation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO

from runner import aliases, catalog, schema, yamlsource
from runner.errors import PlaybookError
from runner.manifest import (
    argument_problem,
    load_playbook,
    output_problem,
    parse_extra_vars,
)


def write(tmp_path: Path, text: str, name: str = "play.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        load_playbook(write(tmp_path, text))
    return [f"{d.line}:{d.column}: {d.message}" for d in caught.value.diagnostics]


# ------------------------------------------------------------------------ YAML


def test_positions_are_recorded_for_keys_and_values() -> None:
    text = "a: 1\nlist:\n  - x\n  - {b: 2}\n"
    document, source, found = yamlsource.load(text, "f.yml")
    assert found == []
    assert document == {"a": 1, "list": ["x", {"b": 2}]}
    assert source.where(("list", 1, "b")) == (4, 9)
    assert source.key_where(("list",)) == (2, 1)
    assert source.where(("list", 0)) == (3, 5)
    assert source.where(("list", 7, "missing")) == source.where(("list",)) == (3, 3)


def test_dates_are_kept_as_written_and_merge_keys_work() -> None:
    text = "base: &b {x: 1, y: 2}\nwhen: 2025-01-31\nm:\n  <<: *b\n  y: 3\n"
    document, _, found = yamlsource.load(text, "f.yml")
    assert found == []
    assert document["when"] == "2025-01-31"
    assert document["m"] == {"x": 1, "y": 3}


def test_duplicate_keys_tabs_empty_and_syntax(tmp_path: Path) -> None:
    assert problems(tmp_path, "tasks: []\ntasks: []\n") == [
        "2:1: tasks: duplicate key 'tasks' (first written on line 1)"]
    assert any("tab character in indentation" in p
               for p in problems(tmp_path, "tasks:\n\t- user_summary: {}\n"))
    assert problems(tmp_path, "# nothing here\n") == [
        "1:1: the playbook is empty; it needs at least 'tasks:' with one task"]
    (found,) = problems(tmp_path, "tasks: [user_summary: {}\n")
    assert found.startswith("2:1: YAML syntax error")


def test_a_missing_file_is_a_playbook_error(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="no such playbook file"):
        load_playbook(tmp_path / "nope.yml")


# ---------------------------------------------------------------------- schema


def test_the_committed_schema_is_the_generated_one() -> None:
    committed = (REPO / "schemas" / "playbook.schema.json").read_text(encoding="utf-8")
    assert committed == schema.schema_json(), (
        "schemas/playbook.schema.json is stale: run "
        "`insights-runner schema > schemas/playbook.schema.json`")


def test_the_schema_is_valid_draft_2020_12_and_accepts_the_demo() -> None:
    document = schema.build_schema()
    jsonschema.Draft202012Validator.check_schema(document)
    demo, _, found = yamlsource.load((REPO / "playbooks" / "demo.yml").read_text(), "demo")
    assert found == []
    assert list(jsonschema.Draft202012Validator(document).iter_errors(demo)) == []


def test_the_schema_names_every_module_and_field() -> None:
    task = schema.build_schema()["$defs"]["task"]["properties"]
    for op in catalog.modules():
        assert op.name in task
        args = schema.build_schema()["$defs"][schema.args_def(op.name)]["properties"]
        for field in op.fields:
            assert field.name in args and field.api in args


def test_every_problem_is_reported_at_once_with_line_and_field(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
        version: 1
        tasks:
          - site_permision_export: {site_urls: []}
          - user_summary: {page_size: 500}
          - user_access_export:
              emails: [a@b.c]
              data_sources: [teams]
              export_option: everything
        """)
    assert found == [
        "3:5: tasks[0].site_permision_export: unknown module 'site_permision_export'; "
        "did you mean 'site_permission_export'?",
        "4:31: tasks[1].user_summary.page_size: must be at most 100 (the API's cap), not 500",
        "8:22: tasks[2].user_access_export.export_option: 'everything' is not a valid export "
        "option; choose one of: summary_and_site_level (1), summary_and_all_objects (2), "
        "summary_only (3)",
    ]


def test_api_field_names_are_accepted_in_any_case(tmp_path: Path) -> None:
    book = load_playbook(write(tmp_path, """\
        tasks:
          - user_access_export:
              EMAILS: [a@contoso.com]
              dataSources: [Microsoft Teams]
              exportoptiontype: 3
          - user_summary:
          - detail_records:
              filters: {SensitivityLevel: [3], module: [teams]}
        """))
    assert dict(book.tasks[0].args) == {"emails": ["a@contoso.com"],
                                        "data_sources": ["Microsoft Teams"], "export_option": 3}
    assert dict(book.tasks[1].args) == {}
    assert book.tasks[2].args["filters"] == {"sensitivity": [3], "module": ["teams"]}


def test_two_spellings_of_one_field_are_a_problem(tmp_path: Path) -> None:
    found = problems(tmp_path, """\
        tasks:
          - site_ids: {site_urls: [a], siteUrls: [b]}
        """)
    assert found == ["2:32: tasks[0].site_ids.siteUrls: 'siteUrls' and 'site_urls' both set "
                     "site_urls"]


def test_task_defaults(tmp_path: Path) -> None:
    book = load_playbook(write(tmp_path, """\
        tasks:
          - site_ids: {site_urls: [a]}
          - site_permission_export: {site_urls: [a]}
            tags: one
            retries: 0
            ignore_errors: true
        """))
    query, export = book.tasks
    assert (query.format, query.retries, query.tags, query.ignore_errors) == ("jsonl", 3, (), False)
    assert (export.format, export.retries, export.tags, export.ignore_errors) == (
        "zip", 0, ("one",), True)
    assert book.name == "play" and book.directory == tmp_path.resolve()


def test_register_needs_are_found_through_vars(tmp_path: Path) -> None:
    book = load_playbook(write(tmp_path, """\
        vars:
          active: "{{ users | selectattr('userStatus', 'eq', 'Active') | list }}"
          emails: "{{ active | map(attribute='email') | list }}"
        tasks:
          - user_summary: {}
            register: users
          - user_access_export:
              emails: "{{ emails }}"
              data_sources: [teams]
              export_option: 1
        """))
    assert book.tasks[0].needs == frozenset()
    assert book.tasks[1].needs == {"users"}


# ------------------------------------------------------------------ value rules


def test_output_paths_are_normalised_and_kept_inside() -> None:
    assert output_problem("a/./b//c.zip") == ("a/b/c.zip", None)
    assert output_problem("a\\b.zip") == ("a/b.zip", None)
    assert output_problem("/etc/x")[1] == "'/etc/x' is absolute; outputs are relative to output_dir"
    assert output_problem("C:/x")[1].endswith("is absolute; outputs are relative to output_dir")
    assert output_problem("a/../../x")[1] == "'a/../../x' leaves output_dir"
    assert output_problem("a/")[1] == "'a/' names a directory; it must name a file"
    assert output_problem("")[1] == "must name a file"


def test_argument_problem_follows_the_schema() -> None:
    op = catalog.operation("user_access_export")
    emails, sources = op.field("emails"), op.field("data_sources")
    option = op.field("export_option")
    assert argument_problem(op, emails, ["a", "b"]) is None
    assert argument_problem(op, emails, []) == "must not be empty"
    assert argument_problem(op, emails, "a") == "must be a list, not the string 'a'"
    assert argument_problem(op, emails, ["a", 3]) == "item 1 must be a string, not the number 3"
    assert argument_problem(op, sources, ["teams", "Microsoft Teams"]) is None
    assert "not a valid data source" in argument_problem(op, sources, ["slack"])
    assert argument_problem(op, option, 2) is None
    assert argument_problem(op, option, True) is not None
    page = catalog.operation("user_summary").field("page_size")
    assert argument_problem(op, page, 100) is None
    assert argument_problem(op, page, "50") is None
    assert "at most 100" in argument_problem(op, page, 101)
    records = catalog.operation("detail_records")
    filters = records.field("filters")
    assert argument_problem(records, filters, {"sensitivity": ["high", 2]}) is None
    assert argument_problem(records, filters, [{"id": "riskLevel", "values": ["3"]}]) is None
    assert "unknown filter" in argument_problem(records, filters, {"colour": ["red"]})


def test_extra_vars_forms(tmp_path: Path) -> None:
    extra_file = tmp_path / "extra.yml"
    extra_file.write_text("b: [1, 2]\nc: {d: 3}\n")
    values, found = parse_extra_vars(["a=1 x='two words'", '{"b": "json"}', f"@{extra_file}"])
    assert found == []
    assert values == {"a": "1", "x": "two words", "b": [1, 2], "c": {"d": 3}}
    _, found = parse_extra_vars(["novalue"])
    assert "needs the form key=value" in found[0].message
    _, found = parse_extra_vars(["run=1"])
    assert "reserved" in found[0].message
    _, found = parse_extra_vars(["@/nonexistent/file.yml"])
    assert "cannot read extra vars" in found[0].message


def test_pure_stages_import_no_network_or_database() -> None:
    code = ("import sys, runner.manifest, runner.plan, runner.templating; "
            "bad = {'requests', 'sqlite3', 'socket', 'urllib3', 'http.client'} & set(sys.modules);"
            "print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_the_readme_lists_every_module_as_the_catalog_does() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    begin = readme.index("<!-- modules:begin")
    block = readme[readme.index("\n", begin) + 1: readme.index("<!-- modules:end -->")]
    assert block == schema.modules_markdown(), (
        "README's Modules section is stale: paste runner.schema.modules_markdown() into it")


def test_every_case_style_of_the_api_names_is_accepted(tmp_path: Path) -> None:
    book = load_playbook(write(tmp_path, """\
        tasks:
          - link_export: {export_link_type: 128}
          - link_export: {ExportLinkType: anyone, START-TIME: 2025-01-01}
          - detail_records:
              filters: {risk_level: [3], exposure_level: [3], object_type: [2],
                        SENSITIVITY_LEVEL: [high]}
          - user_access_export:
              emails: [a@contoso.com]
              data_sources: [teams]
              export_option_type: 3
        """))
    assert dict(book.tasks[0].args) == {"link_type": 128}
    assert dict(book.tasks[1].args) == {"link_type": "anyone", "start_time": "2025-01-01"}
    assert book.tasks[2].args["filters"] == {"risk": [3], "exposure": [3], "object_type": [2],
                                             "sensitivity": ["high"]}
    assert book.tasks[3].args["export_option"] == 3


def test_the_schema_lists_the_snake_case_of_api_names_for_editors() -> None:
    validator = jsonschema.Draft202012Validator(schema.build_schema())
    good = {"tasks": [{"link_export": {"export_link_type": "anyone"}},
                      {"detail_records": {"filters": {"risk_level": [3], "exposure_level": [3]}}},
                      {"activity_export": {"email": "a@contoso.com"}}]}
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({"tasks": [{"activity_export": {}}]})) != []


def test_a_name_that_spells_two_fields_is_refused() -> None:
    fields = (catalog.Field("site_id", "siteRef", "string"),
              catalog.Field("site_ref", "siteId", "string"))
    with pytest.raises(aliases.AmbiguousName) as caught:
        aliases.resolve(fields, "SITE_ID")
    assert str(caught.value) == ("'SITE_ID' could mean 'site_id' or 'site_ref'; "
                                 "write one of those names")
    assert aliases.resolve(fields, "site_id").name == "site_id"  # exact spelling wins
    with pytest.raises(KeyError):
        aliases.resolve(fields, "colour")


def test_activity_export_takes_an_email_or_a_path_alone(tmp_path: Path) -> None:
    book = load_playbook(write(tmp_path, """\
        tasks:
          - activity_export: {email: user@contoso.com}
          - activity_export: {path: "https://contoso.sharepoint.com/sites/a/b.docx"}
        """))
    assert dict(book.tasks[0].args) == {"email": "user@contoso.com", "path": ""}
    assert dict(book.tasks[1].args) == {"path": "https://contoso.sharepoint.com/sites/a/b.docx",
                                        "email": ""}


def test_activity_export_templates_that_give_two_empties_are_refused(tmp_path: Path) -> None:
    from runner.plan import compile_plan

    book = load_playbook(write(tmp_path, """\
        vars: {who: ""}
        tasks:
          - activity_export: {email: "{{ who }}"}
        """))
    with pytest.raises(PlaybookError, match="needs 'email' or 'path'.*after expanding"):
        compile_plan(book)


def test_filters_a_template_gives_take_every_case_style_too(tmp_path: Path) -> None:
    from runner.plan import compile_plan

    book = load_playbook(write(tmp_path, """\
        vars: {f: {risk_level: [high], EXPOSURE_LEVEL: [3]}}
        tasks:
          - detail_records: {filters: "{{ f }}"}
        """))
    (step,) = compile_plan(book).steps
    assert [(f["id"], list(f["values"])) for f in step.request["filters"]] == [
        ("exposureLevel", ["3"]), ("riskLevel", ["3"])]
