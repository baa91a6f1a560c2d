"""Reports people can read: what happens to an export's .zip once it is downloaded and verified.

A task's ``extract: true`` unpacks the .zip beside it into a folder named after it
(``sites/permissions.zip`` -> ``sites/permissions/``); ``convert: csv`` writes each sheet of
each .xlsx in it as a CSV in that folder (CSVs diff well in git).  With ``convert`` alone the
.xlsx files are not kept.

Safety is ``outputs.extract_zip``'s: a member named outside the folder (zip-slip), a link,
or a member (or archive) bigger than the limits refuses the whole archive before anything
is written.  Everything is made in a hidden staging folder and moved into place only when
whole, so a refused or broken archive leaves nothing half-written.  A marker file in the
folder records the archive it came from (size, mtime) and the files made, so a re-run that
finds them all still there does nothing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import glob
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import crashpoint
from runner.errors import DownloadError
from runner.execute import outputs

MARKER = ".insights-runner-extract.json"
_STAGING = re.compile(r"[0-9a-f]{12}")
MARKER_VERSION = 1
CONVERT_FORMATS = ("csv",)
_UNSAFE = re.compile(r"[\x00-\x1f\\/:*?\"<>|]+")


@dataclass(frozen=True)
class Limits:
    """What one archive may unpack to; beyond these it is taken for a zip bomb."""

    member_bytes: int = 2 << 30  # 2 GiB: the largest .xlsx Excel itself will open is ~1 GiB
    total_bytes: int = 8 << 30
    members: int = 10_000


DEFAULT_LIMITS = Limits()


def wanted(step: Any) -> bool:
    return bool(getattr(step, "extract", False) or getattr(step, "convert", None))


def folder_for(path: Path) -> Path:
    """``reports/x.zip`` -> ``reports/x``; a name without a suffix gets ``_files``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix else path.with_name(path.name + "_files")


def postprocess(step: Any, path: Path, *, limits: Limits = DEFAULT_LIMITS) -> list[Path]:
    """Extract and/or convert the downloaded ``path`` as ``step`` asks; the files written.

    Raises ``ServiceError`` for an unsafe archive, ``DownloadError`` for a corrupt one.
    """
    if not wanted(step):
        return []
    path = Path(path)
    folder = folder_for(path)
    settings = {"extract": bool(getattr(step, "extract", False)),
                "convert": getattr(step, "convert", None)}
    source = _source(path)
    done = _already_done(folder, source, settings)
    if done is not None:
        return done
    # A run killed while unpacking leaves its staging folder: nobody else owns that name.
    for stale in folder.parent.glob(f".{glob.escape(folder.name)}.partial-*"):
        if stale.is_dir() and _STAGING.fullmatch(stale.name.rsplit("-", 1)[1]):
            shutil.rmtree(stale, ignore_errors=True)
    staging = folder.parent / f".{folder.name}.partial-{secrets.token_hex(6)}"
    try:
        made = _make(path, staging, settings, limits)
        return _publish(staging, folder, made, source, settings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def relative(paths: list[Path], root: Path) -> list[str]:
    """POSIX paths relative to ``root`` (the output folder), for reports."""
    out = []
    for p in paths:
        try:
            out.append(Path(p).relative_to(root).as_posix())
        except ValueError:
            out.append(str(p))
    return out


# ------------------------------------------------------------------------ making


def _make(path: Path, staging: Path, settings: dict[str, Any], limits: Limits) -> list[Path]:
    """Unpack into ``staging`` (nothing elsewhere), convert, drop what was not asked for."""
    unpacked = outputs.extract_zip(path, staging, max_member_bytes=limits.member_bytes,
                                   max_total_bytes=limits.total_bytes,
                                   max_members=limits.members)
    crashpoint.hit("extract")
    made: list[Path] = []
    if settings["convert"] == "csv":
        used = {str(p).lower() for p in unpacked}
        for member in unpacked:
            if member.suffix.lower() == ".xlsx":
                made += _xlsx_to_csv(member, staging, used)
    if settings["extract"]:
        made = unpacked + made
    else:
        for member in unpacked:
            member.unlink()
    return made


def _xlsx_to_csv(workbook_path: Path, staging: Path, used: set[str]) -> list[Path]:
    """One CSV per sheet, streamed row by row (openpyxl read-only mode)."""
    import openpyxl  # imported late: only tasks that convert pay for it

    try:
        book = openpyxl.load_workbook(workbook_path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise DownloadError(f"{workbook_path.name} is not a readable .xlsx: {exc}") from exc
    written = []
    try:
        sheets = book.worksheets
        for sheet in sheets:
            name = workbook_path.stem if len(sheets) == 1 else \
                f"{workbook_path.stem} - {_safe(sheet.title)}"
            target = _unique(workbook_path.parent, name, used)
            with open(target, "x", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                for row in sheet.iter_rows(values_only=True):
                    writer.writerow([cell_text(value) for value in row])
            written.append(target)
            crashpoint.hit("convert")
    finally:
        book.close()
    return written


def cell_text(value: Any) -> str:
    """A cell as CSV text: empty for no value, ISO 8601 for dates, else as read."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _safe(title: str) -> str:
    return _UNSAFE.sub("_", title).strip(" .") or "sheet"


def _unique(folder: Path, name: str, used: set[str]) -> Path:
    """``name.csv`` in ``folder``, or ``name (2).csv`` ... when a file already has it."""
    target, n = folder / f"{name}.csv", 1
    while str(target).lower() in used or target.exists():
        n += 1
        target = folder / f"{name} ({n}).csv"
    used.add(str(target).lower())
    return target


# ----------------------------------------------------------------- publishing


def _publish(staging: Path, folder: Path, made: list[Path], source: dict[str, Any],
             settings: dict[str, Any]) -> list[Path]:
    final: list[Path] = []
    for item in made:
        relative_name = item.relative_to(staging).as_posix()
        target = outputs.resolve_output(folder, relative_name)  # refuses a way out, again
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(item, target)
        final.append(target)
    marker = {"version": MARKER_VERSION, "source": source, **settings,
              "files": [p.relative_to(folder).as_posix() for p in final]}
    folder.mkdir(parents=True, exist_ok=True)
    outputs.write_atomic(folder / MARKER, json.dumps(marker, indent=2).encode("utf-8"),
                         "extract")
    return final


def _source(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"name": path.name, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _already_done(folder: Path, source: dict[str, Any], settings: dict[str, Any]
                  ) -> list[Path] | None:
    """The files of an earlier, identical post-processing that are all still there."""
    with contextlib.suppress(OSError, ValueError):
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        same = (marker.get("version") == MARKER_VERSION and marker.get("source") == source
                and all(marker.get(k) == v for k, v in settings.items()))
        if same:
            files = [outputs.resolve_output(folder, name) for name in marker["files"]]
            if all(f.is_file() for f in files):
                return files
    return None

