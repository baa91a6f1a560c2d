"""Plain-HTTP helpers for the simulator's Graph API (v2) tests: a request to a v2 catalog
operation with the path values percent-encoded into its template, the rest in the query
string (GET, PATCH; lists repeat the key) or a JSON body (POST).  Like ``sim_support``,
independent of runner.client, so the simulator stays the client's oracle."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import openpyxl
import requests

from runner import catalog
from runner.sim import Simulator

V2 = "v2"
REFERENCE_NAME = "insights-graph-api-v2.md"
_TEMPLATE = re.compile(r"{(\w+)}")


def reference_path() -> Path | None:
    repo = Path(__file__).resolve().parent.parent
    for root in (repo.parent, repo.parent.parent):  # beside main, or beside the worktrees
        candidate = root / "shared" / "reference" / REFERENCE_NAME
        if candidate.exists():
            return candidate
    return None


def op(name: str) -> catalog.Operation:
    return catalog.operation(name, V2)


def url(sim: Simulator, name: str, values: dict[str, Any], double: bool = False) -> str:
    """The operation's URL with its template's values percent-encoded (twice if asked)."""
    def fill(match: re.Match) -> str:
        text = quote(str(values[match.group(1)]), safe="")
        return quote(text, safe="") if double else text

    return f"{sim.base_url}/" + _TEMPLATE.sub(fill, op(name).path)


def call(sim: Simulator, name: str, auth: dict[str, str], values: dict[str, Any] | None = None,
         double: bool = False, **kwargs: Any) -> requests.Response:
    """``values`` by the reference's (api) names; path ones go into the template."""
    values = dict(values or {})
    operation = op(name)
    params = set(_TEMPLATE.findall(operation.path))
    target = url(sim, name, {k: v for k, v in values.items() if k in params}, double)
    rest = {k: v for k, v in values.items() if k not in params}
    if operation.method == "POST":
        return requests.post(target, json=rest, headers=auth, timeout=30, **kwargs)
    return requests.request(operation.method, target, params=rest, headers=auth, timeout=30,
                            **kwargs)


def job_path(name: str, job_id: Any) -> str:
    return op(name).path.replace("{jobId}", str(job_id))


def wait(sim: Simulator, auth: dict[str, str], job_id: str, timeout: float = 10) -> dict:
    status_op = next(o for o in catalog.iter_operations(V2) if o.kind == "status")
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(f"{sim.base_url}/{job_path(status_op.name, job_id)}",
                              headers=auth, timeout=10).json()
        if answer["jobStatus"] != 1 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def download(sim: Simulator, auth: dict[str, str], job_id: str,
             headers: dict[str, str] | None = None) -> requests.Response:
    file_op = next(o for o in catalog.iter_operations(V2) if o.kind == "file")
    return requests.get(f"{sim.base_url}/{job_path(file_op.name, job_id)}",
                        headers={**auth, **(headers or {})}, timeout=30)


def workbooks(data: bytes) -> dict[str, list[list[Any]]]:
    """{zip member: rows of its first sheet} of an export file."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            book = openpyxl.load_workbook(io.BytesIO(archive.read(name)), read_only=True)
            out[name] = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
            book.close()
    return out


def run_export(sim: Simulator, auth: dict[str, str], name: str,
               values: dict[str, Any]) -> dict[str, list[list[Any]]]:
    started = call(sim, name, auth, values)
    assert started.status_code == 200, started.text
    job_id = started.json()["jobId"]
    assert wait(sim, auth, job_id)["jobStatus"] == 2
    response = download(sim, auth, job_id)
    assert response.status_code == 200
    return workbooks(response.content)
