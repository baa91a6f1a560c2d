"""The runs that ``diff PLAYBOOK`` compares: a snapshot of each run's outputs.

A run replaces the files of the Steps it makes again (``--fresh``, a changed task), so the
previous run's outputs would be gone by the time one asks what changed.  After each run the
runner keeps a snapshot in the state folder, ``<state dir>/history/NNNN-<UTC time>/``: the
run report and every output the run left, at the same relative paths, as **hard links**
(no copy: the runner never rewrites a file in place, it renames a new one over it, so the
link keeps the old content; a copy only where the state folder is on another file system).
A snapshot is made in a hidden folder and renamed into place when whole.  The last
``KEEP`` snapshots are kept.  A snapshot folder is an output folder like any other, so
``diff DIR_A DIR_B`` reads both the same way (``outputs_of``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

from runner.diff.readers import SUFFIXES
from runner.errors import UserError
from runner.execute import outputs
from runner.layout import REPORT_NAME, STATE_DIRNAME


class Source(NamedTuple):
    module: str | None  # the catalog module that wrote it, when known
    group: str | None  # the task, when its outputs are chunks of one list (compared together)


HISTORY = "history"
KEEP = 8
_SNAPSHOT = re.compile(r"^(\d{4,})-")


def keep(result: Any, state_dir: Path) -> Path | None:
    """Snapshot the outputs of a finished run (the engine's ``RunResult``)."""
    from runner.report import report_from_result

    if result is None or getattr(result, "interrupted", False):
        return None
    if getattr(result, "prepared", None) is not None:
        return None  # a sealed plan's re-run fetched nothing (as all reused, below)
    outcomes = list(getattr(result, "outcomes", ()))
    if outcomes and all(getattr(o, "reused", False) for o in outcomes):
        return None  # (as below, before building a report of every Step for nothing)
    report = report_from_result(result)
    report["steps"] = list(report["steps"])  # dicts of their own: marked below, then kept
    if report["status"] != "succeeded":
        return None  # a run with failed Steps would compare as if their outputs were gone
    if report["steps"] and all(s["reused"] for s in report["steps"]):
        return None  # a run that fetched nothing: the same outputs as the last snapshot
    output_dir = Path(result.output_dir)
    history = Path(state_dir) / HISTORY
    history.mkdir(parents=True, exist_ok=True)
    for left in history.glob(".partial-*"):  # a snapshot a killed run did not finish
        shutil.rmtree(left, ignore_errors=True)
    staging = history / f".partial-{secrets.token_hex(6)}"
    try:
        for step in report["steps"]:
            if step["status"] != "succeeded" or not step["output"]:
                continue
            source = output_dir / step["output"]
            if not source.is_file():
                continue
            target = outputs.resolve_output(staging, step["output"])
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(source, target)
        report["output_dir"] = str(output_dir)
        chunks = {str(o.step.id): (o.step.chunk_number, o.step.chunk_total)
                  for o in result.outcomes if hasattr(o.step, "chunk_total")}
        for step in report["steps"]:  # so that diff compares a task's chunks together
            if step["id"] in chunks:
                step["chunk"] = list(chunks[step["id"]])
        staging.mkdir(parents=True, exist_ok=True)
        (staging / REPORT_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                           encoding="utf-8")
        number = max((n for n, _ in _numbered(history)), default=0) + 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(result.finished or time.time()))
        final = history / f"{number:04d}-{stamp}"
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for _, old in _numbered(history)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def runs(state_dir: Path) -> list[Path]:
    """The snapshots in the state folder, oldest first."""
    return [path for _, path in _numbered(Path(state_dir) / HISTORY)]


def _numbered(history: Path) -> list[tuple[int, Path]]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for path in history.iterdir():
            match = _SNAPSHOT.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
    return sorted(found)


def describe(folder: Path) -> str:
    """``run 3 of playbook.yml, 2025-01-31T08:00:00Z`` for a snapshot; else the folder."""
    report = _report(folder)
    if report is None or not _SNAPSHOT.match(folder.name) or folder.parent.name != HISTORY:
        return str(folder)
    return f"run {int(folder.name.split('-')[0])} ({report.get('finished') or '?'})"


def outputs_of(root: Path) -> dict[str, Source]:
    """The outputs in a folder, their modules and chunk groups: from its run report when
    there is one (the Steps that succeeded), else every report-like file in it."""
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    report = _report(root)
    if report is not None:
        found = {}
        for step in report.get("steps", ()):
            if step.get("status") != "succeeded" or not step.get("output") or \
                    not (root / str(step["output"])).is_file():
                continue
            chunk = step.get("chunk") or (1, 1)
            group = str(step.get("task") or step.get("operation")) if chunk[1] > 1 else None
            found[str(step["output"])] = Source(step.get("operation"), group)
        if found:
            return found
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or \
                relative.parts[0] == STATE_DIRNAME or relative.as_posix() == REPORT_NAME:
            continue
        if path.is_file() and path.suffix.lower() in SUFFIXES and not _extracted(path, root):
            found[relative.as_posix()] = Source(None, None)
    return found


def _extracted(path: Path, root: Path) -> bool:
    """Whether ``path`` was unpacked or converted from an export (``extract``/``convert``)."""
    from runner.execute.postprocess import MARKER

    return any((parent / MARKER).is_file() for parent in path.parents
               if parent != root and root in parent.parents)


def _report(folder: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((folder / REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
