"""``insights-runner run`` and ``insights-runner status``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from runner.commands.playbook import _EXTRA_VARS


def _tags(values: Sequence[str]) -> frozenset[str]:
    return frozenset(t.strip() for value in values for t in value.split(",") if t.strip())


@click.command(help="Run a playbook: resumes where the last run stopped (see --fresh).")
@click.argument("playbook", type=click.Path(dir_okay=False))
@_EXTRA_VARS
@click.option("--tags", "-t", multiple=True, help="Only tasks with these tags (comma-separated).")
@click.option("--skip-tags", multiple=True, help="Skip tasks with these tags.")
@click.option("--check", is_flag=True,
              help="Plan and authenticate only: no export job is submitted, no file written.")
@click.option("--fresh", is_flag=True,
              help="Forget the state of earlier runs (files already written are kept).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the run state lives (default: .insights-runner/ beside the playbook).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a JUnit XML report here (for CI).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run report as JSON on stdout (for pipelines).")
@click.option("--quiet", "-q", is_flag=True, help="No progress; only errors and the result.")
def run(playbook: str, extra_vars: Sequence[str], tags: Sequence[str], skip_tags: Sequence[str],
        check: bool, fresh: bool, state_dir: Path | None, junit: Path | None, as_json: bool,
        quiet: bool) -> None:
    from runner.execute.engine import RunOptions, check_connection, run_plan
    from runner.manifest import load_playbook
    from runner.plan import compile_plan
    from runner.progress import Progress
    from runner.report import report_from_result, summary_table

    loaded = load_playbook(playbook, extra_vars)
    plan = compile_plan(loaded)
    options = RunOptions(extra_vars=tuple(extra_vars), tags=_tags(tags),
                         skip_tags=_tags(skip_tags), check=check, fresh=fresh,
                         state_dir=state_dir, junit=junit)
    if check:
        click.echo(check_connection(plan, options, loaded), err=as_json)
        return
    progress = Progress(len(plan.steps), quiet=quiet or as_json)
    try:
        result = run_plan(loaded, plan, options, on_event=progress)
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(report_from_result(result), indent=2, ensure_ascii=False))
    elif not quiet:
        click.echo(summary_table(result))
        click.echo(f"reports in {result.output_dir}; run report: {result.report_path}")
    if result.exit_code:
        sys.exit(result.exit_code)


@click.command(help="Show what the state directory holds for a playbook (read-only).")
@click.argument("playbook", type=click.Path(dir_okay=False))
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The state directory (default: .insights-runner/ beside the playbook).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(playbook: str, state_dir: Path | None, as_json: bool) -> None:
    from runner.execute.state import StateStore, default_state_dir
    from runner.report import iso_time

    directory = state_dir or default_state_dir(playbook)
    with StateStore.open(directory, readonly=True) as store:
        last = store.last_run()
        counts = {str(k): v for k, v in store.counts().items()}
        steps = store.steps()
    failed = [s for s in steps.values() if s.status == "failed"]
    if as_json:
        click.echo(json.dumps({
            "state_dir": str(directory),
            "last_run": None if last is None else {
                "id": last.id, "status": str(last.status), "started": iso_time(last.started),
                "finished": iso_time(last.finished)},
            "counts": counts,
            "failed": [{"id": s.id, "task": s.task_name, "output": s.output, "error": s.error}
                       for s in failed],
        }, indent=2))
        return
    click.echo(f"state: {directory}")
    if last is not None:
        click.echo(f"last run: #{last.id} {last.status} (started {iso_time(last.started)}, "
                   f"finished {iso_time(last.finished) or '-'})")
    click.echo("steps: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    for s in failed:
        click.echo(f"  failed  {s.task_name}  {s.output}: {s.error}")
