"""Where the state lives, and where each tenant's part of it is.

The location is, in order: ``--state`` (or its alias ``--state-dir``), then
``$INSIGHTS_RUNNER_STATE``, then the inventory's ``state:``, then ``.insights-runner/``
beside the playbook.  It is a folder (SQLite; a tenant of an inventory has its own
sub-folder) or a ``postgresql://`` URL (one database; a tenant is a namespace in it).
Either way a run also has a *local* folder for what is only a cache (compiled tasks):
the folder itself, or ``.insights-runner/`` beside the playbook when the state is remote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner.execute.state.base import default_state_dir
from runner.execute.state.postgres import is_url, redacted

ENV = "INSIGHTS_RUNNER_STATE"


@dataclass(frozen=True)
class TenantState:
    """One tenant's state: what to open (``location`` + ``namespace``) and its local folder."""

    location: str
    namespace: str
    local_dir: Path

    @property
    def shared(self) -> bool:
        return is_url(self.location)

    def describe(self) -> str:
        if not self.shared:
            return self.location
        return redacted(self.location) + (f" (tenant {self.namespace})" if self.namespace else "")


def choose(given: str | os.PathLike[str] | None, inventory_state: str | None = None,
           inventory_path: Path | None = None) -> str | None:
    """The state location the user asked for (None: the default folder)."""
    if given is not None and str(given) != "":
        return os.fspath(given)
    if os.environ.get(ENV):
        return os.environ[ENV]
    if inventory_state:
        if is_url(inventory_state) or inventory_path is None:
            return inventory_state
        return str(inventory_path.parent / inventory_state)
    return None


def for_tenant(location: str | os.PathLike[str] | None, playbook: str | os.PathLike[str],
               tenant: str | None, namespace: str | None = None) -> TenantState:
    """The state of ``tenant`` (None: a playbook without an inventory); ``namespace``
    overrides the tenant's in a database (one-shot commands keep their own)."""
    local_root = default_state_dir(playbook)
    if location is not None and is_url(str(location)):
        local = local_root if tenant is None else local_root / tenant
        return TenantState(str(location), namespace or tenant or "", local)
    root = Path(location) if location is not None else local_root
    folder = root if tenant is None else root / tenant
    return TenantState(str(folder), "", folder)
