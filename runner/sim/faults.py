"""Faults on demand: which request fails, how, and which export job fails or runs slow.

Every decision is a pure function of the fault seed and a sequence number (the n-th API
request, or the job id), so a client that makes the same requests in the same order meets
the same faults.  All rates are 0 by default: the simulator then behaves as a healthy service.
Faults apply to the Insights endpoints only; the identity service stays healthy unless
``identity`` is set.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from runner import catalog

# What a request can meet, in the order they are drawn (one draw each).
ERROR = "error"  # a 500/503 answer
RATE_LIMIT = "rate_limit"  # 429 with Retry-After
DROP = "drop"  # the connection is closed without an answer
TRUNCATE = "truncate"  # a download stops halfway (export files only)
EXPIRE_TOKEN = "expire_token"  # noqa: S105 - the caller's token is revoked before its expiry
# (never on a token's first accepted request, so a fresh token works once; except at rate
# 1.0, which refuses every token, as when the app's permission has been withdrawn)


@dataclass(frozen=True)
class Faults:
    """Rates are probabilities in [0, 1]; ``slow_job_factor`` multiplies a slow job's time."""

    seed: int = 0
    error_rate: float = 0.0
    status_codes: tuple[int, ...] = (500, 503)
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0  # seconds, sent in the Retry-After header
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    job_failure_rate: float = 0.0  # the job ends failed (status 3)
    job_exception_rate: float = 0.0  # the job ends "exported with exceptions" (status 4)
    slow_job_rate: float = 0.0
    slow_job_factor: float = 5.0
    token_early_expiry_rate: float = 0.0
    identity: bool = False  # also fault the identity service's token endpoint
    # Export files with hostile names: a Content-Disposition file name and zip members
    # that climb out of the folder ("../../"), and an absolute member path, so that a
    # client's safe-extraction code can be tested against a server that misbehaves.
    hostile_names: bool = False

    def __post_init__(self) -> None:
        for name in ("error_rate", "rate_limit_rate", "drop_rate", "truncate_rate",
                     "job_failure_rate", "job_exception_rate", "slow_job_rate",
                     "token_early_expiry_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.error_rate and not self.status_codes:
            raise ValueError("error_rate needs at least one status code")
        if self.retry_after < 0 or self.slow_job_factor < 1:
            raise ValueError("retry_after must be >= 0 and slow_job_factor >= 1")

    @property
    def any(self) -> bool:
        return any((self.error_rate, self.rate_limit_rate, self.drop_rate, self.truncate_rate,
                    self.job_failure_rate, self.job_exception_rate, self.slow_job_rate,
                    self.token_early_expiry_rate, self.hostile_names))

    def draw(self, kind: str, number: int) -> float:
        """A uniform number in [0, 1) for the ``number``-th event of ``kind``."""
        digest = hashlib.blake2b(f"{self.seed}:{kind}:{number}".encode(), digest_size=8).digest()
        return struct.unpack(">Q", digest)[0] / 2**64

    def request_fault(self, number: int, download: int = 0) -> str | None:
        """The fault the ``number``-th request meets, if any.  ``download`` is the request's
        ordinal among the file downloads (0 for any other request): which downloads are cut
        is drawn from it, so it does not hang on how many polls came before them."""
        if self.draw(EXPIRE_TOKEN, number) < self.token_early_expiry_rate:
            return EXPIRE_TOKEN
        if self.draw(DROP, number) < self.drop_rate:
            return DROP
        if self.draw(RATE_LIMIT, number) < self.rate_limit_rate:
            return RATE_LIMIT
        if self.draw(ERROR, number) < self.error_rate:
            return ERROR
        if download and self.draw(TRUNCATE, download) < self.truncate_rate:
            return TRUNCATE
        return None

    def error_status(self, number: int) -> int:
        return self.status_codes[int(self.draw("status", number) * len(self.status_codes))]

    def job_outcome(self, job_id: int) -> int:
        """The terminal status job ``job_id`` will reach."""
        if self.draw("job_failure", job_id) < self.job_failure_rate:
            return catalog.STATUS_FAILED
        if self.draw("job_exception", job_id) < self.job_exception_rate:
            return catalog.STATUS_SUCCEEDED_WITH_EXCEPTIONS
        return catalog.STATUS_SUCCEEDED

    def job_factor(self, job_id: int) -> float:
        return self.slow_job_factor if self.draw("slow_job", job_id) < self.slow_job_rate else 1.0

    def retry_after_header(self) -> str:
        """Whole seconds as HTTP asks; a fraction below 1 s is kept so tests stay fast."""
        value = self.retry_after
        return str(int(value)) if float(value).is_integer() else f"{value:g}"
