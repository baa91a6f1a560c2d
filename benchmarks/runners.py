"""Several runners sharing one PostgreSQL state: the makespan of 1, 2 and 3 `insights-runner
run` processes on one inventory of many tenants, side by side.

Each tenant is its own `insights-runner sim serve` process (its own five export slots, a
request log); each runner has its own working folder (a machine) and all write to one
output folder.  For each count of runners the database is new and the outputs empty; the
makespan is from the first runner's start to the last one's end.  Beside it: the export
jobs the simulators accepted (each Step once: no job twice), the most jobs any tenant had
at once (never over 5), and the bound every count shares: each tenant's own slots, about
``ceil(exports / 5)`` rounds of a job's mean length.

    .venv/bin/python benchmarks/runners.py [--tenants 12] [--exports 15] \\
        [--job-seconds 2-4] [--runners 1,2,3]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from servers import SimProcess, most_at_once, postgres_server  # noqa: E402

from runner import catalog  # noqa: E402


def inventory_folder(root: Path, sims: dict[str, SimProcess], exports: int,
                     output_dir: Path) -> Path:
    root.mkdir(parents=True)
    inventory = {"version": 1, "tenants": {
        tenant: {"connection": sim.connection(f"PFX_{tenant.upper()}")}
        for tenant, sim in sims.items()}}
    (root / "inventory.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    dates = [f"{2000 + i // 12}-{i % 12 + 1:02d}-01T00:00:00" for i in range(exports)]
    playbook = {"version": 1, "name": "runners benchmark", "hosts": "all",
                "output_dir": str(output_dir),
                "tasks": [{"name": "Links", "link_export": {"link_type": "anyone",
                                                            "start_time": "{{ item }}"},
                           "loop": dates, "output": "{{ tenant }}/{{ item[:7] }}.zip"}]}
    (root / "playbook.yml").write_text(yaml.safe_dump(playbook), encoding="utf-8")
    return root


def one_count(count: int, work: Path, sims: dict[str, SimProcess], exports: int,
              state_url: str) -> tuple[float, list[int]]:
    """Makespan of ``count`` runners from a fresh state; their exit codes."""
    output = work / "reports"
    folders = [inventory_folder(work / f"machine-{i}", sims, exports, output)
               for i in range(1, count + 1)]
    env = {**os.environ, "NO_COLOR": "1", "INSIGHTS_RUNNER_STATE": state_url,
           **{f"PFX_{tenant.upper()}": sim.password for tenant, sim in sims.items()}}
    started = time.monotonic()
    processes = []
    for folder in folders:
        with (folder / "run.err").open("w") as err:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "runner", "run", "playbook.yml", "-i", "inventory.yml",
                 "--quiet"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=err))
    codes = [process.wait(timeout=1800) for process in processes]
    seconds = time.monotonic() - started
    for folder, code in zip(folders, codes, strict=True):
        if code != 0:
            print(f"{folder.name} exited {code}:\n{(folder / 'run.err').read_text()[-4000:]}")
    return seconds, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=12)
    parser.add_argument("--exports", type=int, default=15, help="export Steps per tenant")
    parser.add_argument("--job-seconds", default="2-4", help="a job's length: S or LOW-HIGH")
    parser.add_argument("--runners", default="1,2,3", help="counts of runners to compare")
    args = parser.parse_args()
    counts = [int(n) for n in args.runners.split(",")]
    low, _, high = args.job_seconds.partition("-")
    mean = (float(low) + float(high or low)) / 2
    slots = catalog.MAX_CONCURRENT_EXPORTS
    bound = math.ceil(args.exports / slots) * mean

    root = Path(tempfile.mkdtemp(prefix="insights-runners-bench-"))
    sims: dict[str, SimProcess] = {}
    try:
        with postgres_server() as pg:
            for i in range(args.tenants):
                sims[f"t{i + 1:02d}"] = SimProcess(root / "sims" / f"t{i + 1:02d}", 7 + i,
                                                   args.job_seconds)
            load = os.getloadavg()[0]
            print(f"{args.tenants} tenants x {args.exports} exports (jobs {args.job_seconds} s,"
                  f" {slots} slots a tenant); load average {load:.2f} at the start")
            print(f"bound of every count (each tenant's own slots): about "
                  f"ceil({args.exports}/{slots}) x {mean:g} s = {bound:.1f} s\n")
            print(f"{'runners':>7}  {'makespan':>9}  {'vs first':>8}  {'jobs':>5}  "
                  f"{'most at once':>12}  exit codes")
            first = None
            for count in counts:
                before = {t: len(sim.submits()) for t, sim in sims.items()}
                work = root / f"runners-{count}"
                seconds, codes = one_count(count, work, sims, args.exports,
                                           pg.new_database())
                jobs = sum(len(sim.submits()) - before[t] for t, sim in sims.items())
                peak = max(most_at_once(sim.entries()) for sim in sims.values())
                first = first or seconds
                print(f"{count:>7}  {seconds:>8.1f}s  {first / seconds:>7.2f}x  {jobs:>5}  "
                      f"{peak:>12}  {codes}")
                shutil.rmtree(work, ignore_errors=True)
            print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    finally:
        for sim in sims.values():
            sim.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
