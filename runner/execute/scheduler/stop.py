"""Ctrl-C for one scheduler or several: the signal only sets a flag the schedulers read."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Stop:
    """Ctrl-C for one scheduler or several (one per tenant, in threads).

    The main thread's SIGINT handler only sets this; each scheduler reads it between two
    steps of its work, so an interrupt never lands between a submit and the commit of the
    job id.  A second Ctrl-C is the usual KeyboardInterrupt, for a user who will not wait.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._wakers: list[Callable[[], None]] = []

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()
        for wake in list(self._wakers):
            wake()

    def add_waker(self, wake: Callable[[], None]) -> None:
        """Called on ``set``, so a scheduler waiting for its next poll wakes at once."""
        self._wakers.append(wake)

    @contextlib.contextmanager
    def on_sigint(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.set()

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

