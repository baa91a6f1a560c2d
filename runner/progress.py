"""Live progress of a run: one redrawn line on a terminal, plain lines elsewhere.

On a terminal (and without NO_COLOR/--quiet) a single status line is redrawn in place:
slots in use, Steps queued/running/done/failed, bytes downloaded.  When stdout is not a
terminal (CI logs) each notable event is one plain, greppable line instead.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

from runner.report import human_size

_PLAIN_EVENTS = {
    "submitted": "submitted",
    "reattached": "re-attached to its job",
    "retry": "job failed; submitting again",
    "slots_busy": "the service's export slots are busy; waiting",
    "succeeded": "done",
    "failed": "FAILED",
}


class Progress:
    def __init__(self, total: int, *, stream: TextIO | None = None, quiet: bool = False,
                 live: bool | None = None, min_interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        if live is None:
            live = self.stream.isatty() and not os.environ.get("NO_COLOR") and \
                os.environ.get("TERM") != "dumb"
        self.live = live and not quiet
        self.total = total
        self.done = self.failed = self.running = self.slots = 0
        self.bytes = 0
        self._last_draw = 0.0
        self._min_interval = min_interval
        self._lock = threading.Lock()

    def __call__(self, event: tuple[str, Any]) -> None:
        kind, payload = event
        with self._lock:
            if kind in ("submitted", "reattached"):
                self.slots += 1
                self.running += 1
            elif kind == "job_finished":
                self.slots = max(0, self.slots - 1)
            elif kind == "paging":
                self.running += 1
            elif kind == "reused":
                self.done += 1
            elif kind in ("succeeded", "failed"):
                if kind == "succeeded":
                    self.done += 1
                else:
                    self.failed += 1
                self.running = max(0, self.running - 1)
            elif kind == "added":
                self.total += payload
            if self.quiet:
                return
            if self.live:
                self._draw(force=kind in ("succeeded", "failed", "reused"))
            elif kind in _PLAIN_EVENTS:
                step = payload
                print(f"{_PLAIN_EVENTS[kind]:>9}  {getattr(step, 'task_name', '')}  "
                      f"{getattr(step, 'output', '')}", file=self.stream, flush=True)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self._min_interval:
            return
        self._last_draw = now
        queued = max(0, self.total - self.done - self.failed - self.running)
        line = (f"slots {self.slots}/5  queued {queued}  running {self.running}  "
                f"done {self.done}  failed {self.failed}")
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


__all__ = ["Progress", "human_size"]
