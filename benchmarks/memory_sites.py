"""Where a first run's memory is (issue 14, item 4's peak RSS): a first run of N v2 export
Steps in this process under tracemalloc, as benchmarks/plans.py's child runs it (compiled
and memoised as `run` does, polls every 10 ms, the simulator in its own process).

Printed when the run has done its Steps and is about to write its reports (after the
seal): the live traced memory, the allocation sites holding the most of it, in bytes and
objects per Step; then the traced peak of writing the reports over what was live before.

    .venv/bin/python benchmarks/memory_sites.py [--users 3000] [--top 16] [--runner DIR]

``--runner DIR``: import the runner from DIR instead (another tree, for a side-by-side).
Sizes of a few thousand suffice: what a Step holds does not change with the plan's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--top", type=int, default=16, help="allocation sites to print")
    parser.add_argument("--runner", type=Path, default=ROOT,
                        help="the tree to import the runner from")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import plans  # this tree's harness (it puts this tree first on the path)

    # ... and the runner from --runner: the harness keeps only its simulator process and
    # playbook writer, so the runner modules it imported are dropped and imported again.
    for name in [name for name in sys.modules if name.split(".")[0] == "runner"]:
        del sys.modules[name]
    sys.path.insert(0, str(options.runner))
    os.chdir(options.runner)
    from runner import inputs, planfile, planmemo
    from runner.execute import engine
    from runner.execute.engine import RunOptions, run_plan
    from runner.execute.scheduler import PollPolicy

    users = options.users
    original_write = engine._write_reports

    def at_the_reports(*args: Any, **kwargs: Any) -> Any:
        live = tracemalloc.get_traced_memory()[0]
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        print(f"live before the reports: {live / 2**20:.1f} MiB traced "
              f"({live / users:,.0f} B a Step)")
        print("  B/Step  objects/Step  where")
        for stat in snapshot.statistics("lineno")[:options.top]:
            frame = stat.traceback[0]
            where = f"{frame.filename.replace(str(options.runner) + '/', '')}:{frame.lineno}"
            print(f"  {stat.size / users:6.1f}  {stat.count / users:12.2f}  {where}")
        del snapshot
        tracemalloc.reset_peak()
        result = original_write(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
        print(f"writing the reports: traced peak {peak / 2**20:.1f} MiB "
              f"(+{(peak - live) / 2**20:.1f} over the live memory before)")
        return result

    engine._write_reports = at_the_reports  # type: ignore[assignment]
    sim = plans.SimProcess(users)
    try:
        with tempfile.TemporaryDirectory(prefix="insights-memory-") as directory:
            playbook = plans.write_playbook(Path(directory) / "plan", sim.spec)
            os.environ.update(sim.env())
            tracemalloc.start(1)
            call = planmemo.Call(str(playbook), (), None, None, None)
            with inputs.recording() as reads:
                compiled = planfile.compile_targets(str(playbook))
            (target,) = compiled.tenants
            started = time.perf_counter()
            result = run_plan(target.playbook, target.plan, RunOptions(
                poll=PollPolicy(floor=0.01, ceiling=1.0, fraction=0.03),
                run_facts=compiled.run_facts))
            planmemo.save(call, compiled, reads)
            tracemalloc.stop()
            print(f"first run of {users:,} Steps: exit {result.exit_code}, "
                  f"{time.perf_counter() - started:.0f} s under tracemalloc")
            return result.exit_code
    finally:
        sim.close()


if __name__ == "__main__":
    sys.exit(main())
