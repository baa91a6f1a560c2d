"""What the risk queries found, for the HTML report's charts: read from their output files.

``site_overview`` files give per-site counts (risk, sensitive and exposed items);
``detail_records`` and ``detail_records_by_site`` files give one record per object, counted
here by sensitivity, exposure and risk level.  Files are streamed (JSON Lines, CSV) or read
whole (a .json array); a file that is gone or unreadable is named, never fatal: the report
is written anyway.
"""

from __future__ import annotations

import csv
import heapq
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import catalog
from runner.errors import RunnerError
from runner.execute.outputs import resolve_output

SITE_OVERVIEW = "site_overview"
DETAIL_OPERATIONS = frozenset({"detail_records", "detail_records_by_site"})
SITE_COUNTS = (("riskItemCount", "risk items"), ("sensitiveItemCount", "sensitive items"),
               ("exposureItemCount", "exposed items"))
LEVELS = (("sensitivityLevel", "Sensitivity", catalog.SENSITIVITY_LEVEL),
          ("exposureLevel", "Exposure", catalog.EXPOSURE_LEVEL),
          ("riskLevel", "Risk", catalog.RISK_LEVEL))
TOP_SITES = 15
_JSON_WHOLE_LIMIT = 256 << 20  # a .json array is parsed whole; larger ones are left out


@dataclass
class TaskRisk:
    """One risk task's records, summed over its Steps' files."""

    task: str
    operation: str
    files: int = 0
    records: int = 0
    levels: dict[str, Counter[str]] = field(default_factory=dict)  # detail records
    totals: dict[str, float] = field(default_factory=dict)  # site overview, every site
    top_sites: list[tuple[str, list[float]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def risk_tasks(steps: Iterable[Mapping[str, Any]], output_dir: Path) -> list[TaskRisk]:
    """The risk tasks of a report's entries, in their order, with what their files hold."""
    tasks: dict[tuple[str, str], TaskRisk] = {}
    sites: dict[tuple[str, str], list[tuple[float, int, str, list[float]]]] = {}
    for step in steps:
        operation = step["operation"]
        if operation != SITE_OVERVIEW and operation not in DETAIL_OPERATIONS:
            continue
        if step["status"] != "succeeded" or not step["output"]:
            continue
        key = (str(step.get("tenant") or ""), str(step["task"] or operation))
        task = tasks.setdefault(key, TaskRisk(_task_title(*key), operation))
        try:
            path = resolve_output(output_dir, step["output"])
            records = read_records(path)
            if operation == SITE_OVERVIEW:
                _sites(task, records, sites.setdefault(key, []))
            else:
                _levels(task, records)
            task.files += 1
        except (OSError, ValueError, RunnerError, csv.Error) as error:
            task.problems.append(f"{step['output']}: not read ({error})")
    for key, heap in sites.items():
        tasks[key].top_sites = [(name, values) for _, _, name, values in
                                sorted(heap, reverse=True)]
    return list(tasks.values())


def _task_title(tenant: str, task: str) -> str:
    return f"{tenant}: {task}" if tenant else task


def _sites(task: TaskRisk, records: Iterator[Mapping[str, Any]],
           heap: list[tuple[float, int, str, list[float]]]) -> None:
    for record in records:
        task.records += 1
        values = [_number(record.get(name)) for name, _ in SITE_COUNTS]
        for (name, _), value in zip(SITE_COUNTS, values, strict=True):
            task.totals[name] = task.totals.get(name, 0.0) + value
        label = str(record.get("siteName") or record.get("siteUrl") or "?")
        item = (values[0], -(task.records), label, values)  # ties: the first site read wins
        if len(heap) < TOP_SITES:
            heapq.heappush(heap, item)
        else:
            heapq.heappushpop(heap, item)


def _levels(task: TaskRisk, records: Iterator[Mapping[str, Any]]) -> None:
    for name, _, _ in LEVELS:
        task.levels.setdefault(name, Counter())
    for record in records:
        task.records += 1
        for name, _, enum in LEVELS:
            task.levels[name][level_label(enum, record.get(name))] += 1


def level_label(enum: catalog.ApiEnum, value: Any) -> str:
    """The service's label for a level, whether the file holds a code, name or label."""
    if value is None or value == "":
        return "(none)"
    try:
        return enum.label(enum.resolve(value))
    except (ValueError, KeyError):
        return str(value)


def ordered_levels(enum: catalog.ApiEnum, counts: Counter[str]) -> list[tuple[str, int]]:
    """Counts in the enum's order (highest level first), then values it does not know."""
    known = [m.label for m in sorted(enum.members, key=_rank, reverse=True)]
    rows = [(label, counts[label]) for label in known if counts.get(label)]
    rows += sorted((label, n) for label, n in counts.items() if label not in known)
    return rows


def _rank(member: catalog.Member) -> float:
    code = member.code
    return float(code) if isinstance(code, int) and code >= 0 else -1.0


def _number(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def read_records(path: Path) -> Iterator[Mapping[str, Any]]:
    """The records of a query's output file, by its suffix: .csv, .json or JSON Lines."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv(path)
    if suffix == ".json":
        if path.stat().st_size > _JSON_WHOLE_LIMIT:
            raise ValueError("too large to read whole for the charts")
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data if isinstance(data, list) else [data]
        return iter([row for row in rows if isinstance(row, dict)])
    return _jsonl(path)


def _csv(path: Path) -> Iterator[Mapping[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _jsonl(path: Path) -> Iterator[Mapping[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict):
                    yield record
