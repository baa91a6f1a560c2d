"""Runners that share a PostgreSQL state: who is alive, who works on which Step, and who
holds which of a tenant's export slots.

Every writing ``PostgresStore`` is a *runner*: a row in ``insights_runner_leases.runners``
whose heartbeat a thread renews every quarter of its lease (``INSIGHTS_RUNNER_LEASE_SECONDS``,
60 by default; each runner's own lease is in its row, so runners with different settings
judge each other rightly).  A runner is alive while ``heartbeat + lease`` is in the future,
on the database server's clock (hosts' clocks differ).  What it holds are leases, valid
while it is alive:

* a **claim** on a Step (``claims``, keyed by namespace and Step id): only the claimant
  submits, polls or downloads it.  A claim is taken with an upsert that succeeds only when
  the Step is unclaimed, already ours, or its claimant is dead (a survivor takes it over).
  A clean ``stop`` gives the claims back at once.
* an export **slot** of a tenant (``slots``, keyed by the tenant, so every namespace,
  playbook, runner and one-shot command on that tenant counts against one limit): taken
  before a submit, under a transaction-scoped advisory lock on the tenant, only while fewer
  than the limit are held by live runners; given back when a poll sees the job end.  A
  re-attached job (taken over, or resumed) takes its slot even over the limit, since it
  does hold one on the service.  The slots of a runner that died or stopped with jobs
  still running stay counted for two lease times after its last beat: one for its claims
  to expire, one for a survivor to take the Step over and, with it, the slot (else the
  dead runner's jobs, still running, and a survivor's new ones could go over the limit).

The schema is shared by every namespace of the database and migrated like theirs (a
``schema_version`` in its ``meta``, one transaction per version, never edit a shipped one).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from runner.errors import UserError
from runner.execute.state.base import store_error

SCHEMA = "insights_runner_leases"
ENV = "INSIGHTS_RUNNER_LEASE_SECONDS"
DEFAULT_SECONDS = 60.0
NOW = "extract(epoch from clock_timestamp())"  # the server's clock
_L = SCHEMA
ALIVE = f"SELECT id FROM {_L}.runners WHERE heartbeat + lease > {NOW}"
# A dead runner's slots stay counted one lease longer than its claims: its jobs may still
# run on the service, and a survivor that takes over the Step takes its slot with it.
SLOT_HOLDERS = f"SELECT id FROM {_L}.runners WHERE heartbeat + 2 * lease > {NOW}"
FORGET_DEAD_SECONDS = 86400.0  # a dead runner's row is removed a day after its last beat

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"CREATE TABLE {_L}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE {_L}.runners (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started DOUBLE PRECISION NOT NULL,
            heartbeat DOUBLE PRECISION NOT NULL,
            lease DOUBLE PRECISION NOT NULL)""",
        f"""CREATE TABLE {_L}.claims (
            namespace TEXT NOT NULL,
            step_id TEXT NOT NULL,
            owner TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (namespace, step_id))""",
        f"""CREATE TABLE {_L}.slots (
            tenant TEXT NOT NULL,
            namespace TEXT NOT NULL,
            step_id TEXT NOT NULL,
            owner TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (tenant, namespace, step_id))""",
        f"""CREATE TABLE {_L}.run_owners (
            namespace TEXT NOT NULL,
            run_id BIGINT NOT NULL,
            owner TEXT NOT NULL,
            PRIMARY KEY (namespace, run_id))""",
    ),
)


def lease_seconds() -> float:
    """The lease time from ``INSIGHTS_RUNNER_LEASE_SECONDS`` (60 s by default)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{ENV}={raw!r}: give a number of seconds (60 by default)") from None
    if not 0.5 <= value <= 86400:
        raise UserError(f"{ENV}={raw!r}: give between 0.5 and 86400 seconds")
    return value


def _key(name: str) -> int:
    """A stable 63-bit advisory lock key."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


