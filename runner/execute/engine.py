"""One run of a playbook, end to end: plan → connection → state → scheduler → report.

This is the edge where the pure stages meet I/O.  It opens the state directory (taking
its lock), registers the plan's Steps, hands them to the scheduler, feeds ``register``
results to the tasks that wait for them (compiling those tasks only then), and writes the
run report.  ``connection: {simulator: true}`` starts the embedded simulator on loopback
for the length of the run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import catalog, crashpoint
from runner.errors import CredentialError, RunnerError, UserError
from runner.execute import outputs, sealed
from runner.execute.registry import Registry
from runner.execute.remote import local_output_dir, publish_reports, remote_for
from runner.execute.rerun_view import rerun_rows
from runner.execute.scheduler import Event, Outcome, PollPolicy, Scheduler, Stop
from runner.execute.state import RunStatus, StateStore
from runner.execute.state.location import TenantState, for_tenant
from runner.layout import REPORT_NAME

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    extra_vars: Sequence[str] = ()
    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    check: bool = False
    fresh: bool = False
    state_dir: Path | None = None  # the folder given (kept for callers; see ``state``)
    state: str | None = None  # a folder or a postgresql:// URL (state.location.choose)
    tenant_state: TenantState | None = None  # set per tenant by runner.execute.tenants
    state_namespace: str | None = None  # in a PostgreSQL state (one-shot commands' own)
    junit: Path | None = None
    workers: int = 4
    poll: PollPolicy | None = None
    simulator_options: Mapping[str, Any] = field(default_factory=dict)
    write_report: bool = True  # False when several tenants share one combined report
    run_facts: Any = None  # the plan's ``run`` values (a saved plan keeps its own)
    stop: Stop | None = None  # shared Ctrl-C of several tenants' schedulers
    report_path: Path | None = None  # default: run-report.json in the output folder


@dataclass
class RunResult:
    run_id: str
    playbook: str
    output_dir: Path
    report_path: Path | None
    outcomes: list[Outcome]
    skipped_tasks: list[str]
    started: float
    finished: float
    interrupted: bool = False
    error: str | None = None  # why the run stopped early (exit 3), if it did
    name: str | None = None  # the playbook's name (the reports' title)
    prepared: Any = None  # a sealed plan's re-run: its report's entries (PreparedSteps)
    sealed_run: Any = None  # and its record in the state (the seal moves on to it)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes
                if o.status != "succeeded" and not getattr(o.step, "ignore_errors", False)]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


# ------------------------------------------------------------------------ the service


class LazyConnection:
    """The connection, opened on first use (thread-safe).

    A re-run with nothing left to do makes no request, so it need not import the HTTP and
    crypto stacks, load the certificate or start an embedded simulator either.  If opening
    fails, every use raises the same error, marked ``stops_run``: the scheduler then ends
    the run with it (a bad certificate is exit 2, as when it was opened first).
    """

    def __init__(self, stack: contextlib.ExitStack, opener: Callable[[], Any]) -> None:
        self._stack = stack
        self._opener = opener
        self._lock = threading.Lock()
        self._client: Any = None
        self._error: BaseException | None = None

    def get(self) -> Any:
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._client is None:
                try:
                    self._client = self._stack.enter_context(self._opener())
                except RunnerError as error:
                    error.stops_run = True  # type: ignore[attr-defined]
                    self._error = error
                    raise
            return self._client


class ClientJobApi:
    """The scheduler's view of an ``InsightsClient`` (or of a ``LazyConnection``)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        source = self._client
        return source.get() if isinstance(source, LazyConnection) else source

    def submit(self, step: Any) -> int | str:
        return self.client.submit(step.operation, step.request)  # type: ignore[no-any-return]

    def status(self, step: Any, job_id: int | str) -> int:
        # v1 ids are ints, v2 ids strings of digits: the client sends each as its API wants
        return self.client.job_status(step.operation, job_id)  # type: ignore[no-any-return]

    def download(self, step: Any, job_id: int | str, dest: Path) -> outputs.FileInfo:
        # The temporary name belongs to this Step's job: a later run resumes it, and a
        # resubmitted job (another id) never mixes its bytes with the old one's.
        partial = outputs.partial_path(dest, f"{step.id}-{job_id}")
        done = self.client.download(step.operation, job_id, dest, partial=partial)
        stat = done.path.stat()
        return outputs.FileInfo(done.path, done.bytes, done.sha256, stat.st_mtime_ns)

    def pages(self, step: Any, start: str | None) -> Iterator[tuple[list[dict], str | None]]:
        op = catalog.operation(step.operation, getattr(step, "api", catalog.DEFAULT_GENERATION))
        cursor: Any = start
        if start is not None and op.paging == "start_page":
            cursor = int(start)
        for page in self.client.iter_pages(step.operation, step.request, start=cursor):
            following = page.next
            yield page.records, None if following is None else str(following)


