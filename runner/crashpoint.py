"""Crash points for tests only: kill the process hard at a named point of its work.

``INSIGHTS_RUNNER_CRASH_AT="NAME:N"`` (read once, at import) makes the Nth time the runner
reaches the point ``NAME`` end the process with SIGKILL, as a power cut or a cancelled CI job
would: no ``finally``, no flush, no atexit.  The crash tests sweep every name in ``POINTS``
and check that a later run finishes with the same files and no second job.

Unset (every real run), ``hit`` is one global ``None`` check.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "INSIGHTS_RUNNER_CRASH_AT"

# Every point the runner passes, in the order a Step meets them.
POINTS = (
    "before-submit",  # an export's POST is about to go out
    "after-submit",  # the service answered with a job id, not yet committed
    "job-id-committed",  # the job id is in the state
    "download-chunk",  # a chunk of an export file was written
    "download-last-byte",  # the whole file is in its partial file
    "download-fsynced",  # the partial file is on disk, not yet renamed
    "download-renamed",  # the file is under its name, the Step not yet marked done
    "before-page-checkpoint",  # a page of records is written, its token not yet committed
    "after-page-checkpoint",  # the page and its token are committed
    "extract",  # inside postprocess: a member being extracted
    "convert",  # inside postprocess: a CSV being converted
    "deferred-compile",  # a deferred task's Steps being compiled from earlier results
    "seal",  # a finished plan's seal being written (runner.execute.sealed)
    "run-report",  # run-report.json being written
    "junit",  # the JUnit file being written
)


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, count = spec.partition(":")
    if name not in POINTS:
        raise SystemExit(f"{ENV}: no crash point named {name!r}; the points are "
                         f"{', '.join(POINTS)}")
    try:
        number = int(count or "1")
    except ValueError:
        raise SystemExit(f"{ENV}: {count!r} is not a count (NAME:N)") from None
    return name, max(number, 1)


_target = _parse(os.environ.get(ENV))
_hits = 0
_lock = threading.Lock()


def hit(name: str) -> None:
    """Pass the point ``name``; the configured Nth pass kills the process."""
    if _target is None:
        return
    _maybe_die(name)


def _maybe_die(name: str) -> None:
    global _hits
    if name != _target[0]:  # type: ignore[index]
        return
    with _lock:
        _hits += 1
        if _hits == _target[1]:  # type: ignore[index]
            os.kill(os.getpid(), signal.SIGKILL)
