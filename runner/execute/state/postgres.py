"""The state on PostgreSQL (``--state postgresql://...``), through psycopg 3.

One database holds the state of every playbook and tenant that uses it: each namespace (an
inventory tenant, or the empty one) is its own schema (``insights_runner`` or
``insights_runner:<tenant>``) with the same tables as the SQLite store, migrated the same
way, step by step, under an advisory lock so that runners starting together migrate once.

The statements are the base class's (written for SQLite) with the placeholders translated
(``?`` and ``:name`` to psycopg's ``%s`` and ``%(name)s``, ``IS NOT ?`` to ``IS DISTINCT
FROM``); a job id is kept as JSONB so that an int stays an int and a string a string.
A transaction is committed (``synchronous_commit`` as the server has it, on by default)
before its method returns.

Several runners share one state (``shared = True``), see ``leases.py``: each store is a
runner with a heartbeat; a Step is worked on by the runner that *claims* it, and an export
job holds one of its tenant's slots, leased in a schema every namespace of the database
shares.  The password of the URL is never written to a message.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runner.errors import UserError
from runner.execute.state.base import StateStore, store_error
from runner.execute.state.leases import Leases

SCHEMA_PREFIX = "insights_runner"

# Each entry moves a namespace's schema from version i to i + 1; never edit one that has
# shipped.  The same tables and meanings as sqlite.MIGRATIONS, in PostgreSQL's types.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (
            id BIGSERIAL PRIMARY KEY,
            playbook TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            started DOUBLE PRECISION NOT NULL,
            finished DOUBLE PRECISION,
            status TEXT NOT NULL)""",
        """CREATE TABLE steps (
            id TEXT PRIMARY KEY NOT NULL,
            run_id BIGINT REFERENCES runs(id),
            task_index INTEGER NOT NULL,
            task_name TEXT NOT NULL DEFAULT '',
            operation TEXT NOT NULL,
            kind TEXT NOT NULL,
            output TEXT,
            format TEXT,
            request TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            job_id JSONB,
            attempts INTEGER NOT NULL DEFAULT 0,
            page_token TEXT,
            records BIGINT NOT NULL DEFAULT 0,
            bytes BIGINT,
            sha256 TEXT,
            mtime_ns BIGINT,
            error TEXT,
            started_at DOUBLE PRECISION,
            submitted_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX steps_status ON steps(status)",
    ),
    ("ALTER TABLE steps ADD COLUMN etag TEXT",),
    ("""CREATE TABLE durations (
            step_id TEXT PRIMARY KEY NOT NULL,
            seconds DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",),
    # 4: a Step's run is its stamp's, as in sqlite.MIGRATIONS[3] (here the request is
    # TOASTed out of line anyway, so the table keeps its column order).
    (
        """CREATE TABLE stamps (
            id BIGSERIAL PRIMARY KEY,
            run_id BIGINT NOT NULL REFERENCES runs(id))""",
        "INSERT INTO stamps (run_id) SELECT DISTINCT run_id FROM steps WHERE run_id IS NOT NULL",
        "ALTER TABLE steps ADD COLUMN stamp BIGINT REFERENCES stamps(id)",
        "UPDATE steps SET stamp = stamps.id FROM stamps WHERE stamps.run_id = steps.run_id",
        "ALTER TABLE steps DROP COLUMN run_id",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def schema_name(namespace: str) -> str:
    name = SCHEMA_PREFIX if not namespace else f"{SCHEMA_PREFIX}:{namespace}"
    if len(name.encode()) > 63:  # PostgreSQL's identifier limit
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name.encode()[:40].decode(errors='ignore')}~{digest}"
    return name


def namespaces(url: str) -> list[str]:
    """The namespaces that have a state in the database at ``url``."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=15) as conn:
            names = [row[0] for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s "
                "ORDER BY nspname", (SCHEMA_PREFIX, SCHEMA_PREFIX + ":%"))]
    except psycopg.Error as exc:
        raise UserError(f"cannot connect to the state database {redacted(url)}: "
                        f"{_first_line(exc)}") from None
    return ["" if name == SCHEMA_PREFIX else name[len(SCHEMA_PREFIX) + 1:] for name in names]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=256)
def translate(sql: str) -> str:
    """A statement of the base class in psycopg's placeholders."""
    sql = sql.replace("IS NOT ?", "IS DISTINCT FROM ?").replace("?", "%s")
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)


