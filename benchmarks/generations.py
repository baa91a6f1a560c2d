"""The same access review on both API generations, side by side: jobs and run time.

One playbook, ``user_access_export`` over the first N users of the simulator's tenant,
run with ``api: v1`` and then ``api: v2`` against one simulator (jobs of ``--job-seconds``),
through ``insights-runner run`` in a child process.  v1 takes 100 users per job, v2 one:
the printed ratios show what "100 times more jobs through five slots" costs.

    .venv/bin/python benchmarks/generations.py [--users 200] [--job-seconds 0.5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.sim import SimConfig, Simulator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    args = parser.parse_args()
    rows = []
    with Simulator(SimConfig(seed=7, scale="small", job_seconds=args.job_seconds)) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SIM_PFX_PASSWORD": sim.credentials.pfx_password}
        for api in ("v1", "v2"):
            folder = Path(tmp) / api
            folder.mkdir()
            playbook = folder / "review.yml"
            playbook.write_text(yaml.safe_dump({
                "version": 1,
                "connection": {"api": api, "base_url": sim.base_url,
                               "identity_url": sim.identity_url, "client_id": sim.client_id,
                               "certificate": {"path": str(sim.credentials.pfx_path),
                                               "password": "{{ env('SIM_PFX_PASSWORD') }}"}},
                "output_dir": "reports",
                "tasks": [
                    {"name": "users", "user_summary": {}, "register": "users"},
                    {"name": "access", "user_access_export": {
                        "emails": "{{ (users | map(attribute='loginName') | list)"
                                  f"[:{args.users}] }}}}",
                        "data_sources": ["teams", "sharepoint"],
                        # v1 requires the report variant, v2 removed it (it gives 2)
                        **({"export_option": 2} if api == "v1" else {})},
                     "output": "access/{{ chunk.number }}.zip"},
                ]}, sort_keys=False), encoding="utf-8")
            sim.log.clear()
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "runner", "run", str(playbook),
                                   "--quiet"], env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"{api}: exit {done.returncode}\n{done.stderr}")
            jobs = len(list((folder / "reports" / "access").glob("*.zip")))
            rows.append((api, jobs, seconds, sim.log.max_concurrent_jobs()))
    print(f"{args.users} users, export jobs of {args.job_seconds} s, 5 slots")
    print(f"{'api':4} {'jobs':>6} {'run s':>8} {'max concurrent':>15}")
    for api, jobs, seconds, concurrent in rows:
        print(f"{api:4} {jobs:6d} {seconds:8.1f} {concurrent:15d}")
    (_, j1, s1, _), (_, j2, s2, _) = rows
    print(f"v2/v1: {j2 / j1:.0f}x the jobs, {s2 / s1:.1f}x the run time")


if __name__ == "__main__":
    main()
