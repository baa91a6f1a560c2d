"""The live view on a terminal, drawn with rich: a bar of done/total Steps with elapsed time
and ETA, the slots each tenant's jobs hold, and one line per running Step (task, output,
what it is doing, elapsed; records and records/s for a paged query).

rich redraws the block a few times a second from its own thread; ``render`` reads the
tracker under the caller's lock.  While it is on screen, log lines written to the same
terminal (``-v``) are printed above it instead of through it.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from runner.progress.tracker import Running, Tracker, clock_text

MAX_LINES = 12  # running Steps shown; the rest are counted


class LiveView:
    def __init__(self, tracker: Tracker, lock: threading.Lock, stream: TextIO) -> None:
        self.tracker = tracker
        self.lock = lock
        self.ending: str | None = None  # set by close: the last frame says how it ended
        self.console = Console(file=stream, highlight=False, soft_wrap=False)
        self._live = Live(console=self.console, get_renderable=self._frame,
                          refresh_per_second=4, transient=False, redirect_stdout=False,
                          redirect_stderr=stream is sys.stderr)
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._stream = stream

    def start(self) -> None:
        self._live.start()
        # Log records (-v) go through rich's proxy, above the live block, not across it.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self._stream:
                self._handlers.append((handler, handler.setStream(sys.stderr)))

    def refresh(self) -> None:
        self._live.refresh()

    def stop(self, ending: str) -> None:
        with self.lock:
            self.ending = ending
        self._live.stop()  # draws the last frame, then leaves it on screen
        for handler, stream in self._handlers:
            handler.setStream(stream)

    def _frame(self) -> RenderableType:
        with self.lock:
            return render(self.tracker, self.ending, self.console.width)


def render(tracker: Tracker, ending: str | None = None, width: int = 100) -> RenderableType:
    """The block for the tracker's present state (``ending``: the run is over, say how)."""
    total = max(tracker.total, tracker.finished)
    bar = ProgressBar(total=max(total, 1), completed=tracker.finished,
                      width=max(10, min(40, width - 60)))
    head = Table.grid(padding=(0, 1))
    head.add_row(bar, Text(_counts(tracker, total, ending)))
    parts: list[RenderableType] = [head, Text(_slots(tracker))]
    held = sum(1 for run in tracker.running.values() if run.holds_slot)
    if ending == "interrupted" and held:
        jobs = f"{held} export job{'s are' if held != 1 else ' is'}"
        parts.append(Text(f"{jobs} still on the service: the next run re-attaches to "
                          f"{'them' if held != 1 else 'it'} (no second job)"))
    if ending is None:
        runs = sorted(tracker.running.values(), key=lambda r: r.since)
        if runs:
            table = Table.grid(padding=(0, 2))
            table.add_column(no_wrap=True, max_width=max(16, width // 3), overflow="ellipsis")
            table.add_column(no_wrap=True, max_width=max(16, width // 3), overflow="ellipsis")
            table.add_column(no_wrap=True)
            table.add_column(no_wrap=True, justify="right")
            now = tracker.clock()
            for run in runs[:MAX_LINES]:
                table.add_row(*_running(run, now, len(tracker.tenants) > 1))
            parts.append(table)
            if len(runs) > MAX_LINES:
                parts.append(Text(f"  … and {len(runs) - MAX_LINES} more running"))
    return Group(*parts)


def _counts(tracker: Tracker, total: int, ending: str | None) -> str:
    text = f"{tracker.finished}/{total} Steps"
    if tracker.failed:
        text += f" ({tracker.failed} failed)"
    if tracker.reused:
        text += f" · {tracker.reused} reused"
    text += f" · elapsed {clock_text(tracker.elapsed())}"
    if ending is not None:
        return f"{text} · {ending}"
    eta = tracker.eta()
    return text + (f" · ETA {clock_text(eta)}" if eta is not None else " · ETA estimating…")


def _slots(tracker: Tracker) -> str:
    parts = []
    for tenant in tracker.tenants:
        used = tracker.slots(tenant)
        boxes = "■" * used + "□" * max(0, tracker.slot_limit - used)
        name = f"{tenant} " if tenant is not None else ""
        parts.append(f"{name}{boxes} {used}/{tracker.slot_limit}")
    waiting = tracker.waiting
    return "slots  " + "   ".join(parts or ["□" * tracker.slot_limit]) + \
        f"   queued {waiting}   running {len(tracker.running)}"


def _running(run: Running, now: float, tenants: bool) -> tuple[Text, Text, Text, Text]:
    task = str(getattr(run.step, "task_name", "") or getattr(run.step, "operation", ""))
    if tenants and run.tenant is not None:
        task = f"{run.tenant}: {task}"
    output = str(getattr(run.step, "output", "") or "")
    if run.phase == "paging":
        rate = run.records_per_second(now)
        doing = f"paging {run.records:,} records" + (f" · {rate:,.0f}/s" if rate else "")
    else:
        doing = {"job": "export job running", "downloading": "downloading",
                 "retrying": "trying again"}.get(run.phase, run.phase)
    return (Text(task), Text(output, style="dim"), Text(doing),
            Text(clock_text(now - run.since)))