class Leases:
    """One runner's leases on one store's connection (``mutex`` guards it), and its
    heartbeat on a connection of its own, so that a beat never waits behind the store."""

    def __init__(self, conn: Any, mutex: Any, url: str, namespace: str, where: str,
                 lease: float) -> None:
        self._conn = conn
        self._mutex = mutex
        self.url = url
        self.namespace = namespace
        self.where = where
        self.lease = lease
        self.runner_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._heart: threading.Thread | None = None
        self._taken: set[str] = set()  # Steps claimed from a dead runner, not yet told

    @classmethod
    def start(cls, conn: Any, mutex: Any, url: str, namespace: str, where: str) -> Leases:
        leases = cls(conn, mutex, url, namespace, where, lease_seconds())
        leases._migrate()
        leases._register()
        return leases

    # ------------------------------------------------------------------ lifecycle

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        import psycopg

        with self._mutex:
            try:
                with self._conn.transaction():
                    yield self._conn
            except psycopg.Error as exc:
                raise store_error(self.where, str(exc).strip().splitlines()[0]) from exc

    def _migrate(self) -> None:
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key("migrate"),))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_L}")
            has_meta = conn.execute("SELECT to_regclass(%s)", (f"{_L}.meta",)).fetchone()[0]
            row = conn.execute(f"SELECT value FROM {_L}.meta WHERE key = 'schema_version'"
                               ).fetchone() if has_meta else None
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise UserError(f"the state in {self.where} was written by a newer "
                                f"insights-runner (its {_L} schema); upgrade")
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            if version < len(MIGRATIONS):
                conn.execute(f"INSERT INTO {_L}.meta (key, value) VALUES ('schema_version', "
                             "%s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             (str(len(MIGRATIONS)),))

    def _register(self) -> None:
        with self._tx() as conn:
            conn.execute(f"DELETE FROM {_L}.runners WHERE heartbeat + lease < {NOW} - %s",
                         (FORGET_DEAD_SECONDS,))
            conn.execute(f"INSERT INTO {_L}.runners (id, host, pid, started, heartbeat, lease)"
                         f" VALUES (%s, %s, %s, {NOW}, {NOW}, %s)",
                         (self.runner_id, socket.gethostname(), os.getpid(), self.lease))
        self._heart = threading.Thread(target=self._beat, name="state-heartbeat", daemon=True)
        self._heart.start()

    def _beat(self) -> None:
        import psycopg

        conn = None
        while not self._stopping.wait(self.lease / 4):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True,
                                           connect_timeout=max(1, int(self.lease / 4)),
                                           application_name="insights-runner heartbeat")
                conn.execute(f"UPDATE {_L}.runners SET heartbeat = {NOW} WHERE id = %s",
                             (self.runner_id,))
            except psycopg.Error:
                conn = None  # reconnect at the next beat; the lease covers a few misses
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        """A clean end: the claims go back at once; slots of jobs still running on the
        service stay counted until this runner's lease runs out."""
        self._stopping.set()
        if self._heart is not None:
            self._heart.join(timeout=10)
        with contextlib.suppress(Exception), self._tx() as conn:
            conn.execute(f"DELETE FROM {_L}.claims WHERE owner = %s", (self.runner_id,))
            conn.execute(f"DELETE FROM {_L}.runners WHERE id = %s AND NOT EXISTS (SELECT 1 "
                         f"FROM {_L}.slots WHERE owner = %s)",
                         (self.runner_id, self.runner_id))

    # ------------------------------------------------------------------ Steps

    def claim(self, step_id: str) -> bool:
        """Take ``step_id`` for this runner: True when it is (now) ours, False while another
        live runner holds it.  A dead runner's claim is taken over (``took_over`` then says
        so once).  Renews our heartbeat."""
        with self._tx() as conn:
            conn.execute(f"UPDATE {_L}.runners SET heartbeat = {NOW} WHERE id = %s",
                         (self.runner_id,))
            row = conn.execute(
                f"WITH old AS (SELECT owner FROM {_L}.claims WHERE namespace = %(ns)s AND "
                "step_id = %(id)s) "
                f"INSERT INTO {_L}.claims (namespace, step_id, owner, since) "
                f"VALUES (%(ns)s, %(id)s, %(me)s, {NOW}) ON CONFLICT (namespace, step_id) "
                "DO UPDATE SET owner = excluded.owner, since = excluded.since "
                f"WHERE claims.owner = excluded.owner OR claims.owner NOT IN ({ALIVE}) "
                "RETURNING (SELECT owner FROM old)",
                {"ns": self.namespace, "id": step_id, "me": self.runner_id}).fetchone()
        if row is not None and row[0] not in (None, self.runner_id):
            self._taken.add(step_id)
        return row is not None

    def took_over(self, step_id: str) -> bool:
        """Whether our claim on ``step_id`` was taken from a dead runner (asked once)."""
        if step_id in self._taken:
            self._taken.discard(step_id)
            return True
        return False

    def claimed_elsewhere(self, step_ids: list[str]) -> set[str]:
        """Which of these Steps other live runners hold (one query)."""
        with self._tx() as conn:
            return {row[0] for row in conn.execute(
                f"SELECT step_id FROM {_L}.claims WHERE namespace = %s AND step_id = ANY(%s) "
                f"AND owner <> %s AND owner IN ({ALIVE})",
                (self.namespace, list(step_ids), self.runner_id))}

    # ------------------------------------------------------------------ slots

    def acquire_slot(self, tenant: str, step_id: str, limit: int, *, force: bool = False
                     ) -> bool:
        """One of ``tenant``'s ``limit`` export slots for ``step_id``: the one it holds
        already (taken over from a dead runner), else a new one while fewer than ``limit``
        are held by live runners; False when every one is.  ``force``: take it even so
        (a re-attached job holds a slot on the service whatever the table says)."""
        params = {"tenant": tenant, "ns": self.namespace, "id": step_id, "me": self.runner_id}
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key(f"slots {tenant}"),))
            conn.execute(f"DELETE FROM {_L}.slots WHERE tenant = %(tenant)s AND owner NOT IN "
                         f"({SLOT_HOLDERS})", params)
            if conn.execute(f"UPDATE {_L}.slots SET owner = %(me)s, since = {NOW} WHERE "
                            "tenant = %(tenant)s AND namespace = %(ns)s AND step_id = %(id)s "
                            "RETURNING 1", params).fetchone():
                return True
            held = conn.execute(f"SELECT count(*) FROM {_L}.slots WHERE tenant = %(tenant)s",
                                params).fetchone()[0]
            if held >= limit and not force:
                return False
            conn.execute(f"INSERT INTO {_L}.slots (tenant, namespace, step_id, owner, since) "
                         f"VALUES (%(tenant)s, %(ns)s, %(id)s, %(me)s, {NOW})", params)
            return True

    def release_slot(self, tenant: str, step_id: str) -> None:
        with self._tx() as conn:
            conn.execute(f"DELETE FROM {_L}.slots WHERE tenant = %s AND namespace = %s AND "
                         "step_id = %s AND owner = %s",
                         (tenant, self.namespace, step_id, self.runner_id))

    def slots_held(self, tenant: str) -> int:
        """How many of ``tenant``'s slots are held (a dead runner's for two lease times)."""
        with self._tx() as conn:
            return int(conn.execute(f"SELECT count(*) FROM {_L}.slots WHERE tenant = %s AND "
                                    f"owner IN ({SLOT_HOLDERS})", (tenant,)).fetchone()[0])

    # ------------------------------------------------------------------ runs

    def own_run(self, run_id: int) -> None:
        with self._tx() as conn:
            conn.execute(f"INSERT INTO {_L}.run_owners (namespace, run_id, owner) VALUES "
                         "(%s, %s, %s) ON CONFLICT DO NOTHING",
                         (self.namespace, run_id, self.runner_id))

    def others_at_work(self) -> bool:
        """Whether another live runner has a run in this namespace."""
        with self._tx() as conn:
            return conn.execute(f"SELECT 1 FROM {_L}.run_owners WHERE namespace = %s AND "
                                f"owner <> %s AND owner IN ({ALIVE}) LIMIT 1",
                                (self.namespace, self.runner_id)).fetchone() is not None

    @property
    def live_runs_sql(self) -> str:
        """The runs of this namespace whose runner is alive (one ``?``: the namespace), in
        the base class's placeholders."""
        return (f"SELECT run_id FROM {_L}.run_owners WHERE namespace = ? AND owner IN "
                f"({ALIVE})")
