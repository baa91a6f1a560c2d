"""Live progress: what a person sees on a terminal (read through a terminal emulator under a
pseudo-terminal) after a second, at the end and after Ctrl-C; the plain lines and periodic
summaries off a terminal; the ETA from this run's and earlier runs' durations."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyte
import pytest
from run_support import demo_against, env_for, runner

from runner.execute.engine import durations
from runner.execute.state import StateStore
from runner.progress import Progress
from runner.progress.tracker import Tracker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")

COLUMNS, LINES = 120, 40
DEMO_STEPS = 19
EXPORTS = 6  # of the demo's Steps


class Terminal:
    """The runner on a pseudo-terminal (stdout and stderr, as in a shell), its output fed to
    a VT100 emulator: ``screen()`` is the text a person sees at that moment."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self._screen = pyte.Screen(COLUMNS, LINES)
        self._stream = pyte.ByteStream(self._screen)
        self._lock = threading.Lock()
        self.raw = bytearray()
        # Its own process group, as a shell runs a foreground job: Ctrl-C is SIGINT to it.
        self.process = subprocess.Popen([sys.executable, "-m", "runner", *args], env=env,
                                        stdin=slave, stdout=slave, stderr=slave,
                                        process_group=0)
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            with self._lock:
                self.raw += chunk
                self._stream.feed(chunk)

    def screen(self) -> str:
        with self._lock:
            return "\n".join(line.rstrip() for line in self._screen.display).rstrip()

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.05)
        screen = self.screen()
        self.abandon()  # not left running into the next test (a ResourceWarning there)
        raise AssertionError(f"never saw {pattern!r}; the screen:\n{screen}")

    def abandon(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.finish()

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        os.close(self._master)
        return code


def terminal_env(sim: Any) -> dict[str, str]:
    env = env_for(sim)
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    # the pty's size, said again: a COLUMNS/LINES inherited from the test runner (a worker
    # of pytest-xdist has them) would win over the pty in rich
    env["COLUMNS"], env["LINES"] = str(COLUMNS), str(LINES)
    return env


@pytest.fixture
def slow_sim(make_sim):
    """Export jobs of 2-3 s: long enough to watch them run."""
    return make_sim(seed=7, scale="small", job_seconds=(2.0, 3.0))


def test_a_terminal_shows_the_bar_eta_slots_and_running_jobs_then_the_end(slow_sim,
                                                                          tmp_path: Path
                                                                          ) -> None:
    playbook = demo_against(slow_sim, tmp_path)
    term = Terminal(["run", str(playbook)], terminal_env(slow_sim))

    term.wait_for(r"export job running")
    time.sleep(1.0)
    early = term.screen()
    code = term.finish()
    end = term.screen()

    lines = early.splitlines()
    assert re.search(r"━+.* \d+/\d+ Steps · elapsed 0:00:0\d · ETA ", lines[0]), early
    assert re.search(r"slots  ■+□* [1-5]/5   queued \d+   running [1-9]", lines[1]), early
    running = [line for line in lines if "export job running" in line]
    assert running and len(running) <= 5, early  # never more jobs than slots
    assert any(re.search(r"Site permission reports +sites/permissions-1-of-1\.zip +export "
                         r"job running +0:00:0\d$", line) for line in running), early
    assert code == 0
    assert re.search(rf"━+ {DEMO_STEPS}/{DEMO_STEPS} Steps · elapsed 0:00:\d\d · finished",
                     end), end
    assert "slots  □□□□□ 0/5   queued 0   running 0" in end
    assert "export job running" not in end and "ETA" not in end  # the last frame stays
    assert re.search(rf"succeeded: {DEMO_STEPS} succeeded", end)
    assert "run-report.json" in end


def test_ctrl_c_leaves_the_last_frame_saying_interrupted_and_exits_130(slow_sim,
                                                                      tmp_path: Path) -> None:
    playbook = demo_against(slow_sim, tmp_path)
    term = Terminal(["run", str(playbook)], terminal_env(slow_sim))

    term.wait_for(r"export job running")
    term.ctrl_c()
    code = term.finish()
    screen = term.screen()

    assert code == 130, screen
    assert re.search(r"\d+/\d+ Steps · elapsed 0:00:0\d · interrupted\n", screen), screen
    assert re.search(r"\n[1-5] export jobs? (are|is) still on the service: the next run "
                     r"re-attaches to (them|it) \(no second job\)\n", screen), screen
    assert re.search(r"interrupted: \d+ succeeded, \d+ interrupted", screen), screen
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen

    again = runner("run", playbook, env=env_for(slow_sim))  # plain: NO_COLOR

    assert again.returncode == 0, again.stderr
    assert "re-attached to its job" in again.stderr  # no second job for those Steps
    assert re.search(r"reused  \d+ Steps from an earlier run", again.stderr)


def test_off_a_terminal_one_line_per_step_event_and_a_summary_every_interval(
        slow_sim, tmp_path: Path) -> None:
    playbook = demo_against(slow_sim, tmp_path)
    env = {**env_for(slow_sim), "INSIGHTS_RUNNER_PROGRESS_SECONDS": "0.5"}
    env.pop("NO_COLOR")  # stderr is a pipe: plain lines all the same

    result = runner("run", playbook, env=env)

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "\x1b[" not in result.stderr and "\r" not in result.stderr
    done = [line for line in lines if line.lstrip().startswith("done  ")]
    assert len(done) == DEMO_STEPS
    assert done[-1].endswith(f"({DEMO_STEPS}/{DEMO_STEPS})")
    assert sum(1 for line in lines if line.lstrip().startswith("submitted  ")) == EXPORTS
    summaries = [line for line in lines if line.startswith(" progress  ")]
    assert len(summaries) >= 3, result.stderr  # 2-3 s jobs, a summary every 0.5 s
    assert len(summaries) < 40  # not a flood
    assert re.search(r"\d+/\d+ Steps done \(0 failed\), \d+ running, \d+ queued; "
                     r"slots [0-5]/5; elapsed 0:00:0\d", summaries[0]), summaries[0]


def first_summary_after_a_submit(stderr: str) -> str:
    lines = stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("submitted"))
    return next(line for line in lines[start:] if line.startswith(" progress  "))


