"""Several runners on one shared state (PostgreSQL): who works on which Step, and slots.

Each Step is claimed by one runner before it works on it; a Step another live runner holds
is watched (its state re-read every ``FOREIGN_SECONDS``) until it ends, and taken over when
that runner is gone: a submitted job is polled again, never submitted again.  Each export
job also holds one of the tenant's slots, leased in the database, so the runners together
keep to the tenant's five.  With a state of one's own (SQLite) none of this runs:
``store.shared`` is False.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.execute.state import StateStore, StepState, StepStatus

from .policy import PollPolicy
from .records import Outcome

S = StepStatus
FOREIGN_SECONDS = 1.0  # how often Steps other runners hold are looked at again


class SharingMixin:
    """The part of ``Scheduler`` that shares the work with other runners."""

    store: StateStore
    outcomes: dict[str, Outcome]
    tenant_key: str
    max_slots: int
    poll: PollPolicy
    clock: Callable[[], float]
    wall: Callable[[], float]
    _exports: deque[Any]
    _busy_until: float
    _foreign: dict[str, Any]  # Step id -> Step another live runner holds
    _foreign_due: float
    _slot_waits: dict[str, float]  # Step id -> when it began to wait for a slot

    if TYPE_CHECKING:  # the Scheduler's own
        def _resume(self, step: Any, state: StepState, outcome: Outcome, now: float
                    ) -> None: ...

        def _finish(self, outcome: Outcome, status: str, *, reused: bool = False,
                    **values: Any) -> None: ...

        def _emit(self, kind: str, payload: Any) -> None: ...

    def _held_elsewhere(self, step: Any) -> bool:
        """A shared state: claim ``step`` before working on it; when another live runner
        holds it, watch it instead (True)."""
        if not self.store.shared:
            return False
        if self.store.claim(step.id):
            self._note_takeover(step)
            return False
        self._foreign[step.id] = step
        return True

    def _claim_for_work(self, step: Any, state: StepState, outcome: Outcome, now: float
                        ) -> StepState | None:
        """A shared state: claim ``step`` before working on it from ``state`` (read before
        the claim).  None when there is nothing to do here: another live runner holds it
        (watched), or it moved on before our claim (its last holder ended: reported, or
        resumed from where it is now).  Else its state as it is now."""
        if not self.store.shared:
            return state
        if self._held_elsewhere(step):
            return None
        current = self.store.step(step.id)
        if current.status == state.status:
            return current
        if current.status in (S.SUCCEEDED, S.FAILED):
            self._report_foreign(step, current)
        else:
            self._resume(step, current, outcome, now)
        return None

    def _note_takeover(self, step: Any) -> None:
        if self.store.took_over(step.id):
            self.outcomes[step.id].warn("taken over from a runner that stopped")
            self._emit("taken_over", step)

    def _shared_turn(self, step: Any, now: float) -> str:
        """Whether a pending export may be submitted now: "go" (claimed, with a slot),
        "elsewhere" (another runner holds it or moved it on) or "wait" (every slot of the
        tenant is leased: back at the head of the queue, the database asked again soon)."""
        if self._held_elsewhere(step):
            return "elsewhere"
        current = self.store.step(step.id)
        if current.status in (S.SUCCEEDED, S.FAILED):  # another runner ended it meanwhile
            self._report_foreign(step, current)
            return "elsewhere"
        if current.status not in (S.PENDING, S.SUBMITTING):  # taken over from a dead one
            self._resume(step, current, self.outcomes[step.id], now)
            return "elsewhere"
        outcome = self.outcomes[step.id]
        if current.status == S.SUBMITTING and not any("crash window" in w
                                                      for w in outcome.warnings):
            outcome.warn(
                "a runner stopped while submitting this job: it may have been submitted "
                "twice (the documented crash window)")
        if not self._lease_slot(step):
            self._exports.appendleft(step)
            self._busy_until = now + min(1.0, self.poll.floor)
            if step.id not in self._slot_waits:
                self._slot_waits[step.id] = self.wall()
                self._emit("slots_busy", step)
            return "wait"
        since = self._slot_waits.pop(step.id, None)
        if since is not None:
            outcome.warn(
                f"waited {self.wall() - since:.1f} s for one of the tenant's "
                f"{self.max_slots} export slots, held by other runs sharing the state")
        return "go"

    def _lease_slot(self, step: Any, *, force: bool = False) -> bool:
        return self.store.acquire_slot(self.tenant_key, step.id, self.max_slots, force=force)

    def _free_slot(self, step_id: str) -> None:
        self.store.release_slot(self.tenant_key, step_id)

    def _check_foreign(self) -> None:
        """Steps other live runners hold, every ``FOREIGN_SECONDS``: report those that
        ended, with their real status; take over those whose runner is gone (its claim
        expired, or it gave it back), resuming them from the state: a submitted job is
        polled, never submitted again."""
        now = self.clock()
        if not self._foreign or now < self._foreign_due:
            return
        self._foreign_due = now + FOREIGN_SECONDS
        states = self.store.steps_of(list(self._foreign))
        held = self.store.claimed_elsewhere(list(self._foreign))
        for step_id, step in list(self._foreign.items()):
            state = states[step_id]
            if state.status in (S.SUCCEEDED, S.FAILED):
                del self._foreign[step_id]
                self._report_foreign(step, state)
            elif step_id not in held and self.store.claim(step_id):
                del self._foreign[step_id]
                self._note_takeover(step)
                self._resume(step, state, self.outcomes[step_id], now)

    def _report_foreign(self, step: Any, state: StepState) -> None:
        """A Step another runner sharing the state finished: this run's report shows it."""
        outcome = self.outcomes[step.id]
        outcome.job_id, outcome.attempts = state.job_id, state.attempts
        outcome.started = state.started_at
        outcome.warn("done by another runner sharing this state")
        if state.status == S.SUCCEEDED:
            self._finish(outcome, "succeeded", bytes=state.bytes, sha256=state.sha256,
                         records=state.records or None,
                         finished=state.finished_at or self.wall())
        else:
            self._finish(outcome, "failed", error=state.error,
                         finished=state.finished_at or self.wall())
