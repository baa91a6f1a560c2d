"""Helpers for the client tests: a client wired to a running simulator, sleeps that never wait."""

from __future__ import annotations

import time
from pathlib import Path

from runner.client.api import InsightsClient
from runner.client.connection import settings_for_simulator
from runner.client.retry import RetryPolicy

# Fast but real retries: tiny delays, recorded instead of slept.
FAST_RETRY = RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.002, max_total=60.0)


class Sleeps(list):
    """An injectable ``sleep`` that records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(
    sim,
    *,
    retry: RetryPolicy = FAST_RETRY,
    sleeps: Sleeps | None = None,
    clock=time.time,
    **settings,
) -> InsightsClient:
    base = settings_for_simulator(sim)
    if settings:
        from dataclasses import replace

        base = replace(base, **settings)
    return InsightsClient(
        base, retry=retry, sleep=sleeps if sleeps is not None else Sleeps(), clock=clock
    )


def wait_terminal(client: InsightsClient, op: str, job_id: int, timeout: float = 30.0) -> int:
    """Poll a job until it ends (the simulator's jobs take fractions of a second)."""
    from runner import catalog

    deadline = time.monotonic() + timeout
    while True:
        status = client.job_status(op, job_id)
        if status in catalog.TERMINAL_STATUSES or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
