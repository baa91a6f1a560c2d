"""The scale figures of issue 7 in one run, printed as one table.

* Paged queries: ``detail_records`` of a tenant with exactly 10,000 and 1,000,000 objects
  written to JSON Lines and to CSV by ``insights-runner run`` in a child process; its peak
  RSS (``wait4``'s ``ru_maxrss``) at both sizes, their ratio, records per second, and what
  the per-page checkpoint (fsync + SQLite commit) costs beside the rest of a page.
* A large plan: 200,000 users (``user_summary`` registered, then ``user_access_export`` over
  every e-mail: 2,000 export Steps): compile, first run (jobs of 0 s, polled every 10 ms),
  and a re-run through the CLI (CPU time, requests made: must be none).
* Start-up: ``insights-runner --help`` and ``validate`` of a small playbook, beside a bare
  ``python -c pass``.
* Downloads (``benchmarks/downloads.py``): a 1 GiB export streamed by the runner's client
  (sha256 and the .zip CRCs checked while it streams, ``runner/client/streamcheck.py``) in
  a child process, beside ``curl`` fetching the same URL in the same run, and their ratio
  (goal: at least 0.9); beside ``curl`` + ``sync`` and a plain write + fsync too, on the
  disk and on a tmpfs.

    .venv/bin/python benchmarks/run_all.py [--records 1000000] [--small 10000]
        [--users 200000] [--export-mib 1024] [--skip records,plan,startup,download]

Takes about 8 minutes on 2 cores; the simulator (one Python process serving ~10,000
records/s) is the slowest party in the paged figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from children import PASSWORD_VAR, Child, checked, child  # noqa: E402

from runner import catalog  # noqa: E402
from runner.sim import SimConfig, Simulator  # noqa: E402
from runner.sim.tenant import sized_scale  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def row(figure: str, value: str, note: str = "") -> None:
    ROWS.append((figure, value, note))
    print(f"  {figure}: {value}  {note}", file=sys.stderr, flush=True)


def runner_cli(*args: str | Path, env: dict[str, str] | None = None) -> Child:
    return child([sys.executable, "-m", "runner", *map(str, args)], env=env)


def sim_env(sim: Simulator) -> dict[str, str]:
    return {**os.environ, PASSWORD_VAR: sim.credentials.pfx_password, "NO_COLOR": "1"}


def write_playbook(path: Path, sim: Simulator, tasks: list[dict[str, Any]]) -> Path:
    document = {
        "version": 1, "name": path.stem,
        "connection": {
            "base_url": sim.base_url, "identity_url": sim.identity_url,
            "client_id": sim.client_id,
            "certificate": {"path": str(sim.credentials.pfx_path),
                            "password": "{{ env('" + PASSWORD_VAR + "') }}"}},
        "output_dir": "reports", "tasks": tasks,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def report_steps(playbook: Path) -> list[dict[str, Any]]:
    text = (playbook.parent / "reports" / "run-report.json").read_text(encoding="utf-8")
    return json.loads(text)["steps"]


# ------------------------------------------------------------------ 1. paged queries


def records_run(work: Path, count: int, fmt: str) -> Child:
    with Simulator(SimConfig(scale=sized_scale(objects=count), job_seconds=0)) as sim:
        playbook = write_playbook(work / f"records-{fmt}-{count}" / "book.yml", sim, [{
            "name": "Detail records", "detail_records": {}, "format": fmt,
            "output": f"records.{fmt}"}])
        result = checked(runner_cli("run", playbook, "-q", env=sim_env(sim)),
                         f"detail_records {count} {fmt}")
    steps = report_steps(playbook)
    if [s["records"] for s in steps] != [count]:
        raise SystemExit(f"expected {count} records, the report says {steps}")
    shutil.rmtree(playbook.parent)
    return result


def checkpoint_cost(pages: int = 400) -> tuple[float, float]:
    """(ms per page to encode and append 100 detail records, ms per checkpoint: flush,
    fsync and the SQLite commit of the token), measured in this process on real records."""
    from types import SimpleNamespace

    from runner.execute import outputs
    from runner.execute.state import StateStore
    from runner.sim import records
    from runner.sim.tenant import Tenant

    tenant = Tenant(7, sized_scale(objects=10_000))
    page = [records.detail_record(tenant.object(s, j)) for s in range(2) for j in range(50)]
    step = SimpleNamespace(id="probe", task_index=0, task_name="probe",
                           operation="detail_records", kind="query", output="p.jsonl",
                           format="jsonl", request={})
    with tempfile.TemporaryDirectory() as directory, \
            StateStore.open(Path(directory) / "state") as store:
        store.register_steps(store.begin_run("probe", "probe"), [step])
        store.start_paging("probe")
        writer = outputs.RecordWriter.open(Path(directory) / "p.jsonl", "probe", "jsonl")
        append = sync = 0.0
        for n in range(pages):
            t0 = time.perf_counter()
            writer._write(b"".join(writer._encode(r) for r in page))
            t1 = time.perf_counter()
            mark = writer._sync()
            store.page("probe", f"token{n}", mark.records, mark.bytes)
            t2 = time.perf_counter()
            append, sync = append + t1 - t0, sync + t2 - t1
        writer.discard()
    return append / pages * 1000, sync / pages * 1000


def paged_figures(work: Path, small: int, large: int) -> None:
    print(f"paged queries: {small:,} and {large:,} detail records", file=sys.stderr)
    for fmt in ("jsonl", "csv"):
        low = records_run(work, small, fmt)
        high = records_run(work, large, fmt)
        row(f"peak RSS, {small:,} records -> {fmt}", f"{low.peak_mib:.1f} MiB")
        row(f"peak RSS, {large:,} records -> {fmt}", f"{high.peak_mib:.1f} MiB",
            f"ratio {high.peak_mib / low.peak_mib:.2f}")
        row(f"records/s, {large:,} -> {fmt}", f"{large / high.wall:,.0f}",
            f"{high.wall:.0f} s wall; runner CPU {high.cpu:.0f} s "
            f"({high.cpu / high.wall:.0%} of one core)")
        if fmt == "jsonl":
            page_ms = high.wall / (large / 100) * 1000
    append_ms, sync_ms = checkpoint_cost()
    row("one checkpoint (fsync + SQLite commit)", f"{sync_ms:.2f} ms",
        f"= {sync_ms / page_ms:.0%} of a {page_ms:.1f} ms page if taken every page (encode + "
        f"append {append_ms:.2f} ms); the runner takes one every 2 s")


# ------------------------------------------------------------------ 2-3. a large plan


def child_run(playbook: str, state_dir: str, floor: float) -> int:
    """(In a child process) run a playbook through run_plan with a fast poll policy."""
    from runner.execute.engine import RunOptions, run_plan
    from runner.execute.scheduler import PollPolicy
    from runner.manifest import load_playbook
    from runner.plan import compile_plan

    cpu = time.process_time()
    loaded = load_playbook(playbook)
    plan = compile_plan(loaded)
    poll = PollPolicy(floor=floor, ceiling=max(floor, 1.0), fraction=0.03)
    result = run_plan(loaded, plan, RunOptions(state_dir=Path(state_dir), poll=poll))
    print(json.dumps({"cpu": time.process_time() - cpu}))  # after the imports
    return result.exit_code


def plan_playbook(directory: Path, sim: Simulator) -> Path:
    return write_playbook(directory / "book.yml", sim, [
        {"name": "Users", "user_summary": {}, "register": "users", "output": "users.jsonl"},
        {"name": "Access of every user",
         "user_access_export": {"emails": "{{ users | map(attribute='email') | list }}",
                                "data_sources": ["teams"], "export_option": "summary_only"},
         "output": "access/part-{{ chunk.number }}.zip"}])


def first_run(playbook: Path, sim: Simulator, interrupt_at: int | None = None
              ) -> tuple[list[Child], int, float]:
    """Run the plan from scratch (with Ctrl-C after ``interrupt_at`` exports were submitted,
    then again to the end): the children, the export Steps, their CPU in run_plan."""
    argv = [sys.executable, __file__, "--child-run", str(playbook),
            str(playbook.parent / "state"), "0.01"]
    runs = []
    if interrupt_at is not None:
        stopped = child(argv, env=sim_env(sim), during=_interrupt_after(sim, interrupt_at))
        if stopped.code != 130:
            raise SystemExit(f"the interrupted run ended {stopped.code}: {stopped.stderr}")
        runs.append(stopped)
    runs.append(checked(child(argv, env=sim_env(sim)), "the large plan"))
    exports = sum(1 for s in report_steps(playbook)
                  if s["status"] == "succeeded" and s["operation"] == "user_access_export")
    return runs, exports, sum(json.loads(r.stdout)["cpu"] for r in runs)


def export_submits(sim: Simulator) -> list[tuple[str, ...]]:
    """The e-mails of every user_access_export the simulator accepted."""
    api_name = catalog.operation("user_access_export").field("emails").api
    return [tuple(e.fields.get(api_name) or ())
            for e in sim.log.entries if e.operation == "user_access_export" and e.status == 200]


def _interrupt_after(sim: Simulator, exports: int) -> Callable[[int, threading.Event], None]:
    def watch(pid: int, ended: threading.Event) -> None:
        while not ended.wait(0.05):
            if len(export_submits(sim)) >= exports:
                os.kill(pid, signal.SIGINT)  # Ctrl-C: the runner stops between two steps
                return
    return watch


def plan_figures(work: Path, users: int) -> None:
    from runner.execute.registry import RecordFiles
    from runner.manifest import load_playbook
    from runner.plan import compile_plan, compile_task

    print(f"large plan: {users:,} users (and {users // 10:,} to compare)", file=sys.stderr)
    with Simulator(SimConfig(scale=sized_scale(users=users // 10), job_seconds=0)) as sim:
        _, small_exports, small_cpu = first_run(plan_playbook(work / "plan-small", sim), sim)
    shutil.rmtree(work / "plan-small")
    with Simulator(SimConfig(scale=sized_scale(users=users), job_seconds=0)) as sim:
        playbook = plan_playbook(work / "plan", sim)
        state = playbook.parent / "state"
        half = users // catalog.MAX_LIST_VALUES // 2
        (stopped, resumed), exports, cpu = first_run(playbook, sim, interrupt_at=half)
        submits = export_submits(sim)
        row(f"first run, {users:,} users -> {exports:,} exports",
            f"{stopped.wall + resumed.wall:.1f} s",
            f"jobs of 0 s, polls every 10 ms; Ctrl-C after {half:,} submits, then run again; "
            f"runner CPU {stopped.cpu + resumed.cpu:.1f} s, peak RSS "
            f"{max(stopped.peak_mib, resumed.peak_mib):.0f} MiB")
        row("  the run again after Ctrl-C (resume)", f"{resumed.wall:.1f} s",
            f"{len(submits):,} jobs submitted in all for {exports:,} Steps "
            f"({len(submits) - len(set(submits))} twice)")
        per_small, per_large = small_cpu / small_exports * 1000, cpu / exports * 1000
        row(f"runner CPU per export Step, {exports // 10:,} vs {exports:,} Steps",
            f"{per_small:.1f} vs {per_large:.1f} ms", f"ratio {per_large / per_small:.2f}: "
            "the cost per Step does not grow with the plan")

        # Compiling: the playbook, then the deferred task over the 200,000 registered users.
        os.environ[PASSWORD_VAR] = sim.credentials.pfx_password
        started = time.perf_counter()
        loaded = load_playbook(playbook)
        compile_plan(loaded)
        users_file = playbook.parent / "reports" / "users.jsonl"
        compiled = compile_task(loaded, 1, registered={
            "users": RecordFiles([(users_file, "jsonl")], users)})
        elapsed = time.perf_counter() - started
        row(f"compile, {users:,} registered users -> {len(compiled):,} Steps",
            f"{elapsed:.2f} s", "load + validate + compile, then the deferred task")

        # The first runs went through run_plan: this first `run` compiles and writes the
        # plan's memo (runner.planmemo), as a user's first run does; the next one is timed.
        compiled_run = checked(runner_cli("run", playbook, "-q", "--state-dir", state,
                                          env=sim_env(sim)), "the re-run that compiles")
        sim.log.clear()
        again = checked(runner_cli("run", playbook, "-q", "--state-dir", state,
                                   env=sim_env(sim)), "the re-run")
        requests_made = len(sim.log.entries)
        reused = sum(1 for s in report_steps(playbook) if s["reused"])
        row(f"re-run of the finished plan ({reused:,} Steps reused)",
            f"{again.cpu:.2f} s CPU", f"insights-runner run, whole process (goal <= 0.3 s); "
            f"{again.wall:.2f} s wall, {requests_made} API requests; the plan from its memo "
            f"(the run before, which compiled and wrote it: {compiled_run.cpu:.2f} s CPU)")
        inner = checked(child([sys.executable, __file__, "--child-run", str(playbook),
                               str(state), "0.01"], env=sim_env(sim)), "the re-run")
        requests_made = len(sim.log.entries)
        row("  the same, load + compile + run_plan only", f"{json.loads(inner.stdout)['cpu']:.2f}"
            " s CPU", f"imports and interpreter start left out; {requests_made} API requests")
    shutil.rmtree(playbook.parent)


# ------------------------------------------------------------------ 4. start-up


def best_of(argv: list[str], runs: int = 7, cwd: Path | None = None) -> float:
    times = []
    for _ in range(runs):
        result = child(argv, cwd=cwd)
        if result.code != 0:
            raise SystemExit(f"{argv} failed: {result.stderr}")
        times.append(result.wall)
    return statistics.median(times)


def startup_figures(work: Path) -> None:
    print("start-up", file=sys.stderr)
    exe = Path(sys.executable).with_name("insights-runner")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "runner"]
    bare = best_of([sys.executable, "-c", "pass"])
    helped = best_of([*cli, "--help"])
    small = work / "small.yml"
    small.write_text(yaml.safe_dump({
        "version": 1, "name": "small", "connection": {"simulator": True},
        "tasks": [{"name": "Users", "user_summary": {}, "output": "users.jsonl"}]}),
        encoding="utf-8")
    validated = best_of([*cli, "validate", str(small)])
    modules = _imported_modules([sys.executable, "-X", "importtime", "-m", "runner", "--help"])
    row("insights-runner --help", f"{helped * 1000:.0f} ms",
        f"median of 7; bare python {bare * 1000:.0f} ms; {modules} modules imported")
    row("insights-runner validate (small playbook)", f"{validated * 1000:.0f} ms", "median of 7")


def _imported_modules(argv: list[str]) -> int:
    result = child(argv)
    return sum(1 for line in result.stderr.splitlines() if line.startswith("import time:")
               and "|" in line and "self [us]" not in line)


# ------------------------------------------------------------------ 5. downloads


def download_figures(work: Path, mib: int) -> None:
    """The runner's download beside curl's (``benchmarks/downloads.py``)."""
    import downloads

    downloads.download_figures(work, mib, row)


# ------------------------------------------------------------------ the table


def table() -> str:
    widths = [max(len(r[i]) for r in [("figure", "value", "note"), *ROWS]) for i in range(3)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(("figure", "value", "note"), widths,
                                                          strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in ROWS]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-run":
        return child_run(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--export-mib", type=int, default=1024)
    parser.add_argument("--skip", default="", help="sections to leave out, comma-separated")
    options = parser.parse_args()
    skip = set(options.skip.split(","))
    started = time.perf_counter()
    # (/tmp is on the disk here, not a tmpfs: fsync costs what it costs.)
    with tempfile.TemporaryDirectory(prefix="insights-bench-") as directory:
        work = Path(directory)
        if "startup" not in skip:
            startup_figures(work)
        if "download" not in skip:
            download_figures(work, options.export_mib)
        if "plan" not in skip:
            plan_figures(work, options.users)
        if "records" not in skip:
            paged_figures(work, options.small, options.records)
    print(f"\nScale figures ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s):\n")
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
