"""run-report.html: written beside run-report.json by a real run of the demo against the
simulator (export jobs failing through a fault, a hostile task name), checked as a file and
in a real headless browser: Debian's Chromium driven through its chromedriver (installed
by .ci/ensure-chromium; nothing is downloaded)."""

from __future__ import annotations

import html
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from run_support import demo_against, env_for, runner

from runner.report import RUN_REPORT_SCHEMA

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE = '<script>alert("task")</script> & <img src=x onerror=alert(1)> "quoted"'
FAILED_JOBS = 2  # job ids 1001-1006 under Faults(seed=1, job_failure_rate=0.3): two fail


@dataclass
class Run:
    code: int
    stderr: str
    reports: Path
    password: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.reports / "run-report.json").read_text("utf-8"))

    @property
    def page(self) -> str:
        return (self.reports / "run-report.html").read_text("utf-8")


@pytest.fixture(scope="module")
def faulty_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The demo playbook, once, with no retries and two export jobs failing."""
    from runner.sim import SimConfig, Simulator
    from runner.sim.faults import Faults

    faults = Faults(seed=1, job_failure_rate=0.3, hostile_names=True)
    config = SimConfig(seed=7, scale="small", job_seconds=(0.3, 1.0), faults=faults)
    with Simulator(config) as sim:
        directory = tmp_path_factory.mktemp("html-report")
        playbook = demo_against(sim, directory)
        document = yaml.safe_load(playbook.read_text("utf-8"))
        for task in document["tasks"]:
            if any(key.endswith("_export") for key in task):
                task["retries"] = 0  # one job per export Step: which fail is fixed
        document["tasks"][0]["name"] = HOSTILE
        playbook.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        result = runner("run", playbook, env=env_for(sim))
        yield Run(result.returncode, result.stderr, directory / "reports",
                  sim.credentials.pfx_password)


def jobs_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [job for step in report["steps"] for job in step.get("jobs", ())]


def level_counts(path: Path, field: str) -> Counter[str]:
    return Counter(json.loads(line)[field] for line in path.read_text("utf-8").splitlines()
                   if line.strip())


def test_the_html_report_lies_beside_the_json_and_says_what_it_holds(faulty_demo: Run
                                                                     ) -> None:
    report, page = faulty_demo.report, faulty_demo.page

    assert faulty_demo.code == 1, faulty_demo.stderr  # Steps failed
    jsonschema.validate(report, RUN_REPORT_SCHEMA)
    failed = [s for s in report["steps"] if s["status"] == "failed"]
    assert len(failed) == FAILED_JOBS
    jobs = jobs_of(report)
    assert len(jobs) == 6 and Counter(j["status"] for j in jobs) == {"succeeded": 4,
                                                                    "failed": 2}
    assert all(j["submitted"] < j["ended"] for j in jobs)
    # One self-contained page: no script, nothing fetched, a policy that forbids both.
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page
    assert not re.search(r"<script|<[^>]*\b(src|href)=|url\(|@import", page, re.IGNORECASE)
    # A hostile task name is text, never markup.
    assert HOSTILE not in page and "<img" not in page
    assert html.escape(HOSTILE, quote=True) in page
    # What the sections hold: every job a bar, every failure a row with its error.
    assert page.count('<g class="job job-') == len(jobs)
    assert page.count('<tr class="failed">') >= FAILED_JOBS
    for step in failed:
        assert html.escape(step["error"], quote=True) in page
    assert "the 5 slots were busy" in page
    assert faulty_demo.password not in page


def test_the_report_opens_in_headless_chromium_without_a_console_error(
        faulty_demo: Run, tmp_path: Path) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        # No skip: CI must run every test; `make test` installs the browser first.
        pytest.fail("Chromium is not installed: run .ci/ensure-chromium (make services)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1100,1000",
                 f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    report = faulty_demo.report
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    try:
        driver.get((faulty_demo.reports / "run-report.html").as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        console = driver.get_log("browser")
        scripts = driver.execute_script("return document.scripts.length")
        title = driver.title
        status = driver.find_element(By.ID, "run-status").text
        bars = [bar.size["width"] for bar in
                driver.find_elements(By.CSS_SELECTOR, "svg.timeline g.job rect")]
        failure_rows = driver.find_elements(By.CSS_SELECTOR, "#failures tr.failed")
        first_task = driver.find_elements(By.CSS_SELECTOR, "#tasks h3")[0].text
        found = {name: driver.find_elements(By.CSS_SELECTOR, f"svg.risk-{name}")
                 for name in ("sensitivity", "exposure", "risk", "sites", "totals")}
        charts = {name: len(elements) for name, elements in found.items()}
        sensitivity = [e.get_attribute("textContent") for e in
                       found["sensitivity"][0].find_elements(By.CSS_SELECTOR, "rect.bar")]
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1100, min(height + 40, 12000))
        shot = tmp_path / "run-report.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()

    assert [entry for entry in console if entry["level"] in ("SEVERE", "WARNING")] == []
    assert scripts == 0
    assert title == "Run report: Demo - every module against the simulator"
    assert status == "failed"
    assert len(bars) == len(jobs_of(report)) and all(width > 0 for width in bars)
    assert len(failure_rows) == FAILED_JOBS
    assert first_task == HOSTILE  # shown as the text it is
    assert charts == {"sensitivity": 2, "exposure": 2, "risk": 2, "sites": 1, "totals": 1}
    # The first detail_records chart counts what its output file holds.
    counts = level_counts(faulty_demo.reports / "risk" / "teams-sensitive.jsonl",
                          "sensitivityLevel")
    assert sorted(sensitivity) == sorted(f"{level}: records {n}" for level, n in counts.items())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
