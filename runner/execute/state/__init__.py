"""The state store: what each Step of a playbook has done, so that a run can resume.

One interface (``base.StateStore``: the Step lifecycle, guarded transitions, migrations)
with two implementations: SQLite in a folder (``sqlite.py``, the embedded default) and
PostgreSQL (``postgres.py``, ``--state postgresql://...``).  ``open_store`` picks one from
the location; where the location comes from (``--state``, ``INSIGHTS_RUNNER_STATE``, an
inventory's ``state:``) is ``location.py``'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from runner.execute.state.base import (
    ACTIVE,
    RunRecord,
    RunStatus,
    StateStore,
    StepState,
    StepStatus,
    TransitionError,
    default_state_dir,
    request_json,
)
from runner.execute.state.postgres import PostgresStore, is_url, redacted
from runner.execute.state.sqlite import (
    DB_NAME,
    LOCK_NAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteStore,
    StateLock,
)

__all__ = [
    "ACTIVE", "DB_NAME", "LOCK_NAME", "MIGRATIONS", "SCHEMA_VERSION", "PostgresStore",
    "RunRecord", "RunStatus", "SqliteStore", "StateLock", "StateStore", "StepState",
    "StepStatus", "TransitionError", "default_state_dir", "is_url", "open_store", "redacted",
    "request_json",
]


def open_store(location: str | os.PathLike[str], *, readonly: bool = False,
               clock: Callable[[], float] | None = None, namespace: str = "") -> StateStore:
    """The store at ``location``: a ``postgresql://`` URL, or a folder (SQLite).

    ``namespace`` separates the tenants of an inventory inside one database (a folder has
    a sub-folder per tenant instead, chosen by the caller).
    """
    clock = clock or time.time
    if is_url(location):
        return PostgresStore.open_url(str(location), namespace=namespace, readonly=readonly,
                                      clock=clock)
    return SqliteStore.open_dir(location, readonly=readonly, clock=clock)
