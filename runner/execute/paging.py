"""Paging one query into its file, resumably: the part of a run that streams records.

A query's pages go straight into its output file (``outputs.RecordWriter``) and are then
dropped, so memory does not grow with the records.  The position is checkpointed (the
partial file fsynced, then the next token committed to the state store) after the first
page and then every ``checkpoint_seconds``: one fsync and one SQLite commit per page cost
as much as the page itself on some disks (benchmarks/run_all.py measures both), and a
crash repeats at most those seconds of pages.  The resume contract is unchanged: what is
committed is durable, and a resume cuts the partial file back to it and asks for the
committed token.  The next page is fetched while this one is written (``prefetched``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import catalog, crashpoint
from runner.execute import outputs
from runner.execute.state import StateStore, StepState, StepStatus

Pages = Callable[[Any, str | None], Iterator[tuple[list[dict], str | None]]]


@dataclass(frozen=True)
class QueryFile:
    """A finished query file and how many records it holds."""

    info: outputs.FileInfo
    records: int

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def sha256(self) -> str:
        return self.info.sha256

    @property
    def mtime_ns(self) -> int:
        return self.info.mtime_ns


def page_query(step: Any, state: StepState, pages: Pages, store: StateStore, target: Path, *,
               stop: threading.Event, clock: Callable[[], float], checkpoint_seconds: float,
               emit: Callable[[str, Any], None]) -> QueryFile:
    """Page ``step`` into ``target``, going on from ``state`` when it can."""
    columns = catalog.operation(step.operation, getattr(step, "api", "v1")).result_fields
    start: str | None = None
    if state.status == StepStatus.PAGING and outputs.resumable(target, step.id, state.bytes):
        writer = outputs.RecordWriter.open(
            target, step.id, step.format, columns,
            resume=outputs.Checkpoint(state.records, state.bytes or 0))
        start = state.page_token
        done = start is None  # the last page was committed before the crash
    else:
        if state.status == StepStatus.PAGING:
            store.requeue(step.id, "its partial file was lost; starting over")
        store.start_paging(step.id)
        writer = outputs.RecordWriter.open(target, step.id, step.format, columns)
        done = False
    emit("paging", step)
    try:
        if not done:
            due = 0.0  # the first page is checkpointed at once, then every few seconds
            for records, next_token in prefetched(pages(step, start), stop):
                if stop.is_set():
                    raise KeyboardInterrupt
                writer.append(records)
                if next_token is None or clock() >= due:
                    # fsync, then commit the token that follows what is now durable.
                    mark = writer.checkpoint()
                    crashpoint.hit("before-page-checkpoint")
                    store.page(step.id, next_token, mark.records, mark.bytes)
                    crashpoint.hit("after-page-checkpoint")
                    due = clock() + checkpoint_seconds
                emit("page", (step, len(records)))
                if next_token is None:
                    break
        info = writer.finish()
    finally:
        writer.close()
    return QueryFile(info, writer.records)


def prefetched(pages: Iterator[Any], stop: threading.Event, depth: int = 2
                ) -> Iterator[Any]:
    """``pages``, fetched by a helper thread up to ``depth`` pages ahead, so the service
    prepares the next page while this thread writes the last one.  Errors arrive in order;
    when the consumer stops early, the helper stops at its next page."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    quit_ = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not (quit_.is_set() or stop.is_set()):
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not put(("page", page)):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(("error", error))
            return
        put(("end", None))

    helper = threading.Thread(target=fetch, name="runner-prefetch", daemon=True)
    helper.start()
    try:
        while True:
            try:
                kind, value = handoff.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    raise KeyboardInterrupt from None
                continue
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        quit_.set()
