"""The runner's one exception tree; only ``cli.py`` catches these and prints them.

::

    RunnerError                      exit 1   something went wrong
    ├── UserError                    exit 2   the user can fix their input
    │   ├── PlaybookError                     playbook/inventory/vars problems (carries Diagnostics)
    │   ├── CredentialError                   certificate file, password, key mismatch, expiry
    │   ├── PlanError                         a saved plan that no longer matches its playbook
    │   └── StateLockedError                  another run holds the state directory
    ├── ServiceError                 exit 1   the service answered something we cannot use
    │   ├── RequestRejected                   a 400 (or non-200 status in the body): not retried
    │   ├── SlotsBusy          (transient)    the tenant already runs five export jobs
    │   ├── ServerError        (transient)    5xx answers
    │   ├── RateLimited        (transient)    429, with the server's Retry-After
    │   ├── DownloadError      (transient)    a truncated or corrupt export file
    │   └── JobFailed                         an export job ended failed (3) or stopped (6)
    ├── UnreachableError       exit 3 (transient)  connection refused, DNS, TLS, time-outs
    ├── AuthError                    exit 3   discovery or token request refused, 401 after refresh
    └── Interrupted                  exit 130 Ctrl-C; state is kept for the next run

Each class knows its exit code and whether retrying may help (``transient``); the retry
logic reads only that attribute.  Foreign exceptions (sockets, TLS, sqlite3, yaml) are converted
once, at the module boundary that sees them, with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a user's file, printed as ``FILE:LINE:COL: message``."""

    file: str
    line: int
    column: int
    message: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.message}"

    def github(self) -> str:
        """The same problem as a GitHub Actions annotation (escaped: one line, always)."""
        file = _escape(self.file).replace(":", "%3A").replace(",", "%2C")
        return f"::error file={file},line={self.line},col={self.column}::{_escape(self.message)}"


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


class RunnerError(Exception):
    exit_code = 1
    transient = False


class UserError(RunnerError):
    exit_code = 2


class PlaybookError(UserError):
    """One or more problems in user-written files, all reported at once."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.column))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class CredentialError(UserError):
    pass


class PlanError(UserError):
    pass


class StateLockedError(UserError):
    pass


class ServiceError(RunnerError):
    def __init__(self, message: str, *, status: int | None = None, operation: str = ""):
        super().__init__(message)
        self.status = status
        self.operation = operation


class RequestRejected(ServiceError):
    pass


class SlotsBusy(ServiceError):
    transient = True


class ServerError(ServiceError):
    transient = True


class RateLimited(ServiceError):
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class DownloadError(ServiceError):
    transient = True


class JobFailed(ServiceError):
    pass


class UnreachableError(RunnerError):
    exit_code = 3
    transient = True
    # False when the request surely never left (no connection was made): sending it again
    # cannot duplicate anything.  True when it may have reached the service.
    request_sent = True


class AuthError(RunnerError):
    exit_code = 3


class Interrupted(RunnerError):
    exit_code = 130
