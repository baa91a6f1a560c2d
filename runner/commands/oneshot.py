"""One-shot commands: ``export NAME``, ``query NAME`` and ``adhoc MODULE -a 'key=value ...'``.

Each command writes the one-task playbook its flags describe into a per-user state folder
(one per module and output) and runs it with ``run``: the same load, validation, compile,
state and report, so every check and message is shared, and running an interrupted command
again resumes it.  The flags are generated from the catalog: one per field (a list field
takes the flag again, or a file of values), one per filter, enum values listed in ``--help``.
Mistakes are reported in terms of the flags the user typed, never the hidden playbook.

``--print-playbook`` shows that playbook instead of running it: the way from a command
typed at a prompt to a definition kept in git.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from runner import catalog
from runner.commands.auth import CONNECTION_FLAG_NAMES, _from_flags, connection_options
from runner.errors import CredentialError, UserError

QUERY_FORMATS = ("jsonl", "json", "csv")
STATE_ENV = "INSIGHTS_RUNNER_STATE_HOME"
PLAYBOOK_NAME = "playbook.yml"
STDOUT_KEY = "<stdout>"
_UNCOUNTABLE = ("access", "activity")
_ONE_CHUNK = "{% if chunk.total > 1 %}-{{ chunk.number }}{% endif %}"


# ------------------------------------------------------------------------ names


def command_name(op: catalog.Operation) -> str:
    """``site_permission_export`` -> ``site-permissions``; ``user_summary`` -> ``users``."""
    words = op.name.split("_")
    if op.is_export or words[-1] == "summary":
        words = words[:-1]
        words[-1] = _plural(words[-1])
    return "-".join(words)


def _plural(word: str) -> str:
    return word if word.endswith("s") or word in _UNCOUNTABLE else word + "s"


def find_module(name: str, kind: str | None = None) -> catalog.Operation | None:
    """The module a command line names: ``users``, ``user_summary`` or ``user-summary``.

    Without ``kind``, a module name wins over a one-shot name (``site_permissions`` is the
    query; ``site-permissions`` alone is also the export's one-shot name): an ambiguous
    one-shot name is refused with both module names.
    """
    key = name.strip().lower().replace("_", "-")
    candidates = [op for op in catalog.modules() if not kind or op.kind == kind]
    exact = [op for op in candidates if key == op.name.replace("_", "-")]
    if exact:
        return exact[0]
    found = [op for op in candidates if key == command_name(op)]
    if len(found) > 1:
        raise click.BadParameter(f"{name!r} names {' and '.join(op.name for op in found)}; "
                                 "give the module name", param_hint="MODULE")
    return found[0] if found else None


def _kebab(name: str) -> str:
    return name.replace("_", "-")


# ------------------------------------------------------------------------ flags


@dataclass(frozen=True)
class Flag:
    """One generated option: where its value goes in the task, and how it is spelled."""

    param: str  # the click parameter name
    option: str  # --site-url
    target: str  # catalog field or filter name
    where: str  # "field" | "filter" | "file"
    kind: str  # the catalog kind


class EnumType(click.ParamType):
    """A catalog enum: any spelling the catalog accepts; ``--help`` lists the names."""

    def __init__(self, api_enum: catalog.ApiEnum, many: bool = False) -> None:
        self.api_enum = api_enum
        self.name = api_enum.name
        self.many = many  # a list: "a,b" is two values

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str:
        return "[" + "|".join(self.api_enum.names) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        names = []
        for part in str(value).split(",") if self.many else [value]:
            try:
                code = self.api_enum.resolve(part)
            except ValueError:
                self.fail(f"{part!r} is not a valid {self.api_enum.name}; choose one of: "
                          f"{self.api_enum.choices()}", param, ctx)
            names.append(self.api_enum.member(code).name)
        return ",".join(names)


def flags_for(op: catalog.Operation) -> list[Flag]:
    flags: list[Flag] = []
    for field in op.fields:
        if field.kind == "filters":
            flags += [Flag(f"filter_{f.name}", f"--{_kebab(f.name)}", f.name, "filter", f.kind)
                      for f in op.filters]
        elif field.kind in ("string_list", "enum_list"):
            singular = field.name[:-1] if field.name.endswith("s") else field.name
            flags.append(Flag(f"arg_{field.name}", f"--{_kebab(singular)}", field.name,
                              "field", field.kind))
            if field.kind == "string_list":
                stem = re.sub(r"_(url|id)$", "", singular)
                flags.append(Flag(f"file_{field.name}", f"--{_kebab(_plural(stem))}-file",
                                  field.name, "file", field.kind))
        else:
            flags.append(Flag(f"arg_{field.name}", f"--{_kebab(field.name)}", field.name,
                              "field", field.kind))
    options = [f.option for f in flags]
    assert len(options) == len(set(options)), f"{op.name}: two fields give one flag"
    return flags


def _option(op: catalog.Operation, flag: Flag) -> click.Option:
    if flag.where == "filter":
        flt = op.filter(flag.target)
        kind: Any = EnumType(flt.enum, many=True) if flt.enum else None
        words = f"Filter: {flt.help or 'values'}" if not flt.enum else \
            f"Filter on {flt.enum.name}; repeat or separate with commas."
        return click.Option([flag.option, flag.param], multiple=True, type=kind,
                            metavar=None if flt.enum else ("DATE" if flt.kind == "datetime"
                                                           else "TEXT"), help=words)
    field = op.field(flag.target)
    need = " (required)" if field.required and field.default is None else ""
    if flag.where == "file":
        return click.Option([flag.option, flag.param], metavar="FILE",
                            type=click.File("r", encoding="utf-8-sig"),
                            help=f"A file of {field.name.replace('_', ' ')}, one per line "
                            "('#' comments; '-' for stdin).")
    help_text = (field.help or field.name) + need
    if field.kind == "enum_list":
        assert field.enum is not None
        return click.Option([flag.option, flag.param], multiple=True,
                            type=EnumType(field.enum, many=True),
                            help=f"{field.help} Repeat or separate with commas.{need}")
    if field.kind == "string_list":
        return click.Option([flag.option, flag.param], multiple=True, metavar="TEXT",
                            help=f"{field.help} Repeat for more.{need}")
    if field.kind == "enum":
        assert field.enum is not None
        return click.Option([flag.option, flag.param], type=EnumType(field.enum), help=help_text)
    if field.kind == "int":
        return click.Option([flag.option, flag.param], type=click.IntRange(1, field.maximum),
                            help=help_text)
    metavar = "DATE" if field.kind == "datetime" else "TEXT"
    return click.Option([flag.option, flag.param], metavar=metavar, help=help_text)


def _args_from_flags(op: catalog.Operation, flags: list[Flag], values: Mapping[str, Any]
                     ) -> dict[str, Any]:
    """The task's module arguments (catalog names) from the parsed flag values."""
    args: dict[str, Any] = {}
    filters: dict[str, list[str]] = {}
    for flag in flags:
        value = values.get(flag.param)
        if value is None or value == ():
            continue
        if flag.where == "filter":
            filters[flag.target] = _split(value)
        elif flag.where == "file":
            args.setdefault(flag.target, []).extend(_lines(value))
        elif flag.kind == "enum_list":
            args[flag.target] = _split(value)
        elif flag.kind == "string_list":
            args.setdefault(flag.target, []).extend(value)
        else:
            args[flag.target] = value
    if filters:
        args["filters"] = filters
    return args


def _split(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def _lines(handle: Any) -> list[str]:
    with handle:
        return [line.strip() for line in handle
                if line.strip() and not line.lstrip().startswith("#")]


# ------------------------------------------------------------------ common options

_OUTPUT_HELP = {
    "export": "A folder (default: here) or a .zip file name.",
    "query": "The file (default: NAME.jsonl here); .jsonl, .json or .csv sets the format; "
    "'-' prints the records on stdout.",
    None: "Exports: a folder or a .zip name.  Queries: a .jsonl, .json or .csv file.",
}
_COMMON = (
    click.Option(["--simulator"], is_flag=True,
                 help="Rehearse against the embedded simulator (no credentials)."),
    click.Option(["--state", "--state-dir", "state"], metavar="DIR|URL",
                 help=f"Where the state lives: a folder, or postgresql://... to share the "
                 f"tenant's export slots with the runs there (default: "
                 f"$INSIGHTS_RUNNER_STATE, else one folder per module and output "
                 f"under ${STATE_ENV}, $XDG_STATE_HOME/insights-runner or ~/.local/state)."),
    click.Option(["--fresh"], is_flag=True, help="Forget the state of an earlier attempt."),
    click.Option(["--check"], is_flag=True,
                 help="Validate and authenticate only: nothing is submitted or written."),
    click.Option(["--print-playbook"], is_flag=True,
                 help="Print the equivalent playbook instead of running it."),
    click.Option(["--json", "as_json"], is_flag=True, help="Print the run report as JSON."),
    click.Option(["--junit"], type=click.Path(dir_okay=False, path_type=Path),
                 help="Also write a JUnit XML report here."),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress; only errors and the result."),
)
_EXPORT_ONLY = (
    click.Option(["--extract"], is_flag=True,
                 help="Unpack the .zip into a folder beside it (safely)."),
    click.Option(["--convert"], type=click.Choice(["csv"]),
                 help="Write each sheet of each .xlsx report as a CSV beside the .zip."),
)
_QUERY_ONLY = (
    click.Option(["--format", "output_format"], type=click.Choice(QUERY_FORMATS),
                 help="Format of the records (default: from -o's extension, else jsonl)."),
)


def _with_common(op_kind: str | None, params: list[click.Parameter]) -> list[click.Parameter]:
    output = click.Option(["-o", "--output"], type=click.Path(path_type=Path),
                          help=_OUTPUT_HELP[op_kind])
    extra = [output, *_COMMON]
    if op_kind in ("export", None):
        extra += _EXPORT_ONLY
    if op_kind in ("query", None):
        extra += _QUERY_ONLY
    command = connection_options(lambda: None)
    connection = list(reversed(getattr(command, "__click_params__", [])))
    return [*params, *extra, *connection]


# ----------------------------------------------------------------------- commands


class ModuleGroup(click.Group):
    """``export`` or ``query``: one subcommand per catalog module of that kind."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(command_name(op) for op in catalog.modules() if op.kind == self.kind)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        op = find_module(name, self.kind)
        return None if op is None else module_command(op)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(command_name(op), f"{op.summary} ({op.name})")
                for op in sorted(catalog.modules(), key=command_name) if op.kind == self.kind]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def module_command(op: catalog.Operation) -> click.Command:
    flags = flags_for(op)
    params: list[click.Parameter] = [_option(op, flag) for flag in flags]

    def callback(**values: Any) -> None:
        args = _args_from_flags(op, flags, values)
        names = {f"tasks[0].{op.name}.{flag.target}": flag.option
                 for flag in flags if flag.where != "file"}
        names.update({f"tasks[0].{op.name}.filters.{flag.target}": flag.option
                      for flag in flags if flag.where == "filter"})
        names.update({f"'{flag.target}'": _option_names(flags, flag.target)
                      for flag in flags if flag.where == "field"})
        _run_one(op, args, values, names)

    example = {"export": "-o reports/", "query": f"-o {command_name(op)}.csv"}[op.kind]
    return click.Command(
        name=command_name(op), params=_with_common(op.kind, params), callback=callback,
        help=f"{op.summary}\n\nThe {op.name} module, as a one-shot command; for example:\n\n"
        f"    insights-runner {op.kind} {command_name(op)} ... --region us --client-id ID "
        f"--cert app.pfx --cert-password-env PFX_PASSWORD {example}",
        short_help=op.summary)


def _option_names(flags: list[Flag], target: str) -> str:
    return " or ".join(f.option for f in flags if f.target == target and f.where != "filter")


@click.group(cls=ModuleGroup, kind="export", name="export",
             help="Run one export (an asynchronous job; the .zip lands in -o).")
def export() -> None:
    pass


@click.group(cls=ModuleGroup, kind="query", name="query",
             help="Run one query (paged records into -o: .jsonl, .json or .csv).")
def query() -> None:
    pass


@click.command(name="adhoc", params=_with_common(None, [
    click.Argument(["module"]),
    click.Option(["-a", "--args", "module_args"], multiple=True, metavar="ARGS",
                 help="The module's arguments: 'key=value ...' (lists as a,b or [a, b]; "
                 "filters as filters={risk: [high]}) or a YAML/JSON mapping; repeatable."),
]), help="Run one module with Ansible-style arguments: adhoc MODULE -a 'key=value ...'. "
   "MODULE is a module name (user_summary) or a one-shot name (users).")
def adhoc(module: str, module_args: tuple[str, ...], **values: Any) -> None:
    op = find_module(module)
    if op is None:
        known = ", ".join(catalog.module_names())
        raise click.BadParameter(f"no module {module!r}; choose one of: {known}",
                                 param_hint="MODULE")
    args = parse_module_args(op, module_args)
    names = {f"tasks[0].{op.name}.{field.name}": f"-a {field.name}" for field in op.fields}
    _run_one(op, args, values, names)


def parse_module_args(op: catalog.Operation, specs: Iterable[str]) -> dict[str, Any]:
    """``-a`` values: ``key=value ...`` typed by the catalog field, or a YAML mapping."""
    import yaml

    args: dict[str, Any] = {}
    for spec in specs:
        if spec.lstrip().startswith("{"):
            try:
                mapping = yaml.safe_load(spec)
            except yaml.YAMLError as exc:
                raise UserError(f"-a: not a YAML/JSON mapping: {exc}") from None
            if not isinstance(mapping, dict):
                raise UserError("-a: give key=value pairs or a mapping")
            args.update(mapping)
            continue
        for word in _words(spec):
            key, equals, value = word.partition("=")
            if not equals:
                raise UserError(f"-a: {word!r} needs the form key=value")
            args[key] = _typed(op, key, value)
    return args


def _words(spec: str) -> list[str]:
    """``key=value`` words; a value opened with ``[`` or ``{`` runs to its closing bracket,
    spaces and all (``filters={risk: [high], module: [teams]}``)."""
    try:
        tokens = shlex.split(spec)
    except ValueError as exc:
        raise UserError(f"-a: cannot split {spec!r}: {exc}") from None
    words: list[str] = []
    depth = 0
    for token in tokens:
        if depth > 0:
            words[-1] += " " + token
        else:
            words.append(token)
        depth += sum(token.count(c) for c in "[{") - sum(token.count(c) for c in "]}")
    return words


def _typed(op: catalog.Operation, key: str, value: str) -> Any:
    import yaml

    try:
        kind = op.field(key).kind
    except KeyError:
        return value  # unknown: validation names it, with the allowed ones
    if value.startswith(("[", "{")):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(f"-a {key}: not a YAML/JSON value: {exc}") from None
    if kind in ("string_list", "enum_list"):
        return [part.strip() for part in value.split(",") if part.strip()]
    if kind == "int" and value.isdigit():
        return int(value)
    return value


# ------------------------------------------------------------------------ running


def _run_one(op: catalog.Operation, args: dict[str, Any], values: dict[str, Any],
             names: Mapping[str, str]) -> None:
    from runner.commands.run import run

    connection = _connection(values)
    output_dir, task_output, fmt = _output(op, values)
    to_stdout = output_dir is None
    from runner.execute.state.location import choose
    from runner.execute.state.postgres import is_url

    state = choose(values.get("state"))
    own_dir = default_state_dir(
        op, Path(STDOUT_KEY) if output_dir is None else output_dir / task_output)
    # The playbook file and printed records stay local; a URL only moves the state.
    state_dir = Path(state) if state is not None and not is_url(state) else own_dir
    if output_dir is None:  # -o -: the records go to stdout, through a file in the state
        output_dir = state_dir / "stdout"
        shutil.rmtree(output_dir, ignore_errors=True)  # no stale file from an earlier print
    task: dict[str, Any] = {"name": f"{op.kind} {command_name(op)}", op.name: args,
                            "output": task_output}
    if op.is_query and fmt != "jsonl":
        task["format"] = fmt
    if op.is_export and values.get("extract"):
        task["extract"] = True
    if op.is_export and values.get("convert"):
        task["convert"] = values["convert"]
    document = {"version": 1, "name": f"{op.kind} {command_name(op)}",
                "connection": connection, "output_dir": str(output_dir), "tasks": [task]}
    text = _playbook_text(document)
    if values.get("print_playbook"):
        click.echo(text, nl=False)
        return
    playbook = _write_playbook(state_dir, text)
    ctx = click.get_current_context()
    command = ctx.command_path.split(" ", 1)[-1]
    flag_names = {**CONNECTION_FLAG_NAMES, f"tasks[0].{op.name}": command,
                  "tasks[0]": command, **names}
    try:
        # A print to stdout is always fresh data: no reuse of an earlier answer.
        ctx.invoke(run, playbook=str(playbook),
                   state=state if state is not None and is_url(state) else str(state_dir),
                   state_namespace=f"oneshot/{own_dir.name}",
                   fresh=values["fresh"] or to_stdout, check=values["check"],
                   junit=values["junit"], as_json=values["as_json"] and not to_stdout,
                   quiet=values["quiet"] or to_stdout,
                   # never over a playbook's own report in a shared output folder
                   report=state_dir / "run-report.json")
    except UserError as exc:
        raise UserError(speak_flags(str(exc), str(playbook), flag_names)) from None
    if to_stdout and not values["check"]:
        _print_records(output_dir, command_name(op), fmt)


def _print_records(folder: Path, name: str, fmt: str) -> None:
    """Copy the query's file(s) to stdout (several when a long list was chunked)."""
    out = sys.stdout.buffer
    def chunk_order(path: Path) -> list[Any]:  # name-2 before name-10
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]

    for path in sorted(folder.glob(f"{name}*.{fmt}"), key=chunk_order):
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 16):
                out.write(chunk)
    out.flush()


def _connection(values: Mapping[str, Any]) -> dict[str, Any]:
    if values.get("simulator"):
        return {"simulator": True}
    flags = dict(values)
    for key in ("cert", "cert_key"):  # the playbook lives elsewhere: make paths absolute
        if flags.get(key):
            flags[key] = Path(flags[key]).expanduser().resolve()
    mapping = _from_flags(flags, secret=_env_template)
    if not mapping or not (mapping.get("region") or mapping.get("base_url")):
        raise UserError("flags: say where the service is: --region (see `insights-runner "
                        "regions`) or --base-url, with --client-id and --cert; or --simulator "
                        "to rehearse")
    return mapping


def _env_template(name: str, flag: str) -> str:
    """The secret stays in the environment: the playbook holds only ``env('NAME')``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise CredentialError(f"{flag}: {name!r} is not an environment variable name")
    if name not in os.environ:
        raise CredentialError(f"{flag}: environment variable {name} is not set")
    return f'{{{{ env("{name}") }}}}'


def _output(op: catalog.Operation, values: Mapping[str, Any]) -> tuple[Path | None, str, str]:
    """(output folder, the task's output template, format) from ``-o``; no folder for
    ``-o -`` (a query's records on stdout)."""
    raw: Path | None = values.get("output")
    if raw is not None and re.search(r"\{\{|\{%|\{#", str(raw)):
        raise UserError("-o: a one-shot output is a plain path, not a template")
    if raw is not None and str(raw) == "-":
        if op.is_export:
            raise UserError("-o -: an export is a .zip file; give a folder or a .zip name")
        fmt = values.get("output_format") or "jsonl"
        return None, f"{command_name(op)}{_ONE_CHUNK}.{fmt}", fmt
    if op.is_export:
        if raw is not None and raw.suffix.lower() == ".zip":
            folder, stem = raw.parent, raw.stem
        else:
            folder, stem = (raw if raw is not None else Path(".")), command_name(op)
        return folder.expanduser().resolve(), f"{stem}{_ONE_CHUNK}.zip", "zip"
    fmt = values.get("output_format")
    if raw is None:
        fmt = fmt or "jsonl"
        return Path.cwd(), f"{command_name(op)}{_ONE_CHUNK}.{fmt}", fmt
    suffix = raw.suffix.lower().lstrip(".")
    if fmt is None:
        if suffix not in QUERY_FORMATS:
            raise UserError(f"-o: cannot tell the format from {raw.name!r}; name it .jsonl, "
                            ".json or .csv, or give --format")
        fmt = suffix
    stem = raw.stem if suffix in QUERY_FORMATS else raw.name
    ext = suffix if suffix in QUERY_FORMATS and suffix == fmt else fmt
    return raw.parent.expanduser().resolve(), f"{stem}{_ONE_CHUNK}.{ext}", fmt


def state_root() -> Path:
    """Where one-shot commands keep their state, per user."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV]).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "insights-runner"
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "insights-runner"


def default_state_dir(op: catalog.Operation, target: Path) -> Path:
    """One folder per module and output, so the same command run again resumes."""
    digest = hashlib.sha256(f"{op.name}\0{target}".encode()).hexdigest()[:12]
    return state_root() / "oneshot" / f"{command_name(op)}-{digest}"


def _playbook_text(document: dict[str, Any]) -> str:
    import yaml

    head = ("# yaml-language-server: $schema=https://github.com/insights-runner/insights-runner/"
            "schemas/playbook.schema.json\n"
            f"# The playbook of: insights-runner {' '.join(map(shlex.quote, sys.argv[1:]))}\n")
    return head + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def _write_playbook(state_dir: Path, text: str) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / PLAYBOOK_NAME
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        partial = path.with_name(PLAYBOOK_NAME + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    return path


# ------------------------------------------------------------------------ messages


def speak_flags(message: str, playbook: str, names: Mapping[str, str]) -> str:
    """A message about the hidden playbook, told in terms of the flags that wrote it."""
    ordered = sorted(names.items(), key=lambda item: -len(item[0]))
    lines = []
    for line in message.splitlines():
        line = re.sub(rf"^{re.escape(playbook)}:\d+:\d+: ", "", line)
        line = line.replace(playbook, "the one-shot command")
        for field, flag in ordered:
            if line.startswith(field + ":") or line.startswith(field + " "):
                line = flag + line[len(field):]
                break
        line = _replace_quoted(line, names)
        lines.append(line if line.startswith(("-", "flags", "error")) else f"error: {line}")
    return "\n".join(lines)


def _replace_quoted(line: str, names: Mapping[str, str]) -> str:
    def swap(match: re.Match[str]) -> str:
        return names.get(match.group(0), match.group(0))

    return re.sub(r"'[a-z_]+'", swap, line)


