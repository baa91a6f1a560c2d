"""The state store: guarded transitions, WAL, the lock, bulk registration, migrations."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner.errors import StateLockedError, UserError
from runner.execute.state import (
    DB_NAME,
    SCHEMA_VERSION,
    RunStatus,
    StateStore,
    StepStatus,
    TransitionError,
    default_state_dir,
)
from runner.secret import Secret

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FakeStep:
    """The attributes of runner.plan.Step that the store reads."""

    id: str
    task_index: int = 0
    task_name: str = "Users"
    operation: str = "user_summary"
    kind: str = "query"
    output: str | None = "users.jsonl"
    format: str | None = "jsonl"
    request: dict[str, Any] = field(default_factory=lambda: {"PageSize": 100})


def export(step_id: str, index: int = 0) -> FakeStep:
    return FakeStep(step_id, index, "Sites", "site_permission_export", "export",
                    f"sites/part-{index}.zip", None, {"siteUrls": ["https://x/sites/a"]})


@pytest.fixture
def store(tmp_path: Path):
    with StateStore.open(tmp_path / "state") as opened:
        yield opened


def run_with(store: StateStore, *steps: FakeStep) -> int:
    run_id = store.begin_run("playbook.yml", "fp")
    store.register_steps(run_id, steps)
    return run_id


SHA = "ab" * 32


# ------------------------------------------------------------------------ transitions


def test_an_export_goes_through_its_whole_life(store: StateStore) -> None:
    run_with(store, export("e1"))
    assert store.step("e1").status is StepStatus.PENDING
    assert store.submitting("e1").attempts == 1
    state = store.submitted("e1", 4711)
    assert (state.status, state.job_id) == (StepStatus.SUBMITTED, 4711)
    assert state.submitted_at is not None
    store.downloading("e1")
    store.downloading("e1")  # a second download of the same job is allowed
    state = store.succeeded("e1", bytes=10, sha256=SHA, mtime_ns=5)
    assert (state.status, state.bytes, state.sha256, state.mtime_ns) == (
        StepStatus.SUCCEEDED, 10, SHA, 5)
    assert state.job_id == 4711 and state.finished_at is not None


def test_a_query_commits_each_page(store: StateStore) -> None:
    run_with(store, FakeStep("q1"))
    store.start_paging("q1")
    store.page("q1", "token-2", 100, 5000)
    state = store.page("q1", 3, 200, 9000)  # StartPage numbers are kept as text
    assert (state.page_token, state.records, state.bytes) == ("3", 200, 9000)
    state = store.succeeded("q1", bytes=9002, sha256=SHA, records=200)
    assert state.page_token is None and state.records == 200


@pytest.mark.parametrize("move", [
    lambda s: s.submitted("x", 1),
    lambda s: s.downloading("x"),
    lambda s: s.page("x", "t", 1, 1),
    lambda s: s.succeeded("x", bytes=1, sha256=SHA),
    lambda s: s.requeue("x"),
])
def test_a_transition_from_the_wrong_state_raises_and_changes_nothing(store, move) -> None:
    run_with(store, export("x"))
    before = store.step("x")
    with pytest.raises(TransitionError, match="x cannot become .*it is pending"):
        move(store)
    assert store.step("x") == before


def test_terminal_states_only_leave_through_requeue(store: StateStore) -> None:
    run_with(store, export("x"))
    store.submitting("x")
    store.failed("x", "job failed (3)")
    for move in (lambda: store.submitting("x"), lambda: store.failed("x", "again"),
                 lambda: store.downloading("x")):
        with pytest.raises(TransitionError, match="it is failed"):
            move()
    state = store.requeue("x", "job failed (3)")
    assert (state.status, state.attempts, state.error) == (StepStatus.PENDING, 1, "job failed (3)")
    assert store.submitting("x").attempts == 2


def test_submitting_again_after_a_crash_in_the_window_counts_an_attempt(store) -> None:
    run_with(store, export("x"))
    store.submitting("x")
    # The process died before the job id was committed: the resume submits again.
    assert store.submitting("x").attempts == 2
    with pytest.raises(TransitionError):
        store.submitted("unknown", 1)


def test_a_job_id_must_be_a_real_id(store: StateStore) -> None:
    run_with(store, export("x"))
    store.submitting("x")
    for bad in (None, "", True, 1.5):
        with pytest.raises(TypeError):
            store.submitted("x", bad)  # type: ignore[arg-type]


def test_requeue_of_a_finished_step_forgets_its_file(store: StateStore) -> None:
    run_with(store, FakeStep("q"))
    store.start_paging("q")
    store.succeeded("q", bytes=3, sha256=SHA, mtime_ns=1)
    state = store.requeue("q", "file changed since the last run", reset_attempts=True)
    assert (state.bytes, state.sha256, state.mtime_ns, state.attempts) == (None, None, None, 0)


def test_a_new_run_retries_failed_steps_with_fresh_attempts(store: StateStore) -> None:
    run_with(store, export("a"), export("b", 1))
    store.submitting("a")
    store.failed("a", "boom")
    assert store.requeue_failed() == 1
    state = store.step("a")
    assert (state.status, state.attempts, state.error) == (StepStatus.PENDING, 0, "boom")


def test_every_transition_is_committed_before_the_call_returns(tmp_path: Path) -> None:
    # A child records a submit and is SIGKILLed right after: the job id must be on disk.
    state_dir = tmp_path / "state"
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from tests.test_state import export
        from runner.execute.state import StateStore
        store = StateStore.open({str(state_dir)!r})
        run = store.begin_run("p.yml", "fp")
        store.register_steps(run, [export("e1")])
        store.submitting("e1")
        store.submitted("e1", 99)
        os.kill(os.getpid(), signal.SIGKILL)
    """)], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with StateStore.open(state_dir) as store:
        state = store.step("e1")
        assert (state.status, state.job_id) == (StepStatus.SUBMITTED, 99)
        assert store.last_run().status is RunStatus.RUNNING
        store.begin_run("p.yml", "fp")
        assert store.run(1).status is RunStatus.CRASHED
        assert [(r.id, r.status) for r in store.runs()] == [
            (2, RunStatus.RUNNING), (1, RunStatus.CRASHED)]


