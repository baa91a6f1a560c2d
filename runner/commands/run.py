"""``insights-runner run`` and ``insights-runner status``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from runner.commands.playbook import _EXTRA_VARS, _INVENTORY, _LIMIT, _STATE, state_location


def _tags(values: Sequence[str]) -> frozenset[str]:
    return frozenset(t.strip() for value in values for t in value.split(",") if t.strip())


@click.command(help="Run a playbook, or apply a plan saved by `plan --out` (PLAN.json): "
               "resumes where the last run stopped (see --fresh).")
@click.argument("playbook", type=click.Path(dir_okay=False))
@_EXTRA_VARS
@_INVENTORY
@_LIMIT
@click.option("--tags", "-t", multiple=True, help="Only tasks with these tags (comma-separated).")
@click.option("--skip-tags", multiple=True, help="Skip tasks with these tags.")
@click.option("--check", is_flag=True,
              help="Plan and authenticate only: no export job is submitted, no file written.")
@click.option("--fresh", is_flag=True,
              help="Forget the state of earlier runs (files already written are kept).")
@_STATE
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a JUnit XML report here (for CI).")
@click.option("--report", "report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the run report here (default: run-report.json in the output folder).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run report as JSON on stdout (for pipelines).")
@click.option("--quiet", "-q", is_flag=True, help="No progress; only errors and the result.")
@click.option("--state-namespace", hidden=True, default=None)  # one-shot commands' own
def run(playbook: str, extra_vars: Sequence[str], inventory: str | None, limit: str | None,
        tags: Sequence[str], skip_tags: Sequence[str], check: bool, fresh: bool,
        state: str | None, junit: Path | None, as_json: bool, quiet: bool,
        report: Path | None = None, state_dir: Path | None = None,
        state_namespace: str | None = None) -> None:
    from runner import inputs, planmemo
    from runner.errors import Interrupted, UserError
    from runner.execute.engine import RunOptions, check_connection, run_plan
    from runner.execute.tenants import TenantRun, run_one, run_tenants
    from runner.progress import Progress
    from runner.report import report_from_result, report_json, summary_table

    call = planmemo.Call(playbook, tuple(extra_vars), inventory, limit,
                         state if state_dir is None else str(state_dir))
    compiled: Any = None if check else planmemo.load(call)  # the plan as last compiled
    reads = None
    if compiled is None:
        from runner import planfile

        if planfile.is_plan_file(playbook):
            if extra_vars or inventory or limit:
                raise UserError(f"{playbook} is a saved plan: it carries its own -e, -i and "
                                "--limit; make a new plan to change them")
            compiled = planfile.recompile(playbook)
        else:
            with inputs.recording() as reads:
                compiled = planfile.compile_targets(playbook, extra_vars, inventory, limit)
    options = RunOptions(extra_vars=tuple(extra_vars), tags=_tags(tags),
                         skip_tags=_tags(skip_tags), check=check, fresh=fresh,
                         state=state_location(state if state_dir is None else str(state_dir),
                                              compiled),
                         state_namespace=state_namespace,
                         junit=junit, run_facts=compiled.run_facts,
                         report_path=report)
    runs = [TenantRun(c.tenant, c.playbook, c.plan) for c in compiled.tenants]
    if check:
        for one in runs:
            line = check_connection(one.plan, options, one.playbook)
            click.echo(f"{one.tenant}: {line}" if one.tenant else line, err=as_json)
        return
    progress = Progress(0, quiet=quiet or as_json)  # the schedulers say how many Steps
    ending = "stopped"
    try:
        if len(runs) > 1:
            several = run_tenants(runs, options, on_event=progress)
        elif runs[0].tenant is None:
            runs[0].result = run_plan(runs[0].playbook, runs[0].plan, options,
                                      on_event=progress)
        else:
            run_one(runs[0], options, on_event=progress)
        ending = "finished"
        if len(runs) == 1 and runs[0].result is not None and runs[0].result.interrupted:
            ending = "interrupted"
    except Interrupted:
        ending = "interrupted"
        raise
    finally:
        progress.close(ending)
    if reads is not None:  # the next run of the same inputs need not compile
        planmemo.save(call, compiled, reads)
    _keep_history(runs, options)
    if len(runs) > 1:
        _show_tenants(several, as_json=as_json, quiet=quiet)
        code = several.exit_code
    else:
        result = runs[0].result
        assert result is not None
        if as_json:
            # A key a line and a Step a line (as run-report.json): the C encoder's speed
            click.echo(report_json(report_from_result(result)).decode(), nl=False)
        elif not quiet:
            click.echo(summary_table(result))
            click.echo(f"reports in {result.output_dir}; run report: {result.report_path}")
        code = result.exit_code
    if code:
        sys.exit(code)


def _keep_history(runs: Sequence[Any], options: Any) -> None:
    """Snapshot each tenant's outputs for ``diff`` (a failure to do so fails no run)."""
    from runner.diff import history
    from runner.execute.tenants import state_dir_for

    for one in runs:
        if one.result is None:
            continue
        try:
            history.keep(one.result, state_dir_for(options, one.plan.playbook, one.tenant))
        except OSError as exc:
            click.echo(f"warning: this run's outputs were not kept for `diff`: {exc}", err=True)


