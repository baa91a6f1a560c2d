"""The state store: what each Step of a playbook has done, kept in SQLite so a run can resume.

One database file (``state.db``) and one lock file (``lock``) live in the state directory
(by default ``.insights-runner/`` beside the playbook).  The database is in WAL mode with
``synchronous=FULL``: a transition is durable, even across a power loss, when its method
returns.

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
the job id is committed (one HTTP round trip plus one SQLite commit; nothing else happens
in between), the next run finds the Step in ``submitting``: it cannot know whether the
service accepted the job, so it submits again (``submitting()`` is allowed from
``submitting``) and should tell the user that one job may have been submitted twice.
Every other crash point resumes without a second submit: ``submitted``/``downloading``
Steps are polled and downloaded again with the job id they hold.

Paged queries commit ``(next token, records written, partial file size)`` once the pages
before that token have been flushed and fsynced to the partial file (the scheduler does so
for the first page and then every few seconds) (see ``runner.execute.outputs``); a resume
truncates the partial file to the committed size and asks for the committed token, so no
record is lost or written twice.  A committed token of None after the first page means the
last page is in: the resume only has to finish the file.

History: ``durations`` keeps how long each Step's export job last ran (the scheduler's
queue order and polls read it); ``clear_steps`` and requeues leave it alone.

Threads: the store holds ONE connection guarded by a lock; every method takes the lock for
its whole transaction, so the scheduler's threads may share one ``StateStore``.  SQLite
serialises writers anyway, and these transactions are a single statement or one batch.

Secrets: the store has no parameter for a token or password.  A Step's request is stored as
JSON, and the encoder refuses a ``Secret`` (and anything that is not plain data).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from runner.errors import RunnerError, StateLockedError, UserError
from runner.layout import STATE_DIRNAME
from runner.secret import Secret

DB_NAME = "state.db"
LOCK_NAME = "lock"
SCHEMA_VERSION = 2


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


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    playbook: str
    fingerprint: str
    started: float
    finished: float | None
    status: RunStatus


_STEP_COLUMNS = StepState._fields
_RUN_COLUMNS = tuple(RunRecord.__dataclass_fields__)
# Built from the constant column names above, never from input.
_STEP_LIST = ", ".join(_STEP_COLUMNS)
_STEP_SELECT = f"SELECT {_STEP_LIST} FROM steps"  # noqa: S608
_IDS_PER_QUERY = 500  # well under SQLite's limit on bound parameters
_RUN_SELECT = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"  # noqa: S608

# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            playbook TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            started REAL NOT NULL,
            finished REAL,
            status TEXT NOT NULL)""",
        # job_id has no declared type so an int stays an int and a string a string.
        """CREATE TABLE steps (
            id TEXT PRIMARY KEY NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            task_index INTEGER NOT NULL,
            task_name TEXT NOT NULL DEFAULT '',
            operation TEXT NOT NULL,
            kind TEXT NOT NULL,
            output TEXT,
            format TEXT,
            request TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            job_id,
            attempts INTEGER NOT NULL DEFAULT 0,
            page_token TEXT,
            records INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER,
            sha256 TEXT,
            mtime_ns INTEGER,
            error TEXT,
            started_at REAL,
            submitted_at REAL,
            finished_at REAL,
            updated_at REAL NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX steps_status ON steps(status)",
    ),
    (
        # How long each Step's export job last ran (history for the scheduler's queue
        # order and polls).  Its own table: --fresh and requeues forget a Step's state,
        # not how long its job takes.
        """CREATE TABLE durations (
            step_id TEXT PRIMARY KEY NOT NULL,
            seconds REAL NOT NULL,
            updated_at REAL NOT NULL) WITHOUT ROWID""",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def default_state_dir(playbook: str | os.PathLike[str]) -> Path:
    """``.insights-runner/`` beside the playbook."""
    return Path(playbook).resolve().parent / STATE_DIRNAME


# ------------------------------------------------------------------------------- lock


class StateLock:
    """An exclusive ``flock`` on ``<state dir>/lock``, with who holds it written inside.

    The kernel drops a ``flock`` when its holder dies (even on SIGKILL), so a lock can never
    go stale the way a pid file does.  It guards against a second run on the same host; on a
    network file system ``flock`` may not be shared between hosts (keep state local).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateLockedError(
                f"the state directory {self.path.parent} is in use by another run "
                f"({holder}); wait for it to finish, or give this run another --state-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown: it has only just started"


# ------------------------------------------------------------------------------ store


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
    """The state of one state directory.  Open with ``StateStore.open(dir)``; close when done.

    ``open`` takes the directory's lock (``StateLockedError`` if another run holds it) and
    migrates the schema; ``open(dir, readonly=True)`` takes no lock and writes nothing, for
    ``insights-runner status`` while a run is going.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: StateLock | None,
                 clock: Callable[[], float]) -> None:
        self._conn = conn
        self.path = path
        self._lock = lock
        self._clock = clock
        self._mutex = threading.RLock()

    # -------------------------------------------------------------- opening and closing

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str], *, readonly: bool = False,
             clock: Callable[[], float] = time.time) -> StateStore:
        directory = Path(state_dir)
        path = directory / DB_NAME
        if readonly:
            if not path.exists():
                raise UserError(f"no state in {directory}: the playbook has not run yet")
            conn = _connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            store = cls(conn, path, None, clock)
            try:
                version = store._schema_version()
                if version != SCHEMA_VERSION:
                    raise UserError(f"the state in {directory} has schema version {version}; "
                                    f"this insights-runner reads {SCHEMA_VERSION} (run it once "
                                    "to migrate)")
            except BaseException:
                conn.close()
                raise
            return store
        lock = StateLock(directory / LOCK_NAME)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            ignore = directory / ".gitignore"
            if not ignore.exists():  # state is per machine: keep it out of the user's git
                ignore.write_text("*\n", encoding="utf-8")
            lock.acquire()
        except OSError as exc:
            raise UserError(f"cannot use the state directory {directory}: {exc.strerror or exc}"
                            " (give another with --state-dir)") from exc
        try:
            conn = _connect(str(path))
            store = cls(conn, path, lock, clock)
            try:
                store._setup()
            except BaseException:
                conn.close()
                raise
        except BaseException:
            lock.release()
            raise
        return store

    def close(self) -> None:
        with self._mutex:
            self._conn.close()
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _setup(self) -> None:
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a readable state file ({exc}); move it "
                            "away or give another --state-dir") from exc
        if str(mode).lower() != "wal":
            raise UserError(f"the state file {self.path} cannot use SQLite's WAL mode here "
                            f"(got {mode!r}); put the state directory on a local disk")
        self._migrate()

    def _schema_version(self) -> int:
        try:
            with self._mutex:
                has_meta = self._conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
                ).fetchone()
                if not has_meta:
                    return 0
                row = self._conn.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a readable state file ({exc}); move it away "
                            "or give another --state-dir") from exc
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self._schema_version()
        if version > SCHEMA_VERSION:
            raise UserError(f"the state in {self.path.parent} was written by a newer "
                            f"insights-runner (schema {version}, this one knows "
                            f"{SCHEMA_VERSION}); upgrade, or give another --state-dir")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx() as conn:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute("INSERT OR REPLACE INTO meta (key, value) "
                             "VALUES ('schema_version', ?)", (str(target),))

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (durably) before the caller goes on."""
        with self._mutex:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise RunnerError(f"the state store {self.path} failed: {exc}") from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise RunnerError(f"the state store {self.path} failed: {exc}") from exc

    # ---------------------------------------------------------------------------- runs

    def begin_run(self, playbook: str | os.PathLike[str], fingerprint: str) -> int:
        """Record a new run and return its id.  A run still marked running has crashed."""
        now = self._clock()
        with self._tx() as conn:
            conn.execute("UPDATE runs SET status = ?, finished = ? WHERE status = ?",
                         (RunStatus.CRASHED, now, RunStatus.RUNNING))
            cursor = conn.execute(
                "INSERT INTO runs (playbook, fingerprint, started, status) VALUES (?, ?, ?, ?)",
                (os.fspath(playbook), fingerprint, now, RunStatus.RUNNING))
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: RunStatus | str) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE runs SET status = ?, finished = ? WHERE id = ?",
                         (RunStatus(status), self._clock(), run_id))

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
        """
        now = self._clock()
        steps = list(steps)
        # A known Step keeps its stored request (the upsert below never changes it): skip
        # encoding it again, the most of a re-run's cost here (capped lists of e-mails).
        known = self._known_ids(str(step.id) for step in steps)
        rows = [_step_row(step, run_id, now, encode=str(step.id) not in known) for step in steps]
        with self._tx() as conn:
            conn.executemany(
                "UPDATE steps SET status = 'pending', job_id = NULL, page_token = NULL, "
                "records = 0, bytes = NULL, sha256 = NULL, mtime_ns = NULL, error = NULL, "
                "attempts = 0, started_at = NULL, submitted_at = NULL, finished_at = NULL "
                "WHERE id = ? AND format IS NOT ?",
                [(row[0], row[7]) for row in rows])
            conn.executemany(
                "INSERT INTO steps (id, run_id, task_index, task_name, operation, kind, output,"
                " format, request, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET run_id = excluded.run_id, "
                "task_index = excluded.task_index, task_name = excluded.task_name, "
                "format = excluded.format, updated_at = excluded.updated_at",
                rows)

    def _known_ids(self, step_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(step_ids))
        known: set[str] = set()
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start:start + _IDS_PER_QUERY]
            sql = f"SELECT id FROM steps WHERE id IN ({', '.join('?' * len(chunk))})"  # noqa: S608
            known.update(row[0] for row in self._read(sql, chunk))
        return known

    def steps(self, run_id: int | None = None) -> dict[str, StepState]:
        """Every Step the store knows (or only those touched by ``run_id``), in one query."""
        sql = _STEP_SELECT
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params = (run_id,)
        return {row[0]: _step(row) for row in self._read(sql + " ORDER BY task_index, id", params)}

    def steps_of(self, step_ids: Iterable[str]) -> dict[str, StepState]:
        """The Steps with these ids (those the store knows), read in a few queries: the
        scheduler asks for each batch it adds, so the cost follows the batch, not the store."""
        ids = list(dict.fromkeys(step_ids))
        found: dict[str, StepState] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start:start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(f"{_STEP_SELECT} WHERE id IN ({marks})", chunk):  # noqa: S608
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
            sql += " WHERE run_id = ?"
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
                "started_at = NULL, submitted_at = NULL, finished_at = NULL, updated_at = ? "
                "WHERE status = 'failed'", (self._clock(),))
            return cursor.rowcount

    def clear_steps(self, playbook: str | os.PathLike[str] | None = None) -> int:
        """``--fresh``: forget the state of the Steps last run by ``playbook`` (of every
        Step when None).  Other playbooks sharing the state directory keep theirs, and
        files (the user's, or partial) are kept."""
        with self._tx() as conn:
            if playbook is None:
                return conn.execute("DELETE FROM steps").rowcount
            return conn.execute(
                "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE playbook = ?)",
                (os.fspath(playbook),)).rowcount

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

    def record_durations(self, seconds: Mapping[str, float]) -> None:
        """How long these Steps' export jobs ran, in one transaction: for the next runs."""
        if any(not value >= 0 for value in seconds.values()):
            raise ValueError(f"durations are numbers of seconds >= 0: {dict(seconds)!r}")
        now = self._clock()
        with self._tx() as conn:
            conn.executemany("INSERT OR REPLACE INTO durations (step_id, seconds, updated_at) "
                             "VALUES (?, ?, ?)",
                             [(step_id, float(value), now) for step_id, value in seconds.items()])

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
                          "job_id = :job_id, submitted_at = :now", job_id=job_id)

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
                  mtime_ns: int | None = None, records: int | None = None) -> StepState:
        """The Step's file is in place, whole and verified."""
        if len(sha256) != 64:
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self._move(step_id, {S.DOWNLOADING, S.PAGING}, S.SUCCEEDED,
                          "bytes = :bytes, sha256 = :sha256, mtime_ns = :mtime_ns, "
                          "records = COALESCE(:records, records), page_token = NULL, "
                          "error = NULL, finished_at = :now",
                          bytes=bytes, sha256=sha256, mtime_ns=mtime_ns, records=records)

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
                          "sha256 = NULL, mtime_ns = NULL, finished_at = NULL, "
                          "error = :error, attempts = CASE WHEN :reset THEN 0 ELSE attempts END",
                          error=None if error is None else _error_text(error),
                          reset=reset_attempts)

    def _move(self, step_id: str, allowed: set[StepStatus], new: StepStatus, sets: str,
              **params: Any) -> StepState:
        params.update(id=step_id, new=new, now=self._clock())
        names = [f"from{i}" for i in range(len(allowed))]
        params.update(zip(names, (status.value for status in sorted(allowed)), strict=True))
        assignments = "status = :new, updated_at = :now" + (f", {sets}" if sets else "")
        # Every piece of this statement is a constant of this module; values are :named.
        sql = (f"UPDATE steps SET {assignments} WHERE id = :id AND "  # noqa: S608
               f"status IN ({', '.join(':' + n for n in names)}) RETURNING {_STEP_LIST}")
        with self._tx() as conn:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall()  # drain the statement before COMMIT
            if not rows:
                current = conn.execute("SELECT status FROM steps WHERE id = ?",
                                       (step_id,)).fetchone()
                where = f"it is {current[0]}" if current else "it is not registered"
                raise TransitionError(f"Step {step_id} cannot become {new.value}: {where} "
                                      f"(allowed from {', '.join(sorted(allowed))})")
        return _step(rows[0])


