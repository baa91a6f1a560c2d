"""Inventories: two tenants against two simulators, --limit, and mistakes in inventory.yml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from run_support import connection_for, runner, work_requests

from runner.inventory import schema_json

REPO = Path(__file__).resolve().parent.parent

TASKS = [
    {"name": "Users", "user_summary": {}, "output": "{{ tenant }}/users.jsonl"},
    {"name": "Links", "link_export": {"link_type": "anyone"},
     "output": "{{ tenant }}/links.zip"},
]


def tenant_connection(sim: Any, variable: str) -> dict[str, Any]:
    connection = connection_for(sim)
    connection["certificate"]["password"] = "{{ env('" + variable + "') }}"
    return connection


def two_tenants(directory: Path, first: Any, second: Any,
                tasks: list[dict[str, Any]] = TASKS) -> Path:
    """inventory.yml (contoso -> first, fabrikam -> second) and a playbook beside it."""
    inventory = {
        "version": 1,
        "vars": {"label": "from the inventory"},
        "tenants": {
            "contoso": {"connection": tenant_connection(first, "CONTOSO_PFX_PASSWORD")},
            "fabrikam": {"connection": tenant_connection(second, "FABRIKAM_PFX_PASSWORD"),
                         "vars": {"label": "fabrikam's own"}},
        },
        "groups": {"customers": ["contoso", "fabrikam"]},
    }
    (directory / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False),
                                             encoding="utf-8")
    playbook = {"version": 1, "name": "per tenant", "hosts": "customers",
                "output_dir": "reports", "tasks": tasks}
    path = directory / "playbook.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False), encoding="utf-8")
    return path


def closed_port_url() -> str:
    """A loopback URL nothing listens on: the service is unreachable."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/insights/"


def env_for_two(first: Any, second: Any) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["CONTOSO_PFX_PASSWORD"] = first.credentials.pfx_password
    env["FABRIKAM_PFX_PASSWORD"] = second.credentials.pfx_password
    env["NO_COLOR"] = "1"
    return env


def test_two_tenants_each_against_its_own_simulator_and_limit_narrows(sim, make_sim,
                                                                       tmp_path: Path) -> None:
    second = make_sim(seed=8)
    playbook = two_tenants(tmp_path, sim, second)
    env = env_for_two(sim, second)
    reports = tmp_path / "reports"

    limited = runner("run", playbook, "--limit", "fabrikam", env=env)

    assert limited.returncode == 0, limited.stderr + limited.stdout
    assert not work_requests(sim), "--limit fabrikam must not touch contoso's service"
    asked_of_fabrikam = len(work_requests(second))
    assert {e.operation for e in work_requests(second)} == {"user_summary", "link_export"}
    assert (reports / "fabrikam" / "users.jsonl").is_file()
    assert not (reports / "contoso").exists()
    assert (tmp_path / ".insights-runner" / "fabrikam" / "state.db").is_file()

    both = runner("run", playbook, "--json", env=env)

    assert both.returncode == 0, both.stderr
    report = json.loads(both.stdout)
    assert report == json.loads((reports / "run-report.json").read_text("utf-8"))
    assert set(report["tenants"]) == {"contoso", "fabrikam"}
    assert all(t["status"] == "succeeded" for t in report["tenants"].values())
    by_tenant = {(s["tenant"], s["task"]): s for s in report["steps"]}
    assert len(by_tenant) == 4
    assert by_tenant[("fabrikam", "Users")]["reused"], "fabrikam's state is its own: resumed"
    assert not by_tenant[("contoso", "Users")]["reused"]
    assert len(work_requests(second)) == asked_of_fabrikam, "nothing asked of fabrikam again"
    assert {e.operation for e in work_requests(sim)} == {"user_summary", "link_export"}
    for step in report["steps"]:
        assert (reports / step["output"]).is_file()
        assert step["output"].startswith(step["tenant"] + "/")
    # two seeds, two tenants: each file holds its own tenant's users
    contoso = (reports / "contoso" / "users.jsonl").read_bytes()
    assert contoso != (reports / "fabrikam" / "users.jsonl").read_bytes()
    assert (tmp_path / ".insights-runner" / "contoso" / "state.db").is_file()


