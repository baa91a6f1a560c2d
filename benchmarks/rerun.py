"""Re-runs of a finished plan, A/B (issue 14, items 3 and 4): this tree against another.

``make DIR`` builds a finished v1 plan (``run_all.py``'s: 200,000 users, 2,000 export
Steps) with the embedded simulator: its first run, then the run that writes the plan's
memo.  ``ab DIR --base SRC`` copies DIR twice (DIR-ab-base and DIR-ab-new; ``cp -a``: the
files keep their mtimes) and re-runs each copy with ``insights-runner run -q``, in turn,
``--rounds`` times: the runner of this tree, and the one in SRC (``git archive REV runner
| tar -x -C SRC``) on PYTHONPATH.  Each copy is run once before the timed rounds (it
migrates its state and writes its own memo).  Figures: whole-process CPU (wait4) and peak
RSS, medians.  Without ``--base``, the third copy is re-run by this tree with its seal
deleted before each round (``runner.execute.sealed``): the Step-by-Step re-run, side by
side with the sealed one.

``make-v2 DIR --users N`` builds a finished access review of N users on v2 (``plans.py``'s,
N Steps) without its first run of N jobs: see ``make_v2``.  Run it with the BASE runner
(``PYTHONPATH=SRC python SRC/benchmarks/rerun.py make-v2 ...``) so both sides can read the
state.

    .venv/bin/python benchmarks/rerun.py          # 2,000 v1 and 200,000 v2 Steps, in a temp folder
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
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_all import PASSWORD_VAR, checked, child, first_run, plan_playbook  # noqa: E402

# issue 14: a re-run of a finished plan, whole process: item 3 (2,000 Steps), item 4 (200,000)
GOALS = {2_000: (0.3, None), 200_000: (2.0, 286)}  # Steps: (CPU s, peak RSS MiB: 300 MB)


def make(directory: Path, users: int) -> None:
    from runner.sim import SimConfig, Simulator
    from runner.sim.tenant import sized_scale

    with Simulator(SimConfig(scale=sized_scale(users=users), job_seconds=0)) as sim:
        playbook = plan_playbook(directory, sim)
        first_run(playbook, sim)
        env = {**os.environ, PASSWORD_VAR: sim.credentials.pfx_password}
        checked(child(rerun_argv(directory), env=env), "the run that writes the memo")
        (directory / "password").write_text(sim.credentials.pfx_password, encoding="utf-8")


def make_v2(directory: Path, users: int) -> None:
    """A finished access review of ``users`` users on v2 (``plans.py``'s playbook) without
    its first run of ``users`` jobs (hours at 200,000): the Users task runs for real, then
    the deferred task's Steps are compiled and registered in the playbook's state and
    marked succeeded in one transaction, each with a small synthetic file of its own
    (size, sha256 and mtime recorded as a download would).  Then the run that writes the
    memos.  ``ab`` re-runs it as any other."""
    import hashlib

    from plans import SimProcess, write_playbook

    from runner.execute.registry import RecordFiles
    from runner.execute.state import StateStore
    from runner.manifest import load_playbook
    from runner.plan import compile_plan, compile_task

    sim = SimProcess(users)
    try:
        playbook = write_playbook(directory, sim.spec)
        env = sim.env()
        state = directory / "state"
        argv = [sys.executable, "-m", "runner", "run", str(playbook), "-q", "--state-dir",
                str(state), "--tags", "users"]
        document = playbook.read_text(encoding="utf-8")
        playbook.write_text(document.replace("register: users", "register: users\n  tags: [users]"),
                            encoding="utf-8")
        checked(child(argv, env=env, cwd=directory.parent), "the Users task")
        os.environ.update({PASSWORD_VAR: sim.spec["password"]})
        loaded = load_playbook(playbook)
        compile_plan(loaded)
        users_file = directory / "reports" / "users.jsonl"
        steps = compile_task(loaded, 1, registered={
            "users": RecordFiles([(users_file, "jsonl")], users)})
        finished = []
        for step in steps:
            path = directory / "reports" / step.output
            path.parent.mkdir(parents=True, exist_ok=True)
            data = f"synthetic export of {step.id}\n".encode()
            path.write_bytes(data)
            finished.append((len(data), hashlib.sha256(data).hexdigest(),
                             path.stat().st_mtime_ns, str(step.id)))
        with StateStore.open(state) as store:
            store.register_steps(store.begin_run(str(playbook), "synthetic"), steps)
            with store._tx() as conn:
                conn.executemany("UPDATE steps SET status = 'succeeded', attempts = 1, "
                                 "bytes = ?, sha256 = ?, mtime_ns = ?, finished_at = 1.0 "
                                 "WHERE id = ?", finished)
        checked(child(rerun_argv(directory), env=env, cwd=directory.parent),
                "the run that writes the memos")
        (directory / "password").write_text(sim.spec["password"], encoding="utf-8")
    finally:
        sim.close()


def rerun_argv(directory: Path) -> list[str]:
    return [sys.executable, "-m", "runner", "run", str(directory / "book.yml"), "-q",
            "--state-dir", str(directory / "state")]


def ab(directory: Path, base: Path | None, rounds: int, unsealed: bool = False) -> None:
    """Re-runs of copies of ``directory``: this tree's runner ("new") and, with ``base``,
    the one in that folder, in turn; with ``unsealed`` too, both check every Step (their
    seals deleted before each round)."""
    password = (directory / "password").read_text(encoding="utf-8")
    env = {**os.environ, PASSWORD_VAR: password, "NO_COLOR": "1"}
    parties = {"new": (directory.with_name(directory.name + "-ab-new"), env)}
    # Children start in DIR's parent: `python -m` puts the working folder first on sys.path,
    # and in this tree that would be this runner for both.
    cwd = directory.parent
    if base is None:  # beside it, the same runner made to check every Step (no seal)
        parties["unsealed"] = (directory.with_name(directory.name + "-ab-unsealed"), env)
    else:
        parties = {"base": (directory.with_name(directory.name + "-ab-base"),
                            {**env, "PYTHONPATH": str(base)}), **parties}
        where = subprocess.run([sys.executable, "-c", "import runner; print(runner.__file__)"],
                               env=parties["base"][1], capture_output=True, text=True,
                               check=True, cwd=cwd)
        if not Path(where.stdout.strip()).is_relative_to(base.resolve()):
            raise SystemExit(f"the base runner is not the one in {base}: "
                             f"{where.stdout.strip()}")
    # An installed runner has its .pyc files; a shell with PYTHONDONTWRITEBYTECODE=1 (as
    # here) would compile every module on every run (about 0.1 s): compile them once.
    for party_env in (env for _, env in parties.values()):
        subprocess.run([sys.executable, "-c", "import compileall, os, runner; "
                        "compileall.compile_dir(os.path.dirname(runner.__file__), quiet=1)"],
                       env={**party_env, "PYTHONDONTWRITEBYTECODE": ""}, check=True, cwd=cwd)
    for copy, _ in parties.values():
        shutil.rmtree(copy, ignore_errors=True)
        subprocess.run(["cp", "-a", str(directory), str(copy)], check=True)
    for name, (copy, party_env) in parties.items():
        checked(child(rerun_argv(copy), env=party_env, cwd=cwd), f"{name}: the first re-run")
    cpu: dict[str, list[float]] = {name: [] for name in parties}
    rss: dict[str, list[float]] = {name: [] for name in parties}
    for _ in range(rounds):
        for name, (copy, party_env) in parties.items():
            if name == "unsealed" or unsealed:
                for seal in (copy / "state" / "compiled").glob("sealed-*"):
                    seal.unlink()
            result = checked(child(rerun_argv(copy), env=party_env, cwd=cwd),
                             f"{name}: a re-run")
            cpu[name].append(result.cpu)
            rss[name].append(result.peak_mib)
    for name in parties:
        print(f"{name}: CPU median {statistics.median(cpu[name]):.3f} s "
              f"({', '.join(f'{c:.2f}' for c in cpu[name])}); peak RSS median "
              f"{statistics.median(rss[name]):.0f} MiB")
    if base is None:
        steps = sealed_steps(parties["new"][0])
        goal_cpu, goal_rss = GOALS.get(steps, GOALS[2_000] if steps < 20_000 else
                                       GOALS[200_000])
        goal = f"goal <= {goal_cpu:g} s" + (f" and 300 MB ({goal_rss} MiB)" if goal_rss else "")
        print(f"re-run of the finished plan of {steps:,} Steps: CPU median "
              f"{statistics.median(cpu['new']):.3f} s, peak RSS "
              f"{statistics.median(rss['new']):.0f} MiB ({goal}); each Step checked (no seal) "
              f"{statistics.median(cpu['unsealed']):.3f} s, "
              f"{statistics.median(rss['unsealed']):.0f} MiB; load {os.getloadavg()[0]:.1f}")
        return
    ratio = statistics.median(cpu["new"]) / statistics.median(cpu["base"])
    print(json.dumps({"ratio_new_base": round(ratio, 3), "load": os.getloadavg()[0]}))


def sealed_steps(copy: Path) -> int:
    """How many Steps the plan re-run in ``copy`` has (its seal's report says)."""
    for header in (copy / "state" / "compiled").glob("sealed-*.json"):
        return int(json.loads(header.read_text(encoding="utf-8"))["report"]["length"])
    raise SystemExit(f"{copy}: the plan was not sealed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["make", "make-v2", "ab"],
                        help="none (as `make bench` runs it): make a finished 2,000-Step "
                        "v1 plan and a finished 200,000-Step v2 one in a temporary folder "
                        "and time this tree's re-runs of each (about 5 minutes)")
    parser.add_argument("directory", type=Path, nargs="?")
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--base", type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--unsealed", action="store_true",
                        help="ab with --base: both sides check every Step (no seal)")
    parser.add_argument("--v2-users", type=int, default=200_000,
                        help="without WHAT: the v2 plan's users (= Steps); 0 leaves it out")
    options = parser.parse_args()
    if options.what is None:
        with tempfile.TemporaryDirectory(prefix="insights-rerun-") as folder:
            make(Path(folder) / "plan", options.users)
            ab(Path(folder) / "plan", None, options.rounds)
            if options.v2_users:
                make_v2(Path(folder) / "v2", options.v2_users)
                ab(Path(folder) / "v2", None, min(options.rounds, 3))
        return 0
    if options.directory is None:
        parser.error(f"{options.what} needs a directory")
    if options.what == "make":
        make(options.directory, options.users)
    elif options.what == "make-v2":
        make_v2(options.directory, options.users)
    else:
        ab(options.directory, options.base, options.rounds, options.unsealed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
