"""The compiler: a loaded Playbook becomes a Plan, a value holding one Step per API request.

Per task: ``loop`` gives the items, ``when`` drops items, templates are expanded (and the
values that came from templates are checked with the schema's rules), every capped list is
cut into chunks of at most 100 (two capped lists give their product), and each chunk gets
its output path, templated with ``chunk``, ``item`` and ``task``.  A Step's id hashes its
operation, request, output and format, so an unchanged Step keeps its id across runs.

A task whose templates read a ``register`` name that is not in ``registered`` yet becomes
a DeferredTask; the executor calls ``compile_task`` once those results exist.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from json import encoder as json_encoder
from types import MappingProxyType
from typing import Any, TypeVar

from runner import aliases, argrules, catalog, inputs, templating
from runner.errors import Diagnostic, PlanError, PlaybookError
from runner.manifest import (
    Playbook,
    Task,
    argument_problem,
    as_written,
    closure,
    output_problem,
)
from runner.secret import Secret
from runner.steps import (  # noqa: F401 - the plan's values, importable from here as before
    PLAN_FORMAT_VERSION,
    DeferredTask,
    FrozenRequest,
    Plan,
    SkippedTask,
    Step,
    _postprocessing,
    freeze,
    thaw,
)
from runner.templating import RunFacts, Templar, contains_template, is_template
from runner.yamlsource import dotted

T = TypeVar("T")
Path_ = tuple[str | int, ...]
SECRET_FIELDS = frozenset({"password", "pfx_base64", "client_secret"})
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_EXPRESSION_ERRORS = (templating.TemplateError, ArithmeticError, TypeError, ValueError,
                      LookupError, AttributeError)


# ------------------------------------------------------------------ entry points


def compile_plan(
    playbook: Playbook,
    *,
    registered: Mapping[str, Any] = _EMPTY,
    run_facts: RunFacts | None = None,
    expand_connection: bool = True,
) -> Plan:
    """Expand and compile every task that can be compiled now; raise every problem at once."""
    compiler = _Compiler(playbook, registered, run_facts)
    steps: list[Step] = []
    deferred: list[DeferredTask] = []
    skipped: list[SkippedTask] = []
    for task in playbook.tasks:
        missing = tuple(sorted(task.needs - set(registered)))
        if missing:
            deferred.append(DeferredTask(task.index, task.title, missing))
            continue
        task_steps, reason = compiler.task(task)
        steps.extend(task_steps)
        if reason is not None:
            skipped.append(SkippedTask(task.index, task.title, reason))
    compiler.check_collisions(steps, playbook)
    connection = compiler.connection(expand=expand_connection)
    output_dir = compiler.output_dir()
    compiler.raise_problems()
    return Plan(
        playbook=str(playbook.path),
        name=playbook.name,
        output_dir=output_dir,
        connection=connection,
        steps=tuple(steps),
        deferred=tuple(deferred),
        fingerprint=fingerprint(playbook),
        skipped=tuple(skipped),
    )


def compile_task(
    playbook: Playbook,
    task_index: int,
    *,
    registered: Mapping[str, Any],
    run_facts: RunFacts | None = None,
    existing: Iterable[Step] = (),
) -> tuple[Step, ...]:
    """The Steps of one (deferred) task, now that the results it reads are registered.

    ``existing``: Steps already planned, whose outputs this task may not write again.
    """
    task = playbook.tasks[task_index]
    missing = sorted(task.needs - set(registered))
    if missing:
        raise PlanError(f"task {task_index} ({task.title}) still waits for: {', '.join(missing)}")
    compiler = _Compiler(playbook, registered, run_facts)
    steps, _ = compiler.task(task)
    compiler.check_collisions([*existing, *steps], playbook)
    compiler.raise_problems()
    return tuple(steps)


def fingerprint(playbook: Playbook) -> str:
    """Changes when the playbook's text, its vars or the extra vars change."""
    digest = hashlib.sha256(playbook.text.encode("utf-8"))
    for values in (playbook.vars, playbook.extra_vars):
        digest.update(b"\0" + _canonical(dict(values)).encode("utf-8"))
    return digest.hexdigest()


def step_id(operation: str, request: Mapping[str, Any], output: str, fmt: str,
            postprocessing: Mapping[str, Any] | None = None) -> str:
    """A hash of what the Step asks and writes; post-processing counts only when set, so
    the ids of tasks without it are those of earlier versions."""
    if type(request) is FrozenRequest:  # a Step's: as a dict, without the encoder's
        request = request.copy()  # call back into _json_default
    parts: list[Any] = [operation, request, output, fmt]
    if postprocessing:
        parts.append(dict(postprocessing))
    payload = _canonical(parts)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------- chunking