def test_one_tenant_down_does_not_stop_the_other_and_the_exit_code_is_the_worst(
        sim, make_sim, tmp_path: Path) -> None:
    second = make_sim(seed=8)
    playbook = two_tenants(tmp_path, sim, second, TASKS[:1])
    env = env_for_two(sim, second)
    inventory = yaml.safe_load((tmp_path / "inventory.yml").read_text("utf-8"))
    inventory["tenants"]["fabrikam"]["connection"]["base_url"] = closed_port_url()
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")

    result = runner("run", playbook, env=env)

    assert result.returncode == 3, result.stderr + result.stdout
    assert "tenant fabrikam:" in result.stderr
    assert (tmp_path / "reports" / "contoso" / "users.jsonl").is_file()
    report = json.loads((tmp_path / "reports" / "run-report.json").read_text("utf-8"))
    assert report["tenants"]["contoso"]["status"] == "succeeded"
    assert report["tenants"]["fabrikam"]["status"] == "failed"
    assert report["status"] == "failed"
    stopped = [s for s in report["steps"] if s["tenant"] == "fabrikam"]
    assert [(s["status"], s["operation"]) for s in stopped] == [("failed", "connection")]
    assert stopped[0]["error"] == report["tenants"]["fabrikam"]["error"]


def test_connection_names_one_tenant_and_tenant_is_a_template_variable(sim, tmp_path: Path
                                                                        ) -> None:
    (tmp_path / "tenants.yml").write_text(yaml.safe_dump({"tenants": {"solo": {
        "connection": connection_for(sim), "vars": {"who": "solo's"}}}}), encoding="utf-8")
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump({
        "connection": "solo", "output_dir": "out/{{ tenant }}",
        "tasks": [{"user_summary": {}, "output": "{{ who | replace(\"'\", '') }}.jsonl"}]}),
        encoding="utf-8")
    from run_support import env_for

    result = runner("run", playbook, "-i", tmp_path / "tenants.yml", env=env_for(sim))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "solo" / "solos.jsonl").is_file()
    assert (tmp_path / "out" / "solo" / "run-report.json").is_file()


def test_several_tenants_writing_one_file_is_a_validation_error(sim, make_sim,
                                                                tmp_path: Path) -> None:
    tasks = [{"name": "Users", "user_summary": {}, "output": "users.jsonl"},
             {"name": "Groups", "group_summary": {}}]
    playbook = two_tenants(tmp_path, sim, sim, tasks)

    result = runner("validate", playbook)

    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{playbook}:8:11: tasks[0].output: this playbook runs for 2 "
                               "tenants (contoso, fabrikam)"), result.stdout
    assert "{{ tenant }}" in lines[0]
    assert lines[1].startswith(f"{playbook}:10:3: tasks[1]: "), lines
    assert "Traceback" not in result.stderr
    # one tenant at a time is fine
    assert runner("validate", playbook, "--limit", "contoso").returncode == 0


def test_inventory_mistakes_point_into_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "inventory.yml").write_text(
        "tenants:\n"
        "  contoso:\n"
        "    connection:\n"
        "      regoin: us\n"
        "  bad/name:\n"
        "    connection: {region: us}\n"
        "  nocon:\n"
        "    vars: {tenant: x}\n"
        "groups:\n"
        "  eu: [contoso, nobody]\n", encoding="utf-8")
    playbook = tmp_path / "playbook.yml"
    playbook.write_text("hosts: contoso\ntasks:\n  - user_summary: {}\n", encoding="utf-8")

    result = runner("validate", playbook)

    inventory = tmp_path / "inventory.yml"
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{inventory}:4:7: tenants.contoso.connection.regoin: unknown connection setting "
        "'regoin'; did you mean 'region'?",
        f"{inventory}:5:3: tenants.bad/name: 'bad/name' is not a valid name: use letters, "
        "digits, _ . and -, starting with a letter or digit",
        f"{inventory}:7:3: tenants.nocon: missing 'connection': how to reach this tenant "
        "(region, client_id, certificate...)",
        f"{inventory}:8:12: tenants.nocon.vars.tenant: 'tenant' is reserved; the runner sets "
        "it to each tenant's name for templates",
        f"{inventory}:10:17: groups.eu[1]: no tenant or group named 'nobody'",
    ], result.stdout


