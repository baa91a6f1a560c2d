"""How well the runner keeps the tenant's five export slots busy.

Runs 60 export jobs of varied duration through the simulator and prints each client's
makespan (first submit → last file downloaded) against the lower bound
``max(sum of durations / 5, longest job)``, in two variants:

* **durations by submit order**: the k-th job submitted runs ``durations[k]``, whatever
  it exports (no history can help here);
  - the runner (its scheduler, polling policy scaled like the durations);
  - naive client A: one job at a time, polling every 2 minutes;
  - naive client B: batches of five, each batch waiting for its slowest job;
* **durations by Step**: the i-th Step of the plan runs ``durations[i]`` whenever it is
  submitted, as on a real tenant (an export of 100 sites takes longer than one of 3);
  - the runner on a fresh state (no history: plan order, polls by age);
  - the runner again on the state that run left (with ``--fresh``: every job runs again,
    the history is kept): queue longest-known-first, polls at each job's expected end.

Beside them, two references computed from the durations: greedy scheduling with instant
notice of each job's end, in plan order and longest-first (LPT).

Durations are drawn uniformly from 2-20 s and every time is scaled down by ``--scale``
(default 10: jobs of 0.2-2 s, A polls every 12 s), so the whole run takes about a minute.
Client A would need 60 polling periods of wall time, so it talks to a simulator on a
virtual clock that its sleeps advance (the service is the same code, only time is
simulated); the runner and client B run in real time.

    .venv/bin/python benchmarks/slots.py [--jobs 60] [--scale 10] [--seed 3]
"""

from __future__ import annotations

import argparse
import heapq
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner import catalog  # noqa: E402
from runner.client.api import InsightsClient  # noqa: E402
from runner.client.connection import settings_for_simulator  # noqa: E402
from runner.execute.engine import RunOptions, run_plan  # noqa: E402
from runner.execute.scheduler import PollPolicy  # noqa: E402
from runner.manifest import load_playbook  # noqa: E402
from runner.plan import compile_plan  # noqa: E402
from runner.sim import SimConfig, Simulator  # noqa: E402
from runner.sim.jobs import FIRST_JOB_ID  # noqa: E402

SLOTS = catalog.MAX_CONCURRENT_EXPORTS


class VirtualClock:
    """Time that moves only when a client sleeps."""

    def __init__(self) -> None:
        self.now = time.time()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def durations_for(jobs: int, scale: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(2.0, 20.0) / scale for _ in range(jobs)]


def simulator(durations: list[float], clock=time.time) -> Simulator:
    def seconds(job_id: int) -> float:
        return durations[(job_id - FIRST_JOB_ID) % len(durations)]

    return Simulator(SimConfig(seed=7, scale="small", job_seconds=seconds, clock=clock))


def by_step(sim: Simulator, durations: list[float]) -> None:
    """From now on, the job of body i (told apart by its start time, see ``bodies``) runs
    durations[i], whenever it is submitted."""
    book = sim.jobs
    submit = book.submit

    def submit_by_step(op, values, client_id):
        job = submit(op, values, client_id)
        minute, second = re.search(r"T00:(\d\d):(\d\d)", str(values)).groups()
        job.ends = job.submitted + durations[int(minute) * 60 + int(second)]
        return job

    book.submit = submit_by_step


def greedy(durations: list[float]) -> float:
    """Makespan of list scheduling on the slots, in this order, noticing each end at once."""
    free = [0.0] * SLOTS
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def bodies(jobs: int) -> list[dict]:
    """One link export per job, told apart by its start time."""
    return [{"link_type": "anyone", "start_time": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}"}
            for i in range(jobs)]


