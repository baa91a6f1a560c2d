"""The retry policy alone: full jitter, Retry-After, and both bounds (attempts, total time)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from runner.client.retry import RetryPolicy, parse_retry_after, retryable
from runner.errors import (
    AuthError,
    DownloadError,
    RateLimited,
    RequestRejected,
    ServerError,
    SlotsBusy,
    UnreachableError,
)


@given(attempt=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_full_jitter_stays_under_the_exponential_ceiling(attempt, seed):
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=4.0, max_total=1e9)
    delay = policy.next_delay(ServerError("503"), attempt, 0.0, random.Random(seed))  # noqa: S311
    assert delay is not None and 0.0 <= delay <= min(4.0, 0.5 * 2 ** (attempt - 1))


def test_which_errors_are_retried():
    assert retryable(ServerError("x")) and retryable(RateLimited("x"))
    assert retryable(UnreachableError("x")) and retryable(DownloadError("x"))
    assert not retryable(RequestRejected("x")) and not retryable(AuthError("x"))
    assert not retryable(SlotsBusy("x"))  # the scheduler waits for a slot, not the transport


def test_bounded_by_attempts_and_by_total_time():
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=1.0, max_total=10.0)
    assert policy.next_delay(ServerError("x"), 2, 0.0) is not None
    assert policy.next_delay(ServerError("x"), 3, 0.0) is None
    tight = RetryPolicy(max_attempts=100, max_total=5.0)
    assert tight.next_delay(RateLimited("x", retry_after=6.0), 1, 0.0) is None
    assert tight.next_delay(RateLimited("x", retry_after=2.0), 1, 2.0) == 2.0
    assert tight.next_delay(RateLimited("x", retry_after=2.0), 1, 3.5) is None


def test_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