# ------------------------------------------------------------------ files and modes


def test_the_database_is_in_wal_mode_and_kept_out_of_git(store: StateStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone()[0] == str(SCHEMA_VERSION)
    finally:
        conn.close()
    assert (store.path.parent / ".gitignore").read_text() == "*\n"


def test_the_default_state_dir_is_beside_the_playbook(tmp_path: Path) -> None:
    assert default_state_dir(tmp_path / "pb.yml") == tmp_path.resolve() / ".insights-runner"


def test_a_state_from_a_newer_runner_is_refused(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="newer insights-runner .*schema 99"):
        StateStore.open(tmp_path)
    StateStore.open(tmp_path / "other").close()  # and the lock was released


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a readable state file"):
        StateStore.open(tmp_path)


def test_a_readonly_view_works_while_a_run_holds_the_lock(store: StateStore) -> None:
    run_with(store, export("a"))
    with StateStore.open(store.path.parent, readonly=True) as view:
        assert set(view.steps()) == {"a"}
        with pytest.raises(Exception, match="readonly"):
            view.begin_run("p", "f")


def test_an_unusable_state_directory_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot use the state directory"):
        StateStore.open(tmp_path / "file" / "state")


def test_a_readonly_view_of_nothing_says_so(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="has not run yet"):
        StateStore.open(tmp_path, readonly=True)


# ------------------------------------------------------------------------------ lock


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from runner.execute.state import StateStore
    store = StateStore.open({state!r})
    print("ready", flush=True)
    time.sleep(120)
""")


def test_a_second_run_is_refused_until_the_holder_dies(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(repo=str(REPO), state=str(state_dir))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StateLockedError, match=f"in use by another run \\(pid {holder.pid} "
                                                   "on .* since 20"):
            StateStore.open(state_dir)
        # ... from another process too.
        other = subprocess.run(
            [sys.executable, "-c", HOLDER.format(repo=str(REPO), state=str(state_dir))],
            capture_output=True, text=True, timeout=60)
        assert other.returncode != 0 and "StateLockedError" in other.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    with StateStore.open(state_dir) as store:  # the kernel dropped the dead holder's lock
        assert store.last_run() is None


def test_closing_the_store_releases_the_lock(tmp_path: Path) -> None:
    StateStore.open(tmp_path).close()
    StateStore.open(tmp_path).close()


# ----------------------------------------------------------------------------- bulk


def test_two_hundred_thousand_steps_register_and_resume_in_bulk(tmp_path: Path) -> None:
    steps = [export(f"s{i:06d}", i // 100) for i in range(200_000)]
    with StateStore.open(tmp_path) as store:
        started = time.perf_counter()
        run_id = run_with(store, *steps)
        registered = time.perf_counter()
        states = store.steps()
        read = time.perf_counter()
        print(f"\n200,000 Steps: register {registered - started:.2f}s, "
              f"read {read - registered:.2f}s")
        assert len(states) == 200_000
        assert store.counts()[StepStatus.PENDING] == 200_000
        store.submitting("s000007")
        store.submitted("s000007", 7)
    with StateStore.open(tmp_path) as store:  # the next run: same plan, state kept
        run2 = store.begin_run("playbook.yml", "fp")
        store.register_steps(run2, steps)
        states = store.steps(run2)
        assert len(states) == 200_000 and run2 != run_id
        assert states["s000007"].job_id == 7
        assert states["s000007"].status is StepStatus.SUBMITTED


def test_an_edited_plan_keeps_known_steps_and_adds_new_ones(store: StateStore) -> None:
    run_with(store, FakeStep("a"), FakeStep("b"))
    store.start_paging("a")
    store.succeeded("a", bytes=1, sha256=SHA)
    run2 = run_with(store, FakeStep("a"), FakeStep("c"))
    assert set(store.steps(run2)) == {"a", "c"}
    assert store.step("a").status is StepStatus.SUCCEEDED
    assert set(store.steps()) == {"a", "b", "c"}


def test_a_changed_output_format_starts_the_step_over(store: StateStore) -> None:
    run_with(store, FakeStep("a"))
    store.start_paging("a")
    store.page("a", "t", 100, 1000)
    run_with(store, FakeStep("a", format="csv"))
    state = store.step("a")
    assert (state.status, state.format, state.page_token, state.records) == (
        StepStatus.PENDING, "csv", None, 0)


def test_fresh_forgets_every_step_but_keeps_files(store: StateStore, tmp_path: Path) -> None:
    report = tmp_path / "users.jsonl"
    report.write_text("{}\n")
    run_with(store, FakeStep("a"), FakeStep("b"))
    assert store.clear_steps() == 2
    assert store.steps() == {}
    assert report.read_text() == "{}\n"


def test_threads_share_one_store(store: StateStore) -> None:
    steps = [export(f"t{i}", i) for i in range(40)]
    run_with(store, *steps)
    errors: list[BaseException] = []

    def work(step: FakeStep) -> None:
        try:
            store.submitting(step.id)
            store.submitted(step.id, step.task_index)
            store.downloading(step.id)
            store.succeeded(step.id, bytes=1, sha256=SHA)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.counts()[StepStatus.SUCCEEDED] == 40


# --------------------------------------------------------------------------- secrets


def test_a_secret_cannot_be_stored(store: StateStore) -> None:
    run_id = store.begin_run("p", "f")
    with pytest.raises(TypeError, match="secret"):
        store.register_steps(run_id, [FakeStep("a", request={"token": Secret("s3cr3t")})])
    assert store.steps() == {}
    run_with(store, FakeStep("b"))
    store.start_paging("b")
    with pytest.raises(TypeError, match="secret"):
        store.failed("b", Secret("s3cr3t"))  # type: ignore[arg-type]
    store.close()
    for name in os.listdir(store.path.parent):
        assert b"s3cr3t" not in (store.path.parent / name).read_bytes()


def test_a_request_is_stored_as_canonical_json(store: StateStore) -> None:
    run_with(store, FakeStep("a", request={"b": (1, 2), "a": "é"}))
    assert store.step("a").request == '{"a":"é","b":[1,2]}'


def test_migrations_run_step_by_step_from_the_stored_version(tmp_path: Path,
                                                             monkeypatch) -> None:
    import runner.execute.state as state_module

    with StateStore.open(tmp_path) as store:
        run_with(store, FakeStep("a"))
    added = ("ALTER TABLE steps ADD COLUMN note TEXT DEFAULT 'v2'",)
    monkeypatch.setattr(state_module, "MIGRATIONS", (*state_module.MIGRATIONS, added))
    monkeypatch.setattr(state_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    StateStore.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION + 1)
        assert conn.execute("SELECT id, note FROM steps").fetchall() == [("a", "v2")]
    finally:
        conn.close()