def test_the_eta_comes_from_earlier_runs_before_any_job_of_this_run_ends(
        make_sim, tmp_path: Path) -> None:
    sim = make_sim(seed=7, scale="small", job_seconds=1.5)
    playbook = demo_against(sim, tmp_path)
    env = {**env_for(sim), "INSIGHTS_RUNNER_PROGRESS_SECONDS": "0.3"}

    first = runner("run", playbook, env=env)
    second = runner("run", "--fresh", playbook, env=env)  # every Step again, as a new quarter

    assert first.returncode == second.returncode == 0
    # No export has ended yet: the first run cannot know how long one takes...
    assert "ETA estimating" in first_summary_after_a_submit(first.stderr)
    # ...the second reads the first run's durations from the state.
    eta = re.search(r"ETA 0:00:(\d\d)$", first_summary_after_a_submit(second.stderr))
    assert eta is not None, second.stderr
    assert 1 <= int(eta.group(1)) <= 8  # two rounds of 1.5 s jobs in 5 slots, less what ran
    with StateStore.open(playbook.parent / ".insights-runner", readonly=True) as store:
        seen = durations(store)
    assert len(seen["user_access_export"]) == 2
    assert all(1.4 < s < 6 for s in seen["user_access_export"]), seen


def test_plain_quiet_prints_nothing(tmp_path: Path) -> None:
    out = tmp_path / "err.txt"
    with out.open("w") as stream:
        progress = Progress(0, stream=stream, quiet=True, summary_every=0.01)
        progress(("added", [Step("a", "export", "link_export")]))
        progress(("succeeded", Step("a", "export", "link_export")))
        time.sleep(0.05)
        progress.close("finished")
    assert out.read_text() == ""
    assert not progress.wants_history


# ------------------------------------------------------------------ the tracker, pure


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    operation: str
    task_name: str = "Task"
    output: str = "out"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_uses_this_runs_durations_per_operation_and_kind() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock, slots=5, workers=4)
    exports = [Step(f"e{i}", "export", "link_export") for i in range(10)]
    query = Step("q", "query", "user_summary")
    tracker.event("added", [*exports, query])
    assert tracker.eta() is None  # nothing known yet

    tracker.event("paging", query)
    clock.now += 1
    tracker.event("succeeded", query)
    assert tracker.eta() is None  # a query's time says nothing of an export's
    for step in exports[:5]:
        tracker.event("submitted", step)
    assert tracker.slots(None) == 5
    clock.now += 10
    for step in exports[:5]:
        tracker.event("job_finished", step)
        tracker.event("succeeded", step)

    # Five left, 10 s each, five slots: one more round.
    assert tracker.eta() == pytest.approx(10.0)
    for step in exports[5:]:
        tracker.event("submitted", step)
    clock.now += 4
    assert tracker.eta() == pytest.approx(6.0)
    assert tracker.finished == 6 and tracker.waiting == 0 and len(tracker.running) == 5


