"""``validate``, ``plan``, ``schema`` and ``regions``: the commands that never call the API."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from runner import regions as data_centers
from runner.errors import PlaybookError
from runner.steps import Plan, Step, thaw

_EXTRA_VARS = click.option(
    "-e", "--extra-vars", "extra_vars", multiple=True, metavar="VARS",
    help="key=value pairs, a JSON mapping, or @FILE (YAML/JSON); repeatable, later wins. "
    "Extra vars override the playbook's vars.",
)
_INVENTORY = click.option(
    "-i", "--inventory", type=click.Path(dir_okay=False), default=None,
    help="The inventory of tenants (default: inventory.yml beside the playbook, if any).",
)
_LIMIT = click.option(
    "--limit", "-l", metavar="PATTERN", default=None,
    help="Only these inventory tenants or groups (a,b  group  eu-*  !name).",
)
_STATE = click.option(
    "--state", "--state-dir", "state", metavar="DIR|URL", default=None,
    help="Where the run state lives: a folder, or postgresql://user@host/db to share it "
    "between runs and machines (default: $INSIGHTS_RUNNER_STATE, the inventory's state:, "
    "else .insights-runner/ beside the playbook).",
)


def state_location(state: str | None, compiled: Any) -> str | None:
    """``--state``, else the environment, else the inventory's ``state:`` (None: default)."""
    from runner.execute.state.location import choose

    inventory = getattr(compiled, "inventory", None)
    return choose(state, getattr(inventory, "state", None),
                  getattr(inventory, "path", None))


@click.command(help="Check playbooks against the schema and the catalog, expanding their "
               "templates; every problem is reported as FILE:LINE:COL: message. "
               "Exits 2 when any playbook has a problem.")
@click.argument("playbooks", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["text", "github"]),
              default="text", show_default=True,
              help="github: GitHub Actions annotations (::error file=...).")
@_EXTRA_VARS
@_INVENTORY
@_LIMIT
@click.pass_context
def validate(ctx: click.Context, playbooks: Sequence[str], output_format: str,
             extra_vars: Sequence[str], inventory: str | None, limit: str | None) -> None:
    from runner.planfile import compile_targets

    failed = 0
    for path in playbooks:
        try:
            compiled = compile_targets(path, extra_vars, inventory, limit,
                                       expand_connection=False)
        except PlaybookError as exc:
            failed += 1
            for diagnostic in dict.fromkeys(exc.diagnostics):  # tenants repeat a problem
                click.echo(diagnostic.github() if output_format == "github" else str(diagnostic))
            continue
        if output_format == "text":
            steps = sum(len(c.plan.steps) for c in compiled.tenants)
            deferred = sum(len(c.plan.deferred) for c in compiled.tenants)
            tenants = [c.tenant for c in compiled.tenants if c.tenant]
            click.echo(f"{path}: ok ({_count(steps, 'step')}, {deferred} deferred"
                       + (f"; tenants: {', '.join(tenants)}" if tenants else "") + ")")
    if failed:
        if output_format == "text" and len(playbooks) > 1:
            click.echo(f"{failed} of {len(playbooks)} playbooks have problems")
        ctx.exit(2)


@click.command(help="Compile a playbook and show the Steps it would run (no API calls). "
               "--out saves the plan for `run PLAN.json` to apply exactly it.")
@click.argument("playbook", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@_EXTRA_VARS
@_INVENTORY
@_LIMIT
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan here (JSON; no secrets) for `insights-runner run FILE`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing is left to do (every Step done, its file intact), "
              "4 when work is pending, 2 on errors. Reads the state, read-only.")
