"""The embedded state: SQLite, one file (``state.db``) and one lock file (``lock``) in the
state directory (by default ``.insights-runner/`` beside the playbook).

The database is in WAL mode with ``synchronous=FULL``: a transition is durable, even across
a power loss, when its method returns.  One run at a time holds the directory (an
exclusive ``flock`` the kernel drops when its holder dies, even on SIGKILL).

Threads: the store holds ONE connection guarded by a lock; every method takes the lock for
its whole transaction, so the scheduler's threads may share one store.  SQLite serialises
writers anyway, and these transactions are a single statement or one batch.
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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from runner.errors import StateLockedError, UserError
from runner.execute.state.base import StateStore, store_error

DB_NAME = "state.db"
LOCK_NAME = "lock"

# The columns of schema 4's steps table after id and stamp; request last (see migration 4).
_STEP_COLUMNS_V4 = """task_index INTEGER NOT NULL,
            task_name TEXT NOT NULL DEFAULT '',
            operation TEXT NOT NULL,
            kind TEXT NOT NULL,
            output TEXT,
            format TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            job_id,
            attempts INTEGER NOT NULL DEFAULT 0,
            page_token TEXT,
            records INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER,
            sha256 TEXT,
            mtime_ns INTEGER,
            etag TEXT,
            started_at REAL,
            submitted_at REAL,
            finished_at REAL,
            updated_at REAL NOT NULL,
            error TEXT,
            request TEXT NOT NULL"""
_COPIED_V4 = ", ".join(line.split()[0].rstrip(",") for line in _STEP_COLUMNS_V4.splitlines())

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
    # 2: outputs in object storage; a re-run compares the blob's etag with this one.
    ("ALTER TABLE steps ADD COLUMN etag TEXT",),
    # 3: how long each Step's export job last ran (history for the scheduler's queue order
    # and polls).  Its own table: --fresh and requeues forget a Step's state, not how long
    # its job takes.
    ("""CREATE TABLE durations (
            step_id TEXT PRIMARY KEY NOT NULL,
            seconds REAL NOT NULL,
            updated_at REAL NOT NULL) WITHOUT ROWID""",),
    # 4: a Step's run is its *stamp*'s (``base.StateStore.register_steps``): a re-run of the
    # same Steps moves one stamp row instead of rewriting every Step's row.  The table is
    # rebuilt so that ``request`` (kilobytes of e-mails, in overflow pages) is its last
    # column: reading a Step's status, stamp or file check no longer reads the request.
    (
        """CREATE TABLE stamps (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id))""",
        "INSERT INTO stamps (run_id) SELECT DISTINCT run_id FROM steps WHERE run_id IS NOT NULL",
        f"""CREATE TABLE steps_v4 (
            id TEXT PRIMARY KEY NOT NULL,
            stamp INTEGER REFERENCES stamps(id),
            {_STEP_COLUMNS_V4}) WITHOUT ROWID""",
        f"""INSERT INTO steps_v4 (id, stamp, {_COPIED_V4})
            SELECT id, (SELECT stamps.id FROM stamps WHERE stamps.run_id = steps.run_id),
                   {_COPIED_V4} FROM steps""",  # noqa: S608 - constant column names
        "DROP TABLE steps",
        "ALTER TABLE steps_v4 RENAME TO steps",
        # No index on stamp: it would cost 20% more CPU to register 200,000 Steps, and a
        # stamp's Steps are counted once per register (one scan of the table).
        "CREATE INDEX steps_status ON steps(status)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class StateLock:
    """An exclusive ``flock`` on ``<state dir>/lock``, with who holds it written inside.

    The kernel drops a ``flock`` when its holder dies (even on SIGKILL), so a lock can never
    go stale the way a pid file does.  It guards against a second run on the same host; on a
    network file system ``flock`` may not be shared between hosts (keep state local, or put
    it on PostgreSQL to share it).
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
                f"({holder}); wait for it to finish, give this run another --state, or "
                "share one PostgreSQL state between runs (--state postgresql://...)"
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


class SqliteStore(StateStore):
    """The state of one state directory.  ``open(dir)`` takes the directory's lock
    (``StateLockedError`` if another run holds it) and migrates the schema;
    ``open(dir, readonly=True)`` takes no lock and writes nothing, for ``status`` while a
    run is going."""

    migrations = MIGRATIONS

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: StateLock | None,
                 clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self._conn = conn
        self.path = path
        self.where = str(path.parent)
        self._lock = lock
        self._mutex = threading.RLock()

    @classmethod
    def open_dir(cls, state_dir: str | os.PathLike[str], *, readonly: bool = False,
                 clock: Callable[[], float] = time.time) -> SqliteStore:
        directory = Path(state_dir)
        path = directory / DB_NAME
        if readonly:
            if not path.exists():
                raise UserError(f"no state in {directory}: the playbook has not run yet")
            conn = _connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            store = cls(conn, path, None, clock)
            try:
                store._check_readable_version()
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
                            " (give another with --state)") from exc
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

    def _setup(self) -> None:
        try:
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a readable state file ({exc}); move it "
                            "away or give another --state") from exc
        if str(mode).lower() != "wal":
            raise UserError(f"the state file {self.path} cannot use SQLite's WAL mode here "
                            f"(got {mode!r}); put the state directory on a local disk")
        self._migrate()

    def _schema_version(self) -> int:
        try:
            with self._mutex:
                return self._version_in(self._conn)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a readable state file ({exc}); move it away "
                            "or give another --state") from exc

    def _version_in(self, conn: Any) -> int:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'meta'").fetchone():
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
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
                raise store_error(str(self.path), exc) from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._mutex:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise store_error(str(self.path), exc) from exc


def _connect(database: str, uri: bool = False) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(database, uri=uri, isolation_level=None,
                               check_same_thread=False, timeout=30.0)
    except sqlite3.Error as exc:
        raise UserError(f"cannot open the state file {database}: {exc}") from exc
    return conn