def test_hosts_without_inventory_unknown_hosts_and_unknown_limit(tmp_path: Path) -> None:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text("hosts: contoso\ntasks:\n  - user_summary: {}\n", encoding="utf-8")

    lonely = runner("validate", playbook)

    assert lonely.returncode == 2
    assert lonely.stdout.startswith(f"{playbook}:1:8: hosts: 'contoso' names inventory "
                                    "tenants, but there is no inventory")
    (tmp_path / "inventory.yml").write_text(
        "tenants:\n  contoso:\n    connection: {simulator: true}\n", encoding="utf-8")
    playbook.write_text("hosts: contsoo\ntasks:\n  - user_summary: {}\n", encoding="utf-8")

    typo = runner("plan", playbook)

    assert typo.returncode == 2
    assert typo.stderr.strip() == (f"{playbook}:1:8: hosts: no tenant or group named 'contsoo' "
                                   f"in {tmp_path / 'inventory.yml'}; did you mean 'contoso'?")
    playbook.write_text("hosts: all\ntasks:\n  - user_summary: {}\n", encoding="utf-8")

    limit = runner("plan", playbook, "--limit", "fabrikam")

    assert limit.returncode == 2
    assert "--limit: no tenant or group named 'fabrikam'" in limit.stderr
    assert "Traceback" not in limit.stderr


def test_committed_inventory_schema_is_the_generated_one() -> None:
    committed = (REPO / "schemas" / "inventory.schema.json").read_text(encoding="utf-8")
    assert committed == schema_json(), \
        "regenerate: python -m runner schema --inventory > schemas/inventory.schema.json"


def test_auth_check_takes_one_inventory_tenant(sim, make_sim, tmp_path: Path) -> None:
    second = make_sim(seed=8)
    playbook = two_tenants(tmp_path, sim, second)
    env = env_for_two(sim, second)

    both = runner("auth", "check", playbook, env=env)
    one = runner("auth", "check", playbook, "--limit", "fabrikam", "--json", env=env)

    assert both.returncode == 2
    assert "targets 2 tenants (contoso, fabrikam); auth check checks one" in both.stderr
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["base_url"].rstrip("/") == second.base_url.rstrip("/")


def test_status_shows_each_tenant_state(sim, make_sim, tmp_path: Path) -> None:
    second = make_sim(seed=8)
    playbook = two_tenants(tmp_path, sim, second, TASKS[:1])
    assert runner("run", playbook, env=env_for_two(sim, second)).returncode == 0

    result = runner("status", playbook, "--json")

    assert result.returncode == 0, result.stderr
    tenants = json.loads(result.stdout)["tenants"]
    assert {name: t["counts"]["succeeded"] for name, t in tenants.items()} == \
        {"contoso": 1, "fabrikam": 1}


def readme_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Version-controlled definitions")
    return text[start:text.index("\n## ", start + 1)]


def test_readme_examples_validate_and_run(tmp_path: Path) -> None:
    import os
    import re
    import shlex

    section = readme_section()
    for block in re.findall(r"```yaml\n(.*?)```", section, re.S):
        name = block.splitlines()[0].removeprefix("# ").strip()
        assert name in ("inventory.yml", "playbook.yml"), name
        (tmp_path / name).write_text(block, encoding="utf-8")
    commands = re.search(r"```sh\n(.*?)```", section, re.S)
    assert commands is not None
    env = {**os.environ, "NO_COLOR": "1"}
    ran = 0
    for line in commands.group(1).splitlines():
        command = line.split("||")[0].split("  #")[0].strip()
        if not command or "customers" in command:  # needs the real tenants' credentials
            continue
        words = shlex.split(command)
        assert words[0] == "insights-runner"
        result = runner(*words[1:], cwd=tmp_path, env=env)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran += 1
    assert ran >= 6
    assert (tmp_path / "reports" / "demo" / "users.csv").is_file()
