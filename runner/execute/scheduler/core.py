"""The scheduler itself: one tenant's queue of Steps, its export slots, and the loop that
submits, polls and hands finished jobs to the workers (the package's docstring says how)."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from runner import catalog, crashpoint
from runner.errors import (
    AuthError,
    Interrupted,
    RequestRejected,
    RunnerError,
    SlotsBusy,
    UnreachableError,
)
from runner.execute import outputs, postprocess
from runner.execute.paging import QueryFile, page_query
from runner.execute.state import StateStore, StepState, StepStatus, TransitionError

from .policy import PollPolicy
from .records import ActiveJob, JobSpan, Outcome, reused_values
from .sharing import SharingMixin
from .stop import Stop
from .workers import Result, WorkerPool

S = StepStatus
# Errors that no other Step could get past either: the run stops, its state kept.
FATAL = (UnreachableError, AuthError)


class JobApi(Protocol):
    """What the scheduler needs from the service (see ``runner.execute.engine``)."""

    def submit(self, step: Any) -> int | str: ...

    def status(self, step: Any, job_id: int | str) -> int: ...

    def download(self, step: Any, job_id: int | str, dest: Path) -> outputs.FileInfo: ...

    def pages(self, step: Any, start: str | None) -> Iterator[tuple[list[dict], str | None]]: ...

Event = tuple[str, Any]  # (kind, payload) for progress displays
MAX_WAIT_SECONDS = 5.0  # the longest the scheduler waits without looking again
ODD_STATUS_LIMIT = 5  # status answers of 0 or an unknown code before the Step fails


class Scheduler(SharingMixin):
    def __init__(
        self,
        api: JobApi,
        store: StateStore,
        output_dir: Path,
        *,
        max_slots: int = catalog.MAX_CONCURRENT_EXPORTS,
        workers: int = 4,
        poll: PollPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_event: Callable[[Event], None] | None = None,
        max_poll_errors: int = 20,
        checkpoint_seconds: float = 2.0,
        stop: Stop | None = None,
        sleep: Callable[[float], None] | None = None,
        remote: Any = None,
        tenant_key: str = "",
    ) -> None:
        self.api = api
        self.checkpoint_seconds = checkpoint_seconds
        self.store = store
        self.output_dir = Path(output_dir)
        self.max_slots = max_slots
        self.poll = poll or PollPolicy()
        self.clock = clock
        self.wall = wall
        self.sleep = sleep  # None: wait on the workers' queue (a test's virtual clock: its sleep)
        self.on_event = on_event or (lambda event: None)
        self.max_poll_errors = max_poll_errors
        self.outcomes: dict[str, Outcome] = {}
        self._exports: deque[Any] = deque()
        self._expected: dict[str, float] = {}  # Step id -> its job's length from history
        # measured this run, not yet in the store: two columns (a dict was ~70 B a Step)
        self._length_ids: list[str] = []
        self._lengths = array("d")
        self._real_output: str | None = None
        self._real_folders: dict[str, str] = {}  # each output folder's real path, this run
        self._jobs: dict[str, ActiveJob] = {}
        self._workers = WorkerPool(workers)  # downloads and paged queries
        self._busy_until = 0.0
        self._busy_backoff = 0.0
        self._on_step_done: Callable[[Outcome], None] = lambda outcome: None
        self._owns_stop = stop is None
        self.stop = stop or Stop()
        # Outputs in object storage (runner.execute.remote.RemoteOutputs): each file made in
        # output_dir (then a local staging folder) is uploaded before its Step succeeds.
        self.remote = remote
        self._etags: dict[str, str] = {}
        # A shared state (PostgreSQL, several runners): each Step is claimed by one runner,
        # and each export job holds one of the tenant's slots leased in the database (the
        # tenant is ``tenant_key``).  Steps another live runner holds are watched, the
        # database re-read every ``FOREIGN_SECONDS``, until they end or are taken over.
        self.tenant_key = tenant_key
        self._foreign: dict[str, Any] = {}
        self._foreign_due = 0.0
        self._slot_waits: dict[str, float] = {}  # Step id -> when it began to wait

    # ------------------------------------------------------------------ public API

    def run(self, steps: Sequence[Any], *, on_step_done: Callable[[Outcome], None] | None = None
            ) -> dict[str, Outcome]:
        """Run ``steps`` (registered in the store already) until each is done or failed.

        ``on_step_done`` is called in the scheduler's thread as each Step ends; it may call
        ``add`` to schedule Steps of a deferred task whose inputs now exist.
        """
        if on_step_done is not None:
            self._on_step_done = on_step_done
        self._workers.start()
        self.stop.add_waker(self._workers.interrupt)
        sigint = self.stop.on_sigint() if self._owns_stop else contextlib.nullcontext()
        try:
            with sigint:
                self.add(steps)
                self._loop()
        except KeyboardInterrupt:
            self._workers.stopping.set()
            for outcome in self.outcomes.values():
                if outcome.status == "pending":
                    outcome.status = "interrupted"
            raise Interrupted("interrupted; submitted jobs are recorded for the next run") from None
        finally:
            self._workers.stop()
            self._save_lengths()
        return self.outcomes

    def _save_lengths(self) -> None:
        """History is advice for later runs, so it is written once, as the run ends (a
        commit per job would delay the next submit); a crash loses only this run's."""
        ids, lengths = self._length_ids, self._lengths
        self._length_ids, self._lengths = [], array("d")
        if ids:
            with contextlib.suppress(RunnerError):
                self.store.record_durations(zip(ids, lengths, strict=True))

    def _check_interrupt(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt

    def add(self, steps: Sequence[Any]) -> None:
        """Queue Steps, resuming each from what the state store says of it."""
        states = self.store.steps_of((step.id for step in steps), requests=False)
        now = self.clock()
        # Each id once: a Step already scheduled (same request and output) is not run again.
        fresh = list({s.id: s for s in steps if s.id not in self.outcomes}.values())
        self._emit("added", fresh)  # progress counts deferred tasks' Steps too
        for step in fresh:
            outcome = self.outcomes.setdefault(step.id, Outcome(step))
            state = states.get(step.id)
            if state is None:
                raise RunnerError(f"Step {step.id} was not registered in the state store")
            self._resume(step, state, outcome, now)
        self._order_queue(step for step in fresh if step.kind == "export")

    def _order_queue(self, exports: Iterator[Any]) -> None:
        """Longest known job first (LPT); unknown lengths first of all, in plan order."""
        self._expected.update(self.store.durations(step.id for step in exports))
        if not self._expected or len(self._exports) < 2:
            return
        expected = self._expected
        self._exports = deque(sorted(  # stable: equal keys keep the plan's order
            self._exports, key=lambda step: -expected.get(step.id, float("inf"))))

    # ------------------------------------------------------------------ resumption

    def _resume(self, step: Any, state: StepState, outcome: Outcome, now: float) -> None:
        outcome.attempts = state.attempts
        outcome.job_id = state.job_id
        if state.status == S.SUCCEEDED and self.remote is not None:
            if self.remote.matches(step.output, state.bytes, state.etag):
                self._finish(outcome, "succeeded", reused=True, **reused_values(state))
                return
            if self._claim_for_work(step, state, outcome, now) is None:
                return
            state = self.store.requeue(step.id, "its blob is missing or changed; making it "
                                       "again", reset_attempts=True)
        if state.status == S.SUCCEEDED:
            target = self._target_text(step)
            if outputs.file_matches(target, state.bytes, state.sha256, state.mtime_ns):
                try:  # a no-op when its files are still there
                    if postprocess.wanted(step):
                        outcome.files = self._postprocess(step, Path(target))
                except RunnerError as error:
                    self._fail(step, error)
                    return
                self._finish(outcome, "succeeded", reused=True, **reused_values(state))
                return
            if self._claim_for_work(step, state, outcome, now) is None:
                return
            state = self.store.requeue(step.id, "its file is missing or changed; making it again",
                                       reset_attempts=True)
        if state.status == S.FAILED:
            if self._claim_for_work(step, state, outcome, now) is None:
                return
            state = self.store.requeue(step.id, reset_attempts=True)
            outcome.attempts = 0
        if step.kind != "export" or state.status != S.PENDING:  # a pending export is
            fresh = self._claim_for_work(step, state, outcome, now)  # claimed at its submit
            if fresh is None:
                return
            state = fresh
        if step.kind == "export":
            if state.status in (S.SUBMITTED, S.DOWNLOADING) and state.job_id is not None:
                # Re-attach: the job is (or was) on the service; poll it, never resubmit.
                # Its job holds one of the tenant's slots, whatever the leases say.
                self._lease_slot(step, force=True)
                span = JobSpan(state.job_id, state.submitted_at)
                outcome.add_job(span)
                self._jobs[step.id] = ActiveJob(step, state.job_id, now, now, reattached=True,
                                           span=span)
                self._emit("reattached", step)
            elif state.status == S.SUBMITTING:
                outcome.warn(
                    "the previous run stopped while submitting this job: it may have been "
                    "submitted twice (the documented crash window)")
                self._exports.append(step)
            else:
                self._exports.append(step)
        else:
            self._workers.dispatch(step, self._query, state)

    def _target(self, step: Any) -> Path:
        return Path(self._target_text(step))

    def _target_text(self, step: Any) -> str:
        if self._real_output is None:  # once: the folder does not move during a run
            self._real_output = os.path.realpath(self.output_dir)
        return outputs.resolve_output_text(self.output_dir, step.output,
                                           real_base=self._real_output,
                                           real_folders=self._real_folders)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while self._exports or self._jobs or self._workers.outstanding or self._foreign:
            self._check_interrupt()
            self._check_foreign()
            self._submit_ready()
            self._wait()
            self._check_interrupt()
            self._poll_due()

    def _submit_ready(self) -> None:
        now = self.clock()
        while self._exports and len(self._jobs) < self.max_slots and now >= self._busy_until:
            self._check_interrupt()
            step = self._exports.popleft()
            outcome = self.outcomes[step.id]
            if self.store.shared:
                turn = self._shared_turn(step, now)
                if turn == "elsewhere":
                    continue
                if turn == "wait":
                    return
            try:
                state = self.store.submitting(step.id)
            except BaseException:
                self._free_slot(step.id)
                raise
            outcome.attempts = state.attempts
            sent = self.wall()  # its first submit's time is the Step's start (one float)
            outcome.started = outcome.started or sent
            try:
                crashpoint.hit("before-submit")
                job_id = self.api.submit(step)
                crashpoint.hit("after-submit")
            except SlotsBusy:
                # Another client holds slots on this tenant: not a failure, wait our turn.
                self._free_slot(step.id)
                self.store.requeue(step.id, "the service's five export slots were busy")
                self._exports.appendleft(step)
                self._busy_backoff = min(30.0, max(1.0, self._busy_backoff * 2))
                self._busy_until = now + self._busy_backoff
                self._emit("slots_busy", step)
                return
            except RunnerError as error:
                self._free_slot(step.id)  # no job that this run polls holds it
                if not _maybe_created(error):
                    if isinstance(error, UnreachableError):  # never sent: nothing to fear
                        self.store.requeue(step.id, str(error))
                    self._fail(step, error)
                    continue
                # The service may have created the job although we have no id for it:
                # submit again (the task's retries bound it) and say so in the report.
                reason = (f"submitting failed ({error}); the service may hold a job for it "
                          "that this run does not track")
                self._retry_or_fail(step, reason, functools.partial(self._resubmit, step, reason))
                self._busy_until = now + self.poll.floor
                return
            self._busy_backoff = 0.0
            self.store.submitted(step.id, job_id)
            crashpoint.hit("job-id-committed")
            span = JobSpan(job_id, sent)
            outcome.add_job(span)  # (its job_id too)
            expected = self._expected.get(step.id)
            self._jobs[step.id] = ActiveJob(step, job_id, now, now + self.poll.delay(0, expected),
                                       expected=expected, span=span)
            self._emit("submitted", step)
            now = self.clock()

    def _wait(self) -> None:
        """Sleep until the next poll is due, handling worker results as they arrive.

        Never for ever: with nothing left (the Steps other runners held have just ended, or
        the last submit failed) it returns at once, and it wakes at least every
        ``MAX_WAIT_SECONDS`` whatever it waits for."""
        if not (self._exports or self._jobs or self._workers.outstanding or self._foreign):
            return
        deadlines = [job.next_poll for job in self._jobs.values()]
        if self._foreign:
            deadlines.append(self._foreign_due)
        if self._exports and len(self._jobs) < self.max_slots:
            deadlines.append(self._busy_until)
        timeout = max(0.0, min(deadlines) - self.clock()) if deadlines else None
        if self.sleep is None:
            timeout = MAX_WAIT_SECONDS if timeout is None else min(timeout, MAX_WAIT_SECONDS)
        if self.sleep is not None and timeout is not None:
            self.sleep(timeout)  # time moves only by this sleep; then take what is ready
        else:
            try:
                result = self._workers.results.get(timeout=timeout)
            except queue.Empty:
                return
            self._handle(result)
        while True:  # drain whatever else is ready without waiting
            try:
                self._handle(self._workers.results.get_nowait())
            except queue.Empty:
                return

    def _poll_due(self) -> None:
        now = self.clock()
        for step_id, job in list(self._jobs.items()):
            if job.next_poll > now:
                continue
            try:
                status = self.api.status(job.step, job.job_id)
            except RunnerError as error:
                job.poll_errors += 1
                if _fatal(error):
                    raise
                if _job_unknown(error):
                    self._release(step_id, "unknown")
                    self._job_unknown(job)
                elif not error.transient or job.poll_errors > self.max_poll_errors:
                    self._release(step_id, "abandoned")
                    self._fail(job.step, error)
                else:
                    job.next_poll = now + self.poll.delay(now - job.submitted, job.expected)
                continue
            if status not in catalog.TERMINAL_STATUSES:
                problem = self._still_running_problem(job, status, now)
                if problem is None:
                    job.running_at = now - job.submitted
                    job.next_poll = now + self.poll.delay(now - job.submitted, job.expected)
                else:
                    self._release(step_id, "abandoned")
                    self._fail(job.step, RunnerError(problem))
                continue
            self._release(step_id, catalog.EXPORT_STATUS.member(status).name)  # slot is free
            self._emit("job_finished", job.step)
            if status in catalog.DOWNLOADABLE_STATUSES and not job.reattached:
                # It ended between the last two polls: the middle is the best estimate.
                self._length_ids.append(step_id)
                self._lengths.append((job.running_at + now - job.submitted) / 2)
            # The next job first: the slot's time is the tenant's scarcest resource, and a
            # crash before the download is committed only re-attaches the ended job.
            self._submit_ready()
            self._job_ended(job, status)
            now = self.clock()

    def _release(self, step_id: str, how: str) -> None:
        """The job no longer holds a slot: forget it, and note when in its span."""
        job = self._jobs.pop(step_id)
        if job.span is not None:
            self.outcomes[step_id].end_job(job.span, self.wall(), how)
        if self.store.shared:
            self._free_slot(step_id)
            if self._busy_backoff == 0.0:  # not a refusal's back-off: a slot is free now
                self._busy_until = min(self._busy_until, self.clock())

    def _still_running_problem(self, job: ActiveJob, status: int, now: float) -> str | None:
        """Why to stop waiting for a job that is not finished, if there is a reason."""
        if status not in catalog.EXPORT_STATUS.codes or status == catalog.STATUS_NONE:
            job.odd_answers += 1  # an answer that means nothing about the job
            if job.odd_answers > ODD_STATUS_LIMIT:
                return f"export job {job.job_id}: the service keeps answering status {status}"
        if now - job.submitted > self.poll.max_job_seconds:
            hours = self.poll.max_job_seconds / 3600
            return (f"export job {job.job_id} was still not finished after {hours:g} h; "
                    "gave up waiting (it may still finish on the service)")
        return None

    def _job_unknown(self, job: ActiveJob) -> None:
        """The service answers 404 for the job.  After a re-attach the job may simply have
        expired (or the service was reset): submit it anew, once.  Otherwise it is a
        failure of the job, counted against the task's retries."""
        outcome = self.outcomes[job.step.id]
        reason = f"the service no longer knows job {job.job_id}"
        if job.reattached and not outcome.resubmitted_unknown:
            outcome.resubmitted_unknown = True
            self.store.requeue(job.step.id, reason)
            outcome.warn(f"{reason}; submitted again")
            self._exports.append(job.step)
            return
        self._retry_or_fail(job.step, reason, lambda: self._resubmit(job.step, reason))

    def _job_ended(self, job: ActiveJob, status: int) -> None:
        step, outcome = job.step, self.outcomes[job.step.id]
        if status in catalog.DOWNLOADABLE_STATUSES:
            if status == catalog.STATUS_SUCCEEDED_WITH_EXCEPTIONS:
                outcome.warn("the service exported this report with exceptions")
            if self.store.step(step.id).status != S.DOWNLOADING:
                self.store.downloading(step.id)
            self._workers.dispatch(step, self._download, job.job_id)
            return
        reason = f"export job {job.job_id} ended: {catalog.EXPORT_STATUS.label(status)}"
        self._retry_or_fail(step, reason, lambda: self._resubmit(step, reason))

    def _retry_or_fail(self, step: Any, reason: str, again: Callable[[], None]) -> None:
        """One more try of the Step (``again``) while its task's ``retries`` last."""
        outcome = self.outcomes[step.id]
        outcome.job_failures += 1
        if outcome.job_failures > step.retries:
            self._fail(step, RunnerError(reason))
            return
        outcome.warn(f"{reason}; trying again")
        self._emit("retry", step)
        again()

    def _resubmit(self, step: Any, reason: str) -> None:
        self.store.requeue(step.id, reason)
        self._exports.append(step)

    # ------------------------------------------------------------------ workers

    def _handle(self, result: Result) -> None:
        kind, step, payload = result
        if kind == "interrupt":
            raise KeyboardInterrupt
        self._workers.taken()
        if kind == "error":
            if isinstance(payload, KeyboardInterrupt):
                raise payload
            if isinstance(payload, RunnerError) and payload.transient and not _fatal(payload):
                # The client's own retries are spent: try the download or the query again
                # (from the bytes or the page it reached) while the task's retries last.
                self._retry_or_fail(step, str(payload), lambda: self._again(step))
                return
            self._fail(step, payload)
            return
        info: outputs.FileInfo = payload
        state = self.store.succeeded(step.id, bytes=info.size, sha256=info.sha256,
                                     mtime_ns=info.mtime_ns,
                                     records=getattr(info, "records", None),
                                     etag=self._etags.pop(step.id, None))
        self._finish(self.outcomes[step.id], "succeeded", bytes=info.size, sha256=info.sha256,
                     records=state.records if step.kind == "query" else None)

    def _again(self, step: Any) -> None:
        state = self.store.step(step.id)
        if step.kind == "export":
            self._workers.dispatch(step, self._download, state.job_id)
        else:
            self._workers.dispatch(step, self._query, state)

    def _download(self, step: Any, job_id: int | str) -> outputs.FileInfo:
        self._emit("downloading", step)
        info = self.api.download(step, job_id, self._target(step))
        self.outcomes[step.id].files = self._postprocess(step, info.path)
        self._upload(step, info.path, info.sha256)
        return info

    def _upload(self, step: Any, path: Path, sha256: str) -> None:
        """Object storage: the verified file (and what was extracted from it) uploaded
        whole; the blob's etag is committed with the Step's success."""
        if self.remote is None:
            return
        self.remote.upload_files([self.output_dir / f for f in self.outcomes[step.id].files])
        self._etags[step.id] = self.remote.upload(path, step.output, sha256)

    def _postprocess(self, step: Any, path: Path) -> Sequence[str]:
        # (none: the shared empty tuple, not a list a Step: 11 MB of a 200,000-Step re-run)
        return postprocess.relative(postprocess.postprocess(step, path), self.output_dir) or ()

    def _query(self, step: Any, state: StepState) -> QueryFile:
        done = page_query(step, state, self.api.pages, self.store, self._target(step),
                          stop=self._workers.stopping, clock=self.clock,
                          checkpoint_seconds=self.checkpoint_seconds, emit=self._emit)
        self._upload(step, done.info.path, done.sha256)
        return done

    # ------------------------------------------------------------------ endings

    def _fail(self, step: Any, error: BaseException) -> None:
        if _fatal(error):
            # The client has already retried: the service is out of reach or refuses us.
            # Stop the run (exit 3) and leave this Step's state as it is for the next run.
            raise error
        message = str(error) or type(error).__name__
        with contextlib.suppress(TransitionError):  # already failed
            self.store.failed(step.id, message)
        self._finish(self.outcomes[step.id], "failed", error=message)

    def _finish(self, outcome: Outcome, status: str, *, reused: bool = False, **values: Any
                ) -> None:
        outcome.status = status
        outcome.reused = reused
        outcome.finished = self.wall()
        for name, value in values.items():
            setattr(outcome, name, value)
        self._emit("reused" if reused else status, outcome.step)
        self._on_step_done(outcome)

    def _emit(self, kind: str, payload: Any) -> None:
        self.on_event((kind, payload))

    # ------------------------------------------------------------------ views

    @property
    def slots_in_use(self) -> int:
        return len(self._jobs)


def _maybe_created(error: RunnerError) -> bool:
    """A submit that failed after it may have reached the service (5xx, dropped)."""
    if isinstance(error, UnreachableError):
        return error.request_sent
    return error.transient and not isinstance(error, SlotsBusy) and not _fatal(error)


def _fatal(error: BaseException) -> bool:
    """Errors no other Step could get past either, and the connection failing to open
    (``engine.LazyConnection`` marks those ``stops_run``)."""
    return isinstance(error, FATAL) or getattr(error, "stops_run", False)


def _job_unknown(error: RunnerError) -> bool:
    return isinstance(error, RequestRejected) and getattr(error, "status", None) == 404
