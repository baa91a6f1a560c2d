"""What a state store is, whatever keeps it: the Step lifecycle, its guarded transitions,
the records a store returns, and the migration protocol.  ``sqlite.py`` and ``postgres.py``
implement it; both run the same statements (written for SQLite, translated for
PostgreSQL by ``PostgresStore``), so a transition means the same thing on either.

Step lifecycle (every arrow is one guarded ``UPDATE ... WHERE id = ? AND status IN (...)``
in its own transaction; a transition from any other state raises ``TransitionError``)::

    exports   pending ─submitting()─▶ submitting ─submitted(job_id)─▶ submitted
                                                   ─downloading()─▶ downloading
                                                   ─succeeded(bytes, sha256)─▶ succeeded
    queries   pending ─start_paging()─▶ paging ─page(token, records, bytes)─▶ paging ...
                                               ─succeeded(bytes, sha256)─▶ succeeded
    any non-terminal ─failed(error)─▶ failed
    any but pending  ─requeue()─▶ pending        (retry after a failed job, a file that no
                                                  longer matches, or a new run after failure)

The one window where a job can be submitted twice
-------------------------------------------------
``submitting()`` is committed *before* the POST and ``submitted(job_id)`` right after the
service answers, before any polling.  If the process dies after the POST left and before
the job id is committed (one HTTP round trip plus one commit; nothing else happens in
between), the next run finds the Step in ``submitting``: it cannot know whether the
service accepted the job, so it submits again (``submitting()`` is allowed from
``submitting``) and should tell the user that one job may have been submitted twice.
Every other crash point resumes without a second submit: ``submitted``/``downloading``
Steps are polled and downloaded again with the job id they hold.

Paged queries commit ``(next token, records written, partial file size)`` once the pages
before that token have been flushed and fsynced to the partial file; a resume truncates the
partial file to the committed size and asks for the committed token, so no record is lost
or written twice.  A committed token of None after the first page means the last page is
in: the resume only has to finish the file.

History: ``durations`` keeps how long each Step's export job last ran (the scheduler's
queue order and polls read it); ``clear_steps`` and requeues leave it alone.

Migrations: each store keeps ``schema_version`` in its ``meta`` table and a tuple of
migrations, entry i moving the schema from version i to i + 1, each applied in its own
transaction (never edit one that has shipped).  A store written by a newer runner is
refused.

Secrets: the store has no parameter for a token or password.  A Step's request is stored as
JSON, and the encoder refuses a ``Secret`` (and anything that is not plain data).
"""

from __future__ import annotations

import contextlib
import gc
import json
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from runner.errors import RunnerError, UserError
from runner.layout import STATE_DIRNAME
from runner.secret import Secret


class StepStatus(StrEnum):
    PENDING = "pending"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    DOWNLOADING = "downloading"
    PAGING = "paging"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


S = StepStatus
ACTIVE = frozenset({S.SUBMITTING, S.SUBMITTED, S.DOWNLOADING, S.PAGING})


class TransitionError(RuntimeError):
    """A Step was asked to move from a state that does not allow it: a bug, not a user error."""


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CRASHED = "crashed"  # found still "running" by the next run that took the lock


class StepState(NamedTuple):
    """One row of the ``steps`` table (a NamedTuple: resuming builds one per Step, fast)."""

    id: str
    run_id: int | None
    task_index: int
    task_name: str
    operation: str
    kind: str
    output: str | None
    format: str | None
    request: str  # JSON of the Step's request
    status: StepStatus
    job_id: int | str | None
    attempts: int
    page_token: str | None  # the NEXT page to ask for (a token or a StartPage number)
    records: int  # records written so far (committed)
    bytes: int | None  # partial file size while paging; final size once succeeded
    sha256: str | None
    mtime_ns: int | None  # of the finished file, for the cheap "still matches" check
    error: str | None
    started_at: float | None
    submitted_at: float | None
    finished_at: float | None
    updated_at: float
    etag: str | None = None  # of the uploaded blob, when the outputs are in object storage


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    playbook: str
    fingerprint: str
    started: float
    finished: float | None
    status: RunStatus