def max_exports(connection: Any) -> int:
    """The tenant's export slots: its connection's max_exports, else the service's 5."""
    value = connection.get("max_exports") if isinstance(connection, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return catalog.MAX_CONCURRENT_EXPORTS


def slot_tenant(connection: Any) -> str:
    """The key of the tenant whose export slots a job takes, the same for every playbook,
    runner and one-shot command that reaches it: its service (base URL, or region) and app
    (client id), hashed.  The embedded simulator is a run's own tenant."""
    import hashlib
    import json

    values = dict(connection) if isinstance(connection, Mapping) else {}
    if values.get("simulator"):
        return f"embedded-{uuid.uuid4().hex}"
    service = str(values.get("base_url") or "").strip().rstrip("/").lower()
    if not service and values.get("region"):
        from runner import regions

        try:
            service = regions.data_center(str(values["region"])).base_url.rstrip("/").lower()
        except KeyError:
            service = f"region:{values['region']}"
    key = json.dumps([service, str(values.get("client_id") or "").strip()])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@contextlib.contextmanager
def open_connection(plan: Any, base_dir: Path, simulator_options: Mapping[str, Any],
                    playbook: Any = None) -> Iterator[Any]:
    """An ``InsightsClient`` for the plan's connection (starting the simulator if asked).

    With ``playbook``, a mistake in the connection is reported at its file:line:col.
    """
    from runner.client.api import InsightsClient
    from runner.client.connection import resolve_connection, settings_for_simulator
    from runner.generation import api_of

    compiled_again = getattr(plan, "compiled_again", None)
    if compiled_again is not None:  # a plan from the memo keeps no secret: compile them now
        playbook, plan = compiled_again()
    connection = plan.connection
    if isinstance(connection, str):  # runner.inventory.targets resolves names before this
        raise UserError(f"{plan.playbook}: connection {connection!r} names an inventory "
                        "tenant, but no inventory was read (-i FILE)")
    connection = dict(connection or {})
    if connection.get("simulator"):
        from runner.sim import SimConfig, Simulator

        config = SimConfig(**{"seed": 7, "scale": "small", **dict(simulator_options)})
        with Simulator(config) as sim:
            settings = settings_for_simulator(sim, api=api_of(connection),
                                              max_exports=max_exports(connection))
            with InsightsClient(settings) as client:
                yield client
        return
    locate = _locator(playbook)
    settings = resolve_connection(connection, base_dir, locate=locate)
    try:
        client = InsightsClient(settings)  # loads the certificate
    except CredentialError as error:
        if locate is None:
            raise
        file, line, column = locate("connection.certificate")
        raise CredentialError(f"{file}:{line}:{column}: connection.certificate: {error}") from None
    with client:
        yield client


def _locator(playbook: Any) -> Callable[[str], tuple[str, int, int]] | None:
    source = getattr(playbook, "source", None)
    if source is None:
        return None
    if hasattr(source, "locate"):  # a tenant's connection is written in the inventory
        return source.locate  # type: ignore[no-any-return]

    def locate(dotted: str) -> tuple[str, int, int]:
        line, column = source.where(tuple(dotted.split(".")))
        return playbook.file, line, column

    return locate


# ------------------------------------------------------------------------ the run


def _compile_deferred(*args: Any, **kwargs: Any) -> Sequence[Any]:
    from runner.plan import compile_task  # only now: a memo hit needs no template stack

    steps = compile_task(*args, **kwargs)
    crashpoint.hit("deferred-compile")  # compiled; neither remembered nor registered yet
    return steps


ADD_BATCH = 10_000  # Steps handed to the scheduler at a time (see run_plan)


def selected(step: Any, tags: frozenset[str], skip_tags: frozenset[str]) -> bool:
    step_tags = set(step.tags)
    if tags and not (step_tags & tags or "always" in step_tags):
        return False
    return not (skip_tags and step_tags & skip_tags)


def run_plan(
    playbook: Any,
    plan: Any,
    options: RunOptions,
    *,
    on_event: Callable[[Event], None] | None = None,
) -> RunResult:
    """Execute ``plan`` (compiled from ``playbook``) and write its run report."""
    from runner.report import write_junit, write_run_reports

    remote = remote_for(plan)  # output_dir in object storage: made locally, then uploaded
    output_dir = local_output_dir(plan)
    where = options.tenant_state or for_tenant(options.state or options.state_dir,
                                               plan.playbook, None, options.state_namespace)
    state_dir = where.local_dir  # the compiled-task memo: a per-machine cache
    started = time.time()
    run_key = uuid.uuid4().hex[:12]
    steps = [s for s in plan.steps if selected(s, options.tags, options.skip_tags)]
    registry = Registry(plan, output_dir)
    registry.expect(steps)
    known = list(plan.steps)  # every Step planned so far: a deferred task may not collide
    interrupted = False

    if remote is not None:
        remote.check()  # no credentials, no container: exit 2 before any job
    seal = sealed.find(plan, playbook, options, output_dir, where, remote)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(StateStore.open(where.location, namespace=where.namespace))
        run_id = None
        if seal is not None:  # every Step finished, and no file or run since: nothing to do
            run_id = store.begin_run(plan.playbook, plan.fingerprint)
            done = _rerun_sealed(store, run_id, seal, plan, run_key, started, output_dir,
                                 on_event)
            if done is not None:
                return _write_reports(done, remote, options, output_dir, seal)
        client = LazyConnection(stack, functools.partial(
            open_connection, plan, Path(plan.playbook).parent, options.simulator_options,
            playbook))
        if on_event is not None and getattr(on_event, "wants_history", False):
            on_event(("history", durations(store)))  # before --fresh forgets them
        if options.fresh:
            store.clear_steps(plan.playbook)
        if run_id is None:
            run_id = store.begin_run(plan.playbook, plan.fingerprint)
        store.register_steps(run_id, steps)
        scheduler = Scheduler(ClientJobApi(client), store, output_dir, workers=options.workers,
                              poll=options.poll, on_event=on_event, stop=options.stop,
                              max_slots=max_exports(plan.connection), remote=remote,
                              tenant_key=slot_tenant(plan.connection))

        def on_step_done(outcome: Outcome) -> None:
            if registry.step_done(outcome) is None:
                return
            for task in registry.blocked():
                skipped_tasks.append(f"{task.task_name}: a register it needs failed")
            for task in registry.ready():
                # From the state directory's memo when compiled from the same inputs
                # before: a re-run need not read a large register again.
                compiled = registry.compile(
                    playbook, task.task_index, state_dir,
                    functools.partial(_compile_deferred, run_facts=options.run_facts,
                                      existing=tuple(known)))
                known.extend(compiled)
                new = [s for s in compiled if selected(s, options.tags, options.skip_tags)]
                registry.expect(new)
                store.register_steps(run_id, new)  # all of them, before any is acted on
                # In batches: the scheduler reads each batch's states (and job lengths) at
                # once, and 200,000 at once are 100 MiB more at the run's peak.
                for start in range(0, len(new), ADD_BATCH):
                    scheduler.add(new[start:start + ADD_BATCH])

        skipped_tasks: list[str] = []
        try:
            outcomes = scheduler.run(steps, on_step_done=on_step_done)
        except RunnerError as error:
            if error.exit_code != 130:
                # The run cannot go on (service unreachable, credentials refused...): say so
                # in this run's report rather than leave the last run's in its place.
                store.finish_run(run_id, RunStatus.FAILED)
                stopped = RunResult(run_key, plan.playbook, output_dir, None,
                                    list(scheduler.outcomes.values()), [], started,
                                    time.time(), error=str(error), name=plan.name)
                if options.write_report:
                    written = write_run_reports(
                        options.report_path or output_dir / REPORT_NAME, stopped, output_dir)
                    _publish_report(remote, written, options)
                    if options.junit:
                        write_junit(options.junit, stopped)
                raise
            interrupted = True
            outcomes = scheduler.outcomes
        for task in registry.waiting:
            skipped_tasks.append(f"{task.task_name}: its inputs never arrived")
        result = RunResult(run_key, plan.playbook, output_dir, None, list(outcomes.values()),
                           skipped_tasks, started, time.time(), interrupted,
                           name=plan.name)
        status = (RunStatus.INTERRUPTED if interrupted
                  else RunStatus.FAILED if result.failed else RunStatus.SUCCEEDED)
        store.finish_run(run_id, status)
        if status == RunStatus.SUCCEEDED and state_dir is not None and \
                sealed.eligible(plan, options, remote, where) and not registry.waiting:
            if all(outcome.reused for outcome in result.outcomes):
                # this very report (every Step reused): not made a second time
                result.prepared = sealed.seal(result, plan, store, run_id, output_dir, where)
            else:  # with its re-run's report, from the state: that re-run is a sealed one
                _seal_for_rerun(result, plan, steps, store, run_id, output_dir, where)

    if not options.write_report:
        return result
    return _write_reports(result, remote, options, output_dir)


def _seal_for_rerun(result: RunResult, plan: Any, steps: Sequence[Any], store: StateStore,
                    run_id: int, output_dir: Path, where: TenantState) -> None:
    """Seal a finished run that did Steps with its re-run's report (``rerun_view``), all
    of which is let go before this run's own report is made."""
    rows = rerun_rows(result.outcomes, steps, plan.deferred, store)
    if rows is not None:
        made = sealed.seal(result, plan, store, run_id, output_dir, where, rows)
        if made is not None:
            made.close()


def _write_reports(result: RunResult, remote: Any, options: RunOptions, output_dir: Path,
                   seal: sealed.Seal | None = None) -> RunResult:
    """The run's reports (JSON, HTML, JUnit), beside the files; then a sealed plan's seal
    moves on to this run (only once its report is there)."""
    from runner.report import write_junit, write_run_reports

    result.report_path = write_run_reports(options.report_path or output_dir / REPORT_NAME,
                                           result, output_dir)
    _publish_report(remote, result.report_path, options)
    if options.junit:
        write_junit(options.junit, result)
    if seal is not None and result.sealed_run is not None:
        sealed.advance(seal, result.sealed_run)
    return result


def _rerun_sealed(store: StateStore, run_id: int, seal: sealed.Seal, plan: Any, run_key: str,
                  started: float, output_dir: Path,
                  on_event: Callable[[Event], None] | None) -> RunResult | None:
    """The re-run of a sealed plan (``runner.execute.sealed``), or None when the state
    says otherwise (the run just begun then goes the usual way)."""
    this_run = sealed.current(store, run_id, seal)
    if this_run is None:
        return None
    prepared = sealed.prepared_steps(seal)
    if prepared is None:
        return None
    store.move_stamps(seal.run_id, run_id)
    store.finish_run(run_id, RunStatus.SUCCEEDED)
    _LOG.info("%s: a sealed plan: its %d Steps finished in run %d and every file is as it "
              "left them; nothing to do", plan.playbook, len(prepared), seal.run_id)
    if on_event is not None:
        on_event(("sealed", len(prepared)))
    return RunResult(run_key, plan.playbook, output_dir, None, [], [], started, time.time(),
                     name=plan.name, prepared=prepared, sealed_run=this_run)


def durations(store: StateStore) -> dict[str, list[float]]:
    """Seconds each finished Step took in earlier runs, per operation (for the ETA):
    ``finished_at - started_at`` of the succeeded Steps the state still records."""
    seen: dict[str, list[float]] = {}
    for state in store.steps().values():
        if state.status == "succeeded" and state.started_at and state.finished_at:
            seen.setdefault(state.operation, []).append(state.finished_at - state.started_at)
    return seen


def _publish_report(remote: Any, path: Path | None, options: RunOptions) -> None:
    """The run reports (JSON and HTML) go beside the files, in the bucket too (unless
    --report moved them)."""
    if remote is not None and path is not None and options.report_path is None:
        publish_reports(remote, path)


def check_connection(plan: Any, options: RunOptions, playbook: Any = None) -> str:
    """``run --check``: the plan compiles (done by the caller) and the credentials work.

    Gets a token from the identity service; submits nothing and writes no file.
    """
    with open_connection(plan, Path(plan.playbook).parent, options.simulator_options,
                         playbook) as client:
        token = client.auth.token()
        remaining = max(0, int(token.expires_at - time.time()))
        steps = [s for s in plan.steps if selected(s, options.tags, options.skip_tags)]
        exports = sum(1 for s in steps if s.kind == "export")
        changes = sum(1 for s in steps if getattr(s, "changes_tenant", False))
        return (f"check ok: authenticated to {client.settings.base_url} "
                f"(scope {token.scope}, token valid for {remaining} s); "
                f"{len(steps)} steps would run ({exports} exports, "
                f"{len(steps) - exports - changes} queries"
                + (f", {changes} changes to the tenant" if changes else "")
                + f"), {len(plan.deferred)} deferred; nothing was submitted"
                + (" and nothing was changed" if changes else ""))
