"""Helpers for the execution tests: playbooks wired to a running simulator, the CLI as a
subprocess, and readers for what a run leaves behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PASSWORD_VAR = "SIM_PFX_PASSWORD"


MONTHS = [f"2025-{month:02d}-01T00:00:00" for month in range(1, 13)]


def twelve_link_exports(retries: int = 0, output: str = "links/{{ item[:7] }}.zip"
                        ) -> list[dict[str, Any]]:
    """One task, twelve export Steps: anyone links created since each month of 2025."""
    return [{
        "name": "Links by month",
        "link_export": {"link_type": "anyone", "start_time": "{{ item }}"},
        "loop": MONTHS,
        "output": output,
        "retries": retries,
    }]


def connection_for(sim: Any) -> dict[str, Any]:
    """An inline connection to ``sim`` as a user would write it: password from the env."""
    return {
        "base_url": sim.base_url,
        "identity_url": sim.identity_url,
        "client_id": sim.client_id,
        "certificate": {"path": str(sim.credentials.pfx_path),
                        "password": "{{ env('" + PASSWORD_VAR + "') }}"},
    }


def env_for(sim: Any) -> dict[str, str]:
    env = dict(os.environ)
    env[PASSWORD_VAR] = sim.credentials.pfx_password
    env["NO_COLOR"] = "1"
    return env


def write_playbook(directory: Path, sim: Any, tasks: list[dict[str, Any]],
                   **top: Any) -> Path:
    document = {"version": 1, "name": "test", "connection": connection_for(sim),
                "output_dir": "reports", "tasks": tasks, **top}
    path = directory / "playbook.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def demo_against(sim: Any, directory: Path) -> Path:
    """playbooks/demo.yml with its connection pointed at ``sim`` and outputs in ``directory``."""
    document = yaml.safe_load((REPO / "playbooks" / "demo.yml").read_text(encoding="utf-8"))
    document["connection"] = connection_for(sim)
    document["output_dir"] = "reports"
    path = directory / "demo.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def runner(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
           timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runner", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def start_runner(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "runner", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def report(playbook: Path) -> dict[str, Any]:
    return json.loads((playbook.parent / "reports" / "run-report.json").read_text("utf-8"))


def submits(sim: Any) -> list[Any]:
    """Export submissions the simulator accepted."""
    from runner import catalog

    exports = {op.name for op in catalog.modules() if op.is_export}
    return [e for e in sim.log.entries if e.operation in exports and e.status == 200]


def work_requests(sim: Any) -> list[Any]:
    """Every export or query request the simulator answered (not status, file or token)."""
    from runner import catalog

    names = {op.name for op in catalog.modules()}
    return [e for e in sim.log.entries if e.operation in names]