@_STATE
@click.pass_context
def plan(ctx: click.Context, playbook: str, as_json: bool, extra_vars: Sequence[str],
         inventory: str | None, limit: str | None, out: Path | None, detailed_exitcode: bool,
         state: str | None) -> None:
    from runner.planfile import compile_targets, dump, to_json

    compiled = compile_targets(playbook, extra_vars, inventory, limit)
    if out is not None:
        from runner.execute.outputs import write_atomic

        write_atomic(out, dump(compiled, out).encode("utf-8"), "plan")
    if as_json:
        document = to_json(compiled, out or Path(playbook).with_suffix(".plan.json"))
        if not compiled.inventory:  # the plan's own JSON, as before inventories
            document = document["tenants"][0]["plan"]
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        location = state_location(state, compiled)
        for number, one in enumerate(compiled.tenants):
            if one.tenant is not None:
                click.echo(("\n" if number else "") + f"== tenant {one.tenant}")
            click.echo(render_plan(one.plan))
            click.echo(_estimate(one, location))
        if out is not None:
            click.echo(f"plan saved to {out}; apply it with: insights-runner run {out}")
    if detailed_exitcode:
        ctx.exit(_pending_code(compiled, state_location(state, compiled), quiet=as_json))


def _estimate(one: Any, location: str | None) -> str:
    """The run's duration from the state's history (read-only), or why there is none."""
    from runner.errors import UserError
    from runner.execute.engine import RunOptions, max_exports
    from runner.execute.estimate import deferred_steps, estimate
    from runner.execute.state import StateStore
    from runner.execute.tenants import state_for

    where = state_for(RunOptions(state=location), one.plan.playbook, one.tenant)
    try:
        with StateStore.open(where.location, readonly=True, namespace=where.namespace) as store:
            states = store.steps()
            phases = [list(one.plan.steps), *deferred_steps(one.plan, states)]
            # the state's other Steps too: their operations' medians stand in for new Steps
            job_seconds = store.durations([*states, *(s.id for s in one.plan.steps)])
    except UserError:
        return f"estimate: none: no earlier run in the state ({where.describe()})"
    return estimate(phases, states, job_seconds,
                    slots=max_exports(one.plan.connection)).text()


def _pending_code(compiled: Any, state: str | None, *, quiet: bool) -> int:
    from runner.execute.engine import RunOptions
    from runner.execute.pending import pending_steps
    from runner.execute.tenants import state_for

    options = RunOptions(state=state)
    left = 0
    for one in compiled.tenants:
        where = state_for(options, one.plan.playbook, one.tenant)
        left += pending_steps(one.playbook, one.plan, where, compiled.run_facts)
    if not quiet:
        click.echo("nothing to do: every Step is done and its file intact" if not left
                   else f"{_count(left, 'step')} left to do", err=True)
    return 4 if left else 0


@click.command(help="Print the playbook JSON Schema (for editors and CI); --inventory "
               "prints the inventory's.")
@click.option("--inventory", "inventory", is_flag=True, help="The inventory schema instead.")
def schema(inventory: bool) -> None:
    if inventory:
        from runner.inventory import schema_json as inventory_schema

        click.echo(inventory_schema(), nl=False)
        return
    from runner.schema import schema_json

    click.echo(schema_json(), nl=False)


@click.command(help="List the data centers: the alias a playbook's `region` takes, and URLs.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def regions(as_json: bool) -> None:
    rows = [
        {"region": dc.alias, "name": dc.name, "cloud": dc.cloud, "base_url": dc.base_url,
         "identity_url": dc.identity_url, "api": list(dc.generations)}
        for dc in data_centers.DATA_CENTERS
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(table(["region", "data center", "cloud", "api", "API URL"],
                     [[r["region"], r["name"], r["cloud"], ",".join(r["api"]), r["base_url"]]
                      for r in rows]))


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
    changes = sum(1 for s in result.steps if s.changes_tenant)
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
            [[s.id, s.task_index, f"{s.operation} (CHANGES the tenant)" if s.changes_tenant
              else s.operation, f"{s.chunk_number}/{s.chunk_total}", s.output,
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
        f"{_count(len(result.steps) - exports - changes, 'query', 'queries')}"
        + (f", {_count(changes, 'change')} to the tenant" if changes else "")
        + f"), {len(result.deferred)} deferred, {len(result.skipped)} skipped"
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