# --------------------------------------------------------------------------- helpers


def _connect(database: str, uri: bool = False) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(database, uri=uri, isolation_level=None,
                               check_same_thread=False, timeout=30.0)
    except sqlite3.Error as exc:
        raise UserError(f"cannot open the state file {database}: {exc}") from exc
    return conn


def _step_row(step: Any, run_id: int, now: float, encode: bool = True) -> tuple[Any, ...]:
    """``encode=False``: the Step is stored already and keeps its request ("" in its place)."""
    operation = getattr(step.operation, "name", step.operation)
    output = getattr(step, "output", None)
    request = request_json(getattr(step, "request", {})) if encode else ""
    return (
        str(step.id), run_id, int(step.task_index), str(getattr(step, "task_name", "") or ""),
        str(operation), str(step.kind), None if output is None else os.fspath(output),
        getattr(step, "format", None), request, now,
    )


_STATUS_AT = _STEP_COLUMNS.index("status")
_STATUSES = {status.value: status for status in StepStatus}


def _step(row: tuple[Any, ...]) -> StepState:
    return StepState._make((*row[:_STATUS_AT], _STATUSES[row[_STATUS_AT]],
                            *row[_STATUS_AT + 1:]))


def _run(row: tuple[Any, ...]) -> RunRecord:
    values = dict(zip(_RUN_COLUMNS, row, strict=True))
    values["status"] = RunStatus(values["status"])
    return RunRecord(**values)


def _error_text(error: object) -> str:
    if isinstance(error, Secret):
        raise TypeError("refusing to write a secret into the state store")
    text = str(error)
    return text if len(text) <= 4000 else text[:4000] + " …"