def chunks(values: Sequence[T], size: int = catalog.MAX_LIST_VALUES) -> list[tuple[T, ...]]:
    """``values`` cut into runs of at most ``size``, in order; an empty list is one chunk."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    if not values:
        return [()]
    return [tuple(values[start:start + size]) for start in range(0, len(values), size)]


def chunk_product(lists: Mapping[str, Sequence[Any]],
                  caps: Mapping[str, int] | None = None) -> list[dict[str, tuple[Any, ...]]]:
    """Every combination of the chunks of several capped lists (the first varies slowest).

    ``caps`` gives each list's chunk size (default: the API's 100).
    """
    names = list(lists)
    cut = [chunks(lists[name], (caps or {}).get(name, catalog.MAX_LIST_VALUES))
           for name in names]
    return [dict(zip(names, combination, strict=True)) for combination in itertools.product(*cut)]


# ------------------------------------------------------------------ immutability


def _json_default(value: Any) -> Any:
    if isinstance(value, FrozenRequest):
        return value.copy()
    if isinstance(value, MappingProxyType):
        copied = value.copy()  # the dict under it, copied in C (dict() reads key by key)
        return copied if isinstance(copied, dict) else dict(value)
    return str(value)  # a Secret prints masked


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            default=_json_default)
# The C encoder that ``_ENCODER.encode`` builds anew on every call, built once: a plan of
# v2 size hashes 200,000 Step ids, and json.dumps' set-up per call was most of each one.
# The arguments are JSONEncoder.iterencode's own (3.11-3.13); without the C module (or
# with an object that refers to itself, which no Step holds) the plain encoder is used.
_MAKE_C_ENCODER = getattr(json_encoder, "c_make_encoder", None)
_C_ENCODE = None if _MAKE_C_ENCODER is None else _MAKE_C_ENCODER(
    None, _json_default, json_encoder.encode_basestring, None, ":", ",", True, False, True)


def _canonical(value: Any) -> str:
    """The JSON of ``value`` with sorted keys and no spaces, as json.dumps(sort_keys=True,
    separators=(",", ":"), ensure_ascii=False) writes it: Step ids are hashes of it."""
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def slug(text: str) -> str:
    """``Site permission reports`` -> ``site-permission-reports``."""
    words = re.sub(r"[^0-9A-Za-z]+", "-", text).strip("-").lower()
    return words or "task"


# ---------------------------------------------------------------------- compiler


class _Failure(Exception):
    """A problem at one place in the playbook; becomes a Diagnostic."""

    def __init__(self, path: Path_, message: str, *, key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.key = key


class _Compiler:
    def __init__(self, playbook: Playbook, registered: Mapping[str, Any],
                 run_facts: RunFacts | None) -> None:
        self.playbook = playbook
        self.registered = registered
        self.run = (run_facts or RunFacts.now()).as_dict()
        self.templar = Templar(playbook.directory)
        self.problems: list[Diagnostic] = []
        self._vars: dict[str, Any] = {}  # resolved vars that depend on no item/chunk/task
        self._failed: dict[str, _Failure] = {}
        self._resolving: list[str] = []
        self._dynamic_vars = {
            name for name in playbook.vars
            if closure([name], playbook.var_refs, playbook.extra_vars) & {"item", "chunk", "task"}
        }

    # ---------------------------------------------------------------- problems

    def report(self, failure: _Failure) -> None:
        source = self.playbook.source
        message = f"{dotted(failure.path)}: {failure.message}"
        diagnostic = as_written(source.diagnostic(failure.path, message, key=failure.key),
                                self.playbook.written)
        if diagnostic not in self.problems:
            self.problems.append(diagnostic)

    def raise_problems(self) -> None:
        if self.problems:
            raise PlaybookError(self.problems)

    # -------------------------------------------------------------- variables

    def _var(self, name: str, dynamic: Mapping[str, Any]) -> Any:
        if name in self._vars:
            return self._vars[name]
        if name in self._failed:
            raise self._failed[name]
        if name in self._resolving:
            cycle = " -> ".join([*self._resolving[self._resolving.index(name):], name])
            raise _Failure(("vars", name), f"variables refer to each other: {cycle}")
        self._resolving.append(name)
        try:
            value = self.expand(self.playbook.vars[name], ("vars", name), dynamic)
        except _Failure as failure:
            if name not in self._dynamic_vars:
                self._failed[name] = failure
            raise
        finally:
            self._resolving.pop()
        if name not in self._dynamic_vars:
            self._vars[name] = value
        return value

    def _context(self, names: Iterable[str], dynamic: Mapping[str, Any]) -> dict[str, Any]:
        context: dict[str, Any] = {}
        extra = self.playbook.extra_vars
        for name in names:
            if name in dynamic:
                context[name] = dynamic[name]
            elif name == "run":
                inputs.impure("run")  # other values next run: never memoised
                context[name] = self.run
            elif name in extra:
                context[name] = extra[name]
            elif name in self.playbook.vars:
                context[name] = self._var(name, dynamic)
            elif name in self.registered:
                context[name] = self.registered[name]
        return context

    # -------------------------------------------------------------- expansion

    def expand(self, value: Any, path: Path_, dynamic: Mapping[str, Any]) -> Any:
        if isinstance(value, str):
            if not is_template(value):
                return value
            context = self._context(templating.references(value), dynamic)
            try:
                return self.templar.render(value, context)
            except _EXPRESSION_ERRORS as exc:
                raise _Failure(path, f"{templating.describe(exc)} (in {value!r})") from None
        if isinstance(value, list):
            return [self.expand(v, (*path, i), dynamic) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, k), dynamic) for k, v in value.items()}
        return value

    def _when(self, task: Task, dynamic: Mapping[str, Any]) -> bool:
        condition = task.when
        if isinstance(condition, bool):
            return condition
        path = (*task.path, "when")
        value = self.expand(templating.as_template(condition), path, dynamic)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("true", "yes", "on", "1"):
                return True
            if word in ("false", "no", "off", "0", ""):
                return False
            raise _Failure(path, f"must be true or false, not the string {value!r}")
        return bool(value)

    # ------------------------------------------------------------------ tasks

    def task(self, task: Task) -> tuple[list[Step], str | None]:
        """The task's Steps and, when it has none, why; problems are reported."""
        try:
            with _collector_paused():
                return self._task(task)
        except _Failure as failure:
            self.report(failure)
            return [], None

    def _task(self, task: Task) -> tuple[list[Step], str | None]:
        op = task.operation
        facts = {"name": task.title, "index": task.index, "number": task.index + 1,
                 "module": op.name, "slug": slug(task.title)}
        steps: list[Step] = []
        reasons: list[str] = []
        postprocessing = _postprocessing(task)
        for item in self._items(task, facts):
            dynamic = {"task": facts} if item is _NO_ITEM else {"task": facts, "item": item}
            if task.when is not None and not self._when(task, dynamic):
                reasons.append("when is false")
                continue
            args, empty = self._arguments(task, op, dynamic)
            if empty:
                reasons.append(f"{empty} is empty")
                continue
            try:
                requests = _requests(op, args, task.api)
            except ValueError as exc:
                raise _Failure((*task.path, task.module), str(exc)) from None
            outputs = self._outputs(task, dynamic, len(requests), len(steps))
            if len(set(outputs)) < len(outputs) and fans_out(op, task.api):
                # v2 takes one user, group, site or object per request where v1 took a
                # list: a task written for v1 with one output gets one numbered file per
                # value (links/anyone-1.jsonl, ...), so the move is one line, api: v2
                outputs = [numbered(path, number) for number, path in enumerate(outputs, 1)]
            total = len(requests)  # (one int for all: 200,000 of them were 5 MiB)
            for number, ((operation, request), output) in enumerate(
                    zip(requests, outputs, strict=True), start=1):
                steps.append(Step(
                    id=step_id(operation.name, request, output, task.format, postprocessing),
                    task_index=task.index,
                    task_name=task.title,
                    operation=operation.name,
                    kind=op.kind,
                    request=request,
                    output=output,
                    format=task.format,
                    chunk_number=number,
                    chunk_total=total,
                    retries=task.retries,
                    ignore_errors=task.ignore_errors,
                    register=task.register,
                    tags=task.tags,
                    extract=task.extract,
                    convert=task.convert,
                    api=task.api,
                ))
        if steps or not reasons:
            return steps, None if steps else "loop has no items"
        return steps, "; ".join(sorted(set(reasons)))

    def _items(self, task: Task, facts: Mapping[str, Any]) -> Iterator[Any]:
        if task.loop is None:
            yield _NO_ITEM
            return
        items = self.expand(task.loop, (*task.path, "loop"), {"task": facts})
        if not isinstance(items, list | tuple):
            raise _Failure((*task.path, "loop"), "must give a list, not "
                           f"{type(items).__name__} (for a mapping use dict2items-style "
                           "| dictsort)")
        yield from items

    def _arguments(self, task: Task, op: catalog.Operation,
                   dynamic: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = {}
        for name, raw in task.args.items():
            field = op.field(name)
            path = task.arg_path(name)
            value = self.expand(raw, path, dynamic)
            if contains_template(raw):
                if field.kind == "string_list" and not field.empty_allowed and value == []:
                    return args, name
                if field.kind == "filters" and isinstance(value, dict):
                    value = _filter_names(op, value, path)
                problem = argument_problem(op, field, value)
                if problem:
                    raise _Failure(path, f"{problem} (after expanding the template)")
            args[name] = value
        rule = argrules.problem(op, args)
        if rule and any(contains_template(task.args.get(n)) for n in argrules.group(op)):
            raise _Failure((*task.path, task.module), f"{rule} (after expanding the template)")
        return args, None

    def _outputs(self, task: Task, dynamic: Mapping[str, Any], total: int,
                 running: int) -> list[str]:
        """The output paths of one item's ``total`` Steps, ``chunk.number`` 1 to ``total``;
        ``running``: the task's Steps before them."""
        source = task.output
        names = templating.references(source) if source and is_template(source) else \
            frozenset()
        if source is None or names & self._dynamic_vars:  # a var that reads chunk
            return [self._output(task, {**dynamic, "chunk": {"number": number,
                                                              "total": total}},
                                 running + number)
                    for number in range(1, total + 1)]
        # What does not change from chunk to chunk is looked up once per item and the
        # template compiled once per task: a task of v2 size renders it 200,000 times.
        path = (*task.path, "output")
        fixed = self._context(names - {"chunk"}, dynamic) if total else {}
        render = self.templar.renderer(source)

        def one(context: Mapping[str, Any]) -> str:
            try:
                value = render(context)
            except _EXPRESSION_ERRORS as exc:
                raise _Failure(path, f"{templating.describe(exc)} (in {source!r})") from None
            return _checked_output(path, value)

        if "chunk" not in names:
            return [one(fixed) for _ in range(total)]
        return [one({**fixed, "chunk": {"number": number, "total": total}})
                for number in range(1, total + 1)]

    def _output(self, task: Task, scope: Mapping[str, Any], running: int) -> str:
        path = (*task.path, "output")
        if task.output is None:
            return f"{scope['task']['slug']}/part-{running}.{task.format}"
        return _checked_output(path, self.expand(task.output, path, scope))

    # ------------------------------------------------------------ whole plan

    def check_collisions(self, steps: Sequence[Step], playbook: Playbook) -> None:
        """Two Steps may not write one path (compared case-insensitively, as some disks do)."""
        writer: dict[str, Step] = {}
        reported: set[int] = set()
        for step in steps:
            key = step.output.lower()
            first = writer.setdefault(key, step)
            if first is step or step.task_index in reported:
                continue
            reported.add(step.task_index)
            task = playbook.tasks[step.task_index]
            where = "" if task.output is not None else " (the default output)"
            if first.task_index == step.task_index:
                hint = "add {{ chunk.number }}" + (" or {{ item }}" if task.loop else "")
                message = (f"{step.output!r}{where} is written by more than one Step of this "
                           f"task; {hint} to the output")
            else:
                message = (f"{step.output!r}{where} is also written by tasks"
                           f"[{first.task_index}] ({first.task_name}); give each task its "
                           "own output")
            path = (*task.path, "output") if task.output is not None else \
                (*task.path, task.module)
            self.report(_Failure(path, message, key=True))

    def connection(self, *, expand: bool) -> Mapping[str, Any] | str | None:
        """The connection with templates expanded (or as written) and secrets boxed."""
        value = self.playbook.connection
        try:
            if expand:
                with inputs.connection():  # compiled again whenever a run opens it
                    value = self.expand(value, ("connection",), {})
        except _Failure as failure:
            self.report(failure)
            return None
        if isinstance(value, dict):
            return freeze(_mask(value))
        return value

    def output_dir(self) -> str:
        base = self.playbook.directory
        raw = self.playbook.output_dir
        if raw is None:
            return str(base)
        try:
            value = self.expand(raw, ("output_dir",), {})
        except _Failure as failure:
            self.report(failure)
            return str(base)
        if not isinstance(value, str) or not value:
            self.report(_Failure(("output_dir",), "must give a directory path"))
            return str(base)
        if value.startswith(("az://", "s3://")):  # object storage (runner.execute.remote)
            return value.rstrip("/")
        return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


def _checked_output(path: Path_, value: Any) -> str:
    """An expanded output path, normalised; a _Failure at ``path`` if it is not one."""
    if not isinstance(value, str):
        raise _Failure(path, f"must give a path, not {type(value).__name__}")
    normal, problem = output_problem(value)
    if problem:
        raise _Failure(path, f"{problem} (after expanding the template)")
    return normal


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a task's Steps are built: a task of v2 size
    makes 200,000 Steps, each a few tracked objects and none in a cycle, and the young
    collections, which walk every new one, took a fifth of the compile."""
    if not gc.isenabled():  # paused by the caller: theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _NoItem:
    pass


_NO_ITEM = _NoItem()


def _mask(connection: dict[str, Any]) -> dict[str, Any]:
    """The connection with its secrets boxed, so that printing the plan cannot leak them."""
    out: dict[str, Any] = {}
    for key, value in connection.items():
        if isinstance(value, dict):
            out[key] = _mask(value)
        elif key in SECRET_FIELDS and isinstance(value, str | bytes):
            out[key] = Secret(value)
        else:
            out[key] = value
    return out


# ----------------------------------------------------------------------- requests


def fans_out(op: catalog.Operation, api: str) -> bool:
    """Whether ``op`` on ``api`` takes one value per request where v1 took a list."""
    return api != catalog.DEFAULT_GENERATION and (
        bool(op.splits) or any(f.single for f in op.fields))


def numbered(path: str, number: int) -> str:
    """``links/anyone.jsonl`` -> ``links/anyone-2.jsonl``."""
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.partition(".")
    return f"{folder + '/' if folder else ''}{stem}-{number}{dot}{ext}"


def api_value(op: catalog.Operation, field: catalog.Field, value: Any) -> Any:
    """A checked argument value in the form the API wants, frozen for the Step."""
    return freeze(catalog.encode(op, field, value))


def _filter_names(op: catalog.Operation, value: dict[Any, Any], path: Path_) -> dict[Any, Any]:
    """A template's filters mapping with its names in any case style made the catalog's
    (``risk_level`` -> ``risk``), as the manifest does for filters written literally."""
    renamed: dict[Any, Any] = {}
    for key, values in value.items():
        try:
            name = aliases.resolve(op.filters, str(key)).name
        except aliases.AmbiguousName as exc:
            raise _Failure(path, f"{exc} (after expanding the template)") from None
        except KeyError:
            name = key  # unknown: argument_problem names it
        if name in renamed:
            raise _Failure(path, f"two spellings of the filter {name} (after expanding the "
                           "template)")
        renamed[name] = values
    return renamed


def _requests(op: catalog.Operation, args: Mapping[str, Any],
              api: str = catalog.DEFAULT_GENERATION,
              ) -> list[tuple[catalog.Operation, Mapping[str, Any]]]:
    """One request per combination of the chunks of the capped lists (a ``single`` field,
    v2's path values, carries its one value as a scalar), each with its operation: a module
    that v2 splits (activity_export) gives one job per non-empty field."""
    if op.splits:
        out: list[tuple[catalog.Operation, Mapping[str, Any]]] = []
        shared = {k: v for k, v in args.items() if k not in {s.field for s in op.splits}}
        for split in op.splits:
            value = args.get(split.field)
            if value in (None, ""):
                continue
            part = catalog.operation(split.operation, api)
            out += _requests(part, {**shared, split.field: value}, api)
        if not out:
            raise ValueError("give an email, a path or both: "
                             + " and ".join(s.field for s in op.splits) + " are empty")
        return out
    return [(op, request) for request in _chunked(op, args)]


def _chunked(op: catalog.Operation, args: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    base: dict[str, Any] = {}
    capped: dict[str, Sequence[Any]] = {}
    caps: dict[str, int] = {}
    for field in op.fields:
        if field.name in args:
            if field.cap is not None:
                capped[field.api] = args[field.name]
                caps[field.api] = field.cap
                base[field.api] = None  # keeps the catalog's key order
            else:
                base[field.api] = api_value(op, field, args[field.name])
        elif field.api == op.page_size_field:
            base[field.api] = field.default
    requests: list[Mapping[str, Any]] = []
    singles = {f.api for f in op.fields if f.single}
    if len(capped) == 1:  # the common case, v2's one user per job among them: no product
        ((key, values),) = capped.items()
        single = key in singles
        for chunk in chunks(values, caps[key]):
            request = dict(base)
            request[key] = chunk[0] if single and chunk else chunk
            requests.append(FrozenRequest(request))
        return requests
    for combination in chunk_product(capped, caps):
        request = dict(base)
        request.update({key: values[0] if key in singles and values else values
                        for key, values in combination.items()})
        requests.append(FrozenRequest(request))
    return requests