def test_eta_from_history_and_slots_freed_however_a_job_ends() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock, slots=5, workers=4)
    tracker.add_history({"link_export": [20.0, 30.0, 40.0], "user_summary": [2.0]})
    steps = [Step(f"e{i}", "export", "link_export") for i in range(3)]
    tracker.event("added", steps, "contoso")
    tracker.event("added", [Step("f", "export", "site_permission_export")], "fabrikam")

    # contoso: 3 x 30 s in 5 slots: no sooner than one job's 30 s; fabrikam: an operation
    # never seen, an export like the others (median 30 s).
    assert tracker.eta() == pytest.approx(30)
    tracker.event("added", [Step(f"g{i}", "export", "link_export") for i in range(12)],
                  "fabrikam")
    assert tracker.eta() == pytest.approx(30 * 13 / 5)  # now the slots are the limit
    tracker.event("submitted", steps[0], "contoso")
    tracker.event("submitted", steps[1], "contoso")
    assert (tracker.slots("contoso"), tracker.slots("fabrikam")) == (2, 0)
    tracker.event("retry", steps[0], "contoso")  # its job failed: the slot is free
    tracker.event("failed", steps[1], "contoso")  # gave up waiting: free too
    assert tracker.slots("contoso") == 0
    assert tracker.failed == 1 and tracker.tenants == ["contoso", "fabrikam"]


def test_paging_counts_records_and_records_per_second() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    query = Step("q", "query", "detail_records")
    tracker.event("added", [query])
    tracker.event("paging", query)
    for _ in range(4):
        clock.now += 0.5
        tracker.event("page", (query, 500))
    run = tracker.running[(None, "q")]
    assert run.records == 2000
    assert run.records_per_second(clock.now) == pytest.approx(1000.0)


def test_several_tenants_show_their_own_slots_and_get_one_timeline_each(make_sim,
                                                                       tmp_path: Path) -> None:
    from test_inventory import env_for_two, two_tenants

    first = make_sim(seed=7, job_seconds=2.0)
    second = make_sim(seed=8, job_seconds=2.0)
    tasks = [{"name": "Links", "link_export": {"link_type": "anyone", "start_time": "{{ item }}"},
              "loop": ["2025-01-01T00:00:00", "2025-02-01T00:00:00"],
              "output": "{{ tenant }}/links-{{ item[:7] }}.zip"}]
    playbook = two_tenants(tmp_path, first, second, tasks)
    env = env_for_two(first, second)
    env.pop("NO_COLOR")
    env["TERM"] = "xterm-256color"
    term = Terminal(["run", str(playbook)], env)

    during = term.wait_for(r"contoso ■■□□□ 2/5   fabrikam ■■□□□ 2/5")
    code = term.finish()

    assert code == 0, term.screen()
    assert re.search(r"\nfabrikam: Links +fabrikam/links-2025-0[12]\.zip +export job running",
                     during), during
    page = (tmp_path / "reports" / "run-report.html").read_text("utf-8")
    assert page.count(">tenant contoso</text>") == page.count(">tenant fabrikam</text>") == 1
    assert page.count('<g class="job job-succeeded">') == 4


def test_a_paged_query_shows_its_records_and_records_per_second(sim, tmp_path: Path) -> None:
    from run_support import write_playbook

    # Pages of one record: the small tenant's ~2,000 records take seconds to page, even
    # with a fast client (pages of 5 took 0.6 s), so the live view shows them paging.
    playbook = write_playbook(tmp_path, sim, [{"name": "Every record", "output": "all.jsonl",
                                               "detail_records": {"page_size": 1}}])
    term = Terminal(["run", str(playbook)], terminal_env(sim))

    line = term.wait_for(r"Every record +all\.jsonl +paging [\d,]+ records · [\d,]+/s +0:00:0\d")
    code = term.finish()

    assert code == 0, term.screen()
    shown = re.search(r"paging ([\d,]+) records · ([\d,]+)/s", line)
    assert shown is not None
    records, rate = (int(value.replace(",", "")) for value in shown.groups())
    written = len((tmp_path / "reports" / "all.jsonl").read_text("utf-8").splitlines())
    assert 0 < records < written and rate > 0
