"""Export files (placeholder until the report builder lands)."""

from __future__ import annotations

from runner.sim.jobs import Job
from runner.sim.tenant import Tenant


class Reports:
    def __init__(self, tenant: Tenant):
        self.tenant = tenant

    def file(self, job: Job) -> tuple[bytes, str, str]:
        name = f"export_{job.id}.zip"
        return b"PK\x05\x06" + b"\0" * 18, name, name