STEP_COLUMNS = StepState._fields
RUN_COLUMNS = tuple(RunRecord.__dataclass_fields__)
# A Step's run is its stamp's (see register_steps).  Built from the constant column names
# above, never from input.
_RUN_OF_STEP = "(SELECT stamps.run_id FROM stamps WHERE stamps.id = steps.stamp)"
STEP_LIST = ", ".join(_RUN_OF_STEP if name == "run_id" else name for name in STEP_COLUMNS)
_STEP_SELECT = f"SELECT {STEP_LIST} FROM steps"  # noqa: S608
# The scheduler's read: neither the request (it has the plan's own) nor the run.
_STEP_SELECT_LEAN = _STEP_SELECT.replace(" request,", " '' AS request,", 1).replace(
    _RUN_OF_STEP, "NULL", 1)
_OF_RUN = "stamp IN (SELECT id FROM stamps WHERE run_id = ?)"
_IDS_PER_QUERY = 500  # well under SQLite's limit on bound parameters
_SCAN_ABOVE = 20 * _IDS_PER_QUERY  # more ids than this: read them in one scan of the table
_SCAN_PAGE = 20_000
_RUN_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"  # noqa: S608


def default_state_dir(playbook: str | os.PathLike[str]) -> Path:
    """``.insights-runner/`` beside the playbook."""
    return Path(playbook).resolve().parent / STATE_DIRNAME


def _plain(value: Any) -> Any:
    """json.dumps fallback: plain data only, and never a secret."""
    if isinstance(value, Secret):
        raise TypeError("refusing to write a secret into the state store")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in a Step's request")


def request_json(request: Any) -> str:
    """The canonical JSON the store keeps for a Step's request."""
    return json.dumps(request, sort_keys=True, separators=(",", ":"), default=_plain,
                      ensure_ascii=False)


