"""``init``: starter files that validate as written, and never an overwrite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from run_support import runner

from runner.inventory import schema_json as inventory_schema
from runner.schema import schema_json as playbook_schema


def test_init_writes_a_starter_that_validates_plans_and_runs_against_the_demo_tenant(
        tmp_path: Path) -> None:
    project = tmp_path / "reports-repo"

    made = runner("init", project)

    assert made.returncode == 0, made.stderr
    playbook = project / "playbook.yml"
    inventory = project / "inventory.yml"
    for path, schema_name in ((playbook, "playbook"), (inventory, "inventory")):
        first = path.read_text("utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema=schemas/{schema_name}.schema.json"
        assert (project / "schemas" / f"{schema_name}.schema.json").is_file()
    assert (project / "schemas" / "playbook.schema.json").read_text("utf-8") == \
        playbook_schema()
    assert (project / "schemas" / "inventory.schema.json").read_text("utf-8") == \
        inventory_schema()

    text = inventory.read_text("utf-8")
    tenants = yaml.safe_load(text)["tenants"]
    assert {t["connection"]["api"] for t in tenants.values()} == {"v2"}  # the Graph API
    assert "api: v1, the default when api is left out" in text  # ...said in a comment

    checked = runner("validate", playbook)

    assert checked.returncode == 0, checked.stdout
    assert "tenants: demo, contoso" in checked.stdout
    env = {**os.environ, "NO_COLOR": "1"}
    ran = runner("run", playbook, "--limit", "demo", "--json", env=env, cwd=project)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "succeeded"
    assert (project / "reports" / "demo" / "users.csv").is_file()
    assert runner("plan", playbook, "--limit", "demo", "--detailed-exitcode",
                  env=env).returncode == 0


def test_init_never_overwrites_and_writes_nothing_when_one_file_exists(tmp_path: Path) -> None:
    (tmp_path / "inventory.yml").write_text("# mine\n", encoding="utf-8")

    refused = runner("init", tmp_path)

    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"error: {tmp_path / 'inventory.yml'} already exists; "
                                      "init writes only new files (nothing was written)")
    assert (tmp_path / "inventory.yml").read_text("utf-8") == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.yml"]
