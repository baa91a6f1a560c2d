"""The state store: guarded transitions, WAL, the lock, bulk registration, migrations.

The tests of the interface run against both stores: SQLite in a folder and a real
PostgreSQL server (tests/servers.py starts it)."""

from __future__ import annotations

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
    PostgresStore,
    RunStatus,
    SqliteStore,
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


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path: Path) -> str:
    """Where a store lives: a folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "state")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(location: str):
    with StateStore.open(location) as opened:
        yield opened


def stored_text(location: str) -> bytes:
    """Every byte the store keeps: its files, or every row of its database."""
    if not location.startswith("postgresql://"):
        return b"".join(p.read_bytes() for p in Path(location).iterdir() if p.is_file())
    import psycopg

    with psycopg.connect(location) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_schema LIKE 'insights_runner%'").fetchall()
        rows = [conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()  # noqa: S608
                for schema, table in tables]
    return repr(rows).encode()


def set_schema_version(location: str, version: int) -> None:
    if not location.startswith("postgresql://"):
        with sqlite3.connect(Path(location) / DB_NAME) as conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        return
    import psycopg

    with psycopg.connect(location) as conn:
        conn.execute("UPDATE insights_runner.meta SET value = %s WHERE key = 'schema_version'",
                     (str(version),))


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


def test_every_transition_is_committed_before_the_call_returns(location: str,
                                                                monkeypatch) -> None:
    # A child records a submit and is SIGKILLed right after: the job id must be stored.
    monkeypatch.setenv("INSIGHTS_RUNNER_LEASE_SECONDS", "0.5")  # its runner is dead soon
    state_dir = location
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
    time.sleep(0.6)  # a database's run is taken for crashed once its runner's lease ends
    with StateStore.open(state_dir) as store:
        state = store.step("e1")
        assert (state.status, state.job_id) == (StepStatus.SUBMITTED, 99)
        assert store.last_run().status is RunStatus.RUNNING
        store.begin_run("p.yml", "fp")
        assert store.run(1).status is RunStatus.CRASHED
        assert [(r.id, r.status) for r in store.runs()] == [
            (2, RunStatus.RUNNING), (1, RunStatus.CRASHED)]


# ------------------------------------------------------------------ files and modes


def test_the_database_is_in_wal_mode_and_kept_out_of_git(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state")
    store.close()
    assert store.path is not None
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


def test_a_state_from_a_newer_runner_is_refused(location: str) -> None:
    StateStore.open(location).close()
    set_schema_version(location, 99)
    with pytest.raises(UserError, match="newer insights-runner .*schema 99"):
        StateStore.open(location)
    with pytest.raises(UserError, match="schema version 99"):
        StateStore.open(location, readonly=True)
    set_schema_version(location, SCHEMA_VERSION)
    StateStore.open(location).close()  # and the lock was released


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a readable state file"):
        StateStore.open(tmp_path)


def test_a_readonly_view_works_while_a_run_holds_the_lock(store: StateStore,
                                                         location: str) -> None:
    run_with(store, export("a"))
    with StateStore.open(location, readonly=True) as view:
        assert set(view.steps()) == {"a"}
        with pytest.raises(Exception, match="readonly|read-only"):
            view.begin_run("p", "f")


def test_an_unusable_state_directory_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot use the state directory"):
        StateStore.open(tmp_path / "file" / "state")


def test_a_readonly_view_of_nothing_says_so(location: str) -> None:
    with pytest.raises(UserError, match="has not run yet"):
        StateStore.open(location, readonly=True)


def test_an_unreachable_database_is_a_user_error_without_the_password() -> None:
    from servers import free_port

    url = f"postgresql://runner:hunter2@127.0.0.1:{free_port()}/state"
    with pytest.raises(UserError, match="cannot connect to the state database") as caught:
        StateStore.open(url)
    assert "hunter2" not in str(caught.value) and "runner:***@" in str(caught.value)


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


def test_closing_the_store_releases_the_lock(location: str) -> None:
    StateStore.open(location).close()
    StateStore.open(location).close()


CLAIMER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from runner.execute.state import StateStore
    store = StateStore.open({state!r})
    assert store.claim("e1") and store.acquire_slot("tenant-a", "e1", 2)
    print("ready", flush=True)
    time.sleep(120)
""")


