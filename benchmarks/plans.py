"""Plans of v2 size (issue 14, item 4): an access review of N users on the Graph API (v2),
where ``user_access_export`` takes one user per job, so N users are N export Steps.

For each size (default 2,000 and 20,000; ``--users 2000,200000`` for the full figure) the
simulator runs in its OWN process (so the runner's CPU is its own), with jobs of 0 s, and:

* compile: load + validate + compile the playbook, then the deferred task over the N
  registered users (in this process, after the imports);
* register: ``register_steps`` of the N Steps into a new SQLite state, then again (the
  re-run's restamp);
* the first run: ``run_plan`` in a child process, polls every 10 ms; its CPU per export
  Step (after the imports), whole-process CPU, peak RSS (the child's VmHWM, as
  run_all.py reads it), wall time, and jobs submitted (each once?);
* the re-run of the finished plan: ``insights-runner run -q``, whole process (CPU, wall,
  peak RSS, API requests: must be none);
* ``insights-runner plan``: its estimate of the run's duration from the state's history.

Each figure is printed beside its goal.

    .venv/bin/python benchmarks/plans.py [--users 2000,20000] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_all import PASSWORD_VAR, Child, checked, child  # noqa: E402

GOALS = {"compile": 5.0, "register": 5.0, "per_step_ms": 3.0, "rss_mib": 300e6 / 2**20,
         "rerun_cpu": 2.0}
ROWS: list[tuple[str, str, str]] = []


def row(figure: str, value: str, note: str = "") -> None:
    ROWS.append((figure, value, note))
    print(f"  {figure}: {value}  {note}", file=sys.stderr, flush=True)


# ------------------------------------------------------------ the simulator, apart


def serve(users: int) -> int:
    """(In a child process) a simulator of ``users`` users, v2, jobs of 0 s, until stdin
    closes; prints where it is as one JSON line, and at the end the requests it served."""
    from runner.sim import SimConfig, Simulator
    from runner.sim.tenant import sized_scale

    with Simulator(SimConfig(scale=sized_scale(users=users), job_seconds=0)) as sim:
        print(json.dumps({"base_url": sim.base_url, "identity_url": sim.identity_url,
                          "client_id": sim.client_id, "pfx": str(sim.credentials.pfx_path),
                          "password": sim.credentials.pfx_password}), flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                entries = sim.log.entries
                exports = [e for e in entries
                           if e.operation == "user_access_export" and e.status == 200]
                keys = [json.dumps(e.fields, sort_keys=True, default=str) for e in exports]
                print(json.dumps({"requests": len(entries), "exports": len(exports),
                                  "twice": len(keys) - len(set(keys))}), flush=True)
            elif line.strip() == "clear":
                sim.log.clear()
                print("{}", flush=True)
    return 0


class SimProcess:
    def __init__(self, users: int) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", str(users)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.spec = json.loads(self.process.stdout.readline())

    def ask(self, what: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(what + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def env(self) -> dict[str, str]:
        return {**os.environ, PASSWORD_VAR: self.spec["password"], "NO_COLOR": "1"}


def write_playbook(directory: Path, spec: dict[str, Any]) -> Path:
    document = {
        "version": 1, "name": "access-review",
        "connection": {
            "api": "v2", "base_url": spec["base_url"], "identity_url": spec["identity_url"],
            "client_id": spec["client_id"],
            "certificate": {"path": spec["pfx"],
                            "password": "{{ env('" + PASSWORD_VAR + "') }}"}},
        "output_dir": "reports",
        "tasks": [
            {"name": "Users", "user_summary": {}, "register": "users",
             "output": "users.jsonl"},
            {"name": "Access of every user",
             "user_access_export": {"emails": "{{ users | map(attribute='loginName') | list }}",
                                    "data_sources": ["teams"]},
             "output": "access/{{ chunk.number }}.zip"}],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "book.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# ------------------------------------------------------------ child: the first run


def child_run(playbook: str, profile: str) -> int:
    """(In a child process) run the playbook through run_plan, polls every 10 ms."""
    from runner import inputs, planfile, planmemo
    from runner.execute.engine import RunOptions, run_plan
    from runner.execute.scheduler import PollPolicy

    cpu = time.process_time()
    profilers = []
    if profile:  # every thread's own CPU (the workers download), merged at the end
        import cProfile
        import pstats

        from runner.execute.scheduler.workers import WorkerPool

        work = WorkerPool._serve

        def profiled(self: Any) -> None:
            profiler = cProfile.Profile(time.thread_time)
            profilers.append(profiler)
            profiler.runcall(work, self)

        WorkerPool._serve = profiled  # type: ignore[method-assign]
        profilers.append(cProfile.Profile(time.thread_time))
        profilers[-1].enable()
    # Compiled and memoised as `run` does (runner.commands.run): the re-run below then takes
    # its plan from the memo, and this run's seal, as a user's re-run would.
    call = planmemo.Call(playbook, (), None, None, None)
    with inputs.recording() as reads:
        compiled = planfile.compile_targets(playbook)
    (target,) = compiled.tenants
    poll = PollPolicy(floor=0.01, ceiling=1.0, fraction=0.03)
    result = run_plan(target.playbook, target.plan,
                      RunOptions(poll=poll, run_facts=compiled.run_facts))
    planmemo.save(call, compiled, reads)
    if profilers:
        profilers[0].disable()
        stats = pstats.Stats(profilers[0])
        for other in profilers[1:]:
            stats.add(other)
        stats.dump_stats(profile)
    print(json.dumps({"cpu": time.process_time() - cpu}))  # after the imports
    return result.exit_code


# ------------------------------------------------------------ in this process


def compile_and_register(playbook: Path, users: int
                         ) -> tuple[float, float, float, int, float, float, float]:
    """(compile s, register s, restamp s, Steps, compile CPU s, register CPU s, restamp
    CPU s) of the deferred task over ``users``."""
    from runner.execute.registry import RecordFiles
    from runner.execute.state import StateStore
    from runner.manifest import load_playbook
    from runner.plan import compile_plan, compile_task

    started, cpu = time.perf_counter(), time.process_time()
    loaded = load_playbook(playbook)
    compile_plan(loaded)
    users_file = playbook.parent / "reports" / "users.jsonl"
    steps = compile_task(loaded, 1, registered={
        "users": RecordFiles([(users_file, "jsonl")], users)})
    compiled, compile_cpu = time.perf_counter() - started, time.process_time() - cpu
    with tempfile.TemporaryDirectory(dir=playbook.parent) as directory, \
            StateStore.open(directory) as store:
        started, cpu = time.perf_counter(), time.process_time()
        store.register_steps(store.begin_run(str(playbook), "f"), steps)
        registered = time.perf_counter() - started
        registered_cpu = time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        store.register_steps(store.begin_run(str(playbook), "f"), steps)
        restamped = time.perf_counter() - started
        restamped_cpu = time.process_time() - cpu
    return (compiled, registered, restamped, len(steps), compile_cpu, registered_cpu,
            restamped_cpu)


def compile_figures(playbook: Path, users: int, env: dict[str, str]) -> None:
    argv = [sys.executable, __file__, "--child-compile", str(playbook), str(users)]
    measured = checked(child(argv, env=env), "compile and register")
    compiled, registered, restamped, count, cpu, registered_cpu, restamped_cpu = json.loads(
        measured.stdout.splitlines()[-1])
    row(f"compile, {users:,} registered users -> {count:,} Steps", f"{compiled:.2f} s",
        f"load + validate + compile, then the deferred task; CPU {cpu:.2f} s; goal <= "
        f"{GOALS['compile']:g} s")
    row(f"register {count:,} Steps in a new state", f"{registered:.2f} s",
        f"one transaction, CPU {registered_cpu:.2f} s; again (a re-run's restamp) "
        f"{restamped:.2f} s, CPU {restamped_cpu:.2f} s; goal <= "
        f"{GOALS['register']:g} s; peak RSS of compile + register {measured.peak_mib:.0f} MiB")


def compile_only(work: Path, users: int) -> None:
    """Compile and register ``users`` Steps without running them: the users come from a
    run of the Users task alone."""
    print(f"{users:,} users on v2: compile and register only", file=sys.stderr, flush=True)
    sim = SimProcess(users)
    try:
        playbook = write_playbook(work / f"compile-{users}", sim.spec)
        document = yaml.safe_load(playbook.read_text(encoding="utf-8"))
        users_only = playbook.with_name("users.yml")
        users_only.write_text(yaml.safe_dump({**document, "tasks": document["tasks"][:1]},
                                             sort_keys=False), encoding="utf-8")
        fetched = checked(child([sys.executable, "-m", "runner", "run", str(users_only), "-q"],
                                env=sim.env()), "the users")
        row(f"user_summary of {users:,} users (v2)", f"{fetched.wall:.1f} s wall",
            "the register the access review reads")
        compile_figures(playbook, users, sim.env())
        shutil.rmtree(playbook.parent)
    finally:
        sim.close()


def estimate_line(playbook: Path, env: dict[str, str]) -> str:
    result = checked(child([sys.executable, "-m", "runner", "plan", str(playbook)], env=env),
                     "plan")
    lines = [line for line in result.stdout.splitlines() if line.startswith("estimate")]
    return lines[-1] if lines else "(no estimate line)"


def one_size(work: Path, users: int, profile: Path | None) -> dict[str, float]:
    print(f"{users:,} users on v2 -> {users:,} export Steps", file=sys.stderr, flush=True)
    sim = SimProcess(users)
    try:
        playbook = write_playbook(work / f"plan-{users}", sim.spec)
        argv = [sys.executable, __file__, "--child-run", str(playbook),
                str(profile / f"first-{users}.prof") if profile else ""]
        first: Child = checked(child(argv, env=sim.env()), f"the first run of {users:,}")
        served = sim.ask("count")
        inner = json.loads(first.stdout.strip().splitlines()[-1])["cpu"]
        per_step = inner / served["exports"] * 1000
        row(f"first run, {users:,} Steps", f"{first.wall:.1f} s wall",
            f"jobs of 0 s, polls every 10 ms; {served['exports']:,} jobs submitted for "
            f"{users:,} Steps ({served['twice']} twice)")
        row(f"  runner CPU per export Step ({users:,})", f"{per_step:.2f} ms",
            f"run_plan after imports {inner:.1f} s; whole process {first.cpu:.1f} s "
            f"({first.cpu / served['exports'] * 1000:.2f} ms/Step); goal <= "
            f"{GOALS['per_step_ms']:g} ms")
        row(f"  peak RSS of the first run ({users:,})", f"{first.peak_mib:.0f} MiB",
            f"goal <= 300 MB ({GOALS['rss_mib']:.0f} MiB)")

        compile_figures(playbook, users, sim.env())

        sim.ask("clear")
        again = checked(child([sys.executable, "-m", "runner", "run", str(playbook), "-q"],
                              env=sim.env()), "the re-run")
        requests = sim.ask("count")["requests"]
        row(f"re-run of the finished plan ({users:,})", f"{again.cpu:.2f} s CPU",
            f"insights-runner run, whole process; {again.wall:.2f} s wall, peak RSS "
            f"{again.peak_mib:.0f} MiB, {requests} API requests; goal <= "
            f"{GOALS['rerun_cpu']:g} s")
        row(f"plan's estimate ({users:,})", estimate_line(playbook, sim.env()),
            f"from the state's history; the first run took {first.wall:.0f} s")
        shutil.rmtree(playbook.parent)
        return {"per_step": per_step}
    finally:
        sim.close()


def table() -> str:
    widths = [max(len(r[i]) for r in [("figure", "value", "note"), *ROWS]) for i in range(3)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(("figure", "value", "note"), widths,
                                                          strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in ROWS]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve(int(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "--child-run":
        return child_run(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 1 and sys.argv[1] == "--child-compile":
        print(json.dumps(compile_and_register(Path(sys.argv[2]), int(sys.argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="2000,20000",
                        help="sizes, comma-separated (200000 takes long on 2 cores)")
    parser.add_argument("--compile-only", default="200000",
                        help="sizes to compile and register without running them (issue 14's "
                        "5 s goals are for 200,000; '' for none)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of each first run here")
    options = parser.parse_args()
    sizes = [int(n) for n in options.users.split(",") if n]
    if options.profile:
        options.profile.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="insights-plans-") as directory:
        for users in sizes:
            figures[users] = one_size(Path(directory), users, options.profile)
        for users in [int(n) for n in options.compile_only.split(",") if n]:
            compile_only(Path(directory), users)
    if len(sizes) > 1:
        low, high = figures[sizes[0]]["per_step"], figures[sizes[-1]]["per_step"]
        row(f"runner CPU per export Step, {sizes[0]:,} vs {sizes[-1]:,}",
            f"{low:.2f} vs {high:.2f} ms", f"ratio {high / low:.2f} (flat: about 1)")
    print(f"\nPlans of v2 size ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"{time.perf_counter() - started:.0f} s):\n")
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
