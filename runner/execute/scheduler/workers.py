"""The worker threads that download files and page through queries beside the slots.

Work goes in as a function of a Step; what it returned (or raised) comes back on
``results`` as ``("ok" | "error", step, value)``, to be handled in the scheduler's own
thread, which alone touches the state and the run's outcomes.  ``("interrupt", None,
None)`` on the same queue wakes a scheduler that is waiting for results.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Result = tuple[str, Any, Any]


class WorkerPool:
    def __init__(self, workers: int) -> None:
        self.results: queue.Queue[Result] = queue.Queue()
        self.outstanding = 0  # work handed out whose result was not taken yet
        self.stopping = threading.Event()  # set as the run ends: queued work is dropped
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"runner-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for _ in self._threads:
            self._work.put(None)

    def dispatch(self, step: Any, work: Callable[[Any, Any], Any], argument: Any) -> None:
        self.outstanding += 1

        def task() -> None:
            try:
                value = work(step, argument)
            except BaseException as error:  # reported to the scheduler's thread
                self.results.put(("error", step, error))
            else:
                self.results.put(("ok", step, value))

        self._work.put(task)

    def interrupt(self) -> None:
        self.results.put(("interrupt", None, None))

    def taken(self) -> None:
        """A result was taken off ``results``: the work that made it is done."""
        self.outstanding -= 1

    def _serve(self) -> None:
        while True:
            task = self._work.get()
            if task is None or self.stopping.is_set():
                return
            task()
