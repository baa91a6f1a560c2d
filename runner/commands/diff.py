"""``insights-runner diff``: what changed between the last two runs of a playbook, or
between two output folders (see ``runner.diff``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.errors import UserError


@click.command(help="Compare the outputs of the last two runs of PLAYBOOK, or two output "
               "folders (diff DIR_A DIR_B): records added, removed and changed, matched by "
               "their identity (link id, user e-mail, object id, site URL...).")
@click.argument("targets", nargs=-1, required=True, metavar="PLAYBOOK | DIR_A DIR_B",
                type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--csv-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write one CSV per output that differs into this folder.")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 1 when something differs, 0 when nothing does (as git diff).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The state directory (default: .insights-runner/ beside the playbook).")
@click.option("--tenant", help="Which inventory tenant's runs to compare.")
@click.option("--summary", "summary_only", is_flag=True,
              help="Only the table, without the records that changed.")
def diff(targets: tuple[Path, ...], as_json: bool, csv_dir: Path | None, exit_code: bool,
         state_dir: Path | None, tenant: str | None, summary_only: bool) -> None:
    from runner.diff import compare, history, render

    before, after = _folders(targets, state_dir, tenant)
    result = compare.Diff(history.describe(before), history.describe(after),
                          compare.compare_outputs(before, history.outputs_of(before),
                                                  after, history.outputs_of(after)))
    if csv_dir is not None:
        written = render.write_csvs(result, csv_dir)
        if not as_json:
            click.echo(f"{len(written)} CSV files in {csv_dir}", err=True)
    if as_json:
        click.echo(render.dumps(result))
    else:  # the text ends with its own newline
        click.echo(render.text(result, details=not summary_only), nl=False)
    if exit_code and result.differs:
        sys.exit(1)


def _folders(targets: tuple[Path, ...], state_dir: Path | None,
             tenant: str | None) -> tuple[Path, Path]:
    from runner.diff import history
    from runner.execute.state import default_state_dir

    if len(targets) == 2:
        for target in targets:
            if not target.is_dir():
                raise UserError(f"{target}: give two output folders, or one playbook")
        return targets[0], targets[1]
    if len(targets) != 1 or targets[0].is_dir():
        raise UserError("give a playbook (its last two runs) or two output folders")
    root = state_dir or default_state_dir(targets[0])
    if tenant is not None:
        known = sorted(p.parent.name for p in root.glob(f"*/{history.HISTORY}"))
        if tenant not in known:
            raise UserError(f"{targets[0]}: no runs of tenant {tenant!r} are kept; tenants "
                            f"with runs: {', '.join(known) or 'none'}")
        root = root / tenant
    elif not history.runs(root):
        tenants = sorted(p.parent.name for p in root.glob(f"*/{history.HISTORY}"))
        if len(tenants) == 1:
            root = root / tenants[0]
        elif tenants:
            raise UserError(f"{targets[0]} runs for several tenants; name one with --tenant: "
                            + ", ".join(tenants))
    snapshots = history.runs(root)
    if len(snapshots) < 2:
        raise UserError(f"{targets[0]}: {len(snapshots)} run(s) kept in "
                        f"{root / history.HISTORY}; diff needs two (run the playbook again, "
                        "or compare two output folders: diff DIR_A DIR_B)")
    return snapshots[-2], snapshots[-1]
