"""How often to ask the service about an export job: by its age, and near its expected end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait before asking again about a job that has run for ``age`` seconds."""

    floor: float = 0.5
    ceiling: float = 30.0
    fraction: float = 0.03
    max_job_seconds: float = 12 * 3600  # then the Step fails; the job may still finish

    close_polls: int = 4  # polls in the floor's time after an expected end

    def delay(self, age: float, expected: float | None = None) -> float:
        """Seconds to the next poll; ``expected`` is the job's length from history.

        Never later than the age rule; with a known length, one poll lands on the expected
        end and ``close_polls`` follow within the next floor (history is only as precise
        as the polls that measured it), so a job that lasts as long as last time is
        noticed a fraction of a floor late at most, for a handful of extra requests.
        """
        usual = max(self.floor, min(self.ceiling, self.fraction * age))
        if expected is None:
            return usual
        early = expected - age
        if early > 0:
            if early <= usual:
                return early
            # Split a gap just too long for one usual step: no poll a hair before the end.
            return early / 2 if early < usual + self.floor else usual
        if -early < self.floor:
            return self.floor / max(1, self.close_polls)
        return usual
