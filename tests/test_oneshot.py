"""One-shot commands (`export NAME`, `query NAME`, `adhoc MODULE -a ...`) through the CLI
against the simulator: every module, the flags' messages, resumption, no secret on disk."""

from __future__ import annotations

import json
import shlex
import signal
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from run_support import (
    PASSWORD_VAR,
    REPO,
    env_for,
    runner,
    start_runner,
    submits,
    work_requests,
)

from runner import catalog

# What an administrator types: the one-shot name of every catalog module.
COMMANDS = {
    "site_permission_export": "export site-permissions",
    "user_access_export": "export user-access",
    "group_access_export": "export group-access",
    "link_export": "export links",
    "activity_export": "export activity",
    "user_summary": "query users",
    "group_summary": "query groups",
    "link_summary": "query links",
    "site_permissions": "query site-permissions",
    "user_permissions": "query user-permissions",
    "detail_records_by_site": "query detail-records-by-site",
    "site_ids": "query site-ids",
    "site_overview": "query site-overview",
    "detail_records": "query detail-records",
}
# The flag of each field the commands below need (one value each).
FLAGS = {
    "site_urls": "--site-url", "emails": "--email", "group_ids": "--group-id",
    "data_sources": "--data-source", "export_option": "--export-option",
    "link_type": "--link-type", "email": "--email", "path": "--path", "site_id": "--site-id",
}


def connection_flags(sim: Any) -> list[str]:
    return ["--base-url", sim.base_url, "--identity-url", sim.identity_url,
            "--client-id", sim.client_id, "--cert", str(sim.credentials.pfx_path),
            "--cert-password-env", PASSWORD_VAR]


def oneshot_env(sim: Any, state: Path) -> dict[str, str]:
    env = env_for(sim)
    env["INSIGHTS_RUNNER_STATE_HOME"] = str(state)
    return env


def samples(sim: Any) -> dict[str, Any]:
    site, user = sim.tenant.site(4), sim.tenant.user(1)
    return {"site_urls": [site.url], "emails": [user.email], "group_ids": [sim.tenant.group(0).id],
            "email": user.email, "path": "", "site_id": site.id}


