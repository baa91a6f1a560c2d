"""Outputs as tables of rows: a query's records (JSON Lines, JSON or CSV) are one table; an
export's .zip is one table per sheet of each .xlsx, read through the ``convert`` code (the
archive is unpacked safely into a temporary folder and each sheet written as a CSV there,
exactly as ``convert: csv`` does).  A file that is none of these is only hashed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from runner import catalog
from runner.errors import RunnerError, UserError

SUFFIXES = (".jsonl", ".json", ".csv", ".zip")


class LazyRows(Sequence[dict[str, Any]]):
    """JSON Lines records kept as their text and parsed when read: a large output costs
    its size in memory, not the several times more its parsed dicts would."""

    def __init__(self, lines: list[str], path: Path | None = None) -> None:
        self.lines = lines
        self.path = path

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.lines)))]
        try:
            value = json.loads(self.lines[index])
        except ValueError as exc:
            raise UserError(f"{self.path}: record {index + 1} is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise UserError(f"{self.path}: record {index + 1} is not a JSON object")
        return value

    def raw(self, index: int) -> str:
        return self.lines[index]


@dataclass
class Table:
    """Rows of one query output (``name`` empty) or one sheet (``Book - Sheet``)."""

    name: str
    rows: Sequence[dict[str, Any]]
    header: list[str] | None = None  # sheets: the columns, in order; None for records


@dataclass
class Output:
    path: str  # POSIX, relative to its folder
    module: str | None
    sha256: str
    tables: list[Table] | None  # None: not readable as rows (compared by hash)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_output(root: Path, relative: str, module: str | None) -> Output:
    path = root / relative
    try:
        digest = sha256_of(path)
        suffix = path.suffix.lower()
        if suffix == ".zip":
            tables: list[Table] | None = read_zip(path)
        elif suffix in (".jsonl", ".json", ".csv"):
            records = read_records(path)
            module = module or guess_module(records)
            tables = [Table("", records)]
        else:
            tables = None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return Output(relative, module, digest, tables)


def read_records(path: Path) -> Sequence[dict[str, Any]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with open(path, encoding="utf-8") as handle:
                # parsed when compared; a broken record is a UserError naming the file
                return LazyRows([line.rstrip("\n") for line in handle if line.strip()], path)
        if suffix == ".json":
            value = json.loads(path.read_text(encoding="utf-8"))
            return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not readable as {suffix[1:]} records: {exc}") from None


def read_zip(path: Path) -> list[Table] | None:
    """The sheets of an export's .zip, through ``postprocess`` (extract, then convert)."""
    from runner.execute import postprocess

    with tempfile.TemporaryDirectory(prefix="insights-diff-") as folder:
        staging = Path(folder) / "sheets"
        try:
            made = postprocess._make(path, staging, {"extract": False, "convert": "csv"},
                                     postprocess.DEFAULT_LIMITS)
        except RunnerError:
            return None  # a corrupt or unsafe archive: compared by hash only
        tables = []
        for sheet in sorted(made, key=lambda p: p.relative_to(staging).as_posix()):
            with open(sheet, encoding="utf-8", newline="") as handle:
                lines = list(csv.reader(handle))
            header = _unique_header(lines[0] if lines else [])
            rows = [dict(zip(header, line + [""] * (len(header) - len(line)), strict=False))
                    for line in lines[1:]]
            name = sheet.relative_to(staging).with_suffix("").as_posix()
            tables.append(Table(name, rows, header))
        return tables


def _unique_header(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def guess_module(records: Sequence[dict[str, Any]]) -> str | None:
    """The query whose documented record fields are exactly these (outputs without a run
    report say nothing else)."""
    if not records:
        return None
    fields = set(records[0])
    for op in catalog.modules():
        if op.is_query and set(op.result_fields) == fields:
            return op.name
    return None
