"""A random-kill soak: the runner SIGKILLed at random moments and started again until it
finishes, N trials, against ``insights-runner sim serve`` running as its own process.

Each trial is a fresh folder with a playbook of six exports and a paged query.  A trial is
*whole* when the run ends with exit 0, every Step succeeded, every .zip passes its CRC check
and no hidden partial file is left.  Duplicate submits are read from the simulator's
request log (``--log``); those whose Step was found in ``submitting`` (the documented
window: killed between the POST and the commit of the job id) are counted apart.

    .venv/bin/python benchmarks/soak.py [--trials 20] [--seed 1]

Prints ``N/N trials whole; D duplicate submits (W in the documented window)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MAX_RUNS = 40


def start_sim(folder: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    out = open(folder / "sim.txt", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "sim", "serve", "--port", "0", "--job-seconds",
         "0.3", "--out", str(folder / "certs"), "--log", str(folder / "log.jsonl")],
        stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = (folder / "sim.txt").read_text()
        if "Press Ctrl-C" in text:
            found = {key: re.search(rf"{label}:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
                     for key, label in (("base_url", "Web API URL"),
                                        ("identity_url", "Identity URL"),
                                        ("client_id", "Client ID"),
                                        ("pfx", "Certificate"),
                                        ("password", r"\.pfx password"))}
            return process, found
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the simulator did not start")


def playbook(folder: Path, sim: dict[str, str], trial: int) -> Path:
    stamp = f"T{trial // 60:02d}:{trial % 60:02d}:00"  # one trial's Steps are its own
    tasks = [{"name": "Links", "link_export": {"link_type": "anyone",
                                               "start_time": "{{ item }}"},
              "loop": [f"2025-{month:02d}-01{stamp}" for month in range(1, 7)],
              "output": "links/{{ item[:7] }}.zip"},
             {"name": "Records", "detail_records": {"page_size": 5}, "output": "records.csv",
              "format": "csv"}]
    document = {"version": 1, "name": f"soak {trial}", "output_dir": "reports",
                "connection": {"base_url": sim["base_url"], "identity_url": sim["identity_url"],
                               "client_id": sim["client_id"],
                               "certificate": {"path": sim["pfx"],
                                               "password": "{{ env('SOAK_PFX') }}"}},
                "tasks": tasks}
    path = folder / "playbook.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def in_window(folder: Path) -> set[str]:
    db = folder / ".insights-runner" / "state.db"
    if not db.exists():
        return set()
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT request FROM steps WHERE status = 'submitting'").fetchall()
    return {json.loads(r)["startTime"] for (r,) in rows if "startTime" in json.loads(r)}


def trial(folder: Path, sim: dict[str, str], number: int, rng: random.Random,
          env: dict[str, str]) -> tuple[bool, set[str], int]:
    book = playbook(folder, sim, number)
    window: set[str] = set()
    for runs in range(1, MAX_RUNS + 1):
        process = subprocess.Popen([sys.executable, "-m", "runner", "run", str(book)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=env, cwd=folder)
        try:
            code = process.wait(timeout=rng.uniform(0.3, 2.5) if runs < MAX_RUNS else 120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            window |= in_window(folder)
            continue
        if code == 0:
            break
    else:
        return False, window, runs
    reports = folder / "reports"
    run_report = json.loads((reports / "run-report.json").read_text("utf-8"))
    whole = all(s["status"] == "succeeded" for s in run_report["steps"])
    for path in reports.rglob("*.zip"):
        with zipfile.ZipFile(path) as archive:
            whole = whole and archive.testzip() is None
    whole = whole and len(list(reports.rglob("*.zip"))) == 6
    whole = whole and not list(reports.rglob(".*partial*"))
    return whole, window, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        sim_process, sim = start_sim(root)
        env = {**os.environ, "SOAK_PFX": sim["password"], "NO_COLOR": "1"}
        try:
            whole, windows, kills = 0, set(), 0
            for number in range(args.trials):
                folder = root / f"trial{number}"
                folder.mkdir()
                ok, window, runs = trial(folder, sim, number, rng, env)
                whole += ok
                windows |= window
                kills += runs - 1
        finally:
            sim_process.send_signal(signal.SIGINT)
            sim_process.wait(timeout=30)
        submits: Counter[str] = Counter()
        for line in (root / "log.jsonl").read_text("utf-8").splitlines():
            entry = json.loads(line)
            if entry.get("operation") == "link_export" and entry.get("status") == 200:
                submits[entry.get("fields", {}).get("startTime")] += 1
    duplicates = {step: count - 1 for step, count in submits.items() if count > 1}
    total = sum(duplicates.values())
    windowed = sum(count for step, count in duplicates.items() if step in windows)
    print(f"{whole}/{args.trials} trials whole; {total} duplicate submits "
          f"({windowed} in the documented window)")
    print(f"  {kills} kills in all; {sum(submits.values())} export submits for "
          f"{6 * args.trials} Steps; {time.monotonic() - started:.0f} s", file=sys.stderr)
    if len(submits) != 6 * args.trials:
        print("  the request log does not show every Step's submit", file=sys.stderr)
        return 1
    return 0 if whole == args.trials and total == windowed else 1


if __name__ == "__main__":
    sys.exit(main())