def run_runner(durations: list[float], scale: float, workdir: Path, *, steps: bool = False,
               again: bool = False) -> float:
    """The runner's makespan; ``again``: on the state (and history) of the last run."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "reports", ignore_errors=True)
    with simulator(durations) as sim:
        if steps:
            by_step(sim, durations)
        document = {
            "version": 1, "name": "slots benchmark",
            "connection": {"base_url": sim.base_url, "identity_url": sim.identity_url,
                           "client_id": sim.client_id,
                           "certificate": {"path": str(sim.credentials.pfx_path),
                                           "password": sim.credentials.pfx_password}},
            "output_dir": "reports",
            "tasks": [{"name": "links", "link_export": {"link_type": "anyone",
                                                        "start_time": "{{ item.start_time }}"},
                       "loop": bodies(len(durations)),
                       "output": "links/{{ item.start_time[-5:] | replace(':', '') }}.zip"}],
        }
        path = workdir / "slots.yml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        playbook = load_playbook(path)
        plan = compile_plan(playbook)
        # The runner's own policy, its floor and ceiling scaled like the jobs.
        default = PollPolicy()
        poll = PollPolicy(floor=default.floor / scale, ceiling=default.ceiling / scale,
                          fraction=default.fraction)
        result = run_plan(playbook, plan, RunOptions(poll=poll, fresh=again))
        finished = time.time()
        assert result.exit_code == 0, [o.error for o in result.failed]
        first_submit = min(e.time for e in sim.log.entries if e.operation == "link_export")
        assert sim.log.max_concurrent_jobs() <= SLOTS
        return finished - first_submit


def naive_one_at_a_time(durations: list[float], scale: float, workdir: Path) -> float:
    clock = VirtualClock()
    interval = 120.0 / scale
    with simulator(durations, clock) as sim:
        client = InsightsClient(settings_for_simulator(sim), sleep=clock.sleep)
        start = clock()
        for i, body in enumerate(bodies(len(durations))):
            job = client.submit("link_export", body)
            while True:
                clock.sleep(interval)
                if client.job_status("link_export", job) in catalog.TERMINAL_STATUSES:
                    break
            client.download("link_export", job, workdir / f"a-{i}.zip")
        client.close()
        return clock() - start


def naive_batches_of_five(durations: list[float], scale: float, workdir: Path) -> float:
    interval = 1.0 / scale
    with simulator(durations) as sim:
        client = InsightsClient(settings_for_simulator(sim))
        all_bodies = bodies(len(durations))
        start = time.time()
        for first in range(0, len(all_bodies), SLOTS):
            batch = [client.submit("link_export", body)
                     for body in all_bodies[first:first + SLOTS]]
            waiting = set(batch)
            while waiting:
                time.sleep(interval)
                waiting = {job for job in waiting if client.job_status("link_export", job)
                           not in catalog.TERMINAL_STATUSES}
            for job in batch:
                client.download("link_export", job, workdir / f"b-{job}.zip")
        client.close()
        return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--only", choices=("order", "step"), help="run one variant only")
    args = parser.parse_args()
    durations = durations_for(args.jobs, args.scale, args.seed)
    bound = max(sum(durations) / SLOTS, max(durations))
    plan_order = greedy(durations)
    longest_first = greedy(sorted(durations, reverse=True))
    by_order, by_steps = [], []
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        if args.only != "step":
            by_order.append(("runner", run_runner(durations, args.scale, workdir / "order"),
                             "real"))
            by_order.append(("naive A: one at a time, polls every 2 min",
                             naive_one_at_a_time(durations, args.scale, workdir), "virtual"))
            by_order.append(("naive B: batches of five, wait for the slowest",
                             naive_batches_of_five(durations, args.scale, workdir), "real"))
    with tempfile.TemporaryDirectory() as temp:
        workdir = Path(temp)
        if args.only != "order":
            by_steps.append(("runner, no history (first run)",
                            run_runner(durations, args.scale, workdir / "step", steps=True),
                            "real"))
            by_steps.append(("runner with history (run again, --fresh)",
                            run_runner(durations, args.scale, workdir / "step", steps=True,
                                       again=True), "real"))
    print(f"{args.jobs} export jobs, durations 2-20 s scaled down {args.scale:g}x "
          f"(sum {sum(durations):.1f} s, longest {max(durations):.2f} s)")
    print(f"lower bound max(sum/5, longest) = {bound:.2f} s\n")
    references = [("greedy, instant notice, plan order", plan_order, "computed"),
                  ("greedy, instant notice, longest first (LPT)", longest_first, "computed"),
                  ("lower bound", bound, "computed")]
    print(f"{'client':<48} {'makespan':>10} {'vs bound':>9}  clock")
    for title, rows in (("durations by submit order", by_order),
                        ("durations by Step, history in the state", by_steps)):
        if not rows:
            continue
        print(f"-- {title}")
        for name, makespan, clock in [*rows, *references]:
            print(f"{name:<48} {makespan:>9.2f}s {makespan / bound:>8.2f}x  {clock}")


if __name__ == "__main__":
    main()