class StateStore:
    """The state of one playbook's Steps.  Open with ``StateStore.open(location)``.

    ``location`` is a folder (SQLite, the default: ``state.db`` in it) or a
    ``postgresql://`` URL (see ``runner.execute.state.open_store``).  Subclasses provide the
    connection: ``_tx`` (one durable write transaction), ``_read`` and ``_job_param``; every
    statement below is theirs to run.
    """

    migrations: ClassVar[tuple[tuple[str, ...], ...]] = ()
    shared = False  # True when several runners may use this state at once (PostgreSQL)
    where: str = ""  # how messages name this state (a folder, or a URL without password)
    path: Path | None = None

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    @classmethod
    def open(cls, location: str | os.PathLike[str], *, readonly: bool = False,
             clock: Callable[[], float] | None = None, namespace: str = "") -> StateStore:
        from runner.execute.state import open_store

        return open_store(location, readonly=readonly, clock=clock, namespace=namespace)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- backend primitives

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction (an object with ``execute``/``executemany``), committed
        durably before the caller goes on."""
        raise NotImplementedError
        yield

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _job_param(self, job_id: int | str) -> Any:
        return job_id

    # --------------------------------------------------------------------- migrations

    def _schema_version(self) -> int:
        """The stored version, read outside any transaction (0 for an empty store)."""
        raise NotImplementedError

    def _version_in(self, conn: Any) -> int:
        """The stored version, read inside the migration's transaction."""
        raise NotImplementedError

    def _lock_schema(self, conn: Any) -> None:
        """Keep other processes from migrating at the same time (inside the transaction)."""

    def _migrate(self) -> None:
        """Upgrade step by step: one transaction per version, so a crash between two
        leaves a valid older schema that the next open goes on from."""
        newest = len(self.migrations)
        while True:
            with self._tx() as conn:
                self._lock_schema(conn)
                version = self._version_in(conn)
                if version > newest:
                    raise UserError(f"the state in {self.where} was written by a newer "
                                    f"insights-runner (schema {version}, this one knows "
                                    f"{newest}); upgrade, or give another --state")
                if version == newest:
                    return
                for statement in self.migrations[version]:
                    conn.execute(statement)
                self._set_version(conn, version + 1)

    def _set_version(self, conn: Any, version: int) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(version),))

    def _check_readable_version(self) -> None:
        version = self._schema_version()
        if version != len(self.migrations):
            raise UserError(f"the state in {self.where} has schema version {version}; "
                            f"this insights-runner reads {len(self.migrations)} (run it once "
                            "to migrate)")

    # ---------------------------------------------------------------------------- runs

    def begin_run(self, playbook: str | os.PathLike[str], fingerprint: str) -> int:
        """Record a new run and return its id.  A run still marked running has crashed."""
        now = self._clock()
        with self._tx() as conn:
            self._mark_crashed(conn, now)
            cursor = conn.execute(
                "INSERT INTO runs (playbook, fingerprint, started, status) VALUES (?, ?, ?, ?) "
                "RETURNING id", (os.fspath(playbook), fingerprint, now, RunStatus.RUNNING.value))
            return int(cursor.fetchone()[0])

    def _mark_crashed(self, conn: Any, now: float) -> None:
        conn.execute("UPDATE runs SET status = ?, finished = ? WHERE status = ?",
                     (RunStatus.CRASHED.value, now, RunStatus.RUNNING.value))

    def finish_run(self, run_id: int, status: RunStatus | str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE runs SET status = ?, finished = ? WHERE id = ?",
                         (RunStatus(status).value, self._clock(), run_id))

    def move_stamps(self, from_run: int, to_run: int) -> None:
        """Stamp every Step of ``from_run`` with ``to_run`` (what ``register_steps`` does
        when a run registers the very Steps of the one before it; ``runner.execute.sealed``
        knows that without the Steps)."""
        with self._tx() as conn:
            conn.execute("UPDATE stamps SET run_id = ? WHERE run_id = ?", (to_run, from_run))

    def run(self, run_id: int) -> RunRecord:
        rows = self._read(_RUN_SELECT + " WHERE id = ?", (run_id,))
        if not rows:
            raise KeyError(run_id)
        return _run(rows[0])

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent runs, newest first (for ``insights-runner status``)."""
        return [_run(row) for row in
                self._read(_RUN_SELECT + " ORDER BY id DESC LIMIT ?", (limit,))]

    def last_run(self) -> RunRecord | None:
        rows = self._read(_RUN_SELECT + " ORDER BY id DESC LIMIT 1")
        return _run(rows[0]) if rows else None

    # --------------------------------------------------------------------- Steps in bulk

    def register_steps(self, run_id: int, steps: Iterable[Any]) -> None:
        """Make every Step of a plan known to the store, in ONE transaction.

        ``steps`` are ``runner.plan.Step`` values (read by attribute: id, task_index,
        task_name, operation, kind, output, format, request).  A new Step is ``pending``; a
        known one keeps its state (that is what resuming means) and is stamped with this run,
        unless its output format changed, in which case it starts over.

        Stamps: a Step's run is that of its ``stamp`` (a row of ``stamps``: an id and a run).
        The Steps registered together share one; when a run registers every Step of a stamp
        again (a re-run of the same plan, or of the same deferred task), the stamp moves to
        the new run, one row written whatever the number of Steps.  Only Steps that leave
        their stamp (a run of some of them: ``--tags``, an edited plan) are rewritten.
        """
        now = self._clock()
        with _gc_paused():  # hundreds of thousands of young tuples: no collection needed
            steps = list(steps)
            known = self._known_ids(str(step.id) for step in steps)
            rows: list[tuple[Any, ...]] = []
            moved: dict[int | None, dict[str, None]] = {}  # stamp -> its Steps, unchanged
            for step in steps:
                step_id = str(step.id)
                stored = known.get(step_id)
                if stored is not None and stored[:3] == _same_row_key(step):
                    moved.setdefault(stored[3], {})[step_id] = None
                else:
                    # A known Step keeps its stored request (the upsert below never changes
                    # it): skip encoding it again (capped lists of e-mails).
                    rows.append(_step_row(step, now, encode=stored is None))
            # In key order: SQLite's B-trees (the table and its indexes) then fill page by
            # page instead of at random (Step ids are hashes), 2x less CPU at 200,000.
            rows.sort(key=_first)
            with self._tx() as conn:
                self._stamp_steps(conn, run_id, moved, rows, known)

    def _stamp_steps(self, conn: Any, run_id: int, moved: Mapping[int | None, Mapping[str, None]],
                     rows: list[tuple[Any, ...]], known: Mapping[str, Any]) -> None:
        """(In register_steps' transaction) move whole stamps to ``run_id``, give the other
        known Steps and the new ones (``rows``) a new stamp of this run."""
        stamp: int | None = None
        now = self._clock()

        def new_stamp() -> int:
            nonlocal stamp
            if stamp is None:
                stamp = int(conn.execute("INSERT INTO stamps (run_id) VALUES (?) RETURNING id",
                                         (run_id,)).fetchone()[0])
            return stamp

        stamps = [old for old in moved if old is not None]
        sizes: dict[int, int] = {}
        for start in range(0, len(stamps), _IDS_PER_QUERY):  # how many Steps each has:
            some = stamps[start:start + _IDS_PER_QUERY]      # a scan (no index on stamp)
            marks = ", ".join("?" * len(some))
            sizes.update(conn.execute(f"SELECT stamp, COUNT(*) FROM steps "  # noqa: S608
                                      f"WHERE stamp IN ({marks}) GROUP BY stamp",
                                      some).fetchall())
        for old, ids in moved.items():
            if old is not None and sizes.get(old) == len(ids):  # every one of its Steps
                conn.execute("UPDATE stamps SET run_id = ? WHERE id = ?", (run_id, old))
                continue
            chunked = list(ids)
            for start in range(0, len(chunked), _IDS_PER_QUERY):
                chunk = chunked[start:start + _IDS_PER_QUERY]
                conn.execute(f"UPDATE steps SET stamp = ?, updated_at = ? "  # noqa: S608
                             f"WHERE id IN ({', '.join('?' * len(chunk))})",
                             (new_stamp(), now, *chunk))
        if not rows:
            return
        # A Step new to the store has nothing to reset (a shared store: another runner
        # may have registered it since it was read, so every row is checked there)
        reset = rows if self.shared else [row for row in rows if row[0] in known]
        conn.executemany(
            "UPDATE steps SET status = 'pending', job_id = NULL, page_token = NULL, "
            "records = 0, bytes = NULL, sha256 = NULL, mtime_ns = NULL, etag = NULL, "
            "error = NULL, attempts = 0, started_at = NULL, submitted_at = NULL, "
            "finished_at = NULL WHERE id = ? AND format IS NOT ?",
            [(row[0], row[6]) for row in reset])
        # The stamp is an int the database gave: written into the statement, not bound
        # per row, so the rows are bound as they were built.
        conn.executemany(
            "INSERT INTO steps (id, task_index, task_name, operation, kind, output, format, "  # noqa: S608
            f"request, updated_at, stamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {new_stamp():d}) "
            "ON CONFLICT(id) DO UPDATE SET stamp = excluded.stamp, "
            "task_index = excluded.task_index, task_name = excluded.task_name, "
            "format = excluded.format, updated_at = excluded.updated_at",
            rows)

    def _known_ids(self, step_ids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
        """The stored (task_index, task_name, format, stamp) of those of ``step_ids`` known.

        Kept lean for 200,000 Steps: keyed by the caller's own id strings, and the Steps of
        one task share one value tuple."""
        ids = {step_id: step_id for step_id in step_ids}
        known: dict[str, tuple[Any, ...]] = {}
        shared: dict[tuple[Any, ...], tuple[Any, ...]] = {}

        def keep(rows: list[tuple[Any, ...]]) -> None:
            for row in rows:
                step_id = ids.get(row[0])
                if step_id is not None:
                    value = tuple(row[1:])
                    known[step_id] = shared.setdefault(value, value)

        select = "SELECT id, task_index, task_name, format, stamp FROM steps"
        if len(ids) > _SCAN_ABOVE:  # one pass over the table beats hundreds of IN (...)
            after = ""
            while True:  # in pages of the primary key, so no page holds every row at once
                rows = self._read(f"{select} WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
                                  (after, _SCAN_PAGE))
                keep(rows)
                if len(rows) < _SCAN_PAGE:
                    return known
                after = rows[-1][0]
        ordered = sorted(ids)  # each query then reads neighbouring pages
        for start in range(0, len(ordered), _IDS_PER_QUERY):
            chunk = ordered[start:start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            keep(self._read(f"{select} WHERE id IN ({marks})", chunk))  # noqa: S608
        return known

    def steps(self, run_id: int | None = None) -> dict[str, StepState]:
        """Every Step the store knows (or only those touched by ``run_id``), in one query."""
        sql = _STEP_SELECT
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += f" WHERE {_OF_RUN}"
            params = (run_id,)
        return {row[0]: _step(row) for row in self._read(sql + " ORDER BY task_index, id", params)}

    def steps_of(self, step_ids: Iterable[str], *, requests: bool = True
                 ) -> dict[str, StepState]:
        """The Steps with these ids (those the store knows), read in a few queries: the
        scheduler asks for each batch it adds, so the cost follows the batch, not the store.
        ``requests=False``: each ``request`` is "" (the scheduler has the plan's own)."""
        ids = list(dict.fromkeys(step_ids))
        found: dict[str, StepState] = {}
        select = _STEP_SELECT if requests else _STEP_SELECT_LEAN
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start:start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(f"{select} WHERE id IN ({marks})", chunk):  # noqa: S608
                found[row[0]] = _step(row)
        return found

    def step(self, step_id: str) -> StepState:
        rows = self._read(_STEP_SELECT + " WHERE id = ?", (step_id,))
        if not rows:
            raise KeyError(step_id)
        return _step(rows[0])

    def counts(self, run_id: int | None = None) -> dict[StepStatus, int]:
        """How many Steps are in each state (every state present, zeros included)."""
        sql = "SELECT status, COUNT(*) FROM steps"
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += f" WHERE {_OF_RUN}"
            params = (run_id,)
        counts = dict.fromkeys(StepStatus, 0)
        for status, count in self._read(sql + " GROUP BY status", params):
            counts[StepStatus(status)] = count
        return counts

    def requeue_failed(self) -> int:
        """A new run retries failed Steps from scratch, with a fresh count of attempts."""
        with self._tx() as conn:
            cursor = conn.execute(
                "UPDATE steps SET status = 'pending', attempts = 0, job_id = NULL, "
                "page_token = NULL, records = 0, bytes = NULL, sha256 = NULL, mtime_ns = NULL, "
                "etag = NULL, started_at = NULL, submitted_at = NULL, finished_at = NULL, "
                "updated_at = ? WHERE status = 'failed'", (self._clock(),))
            return int(cursor.rowcount)

    def clear_steps(self, playbook: str | os.PathLike[str] | None = None) -> int:
        """``--fresh``: forget the state of the Steps last run by ``playbook`` (of every
        Step when None).  Other playbooks sharing the state keep theirs, and files (the
        user's, or partial) are kept."""
        with self._tx() as conn:
            if playbook is None:
                cleared = int(conn.execute("DELETE FROM steps").rowcount)
            else:
                cleared = int(conn.execute(
                    "DELETE FROM steps WHERE stamp IN (SELECT stamps.id FROM stamps JOIN runs "
                    "ON runs.id = stamps.run_id WHERE runs.playbook = ?)",
                    (os.fspath(playbook),)).rowcount)
            # NOT IN a subquery: one scan of steps whatever the number of stamps.
            conn.execute("DELETE FROM stamps WHERE id NOT IN "
                         "(SELECT stamp FROM steps WHERE stamp IS NOT NULL)")
            return cleared

    # ------------------------------------------------------------ job durations (history)

    def durations(self, step_ids: Iterable[str]) -> dict[str, float]:
        """How many seconds the last finished job of each of these Steps ran (those known)."""
        ids = list(dict.fromkeys(step_ids))
        found: dict[str, float] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start:start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT step_id, seconds FROM durations WHERE step_id IN ({marks})"  # noqa: S608
            found.update(self._read(sql, chunk))
        return found

    def record_durations(self, seconds: Mapping[str, float] | Iterable[tuple[str, float]]
                         ) -> None:
        """How long these Steps' export jobs ran (a mapping, or (Step id, seconds) pairs: the
        later of two for one Step counts), in one transaction: for the next runs.  The rows
        are made as SQLite takes them, not listed first (200,000 of them at a run's end)."""
        pairs = seconds.items() if isinstance(seconds, Mapping) else seconds
        now = self._clock()

        def rows() -> Iterator[tuple[str, float, float]]:
            for step_id, value in pairs:
                if not value >= 0:  # (the transaction is rolled back: none is recorded)
                    raise ValueError(f"durations are numbers of seconds >= 0, not {value!r} "
                                     f"(Step {step_id})")
                yield step_id, float(value), now

        with self._tx() as conn:
            conn.executemany("INSERT INTO durations (step_id, seconds, updated_at) "
                             "VALUES (?, ?, ?) ON CONFLICT(step_id) DO UPDATE SET "
                             "seconds = excluded.seconds, updated_at = excluded.updated_at",
                             rows())

    # ------------------------------------------------------------------ transitions

    def submitting(self, step_id: str) -> StepState:
        """Before the POST.  From ``submitting`` too: a resume after a crash in the window."""
        return self._move(step_id, {S.PENDING, S.SUBMITTING}, S.SUBMITTING,
                          "attempts = attempts + 1, job_id = NULL, error = NULL, "
                          "started_at = CASE WHEN status = 'pending' THEN :now "
                          "ELSE started_at END")

    def submitted(self, step_id: str, job_id: int | str) -> StepState:
        """Right after the service accepted the job: committed before any polling."""
        if not isinstance(job_id, (int, str)) or isinstance(job_id, bool) or job_id == "":
            raise TypeError(f"a job id is an int or a non-empty string, not {job_id!r}")
        return self._move(step_id, {S.SUBMITTING}, S.SUBMITTED,
                          "job_id = :job_id, submitted_at = :now",
                          job_id=self._job_param(job_id))

    def downloading(self, step_id: str) -> StepState:
        """The job finished well; from ``downloading`` too, to download again."""
        return self._move(step_id, {S.SUBMITTED, S.DOWNLOADING}, S.DOWNLOADING, "")

    def start_paging(self, step_id: str) -> StepState:
        """A query's first page is about to be asked for."""
        return self._move(step_id, {S.PENDING}, S.PAGING,
                          "attempts = attempts + 1, page_token = NULL, records = 0, bytes = 0, "
                          "error = NULL, started_at = :now")

    def page(self, step_id: str, next_token: str | int | None, records: int,
             partial_bytes: int) -> StepState:
        """A page is flushed and fsynced: commit where the next one starts."""
        if records < 0 or partial_bytes < 0:
            raise ValueError("records and bytes count up from 0")
        token = None if next_token is None else str(next_token)
        return self._move(step_id, {S.PAGING}, S.PAGING,
                          "page_token = :token, records = :records, bytes = :bytes",
                          token=token, records=records, bytes=partial_bytes)

    def succeeded(self, step_id: str, *, bytes: int, sha256: str,
                  mtime_ns: int | None = None, records: int | None = None,
                  etag: str | None = None) -> StepState:
        """The Step's file is in place, whole and verified (and uploaded, with ``etag``)."""
        if len(sha256) != 64:
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self._move(step_id, {S.DOWNLOADING, S.PAGING}, S.SUCCEEDED,
                          "bytes = :bytes, sha256 = :sha256, mtime_ns = :mtime_ns, "
                          "records = COALESCE(:records, records), page_token = NULL, "
                          "etag = :etag, error = NULL, finished_at = :now",
                          bytes=bytes, sha256=sha256, mtime_ns=mtime_ns, records=records,
                          etag=etag)

    def failed(self, step_id: str, error: str) -> StepState:
        """The Step gave up (its retries are spent, or the error is not transient)."""
        return self._move(step_id, {S.PENDING, *ACTIVE}, S.FAILED,
                          "error = :error, finished_at = :now", error=_error_text(error))

    def requeue(self, step_id: str, error: str | None = None, *,
                reset_attempts: bool = False) -> StepState:
        """Back to ``pending``: a failed job to resubmit, or a finished file that no longer
        matches.  ``error`` (why) is kept for the report; attempts are kept unless reset."""
        return self._move(step_id, {*ACTIVE, S.FAILED, S.SUCCEEDED}, S.PENDING,
                          "job_id = NULL, page_token = NULL, records = 0, bytes = NULL, "
                          "sha256 = NULL, mtime_ns = NULL, etag = NULL, finished_at = NULL, "
                          "error = :error, attempts = CASE WHEN :reset THEN 0 ELSE attempts END",
                          error=None if error is None else _error_text(error),
                          reset=reset_attempts)

    def _move(self, step_id: str, allowed: set[StepStatus], new: StepStatus, sets: str,
              **params: Any) -> StepState:
        params.update(id=step_id, new=new.value, now=self._clock())
        names = [f"from{i}" for i in range(len(allowed))]
        params.update(zip(names, (status.value for status in sorted(allowed)), strict=True))
        assignments = "status = :new, updated_at = :now" + (f", {sets}" if sets else "")
        # Every piece of this statement is a constant of this module; values are :named.
        sql = (f"UPDATE steps SET {assignments} WHERE id = :id AND "  # noqa: S608
               f"status IN ({', '.join(':' + n for n in names)}) RETURNING {STEP_LIST}")
        with self._tx() as conn:
            rows = conn.execute(sql, params).fetchall()  # drained before COMMIT
            if not rows:
                current = conn.execute("SELECT status FROM steps WHERE id = ?",
                                       (step_id,)).fetchone()
                where = f"it is {current[0]}" if current else "it is not registered"
                raise TransitionError(f"Step {step_id} cannot become {new.value}: {where} "
                                      f"(allowed from {', '.join(sorted(allowed))})")
        return _step(rows[0])

    # ------------------------------------------ sharing (a no-op for a private store)

    def claim(self, step_id: str) -> bool:
        """Take ``step_id`` for this runner; False while another live runner holds it.
        A private store (SQLite, one run at a time) has one runner: always True."""
        return True

    def acquire_slot(self, tenant: str, step_id: str, limit: int, *, force: bool = False
                     ) -> bool:
        """Lease one of ``tenant``'s export slots for ``step_id``; False when all are held
        (``force``: take it even so, for a job that holds one on the service already).
        A private store (SQLite, one run at a time) has nothing to share: always True."""
        return True

    def release_slot(self, tenant: str, step_id: str) -> None:
        """The job of ``step_id`` ended: its slot is free for any runner."""

    def took_over(self, step_id: str) -> bool:
        """Whether this runner's claim on ``step_id`` was taken from a dead runner."""
        return False

    def claimed_elsewhere(self, step_ids: list[str]) -> set[str]:
        """Which of these Steps other live runners hold (none, for a private store)."""
        return set()


def store_error(where: str, exc: object) -> RunnerError:
    return RunnerError(f"the state store {where} failed: {exc}")


def _step_row(step: Any, now: float, encode: bool = True) -> tuple[Any, ...]:
    """(id, task_index, task_name, operation, kind, output, format, request, updated_at);
    ``encode=False``: the Step is stored already and keeps its request ("" in its place)."""
    operation = getattr(step.operation, "name", step.operation)
    output = getattr(step, "output", None)
    request = request_json(getattr(step, "request", {})) if encode else ""
    return (
        str(step.id), int(step.task_index), str(getattr(step, "task_name", "") or ""),
        str(operation), str(step.kind), None if output is None else os.fspath(output),
        getattr(step, "format", None), request, now,
    )


def _same_row_key(step: Any) -> tuple[Any, ...]:
    """What ``_step_row`` would put in (task_index, task_name, format), built alone: a
    re-run compares it with the stored one for every Step."""
    return (int(step.task_index), str(getattr(step, "task_name", "") or ""),
            getattr(step, "format", None))


_first = operator.itemgetter(0)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a bulk loop builds rows: with a compiled plan of
    200,000 Steps alive, each full collection walks all of it for nothing (the rows hold no
    cycles).  Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_STATUS_AT = STEP_COLUMNS.index("status")
_STATUSES = {status.value: status for status in StepStatus}


def _step(row: tuple[Any, ...]) -> StepState:
    return StepState._make((*row[:_STATUS_AT], _STATUSES[row[_STATUS_AT]],
                            *row[_STATUS_AT + 1:]))


def _run(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(RUN_COLUMNS, row, strict=True))
    values["status"] = RunStatus(values["status"])
    return RunRecord(**values)


def _error_text(error: object) -> str:
    if isinstance(error, Secret):
        raise TypeError("refusing to write a secret into the state store")
    text = str(error)
    return text if len(text) <= 4000 else text[:4000] + " …"
