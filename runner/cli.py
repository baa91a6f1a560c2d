"""The command line: a click group whose commands live in ``runner.commands.*``.

Commands are imported lazily so that ``--help`` and ``validate`` start fast.  This module
owns how errors are shown: a ``RunnerError`` prints its message (no traceback) and exits
with its own code; anything else is a bug, reported with a pointer to the debug log.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import tempfile
import traceback

import click

from runner import __version__
from runner.errors import RunnerError

# command name -> "module:attribute" under runner.commands
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("runner.commands.playbook", "validate"),
    "plan": ("runner.commands.playbook", "plan"),
    "schema": ("runner.commands.playbook", "schema"),
    "regions": ("runner.commands.playbook", "regions"),
    "run": ("runner.commands.run", "run"),
    "status": ("runner.commands.run", "status"),
    "auth": ("runner.commands.auth", "auth"),
    "sim": ("runner.commands.sim", "sim"),
    "export": ("runner.commands.oneshot", "export"),
    "query": ("runner.commands.oneshot", "query"),
    "adhoc": ("runner.commands.oneshot", "adhoc"),
    "init": ("runner.commands.init", "init"),
    "diff": ("runner.commands.diff", "diff"),
}

SHORT_HELP: dict[str, str] = {
    "validate": "Check playbooks against the schema and the catalog.",
    "plan": "Compile a playbook and show the Steps it would run.",
    "schema": "Print the playbook JSON Schema (for editors).",
    "regions": "List the data centers and their Web API URLs.",
    "run": "Run a playbook, resuming where the last run stopped.",
    "status": "Show what the state directory holds for a playbook.",
    "auth": "Check credentials against the identity service.",
    "sim": "Run the Insights simulator.",
    "export": "One export from flags (export site-permissions --site-url ... -o reports/).",
    "query": "One query from flags (query users -o users.csv).",
    "adhoc": "One module with Ansible-style arguments (adhoc MODULE -a 'key=value ...').",
    "init": "Write a starter playbook and inventory that validate.",
    "diff": "What changed between the last two runs (or two output folders).",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _not_yet(name)
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table so that --help imports no command module.
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_yet(name: str) -> click.Command:
    @click.command(name=name, help=SHORT_HELP.get(name, ""))
    def command() -> None:
        raise click.UsageError(f"'{name}' is not available in this version")

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="insights-runner")
@click.option("-v", "--verbose", count=True,
              help="Log to stderr: -v what the run does, -vv every HTTP request (DEBUG). "
              "Secrets are never logged.")
def cli(verbose: int) -> None:
    """Declarative report runner for the Insights for Microsoft 365 Web API."""
    configure_logging(verbose)


def configure_logging(verbose: int) -> None:
    """Warnings only by default; -v INFO, -vv DEBUG (request lines, new connections)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: list[str] | None = None) -> None:
    try:
        # Without standalone mode click returns the code of ctx.exit(n) instead of exiting.
        code = cli.main(args=argv, prog_name="insights-runner", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except RunnerError as exc:
        click.echo(_format_error(exc), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; state is kept for the next run", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:  # a bug: keep the traceback out of the user's face, but keep it
        log = os.path.join(tempfile.gettempdir(), "insights-runner-crash.log")
        with open(log, "w", encoding="utf-8") as handle:
            traceback.print_exc(file=handle)
        click.echo(
            f"internal error: please report it with the traceback written to {log}", err=True
        )
        sys.exit(70)
    sys.exit(0)


def _format_error(exc: RunnerError) -> str:
    message = str(exc)
    if message.startswith("error") or "\n" in message or ":" in message.split(" ", 1)[0]:
        return message
    return f"error: {message}"