class _Conn:
    """A psycopg connection that speaks the base class's SQL."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self._conn.execute(translate(sql), params or None)

    def executemany(self, sql: str, rows: Iterable[Any]) -> Any:
        cursor = self._conn.cursor()
        cursor.executemany(translate(sql), list(rows))
        return cursor


class PostgresStore(StateStore):
    migrations = MIGRATIONS
    shared = True

    def __init__(self, conn: Any, url: str, namespace: str, clock: Callable[[], float]) -> None:
        super().__init__(clock)
        self._conn = conn
        self.url = url
        self.namespace = namespace
        self.schema = schema_name(namespace)
        self.where = redacted(url) + (f" (namespace {namespace})" if namespace else "")
        self._mutex = threading.RLock()
        self.leases: Leases | None = None  # a writer's: its claims, slots and heartbeat

    @classmethod
    def open_url(cls, url: str, *, namespace: str = "", readonly: bool = False,
                 clock: Callable[[], float] = time.time) -> PostgresStore:
        import psycopg

        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=15,
                                   application_name="insights-runner")
        except psycopg.Error as exc:
            raise UserError(f"cannot connect to the state database {redacted(url)}: "
                            f"{_first_line(exc)}") from None
        store = cls(conn, url, namespace, clock)
        try:
            conn.execute(f"SET search_path TO {_ident(store.schema)}")
            if readonly:
                conn.execute("SET default_transaction_read_only = on")
                if store._schema_version() == 0:
                    raise UserError(f"no state in {store.where}: the playbook has not run yet")
                store._check_readable_version()
            else:
                store._migrate()
                store.leases = Leases.start(conn, store._mutex, url, namespace, store.where)
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        if self.leases is not None:
            self.leases.stop()  # its claims go back at once; slots of running jobs expire
        with self._mutex:
            self._conn.close()

    # --------------------------------------------- sharing the work (runner.execute.state.leases)

    def claim(self, step_id: str) -> bool:
        return self.leases is None or self.leases.claim(step_id)

    def acquire_slot(self, tenant: str, step_id: str, limit: int, *, force: bool = False
                     ) -> bool:
        return self.leases is None or self.leases.acquire_slot(tenant, step_id, limit,
                                                               force=force)

    def release_slot(self, tenant: str, step_id: str) -> None:
        if self.leases is not None:
            self.leases.release_slot(tenant, step_id)

    def clear_steps(self, playbook: str | os.PathLike[str] | None = None) -> int:
        """``--fresh``: refused while other live runners work on this namespace (it would
        pull their Steps from under them)."""
        if self.leases is not None and self.leases.others_at_work():
            raise UserError(f"--fresh: other runners are working on the state {self.where}; "
                            "wait for them to finish, or run without --fresh to share the work")
        return super().clear_steps(playbook)

    def took_over(self, step_id: str) -> bool:
        return self.leases is not None and self.leases.took_over(step_id)

    def claimed_elsewhere(self, step_ids: list[str]) -> set[str]:
        return set() if self.leases is None else self.leases.claimed_elsewhere(step_ids)

    def begin_run(self, playbook: str | os.PathLike[str], fingerprint: str) -> int:
        run_id = super().begin_run(playbook, fingerprint)
        if self.leases is not None:
            self.leases.own_run(run_id)
        return run_id

    def _mark_crashed(self, conn: Any, now: float) -> None:
        """Only the runs whose runner is dead: the others are going on beside this one."""
        if self.leases is None:
            super()._mark_crashed(conn, now)
            return
        sql = ("UPDATE runs SET status = ?, finished = ? WHERE status = ? AND id NOT IN "  # noqa: S608
               f"({self.leases.live_runs_sql})")
        conn.execute(sql, ("crashed", now, "running", self.namespace))

    # ------------------------------------------------------------ backend primitives

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Conn]:
        import psycopg

        with self._mutex:
            try:
                with self._conn.transaction():
                    yield _Conn(self._conn)
            except psycopg.Error as exc:
                raise store_error(self.where, _first_line(exc)) from exc

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with self._mutex:
            try:
                return list(self._conn.execute(translate(sql), tuple(params) or None).fetchall())
            except psycopg.Error as exc:
                raise store_error(self.where, _first_line(exc)) from exc

    def _job_param(self, job_id: int | str) -> Any:
        from psycopg.types.json import Jsonb

        return Jsonb(job_id)

    def _schema_version(self) -> int:
        with self._tx() as conn:
            return self._version_in(conn)

    def _version_in(self, conn: Any) -> int:
        if conn.execute("SELECT to_regclass(?)", (f"{_ident(self.schema)}.meta",)
                        ).fetchone()[0] is None:
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _lock_schema(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("migrate"),))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.schema)}")


def _lock_key(name: str) -> int:
    """A stable 63-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
