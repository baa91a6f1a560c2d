"""Re-runs of a finished plan, A/B (issue 14, items 3 and 4): this tree against another.

``make DIR`` builds a finished v1 plan (``run_all.py``'s: 200,000 users, 2,000 export
Steps) with the embedded simulator: its first run, then the run that writes the plan's
memo.  ``ab DIR --base SRC`` copies DIR twice (DIR-ab-base and DIR-ab-new; ``cp -a``: the
files keep their mtimes) and re-runs each copy with ``insights-runner run -q``, in turn,
``--rounds`` times: the runner of this tree, and the one in SRC (``git archive REV runner
| tar -x -C SRC``) on PYTHONPATH.  Each copy is run once before the timed rounds (it
migrates its state and writes its own memo).  Figures: whole-process CPU (wait4) and peak
RSS, medians.

    .venv/bin/python benchmarks/rerun.py make /tmp/rr --users 200000
    .venv/bin/python benchmarks/rerun.py ab /tmp/rr --base /tmp/rr-src --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_all import PASSWORD_VAR, checked, child, first_run, plan_playbook  # noqa: E402


def make(directory: Path, users: int) -> None:
    from runner.sim import SimConfig, Simulator
    from runner.sim.tenant import sized_scale

    with Simulator(SimConfig(scale=sized_scale(users=users), job_seconds=0)) as sim:
        playbook = plan_playbook(directory, sim)
        first_run(playbook, sim)
        env = {**os.environ, PASSWORD_VAR: sim.credentials.pfx_password}
        checked(child(rerun_argv(directory), env=env), "the run that writes the memo")
        (directory / "password").write_text(sim.credentials.pfx_password, encoding="utf-8")


def rerun_argv(directory: Path) -> list[str]:
    return [sys.executable, "-m", "runner", "run", str(directory / "book.yml"), "-q",
            "--state-dir", str(directory / "state")]


def ab(directory: Path, base: Path, rounds: int) -> None:
    password = (directory / "password").read_text(encoding="utf-8")
    env = {**os.environ, PASSWORD_VAR: password, "NO_COLOR": "1"}
    parties = {"base": (directory.with_name(directory.name + "-ab-base"),
                        {**env, "PYTHONPATH": str(base)}),
               "new": (directory.with_name(directory.name + "-ab-new"), env)}
    # Children start in DIR's parent: `python -m` puts the working folder first on sys.path,
    # and in this tree that would be this runner for both.
    cwd = directory.parent
    where = subprocess.run([sys.executable, "-c", "import runner; print(runner.__file__)"],
                           env=parties["base"][1], capture_output=True, text=True, check=True,
                           cwd=cwd)
    if not Path(where.stdout.strip()).is_relative_to(base.resolve()):
        raise SystemExit(f"the base runner is not the one in {base}: {where.stdout.strip()}")
    for copy, _ in parties.values():
        shutil.rmtree(copy, ignore_errors=True)
        subprocess.run(["cp", "-a", str(directory), str(copy)], check=True)
    for name, (copy, party_env) in parties.items():
        checked(child(rerun_argv(copy), env=party_env, cwd=cwd), f"{name}: the first re-run")
    cpu: dict[str, list[float]] = {name: [] for name in parties}
    rss: dict[str, list[float]] = {name: [] for name in parties}
    for _ in range(rounds):
        for name, (copy, party_env) in parties.items():
            result = checked(child(rerun_argv(copy), env=party_env, cwd=cwd),
                             f"{name}: a re-run")
            cpu[name].append(result.cpu)
            rss[name].append(result.peak_mib)
    for name in parties:
        print(f"{name}: CPU median {statistics.median(cpu[name]):.3f} s "
              f"({', '.join(f'{c:.2f}' for c in cpu[name])}); peak RSS median "
              f"{statistics.median(rss[name]):.0f} MiB")
    ratio = statistics.median(cpu["new"]) / statistics.median(cpu["base"])
    print(json.dumps({"ratio_new_base": round(ratio, 3), "load": os.getloadavg()[0]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["make", "ab"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--base", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    if options.what == "make":
        make(options.directory, options.users)
    else:
        ab(options.directory, options.base, options.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
