"""``validate``, ``plan``, ``schema`` and ``regions``: the commands that never call the API."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

from runner import regions as data_centers
from runner.errors import PlaybookError
from runner.manifest import load_playbook
from runner.plan import Plan, Step, compile_plan, thaw
from runner.schema import schema_json

_EXTRA_VARS = click.option(
    "-e", "--extra-vars", "extra_vars", multiple=True, metavar="VARS",
    help="key=value pairs, a JSON mapping, or @FILE (YAML/JSON); repeatable, later wins. "
    "Extra vars override the playbook's vars.",
)


@click.command(help="Check playbooks against the schema and the catalog, expanding their "
               "templates; every problem is reported as FILE:LINE:COL: message. "
               "Exits 2 when any playbook has a problem.")
@click.argument("playbooks", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["text", "github"]),
              default="text", show_default=True,
              help="github: GitHub Actions annotations (::error file=...).")
@_EXTRA_VARS
@click.pass_context
def validate(ctx: click.Context, playbooks: Sequence[str], output_format: str,
             extra_vars: Sequence[str]) -> None:
    failed = 0
    for path in playbooks:
        try:
            plan_ = compile_plan(load_playbook(path, extra_vars), expand_connection=False)
        except PlaybookError as exc:
            failed += 1
            for diagnostic in exc.diagnostics:
                click.echo(diagnostic.github() if output_format == "github" else str(diagnostic))
            continue
        if output_format == "text":
            click.echo(f"{path}: ok ({_count(len(plan_.steps), 'step')}, "
                       f"{len(plan_.deferred)} deferred)")
    if failed:
        if output_format == "text" and len(playbooks) > 1:
            click.echo(f"{failed} of {len(playbooks)} playbooks have problems")
        ctx.exit(2)


@click.command(help="Compile a playbook and show the Steps it would run (no API calls).")
@click.argument("playbook", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_EXTRA_VARS
def plan(playbook: str, as_json: bool, extra_vars: Sequence[str]) -> None:
    result = compile_plan(load_playbook(playbook, extra_vars))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_plan(result))


@click.command(help="Print the playbook JSON Schema (for editors and CI).")
def schema() -> None:
    click.echo(schema_json(), nl=False)


@click.command(help="List the data centers: the alias a playbook's `region` takes, and URLs.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def regions(as_json: bool) -> None:
    rows = [
        {"region": dc.alias, "name": dc.name, "cloud": dc.cloud, "base_url": dc.base_url,
         "identity_url": dc.identity_url}
        for dc in data_centers.DATA_CENTERS
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(table(["region", "data center", "cloud", "Web API URL"],
                     [[r["region"], r["name"], r["cloud"], r["base_url"]] for r in rows]))


# ---------------------------------------------------------------------- rendering


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_plan(result: Plan) -> str:
    exports = sum(1 for s in result.steps if s.kind == "export")
    out = [
        f"plan: {result.name}",
        f"playbook: {result.playbook}",
        f"output_dir: {result.output_dir}",
        f"connection: {_connection(result.connection)}",
        "",
    ]
    if result.steps:
        out.append(table(
            ["id", "task", "operation", "chunk", "output", "request"],
            [[s.id, s.task_index, s.operation, f"{s.chunk_number}/{s.chunk_total}", s.output,
              summarise(s)] for s in result.steps],
        ))
        out.append("")
    for deferred in result.deferred:
        out.append(f"deferred: tasks[{deferred.task_index}] ({deferred.task_name}) waits for "
                   f"{', '.join(deferred.needs)}; compiled when that is registered")
    for skipped in result.skipped:
        out.append(f"skipped: tasks[{skipped.task_index}] ({skipped.task_name}): {skipped.reason}")
    out.append(
        f"{_count(len(result.steps), 'step')} ({_count(exports, 'export')}, "
        f"{_count(len(result.steps) - exports, 'query', 'queries')}), "
        f"{len(result.deferred)} deferred, {len(result.skipped)} skipped"
    )
    return "\n".join(out)


def summarise(step: Step) -> str:
    parts = []
    for key, value in thaw(step.request).items():
        if key == "filters":
            value = ";".join(f"{f['id']}={','.join(f['values'])}" for f in value)
        elif isinstance(value, list):
            value = ",".join(map(str, value)) if len(value) <= 2 else f"{len(value)} values"
        parts.append(f"{key}={value}")
    text = " ".join(parts)
    return text if len(text) <= 70 else text[:67] + "..."


def _connection(connection: Mapping[str, Any] | str | None) -> str:
    if connection is None:
        return "(none)"
    if isinstance(connection, str):
        return f"inventory entry {connection!r}"
    return ", ".join(f"{k}={v}" for k, v in thaw(connection).items()
                     if not isinstance(v, dict)) or "(inline)"


def _count(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else plural or word + 's'}"
