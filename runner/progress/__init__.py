"""Live progress of a run, fed by the scheduler's events.

On a terminal (without NO_COLOR, TERM=dumb or --quiet) rich draws a live block
(``runner.progress.live``): the bar of done/total Steps with the ETA, slots per tenant,
one line per running Step.  Elsewhere (CI logs) each Step event is one plain, greppable
line, plus a summary line every ``INSIGHTS_RUNNER_PROGRESS_SECONDS`` (30 s) so a log shows
life during a long job without flooding.  ``runner.progress.tracker`` holds the state and
the ETA both views read.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

from runner.progress.tracker import Tracker, clock_text
from runner.report import human_size

SUMMARY_SECONDS = 30.0

_PLAIN_EVENTS = {
    "submitted": "submitted",
    "reattached": "re-attached to its job",
    "retry": "this try failed; trying again",  # a job, a download or an upload
    "slots_busy": "the service's export slots are busy; waiting",
    "taken_over": "taken over from a runner that stopped",
    "succeeded": "done",
    "failed": "FAILED",
}


def summary_seconds() -> float:
    """The plain view's summary interval (``INSIGHTS_RUNNER_PROGRESS_SECONDS``, default 30)."""
    try:
        value = float(os.environ.get("INSIGHTS_RUNNER_PROGRESS_SECONDS", SUMMARY_SECONDS))
    except ValueError:
        return SUMMARY_SECONDS
    return value if value > 0 else SUMMARY_SECONDS


class Progress:
    """The scheduler's ``on_event``: an event is ``(kind, payload)`` or, from several
    tenants' runs, ``(kind, payload, tenant)``."""

    def __init__(self, total: int = 0, *, stream: TextIO | None = None, quiet: bool = False,
                 live: bool | None = None, summary_every: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        if live is None:
            live = self.stream.isatty() and not os.environ.get("NO_COLOR") and \
                os.environ.get("TERM") != "dumb"
        self.live = live and not quiet
        self.wants_history = not quiet  # the engine reads earlier durations for the ETA
        self.tracker = Tracker()
        self.tracker.total = total
        self._lock = threading.Lock()
        self._reused_unsaid = 0
        self._closed = threading.Event()
        self._view: Any = None
        self._ticker: threading.Thread | None = None
        if quiet:
            return
        if self.live:
            from runner.progress.live import LiveView  # rich is imported only for a terminal

            self._view = LiveView(self.tracker, self._lock, self.stream)
            self._view.start()
        else:
            every = summary_every or summary_seconds()
            self._ticker = threading.Thread(target=self._tick, args=(every,), daemon=True,
                                            name="runner-progress")
            self._ticker.start()

    def __call__(self, event: tuple[Any, ...]) -> None:
        kind, payload = event[0], event[1]
        tenant = event[2] if len(event) > 2 else None
        with self._lock:
            self.tracker.event(kind, payload, tenant)
            if self.quiet or self.live:
                return
            if kind == "reused":
                self._reused_unsaid += 1
            elif kind == "sealed":
                self._reused_unsaid += int(payload)
            elif kind in _PLAIN_EVENTS:
                self._say_reused()
                self._plain(kind, payload, tenant)

    # ------------------------------------------------------------------ plain lines

    def _plain(self, kind: str, step: Any, tenant: str | None) -> None:
        line = f"{_PLAIN_EVENTS[kind]:>9}  "
        if tenant is not None:
            line += f"[{tenant}] "
        line += f"{getattr(step, 'task_name', '')}  {getattr(step, 'output', '')}"
        if kind in ("succeeded", "failed"):
            line += f"  ({self.tracker.finished}/{self.tracker.total})"
        self._print(line)

    def _say_reused(self) -> None:
        if self._reused_unsaid:
            count, self._reused_unsaid = self._reused_unsaid, 0
            self._print(f"{'reused':>9}  {count} Step{'s' if count != 1 else ''} from an "
                        "earlier run (their files still match)")

    def _tick(self, every: float) -> None:
        while not self._closed.wait(every):
            with self._lock:
                self._say_reused()
                self._print(self.summary())

    def summary(self) -> str:
        """One line: how far the run is (the plain view prints it every 30 s)."""
        t = self.tracker
        slots = ", ".join(f"{name + ' ' if name is not None else ''}{t.slots(name)}/"
                          f"{t.slot_limit}" for name in t.tenants) or f"0/{t.slot_limit}"
        eta = t.eta()
        records = sum(r.records for r in t.running.values())
        text = (f" progress  {t.finished}/{max(t.total, t.finished)} Steps done"
                f" ({t.failed} failed), {len(t.running)} running, {t.waiting} queued; "
                f"slots {slots}; elapsed {clock_text(t.elapsed())}")
        if records:
            text += f"; {records:,} records paged"
        if t.running or t.waiting:
            text += f"; ETA {clock_text(eta)}" if eta is not None else "; ETA estimating"
        return text

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    # ------------------------------------------------------------------ the end

    def close(self, ending: str | None = None) -> None:
        """Stop drawing.  ``ending`` says how the run ended (the live view's last frame)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._view is not None:
            self._view.stop(ending or "finished")
        elif not self.quiet:
            with self._lock:
                self._say_reused()
                if ending is not None and ending != "finished":
                    self._print(f"{ending:>9}  {self.summary().strip()}")


__all__ = ["Progress", "human_size"]