def test_runners_share_a_database_with_leases_that_expire_when_one_dies(
        pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("INSIGHTS_RUNNER_LEASE_SECONDS", "1")
    with StateStore.open(pg_url) as setup:
        run_with(setup, export("e1"), export("e2", 1), export("e3", 2))
    holder = subprocess.Popen(
        [sys.executable, "-c", CLAIMER.format(repo=str(REPO), state=pg_url)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with StateStore.open(pg_url) as mine, StateStore.open(pg_url) as other:
            assert not mine.claim("e1")  # the live holder keeps its Step...
            assert mine.claim("e2") and mine.claim("e2")  # ...each Step has one runner
            assert not other.claim("e2") and other.claim("e3")
            assert other.claimed_elsewhere(["e1", "e2", "e3"]) == {"e1", "e2"}
            mine.begin_run("playbook.yml", "fp")  # --fresh would pull its Steps away
            with pytest.raises(UserError, match="--fresh: other runners are working"):
                other.clear_steps("playbook.yml")
            # The tenant has two slots: the holder has one, so one is left for everyone.
            assert mine.acquire_slot("tenant-a", "e2", 2)
            assert not other.acquire_slot("tenant-a", "e3", 2)
            assert other.acquire_slot("tenant-b", "e3", 2)  # another tenant's are its own
            with StateStore.open(pg_url, namespace="oneshot/x") as oneshot:  # any namespace
                assert not oneshot.acquire_slot("tenant-a", "e9", 2)
                assert oneshot.acquire_slot("tenant-a", "e9", 2, force=True)  # a re-attach
                oneshot.release_slot("tenant-a", "e9")
            mine.release_slot("tenant-a", "e2")
            assert other.acquire_slot("tenant-a", "e3", 2)
            assert other.leases.slots_held("tenant-a") == 2
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            assert not mine.claim("e1")  # its lease has not run out yet...
            deadline = time.monotonic() + 10
            while not mine.claim("e1"):  # ...and then it has: a survivor takes it over
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert mine.took_over("e1") and not mine.took_over("e1")  # told once
            assert not mine.took_over("e2")  # never anyone else's
            # The dead one's slot stays counted (its job may still run) and goes with the
            # Step to whoever takes it over...
            assert other.leases.slots_held("tenant-a") == 2
            assert mine.acquire_slot("tenant-a", "e1", 2)
            assert not mine.acquire_slot("tenant-a", "e2", 2)
            other.release_slot("tenant-a", "e3")
            mine.release_slot("tenant-a", "e1")
            with StateStore.open(pg_url, namespace="n2") as late:  # ...or, untaken, expires
                assert late.acquire_slot("tenant-c", "x", 1)
                late.leases._stopping.set()  # its heart stops, as a killed runner's does
                late.leases._heart.join()
                assert not mine.acquire_slot("tenant-c", "y", 1)
                deadline = time.monotonic() + 10
                while not mine.acquire_slot("tenant-c", "y", 1):  # after two lease times
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
        with StateStore.open(pg_url) as after:  # a clean close gives claims back at once
            assert after.claim("e2") and after.claim("e3")
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_bad_lease_time_is_a_clear_error(pg_url: str, monkeypatch) -> None:
    monkeypatch.setenv("INSIGHTS_RUNNER_LEASE_SECONDS", "soon")
    with pytest.raises(UserError, match="INSIGHTS_RUNNER_LEASE_SECONDS='soon': give a number"):
        StateStore.open(pg_url)


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


def test_job_lengths_are_kept_across_fresh_and_replaced(store: StateStore) -> None:
    store.record_durations({"a": 12.5, "b": 3.0})
    store.record_durations({"a": 20.0})  # the latest run's length replaces the last one
    store.clear_steps()
    assert store.durations(["a", "b", "c"]) == {"a": 20.0, "b": 3.0}


def test_job_lengths_as_pairs_the_later_counts_and_a_bad_one_records_none(
        store: StateStore) -> None:
    """A run hands its lengths over as (Step id, seconds) pairs, made as they are written."""
    store.record_durations(iter([("a", 1.0), ("b", 2.0), ("a", 5.0)]))  # a's job ran twice
    with pytest.raises(ValueError, match="seconds >= 0"):
        store.record_durations(iter([("c", 4.0), ("d", -1.0)]))
    assert store.durations(["a", "b", "c", "d"]) == {"a": 5.0, "b": 2.0}


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


def test_a_secret_cannot_be_stored(store: StateStore, location: str) -> None:
    run_id = store.begin_run("p", "f")
    with pytest.raises(TypeError, match="secret"):
        store.register_steps(run_id, [FakeStep("a", request={"token": Secret("s3cr3t")})])
    assert store.steps() == {}
    run_with(store, FakeStep("b"))
    store.start_paging("b")
    with pytest.raises(TypeError, match="secret"):
        store.failed("b", Secret("s3cr3t"))  # type: ignore[arg-type]
    store.close()
    text = stored_text(location)
    assert b"user_summary" in text  # the store's content is there...
    assert b"s3cr3t" not in text  # ...and the secret is not


def test_a_request_is_stored_as_canonical_json(store: StateStore) -> None:
    run_with(store, FakeStep("a", request={"b": (1, 2), "a": "é"}))
    assert store.step("a").request == '{"a":"é","b":[1,2]}'


def test_migrations_run_step_by_step_from_the_stored_version(location: str,
                                                             monkeypatch) -> None:
    with StateStore.open(location) as store:
        run_with(store, FakeStep("a"))
        kind = type(store)
    added = ("ALTER TABLE steps ADD COLUMN note TEXT DEFAULT 'v3'",)
    monkeypatch.setattr(kind, "migrations", (*kind.migrations, added))
    with StateStore.open(location) as store:
        assert store._read("SELECT value FROM meta") == [(str(SCHEMA_VERSION + 1),)]
        assert store._read("SELECT id, note FROM steps") == [("a", "v3")]
        assert store.step("a").status is StepStatus.PENDING


def test_a_version_1_state_is_upgraded_to_the_current_schema(location: str,
                                                             monkeypatch) -> None:
    # A state written by the runner before object storage (schema 1, no etag column).
    with monkeypatch.context() as patched:
        kind = PostgresStore if location.startswith("postgresql://") else SqliteStore
        patched.setattr(kind, "migrations", kind.migrations[:1])
        with StateStore.open(location) as old:
            old.begin_run("playbook.yml", "fp")
            with old._tx() as conn:  # a Step as the version-1 runner wrote it
                conn.execute("INSERT INTO steps (id, run_id, task_index, operation, kind, "
                             "request, updated_at) VALUES ('a', 1, 0, 'user_summary', "
                             "'query', '{}', 1.0)")
            assert old._read("SELECT value FROM meta") == [("1",)]
    with StateStore.open(location) as store:
        assert store._read("SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]
        store.start_paging("a")
        assert store.succeeded("a", bytes=3, sha256=SHA, etag='"0x8D"').etag == '"0x8D"'



def test_a_version_3_state_keeps_its_runs_steps_and_files(location: str, monkeypatch) -> None:
    # A state written by the runner before stamps (schema 3: each Step row held its run).
    with monkeypatch.context() as patched:
        kind = PostgresStore if location.startswith("postgresql://") else SqliteStore
        patched.setattr(kind, "migrations", kind.migrations[:3])
        with StateStore.open(location) as old:
            one, two = old.begin_run("one.yml", "fp"), old.begin_run("two.yml", "fp")
            with old._tx() as conn:  # Steps as the version-3 runner wrote them
                for step_id, run_id, status in (("a", one, "succeeded"), ("b", two, "pending"),
                                                ("c", two, "pending")):
                    conn.execute("INSERT INTO steps (id, run_id, task_index, operation, kind, "
                                 "output, format, request, status, bytes, sha256, updated_at) "
                                 "VALUES (?, ?, 0, 'user_summary', 'query', 'users.jsonl', "
                                 "'jsonl', '{\"PageSize\":100}', ?, 3, ?, 1.0)",
                                 (step_id, run_id, status, SHA))
            assert old._read("SELECT value FROM meta") == [("3",)]
    with StateStore.open(location) as store:
        assert store._read("SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]
        assert set(store.steps(one)) == {"a"} and set(store.steps(two)) == {"b", "c"}
        assert store.counts(two)[StepStatus.PENDING] == 2
        a = store.step("a")
        assert (a.status, a.bytes, a.sha256, a.run_id, a.request) == (
            StepStatus.SUCCEEDED, 3, SHA, one, '{"PageSize":100}')
        three = run_with(store, FakeStep("a"), FakeStep("b"), FakeStep("c"))
        assert set(store.steps(three)) == {"a", "b", "c"} and store.steps(one) == {}
        assert store.step("a").status is StepStatus.SUCCEEDED  # resumed, not started over
        four = store.begin_run("two.yml", "fp")
        store.register_steps(four, [FakeStep("b")])
        assert store.clear_steps("two.yml") == 1  # b only: a and c were last run by one.yml
        assert set(store.steps()) == {"a", "c"}


def test_a_run_of_some_steps_takes_only_those(store: StateStore) -> None:
    first = run_with(store, FakeStep("a"), FakeStep("b"), FakeStep("c"))
    second = run_with(store, FakeStep("a"))  # e.g. --tags
    assert set(store.steps(second)) == {"a"} and set(store.steps(first)) == {"b", "c"}
    third = run_with(store, FakeStep("a"), FakeStep("b"), FakeStep("c"))
    assert set(store.steps(third)) == {"a", "b", "c"}
    assert store.steps(first) == {} and store.steps(second) == {}
    assert store.counts(third)[StepStatus.PENDING] == 3


def test_a_rerun_of_the_same_steps_rewrites_no_step_row(tmp_path: Path) -> None:
    steps = [export(f"s{i}", i) for i in range(1000)]
    with StateStore.open(tmp_path) as store:
        run_with(store, *steps)
        assert isinstance(store, SqliteStore)
        again = store.begin_run("playbook.yml", "fp")
        before = store._conn.total_changes
        store.register_steps(again, steps)
        assert store._conn.total_changes - before == 1  # the stamp moved to this run
        assert len(store.steps(again)) == 1000
