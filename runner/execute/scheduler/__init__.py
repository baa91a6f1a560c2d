"""The scheduler: runs a plan's Steps against one tenant, resumably.

It owns concurrency, and nothing else does:

* **Export slots.** At most ``max_slots`` (5) export jobs are in progress at once.  A slot is
  taken when a job is submitted and freed as soon as a poll sees a terminal status, not
  after the download, so the next job starts while the previous file is still streaming.
  A refusal from the service ("five jobs already running": another tool holds slots on the
  tenant) is ``SlotsBusy``: the Step goes back to the head of the queue and the scheduler
  waits for one of its own jobs to finish, or a growing back-off, before trying again.
* **Polling** (see ``PollPolicy``): each job is polled after a delay proportional to its age,
  between a floor and a ceiling.  The time between a job finishing and us noticing is then
  at most ``fraction`` of its run time (plus the floor), so each slot is kept busy for at
  most ``(1 + fraction)`` times the job's real duration; with fraction 0.03 the makespan
  stays within a few percent of what instant notification would give (benchmarks/slots.py
  measures it).  Meanwhile the number of status requests per job grows only
  logarithmically with its duration until the ceiling (a geometric series): a 20-second
  job is asked about ~40 times, an hour-long one a few hundred times, never more often
  than twice a second.
* **History** (``StateStore.durations``): how long each Step's job ran in an earlier run.
  The queue is ordered longest-known-first (LPT: jobs of unknown length first, in plan
  order, since any of them may be long), so the last jobs to start are short ones and the
  slots end together.  A job whose length is known is also polled at its expected end
  (``PollPolicy.delay(age, expected)``), and closely for a floor's time after it, instead of
  a floor or ``fraction`` of its age late; past that the age rule takes over again.
* **Downloads and paged queries** run on a small pool of worker threads beside the slots.

Everything the scheduler learns is committed to the state store before it acts on it
(``submitting`` before the POST, the job id right after it), so a process killed at any
point is resumed by the next run: finished Steps whose files still match are skipped,
submitted jobs are polled again rather than submitted again, paged queries go on from
their last committed token.

The service is reached through a ``JobApi`` (submit, status, download, pages); the clock
and sleep are injected so the policy can be tested without waiting (with ``sleep`` given,
the scheduler sleeps through it until the next poll instead of waiting on its workers).

The package: ``core`` (the ``Scheduler``: queue, slots, the loop), ``policy`` (when to
poll), ``records`` (the run report's rows, the jobs in flight), ``workers`` (the download
and query threads), ``sharing`` (several runners on one PostgreSQL state), ``stop``
(Ctrl-C).
"""

from .core import Event, JobApi, Scheduler
from .policy import PollPolicy
from .records import JobSpan, Outcome
from .stop import Stop

__all__ = ["Event", "JobApi", "JobSpan", "Outcome", "PollPolicy", "Scheduler", "Stop"]