def required_flags(op: catalog.Operation, values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for field in op.fields:
        if not field.required or field.default is not None:
            continue
        if field.enum is not None:
            out += [FLAGS[field.name], field.enum.names[0]]
        elif field.kind == "string_list":
            for value in values[field.name]:
                out += [FLAGS[field.name], value]
        else:
            out += [FLAGS[field.name], values[field.name]]
    return out


def test_every_catalog_module_has_its_one_shot_command() -> None:
    assert set(COMMANDS) == set(catalog.module_names())
    for kind in ("export", "query"):
        listed = runner(kind, "--help")
        assert listed.returncode == 0
        for name, command in COMMANDS.items():
            if command.startswith(kind):
                assert command.split()[1] in listed.stdout and name in listed.stdout


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_each_one_shot_command_runs_against_the_simulator(module: str, sim, tmp_path: Path
                                                          ) -> None:
    op = catalog.operation(module)
    command = COMMANDS[module].split()
    help_text = runner(*command, "--help")
    assert help_text.returncode == 0
    for field in op.fields:  # --help lists every enum's valid values, from the catalog
        if field.enum is not None:
            assert "|".join(field.enum.names) in help_text.stdout.replace("\n", ""), field.name
    output = tmp_path / ("out" if op.is_export else "records.csv")

    result = runner(*command, *required_flags(op, samples(sim)), *connection_flags(sim),
                    "-o", output, "--json", env=oneshot_env(sim, tmp_path / "state"))

    assert result.returncode == 0, result.stderr + result.stdout
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded" and len(run["steps"]) == 1
    assert [e.operation for e in work_requests(sim)][:1] == [module]
    if op.is_export:
        written = output / f"{COMMANDS[module].split()[1]}.zip"
        assert zipfile.is_zipfile(written)
    else:
        lines = output.read_text(encoding="utf-8").splitlines()
        assert lines[0].split(",")[0] == op.result_fields[0]  # the CSV header
        assert run["steps"][0]["records"] is not None


def readme_commands(section: str) -> list[list[str]]:
    """The insights-runner command lines of the first ```sh block of a README section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(f"## {section}\n", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True)[1:] for line in lines
            if line.startswith("insights-runner ")]


def pointed_at(sim: Any, words: list[str]) -> list[str]:
    """A README command with its connection flags pointed at ``sim``."""
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--region", "--client-id", "--cert", "--cert-password-env"):
            skip = True
        else:
            out.append(word)
    return out if "--simulator" in out else [*out, *connection_flags(sim)]


def test_copy_paste_examples_from_the_readme(sim, tmp_path: Path) -> None:
    env = oneshot_env(sim, tmp_path / "state")
    site = sim.tenant.site(3).url
    (tmp_path / "sites.txt").write_text(f"# the sites to review\n{site}\n\n"
                                        f"{sim.tenant.site(4).url}\n", "utf-8")
    commands = readme_commands("One-shot commands")
    assert len(commands) >= 4

    for words in commands:
        result = runner(*pointed_at(sim, words), env=env, cwd=tmp_path)
        assert result.returncode == 0, (words, result.stderr + result.stdout)

    submitted = [e for e in sim.log.entries if e.operation == "site_permission_export"]
    assert submitted and submitted[0].fields["language"] == "fr-FR"
    assert len(submitted[0].fields["siteUrls"]) == 2
    folder = tmp_path / "reports" / "site-permissions"
    assert list(folder.glob("*.csv")) and list(folder.glob("*.xlsx"))
    assert (tmp_path / "users.csv").read_text("utf-8").startswith("displayName,")
    risky_body = next(e.fields for e in sim.log.entries if e.operation == "detail_records")
    assert {"id": "sensitivityLevel", "values": ["3", "2"]} in risky_body["filters"]
    assert isinstance(json.loads((tmp_path / "overview.json").read_text("utf-8")), list)


def test_mistakes_name_the_flag_exit_2_and_write_nothing(sim, tmp_path: Path) -> None:
    env = oneshot_env(sim, tmp_path / "state")
    out = tmp_path / "out"
    cases = {
        ("export", "site-permissions"): "--site-url or --sites-file",
        ("export", "links", "--link-type", "sideways"): "--link-type",
        ("query", "users", "--page-size", "500"): "--page-size",
        ("export", "activity", "--email", "a@b.c", "--path", "", "--start-time",
         "yesterday"): "--start-time",
        ("query", "site-overview", "--risk", "hot"): "--risk",
    }
    for command, flag in cases.items():
        result = runner(*command, *connection_flags(sim), "-o", out, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert flag in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr and "playbook.yml" not in result.stderr
    no_where = runner("query", "users", "-o", tmp_path / "u.csv", env=env)
    assert no_where.returncode == 2 and "--region" in no_where.stderr
    unset = runner("query", "users", *connection_flags(sim)[:-1], "NOT_SET_ANYWHERE",
                   "-o", tmp_path / "u.csv", env=env)
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE is not set" in unset.stderr
    bad_format = runner("query", "users", "--simulator", "-o", tmp_path / "u.txt", env=env)
    assert bad_format.returncode == 2 and "--format" in bad_format.stderr
    assert not out.exists() and not (tmp_path / "u.csv").exists()
    assert submits(sim) == []


def test_an_interrupted_export_resumes_its_job_when_the_command_is_run_again(
        make_sim, tmp_path: Path) -> None:
    slow = make_sim(job_seconds=4.0)
    env = oneshot_env(slow, tmp_path / "state")
    command = ["export", "links", "--link-type", "anyone", *connection_flags(slow),
               "-o", tmp_path / "out"]
    first = start_runner(*command, env=env)
    deadline = time.monotonic() + 60
    while not submits(slow) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the job id is committed right after the submission's answer
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert first.returncode == 130  # stopped before the job ended: nothing downloaded yet
    assert len(submits(slow)) == 1 and not (tmp_path / "out" / "links.zip").exists()

    again = runner(*command, env=env)

    assert again.returncode == 0, again.stderr
    assert len(submits(slow)) == 1, "the job was submitted again instead of polled"
    assert zipfile.is_zipfile(tmp_path / "out" / "links.zip")
    slow.log.clear()
    third = runner(*command, env=env)
    assert third.returncode == 0 and work_requests(slow) == []  # finished: nothing to do


def test_no_secret_reaches_the_state_folder_and_print_playbook_shows_the_playbook(
        sim, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = oneshot_env(sim, state)
    password = env[PASSWORD_VAR]
    command = ["query", "groups", *connection_flags(sim), "-o", tmp_path / "groups.json"]

    shown = runner(*command, "--print-playbook", env=env)
    assert shown.returncode == 0
    assert f'env("{PASSWORD_VAR}")' in shown.stdout and password not in shown.stdout
    assert not (tmp_path / "groups.json").exists()
    validated = tmp_path / "shown.yml"
    validated.write_text(shown.stdout, encoding="utf-8")
    assert runner("validate", validated, env=env).returncode == 0

    assert runner(*command, env=env).returncode == 0
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "playbook.yml" for p in files)
    for path in files:
        assert password.encode() not in path.read_bytes(), path
    assert json.loads((tmp_path / "groups.json").read_text("utf-8"))


def test_adhoc_takes_ansible_style_arguments(sim, tmp_path: Path) -> None:
    env = oneshot_env(sim, tmp_path / "state")
    user = sim.tenant.user(1).email

    done = runner("adhoc", "user_permissions", "-a", f"emails={user} page_size=20",
                  *connection_flags(sim), "-o", tmp_path / "perms.jsonl", env=env)
    wrong = runner("adhoc", "users", "-a", "page_size=many", *connection_flags(sim), env=env)
    unknown = runner("adhoc", "no_such_module", *connection_flags(sim), env=env)

    assert done.returncode == 0, done.stderr
    body = next(e.fields for e in sim.log.entries if e.operation == "user_permissions")
    assert body["Emails"] == [user] and body["Top"] == 20
    assert (tmp_path / "perms.jsonl").read_text("utf-8").strip()
    assert wrong.returncode == 2 and "-a page_size" in wrong.stderr
    assert unknown.returncode == 2 and "user_summary" in unknown.stderr
    ambiguous = runner("adhoc", "links", "-a", "link_type=anyone", "--simulator", env=env)
    assert ambiguous.returncode == 2 and "link_export and link_summary" in ambiguous.stderr


def test_dash_o_prints_a_querys_records_on_stdout_fresh_each_time(sim, tmp_path: Path) -> None:
    env = oneshot_env(sim, tmp_path / "state")
    command = ["query", "users", *connection_flags(sim), "-o", "-"]

    first = runner(*command, env=env, cwd=tmp_path)
    second = runner(*command, "--format", "csv", env=env, cwd=tmp_path)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    records = [json.loads(line) for line in first.stdout.splitlines()]
    assert records and all("email" in record for record in records)
    rows = second.stdout.splitlines()
    assert rows[0].startswith("displayName,") and len(rows) == len(records) + 1
    assert len([e for e in sim.log.entries if e.operation == "user_summary"]) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # nothing written here
    exported = runner("export", "links", "--link-type", "anyone", "--simulator", "-o", "-",
                      env=env)
    assert exported.returncode == 2 and "-o -" in exported.stderr


def test_a_one_shot_never_replaces_a_playbooks_run_report_in_its_folder(sim, tmp_path: Path
                                                                        ) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    theirs = out / "run-report.json"
    theirs.write_text('{"the playbook\'s": "report"}', encoding="utf-8")
    env = oneshot_env(sim, tmp_path / "state")

    result = runner("query", "users", *connection_flags(sim), "-o", out / "users.jsonl", env=env)

    assert result.returncode == 0, result.stderr
    assert (out / "users.jsonl").exists()
    assert theirs.read_text(encoding="utf-8") == '{"the playbook\'s": "report"}'