def _show_tenants(several: Any, *, as_json: bool, quiet: bool) -> None:
    from runner.report import report_from_result, summary_table

    if as_json:
        click.echo(json.dumps(several.report, indent=2, ensure_ascii=False))
    for one in several.runs:
        if one.error is not None:
            click.echo(f"tenant {one.tenant}: {one.error}", err=True)
        elif not (as_json or quiet) and one.result is not None:
            click.echo(f"== tenant {one.tenant}")
            click.echo(summary_table(report_from_result(one.result)))
    if not (as_json or quiet):
        click.echo(f"run report: {several.report_path}")


@click.command(help="Show what the state holds for a playbook (read-only).")
@click.argument("playbook", type=click.Path(dir_okay=False))
@_STATE
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(playbook: str, state: str | None, as_json: bool) -> None:
    from runner.execute.state import DB_NAME, is_url, redacted
    from runner.execute.state.location import choose, for_tenant

    location = choose(state)
    states: dict[str | None, dict[str, Any]]
    if location is not None and is_url(location):
        from runner.execute.state.postgres import namespaces

        where = redacted(location)
        found = [n for n in namespaces(location) if not n.startswith("oneshot/")]
        if "" in found or not found:
            states = {None: _state_of(location, "", where)}
        else:
            states = {name: _state_of(location, name, f"{where} (tenant {name})")
                      for name in found}
    else:
        directory = Path(for_tenant(location, playbook, None).location)
        where = str(directory)
        tenants = sorted(p.parent.name for p in directory.glob(f"*/{DB_NAME}"))
        if (directory / DB_NAME).exists() or not tenants:
            states = {None: _state_of(str(directory), "", where)}
        else:  # an inventory playbook: one state folder per tenant
            states = {name: _state_of(str(directory / name), "", str(directory / name))
                      for name in tenants}
    if as_json:
        if None in states:
            click.echo(json.dumps(states[None], indent=2))
        else:
            click.echo(json.dumps({"state_dir": where, "tenants": states}, indent=2))
        return
    for tenant, one in states.items():
        if tenant is not None:
            click.echo(f"== tenant {tenant}")
        _show_state(one)


def _state_of(location: str, namespace: str, where: str) -> dict[str, Any]:
    from runner.execute.state import StateStore
    from runner.report import iso_time

    with StateStore.open(location, readonly=True, namespace=namespace) as store:
        last = store.last_run()
        counts = {str(k): v for k, v in store.counts().items()}
        steps = store.steps()
    failed = [s for s in steps.values() if s.status == "failed"]
    return {
        "state_dir": where,
        "last_run": None if last is None else {
            "id": last.id, "status": str(last.status), "started": iso_time(last.started),
            "finished": iso_time(last.finished)},
        "counts": counts,
        "failed": [{"id": s.id, "task": s.task_name, "output": s.output, "error": s.error}
                   for s in failed],
    }


def _show_state(state: dict[str, Any]) -> None:
    click.echo(f"state: {state['state_dir']}")
    last = state["last_run"]
    if last is not None:
        click.echo(f"last run: #{last['id']} {last['status']} (started {last['started']}, "
                   f"finished {last['finished'] or '-'})")
    click.echo("steps: " + ", ".join(f"{n} {k}" for k, n in state["counts"].items() if n))
    for s in state["failed"]:
        click.echo(f"  failed  {s['task']}  {s['output']}: {s['error']}")
