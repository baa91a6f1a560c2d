"""When to try a request again and how long to wait: exponential backoff with full jitter.

The policy is pure (no I/O, no sleeping): the transport asks ``next_delay`` after each
failure and sleeps itself, with an injectable ``sleep`` so tests need not wait.  Retries are
bounded twice, by attempts and by total time, so a service that keeps failing cannot hold a
run forever; a 429's ``Retry-After`` is honoured when it fits in what is left of the budget.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from runner.errors import RateLimited, RunnerError, SlotsBusy, UnreachableError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # the first try included
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 300.0  # seconds spent sleeping, in all, for one request
    retry_after_cap: float = 120.0  # never wait longer than this for a single Retry-After

    def next_delay(
        self, error: RunnerError, attempt: int, slept: float, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        ``attempt`` counts from 1 (the try that just failed); ``slept`` is the time already
        spent waiting for this request.
        """
        if not retryable(error) or attempt >= self.max_attempts:
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(error, RateLimited) and retry_after is not None:
            delay = min(max(retry_after, 0.0), self.retry_after_cap)
        else:
            # full jitter: uniform over [0, min(cap, base * 2^(attempt-1))]
            ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            delay = (rng or random).uniform(0.0, ceiling)
        if slept + delay > self.max_total:
            return None
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class SubmitPolicy(RetryPolicy):
    """Retries for a request that creates an export job: only where the service surely did
    not act on it (a 429, or a connection that was never made).  A 5xx or a connection
    dropped after sending may have created the job, so the scheduler decides, and says so."""

    def next_delay(self, error: RunnerError, attempt: int, slept: float,
                   rng: random.Random | None = None) -> float | None:
        sure = isinstance(error, RateLimited) or (
            isinstance(error, UnreachableError) and not error.request_sent)
        return super().next_delay(error, attempt, slept, rng) if sure else None


def retryable(error: RunnerError) -> bool:
    """Transient errors are retried here, except a busy tenant: the scheduler owns the slots."""
    return error.transient and not isinstance(error, SlotsBusy)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - dt.datetime.now(dt.UTC)).total_seconds(), 0.0)
