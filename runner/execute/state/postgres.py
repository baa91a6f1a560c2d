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

Several runners share one state (``shared = True``): each registers in
``insights_runner_leases.runners`` and beats its heartbeat from a thread every quarter of
the lease time (``INSIGHTS_RUNNER_LEASE_SECONDS``, 60 by default).  A Step is worked on by
the runner that *claims* it (a row in ``claims``, taken with ``FOR UPDATE SKIP LOCKED``),
and an export job holds one of its tenant's slots (a row in ``slots``) from before its
submit until a poll sees it end; both are leases: a runner whose heartbeat is older than
the lease time has lost them, and any survivor may take them over (then it polls the jobs
the dead one had submitted; it never submits them again).  All times are the server's.
The password of the URL is never written to a message.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runner.errors import UserError
from runner.execute.state.base import StateStore, store_error

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
)
SCHEMA_VERSION = len(MIGRATIONS)

# The schema every namespace shares: who is running (with a heartbeat) and who holds which
# of a tenant's export slots.  Steps are claimed in their own namespace (steps_claims).
LEASES_SCHEMA = "insights_runner_leases"
LEASE_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runners (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started DOUBLE PRECISION NOT NULL,
            heartbeat DOUBLE PRECISION NOT NULL)""",
        # One row per slot of a tenant (the service's key: base URL + client id).
        """CREATE TABLE slots (
            tenant TEXT NOT NULL,
            slot INTEGER NOT NULL,
            owner TEXT,
            namespace TEXT,
            step_id TEXT,
            since DOUBLE PRECISION,
            PRIMARY KEY (tenant, slot))""",
        """CREATE TABLE claims (
            namespace TEXT NOT NULL,
            step_id TEXT NOT NULL,
            owner TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace, step_id))""",
        # Which runner a run of a namespace is: a run whose runner is dead has crashed.
        """CREATE TABLE run_owners (
            namespace TEXT NOT NULL,
            run_id BIGINT NOT NULL,
            owner TEXT NOT NULL,
            PRIMARY KEY (namespace, run_id))""",
    ),
)
LEASE_ENV = "INSIGHTS_RUNNER_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60.0
_NOW = "extract(epoch from clock_timestamp())"  # the server's clock: hosts' clocks differ


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


def lease_seconds() -> float:
    try:
        value = float(os.environ.get(LEASE_ENV) or DEFAULT_LEASE_SECONDS)
    except ValueError:
        raise UserError(f"{LEASE_ENV} must be a number of seconds") from None
    if value <= 0:
        raise UserError(f"{LEASE_ENV} must be more than 0 seconds")
    return value


_L = LEASES_SCHEMA
_ALIVE = f"SELECT id FROM {_L}.runners WHERE heartbeat > {_NOW} - %(lease)s"


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
        self.runner_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lease = lease_seconds()
        self._beating = threading.Event()
        self._heart: threading.Thread | None = None

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
                store._migrate_leases()
                store._migrate()
                store._register()
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self._beating.set()
        if self._heart is not None:
            self._heart.join(timeout=10)
        with self._mutex:
            if self._heart is not None:  # a clean end: give the claims back at once
                with contextlib.suppress(Exception), self._conn.transaction():
                    self._conn.execute(f"DELETE FROM {_L}.claims WHERE owner = %s",
                                       (self.runner_id,))
                    self._conn.execute(f"DELETE FROM {_L}.runners WHERE id = %s",
                                       (self.runner_id,))
            self._conn.close()

    # ------------------------------------------------------------------ leases

    def _migrate_leases(self) -> None:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("migrate"),))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_L}")
            conn.execute(f"SET LOCAL search_path TO {_L}")
            has_meta = conn.execute("SELECT to_regclass(?)", (f"{_L}.meta",)).fetchone()[0]
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                               ).fetchone() if has_meta else None
            version = int(row[0]) if row else 0
            if version > len(LEASE_MIGRATIONS):
                raise UserError(f"the state in {self.where} was written by a newer "
                                "insights-runner (its leases); upgrade")
            for statements in LEASE_MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            if version < len(LEASE_MIGRATIONS):
                self._set_version(conn, len(LEASE_MIGRATIONS))

    def _register(self) -> None:
        with self._mutex, self._conn.transaction():
            self._conn.execute(
                f"INSERT INTO {_L}.runners (id, host, pid, started, heartbeat) "
                f"VALUES (%s, %s, %s, {_NOW}, {_NOW})",
                (self.runner_id, socket.gethostname(), os.getpid()))
        self._heart = threading.Thread(target=self._beat, name="state-heartbeat", daemon=True)
        self._heart.start()

    def _beat(self) -> None:
        """The heartbeat, on its own connection so that it never waits behind a transaction."""
        import psycopg

        conn = None
        while not self._beating.wait(self.lease / 4):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
                conn.execute(f"INSERT INTO {_L}.runners (id, host, pid, started, heartbeat) "
                             f"VALUES (%s, %s, %s, {_NOW}, {_NOW}) ON CONFLICT (id) DO "
                             "UPDATE SET heartbeat = excluded.heartbeat",
                             (self.runner_id, socket.gethostname(), os.getpid()))
            except psycopg.Error:
                conn = None  # the next beat reconnects; the lease covers a few misses
        if conn is not None:
            conn.close()

    def _lease_write(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        import psycopg

        params = {"me": self.runner_id, "ns": self.namespace, "lease": self.lease, **params}
        with self._mutex:
            try:
                with self._conn.transaction():
                    cursor = self._conn.execute(sql, params)
                    return list(cursor.fetchall()) if cursor.description else []
            except psycopg.Error as exc:
                raise store_error(self.where, _first_line(exc)) from exc

    def claim(self, step_id: str) -> bool:
        """Take ``step_id`` for this runner: True when it is (now) ours, False while another
        live runner holds it.  A dead runner's claim is taken over."""
        rows = self._lease_write(
            f"INSERT INTO {_L}.claims (namespace, step_id, owner, since) "
            f"VALUES (%(ns)s, %(id)s, %(me)s, {_NOW}) ON CONFLICT (namespace, step_id) DO "
            f"UPDATE SET owner = excluded.owner, since = excluded.since "
            f"WHERE claims.owner = excluded.owner OR claims.owner NOT IN ({_ALIVE}) "
            "RETURNING owner", {"id": step_id})
        return bool(rows)

    def acquire_slot(self, tenant: str, step_id: str, limit: int) -> bool:
        """One of ``tenant``'s ``limit`` slots for ``step_id``: the one it already holds
        (taken over from a dead runner), else a free one; False when every one is held."""
        params = {"tenant": tenant, "id": step_id, "limit": limit}
        self._lease_write(
            f"INSERT INTO {_L}.slots (tenant, slot) SELECT %(tenant)s, g FROM "
            "generate_series(0, %(limit)s - 1) AS g ON CONFLICT DO NOTHING", params)
        if self._lease_write(
                f"UPDATE {_L}.slots SET owner = %(me)s, since = {_NOW} "
                "WHERE tenant = %(tenant)s AND slot < %(limit)s AND namespace = %(ns)s "
                "AND step_id = %(id)s AND "
                f"(owner IS NULL OR owner = %(me)s OR owner NOT IN ({_ALIVE})) "
                "RETURNING slot",
                params):
            return True
        return bool(self._lease_write(
            f"WITH free AS (SELECT slot FROM {_L}.slots WHERE tenant = %(tenant)s AND "
            f"slot < %(limit)s AND (owner IS NULL OR owner NOT IN ({_ALIVE})) ORDER BY slot "
            "LIMIT 1 FOR UPDATE SKIP LOCKED) "
            f"UPDATE {_L}.slots AS s SET owner = %(me)s, namespace = %(ns)s, "
            f"step_id = %(id)s, since = {_NOW} FROM free "
            "WHERE s.tenant = %(tenant)s AND s.slot = free.slot RETURNING s.slot", params))

    def release_slot(self, tenant: str, step_id: str) -> None:
        self._lease_write(
            f"UPDATE {_L}.slots SET owner = NULL, namespace = NULL, step_id = NULL, "
            "since = NULL WHERE tenant = %(tenant)s AND namespace = %(ns)s AND "
            "step_id = %(id)s AND owner = %(me)s", {"tenant": tenant, "id": step_id})

    def slots_held(self, tenant: str) -> int:
        """How many of ``tenant``'s slots live runners hold (for tests and ``status``)."""
        return int(self._lease_write(
            f"SELECT count(*) FROM {_L}.slots WHERE tenant = %(tenant)s AND owner IN "
            f"({_ALIVE})", {"tenant": tenant})[0][0])

    # -------------------------------------------------------------------- runs

    def begin_run(self, playbook: str | os.PathLike[str], fingerprint: str) -> int:
        run_id = super().begin_run(playbook, fingerprint)
        self._lease_write(f"INSERT INTO {_L}.run_owners (namespace, run_id, owner) "
                          "VALUES (%(ns)s, %(run)s, %(me)s)", {"run": run_id})
        return run_id

    def _mark_crashed(self, conn: Any, now: float) -> None:
        """Only the runs whose runner is dead: the others are going on beside this one."""
        conn.execute(
            "UPDATE runs SET status = :crashed, finished = :now WHERE status = :running "
            f"AND id NOT IN (SELECT run_id FROM {_L}.run_owners WHERE namespace = :ns "
            f"AND owner IN (SELECT id FROM {_L}.runners WHERE heartbeat > {_NOW} - :lease))",
            {"crashed": "crashed", "now": now, "running": "running", "ns": self.namespace,
             "lease": self.lease})

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
