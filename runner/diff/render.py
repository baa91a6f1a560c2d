"""A Diff for people (a summary table and the records that changed), for machines
(``--json``, format version 1) and for spreadsheets (one CSV per output that changed)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from runner.diff.compare import Diff, OutputDiff
from runner.execute.outputs import write_atomic

FORMAT_VERSION = 1
SHOWN = 10  # records of each kind listed per output in the text view


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return "" if value is None else str(value)


def _key(sheet: str, key: dict[str, str]) -> str:
    text = ", ".join(key.values()) if len(key) > 1 else next(iter(key.values()), "")
    return f"{sheet}: {text}" if sheet else text


def summary_rows(diff: Diff) -> list[list[str]]:
    rows = []
    for out in diff.outputs:
        note = ", ".join(sorted({"+".join(k) for k in out.keys.values()}))
        if out.hashed:
            sheets = len(out.hashed)
            by_hash = "hash" if sheets == 1 else f"hash ({sheets} sheets)"
            note = f"{note}; {by_hash}" if note else by_hash
        note = note or "-"
        rows.append([out.output, out.status, str(len(out.added)), str(len(out.removed)),
                     str(len(out.changed)), str(out.unchanged), note])
    return rows


def text(diff: Diff, *, details: bool = True) -> str:
    lines = [f"comparing {diff.before}", f"     with {diff.after}", ""]
    header = ["output", "status", "added", "removed", "changed", "unchanged", "matched by"]
    rows = summary_rows(diff)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) if i in (0, 1, 6) else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                     .rstrip())
    total = [sum(len(getattr(o, kind)) for o in diff.outputs)
             for kind in ("added", "removed", "changed")]
    differing = sum(o.differs for o in diff.outputs)
    lines.append(f"{differing} of {len(diff.outputs)} outputs differ: {total[0]} records "
                 f"added, {total[1]} removed, {total[2]} changed")
    if details:
        for out in diff.outputs:
            lines += _details(out)
    return "\n".join(lines) + "\n"


def _details(out: OutputDiff) -> list[str]:
    if not out.differs:
        return []
    lines = ["", f"== {out.output} ({out.module or 'unknown module'}): {out.status}"]
    for kind, sign in (("added", "+"), ("removed", "-")):
        rows = getattr(out, kind)
        for row in rows[:SHOWN]:
            lines.append(f"  {sign} {_key(row.sheet, row.key)}")
        if len(rows) > SHOWN:
            lines.append(f"  {sign} ... and {len(rows) - SHOWN} more {kind}")
    for change in out.changed[:SHOWN]:
        fields = ", ".join(f"{name}: {_value(a)} -> {_value(b)}"
                           for name, (a, b) in change.fields.items())
        lines.append(f"  ~ {_key(change.sheet, change.key)}: {fields}")
    if len(out.changed) > SHOWN:
        lines.append(f"  ~ ... and {len(out.changed) - SHOWN} more changed")
    for sheet, status in out.hashed.items():
        if status != "unchanged":
            lines.append(f"  # {sheet or 'the file'}: {status} (no key; compared by hash)")
    return lines


def as_json(diff: Diff) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "before": diff.before,
        "after": diff.after,
        "differs": diff.differs,
        "summary": {
            "outputs": len(diff.outputs),
            "differ": sum(o.differs for o in diff.outputs),
            "added": sum(len(o.added) for o in diff.outputs),
            "removed": sum(len(o.removed) for o in diff.outputs),
            "changed": sum(len(o.changed) for o in diff.outputs),
        },
        "outputs": [{
            "output": o.output, "module": o.module, "status": o.status, "keys": o.keys,
            "added": [{"sheet": r.sheet, "key": r.key, "record": r.record} for r in o.added],
            "removed": [{"sheet": r.sheet, "key": r.key, "record": r.record}
                        for r in o.removed],
            "changed": [{"sheet": c.sheet, "key": c.key,
                         "fields": {n: {"before": a, "after": b}
                                    for n, (a, b) in c.fields.items()}}
                        for c in o.changed],
            "unchanged": o.unchanged,
            "by_hash": o.hashed,
        } for o in diff.outputs],
    }


def csv_name(output: str) -> str:
    """``risk/by-site/x.jsonl`` -> ``risk__by-site__x.jsonl.csv`` (one flat folder)."""
    return re.sub(r"[^\w.\-]+", "_", output.replace("/", "__")) + ".csv"


def write_csvs(diff: Diff, folder: Path) -> list[Path]:
    """One CSV per output that differs: a row per added, removed or changed record, with
    its values (the new ones; the old ones for a removed record) and what changed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for out in diff.outputs:
        if not out.differs:
            continue
        items: list[tuple[str, str, str, str, dict[str, Any]]] = []
        items += [("added", r.sheet, _key("", r.key), "", r.record) for r in out.added]
        items += [("removed", r.sheet, _key("", r.key), "", r.record) for r in out.removed]
        items += [("changed", c.sheet, _key("", c.key),
                   "; ".join(f"{n}: {_value(a)} -> {_value(b)}" for n, (a, b) in c.fields.items()),
                   c.record) for c in out.changed]
        items += [(status, sheet, "", "(no key; compared by hash)", {})
                  for sheet, status in out.hashed.items() if status != "unchanged"]
        columns: list[str] = []
        for *_, record in items:
            columns += [c for c in record if c not in columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["change", "sheet", "key", "changed_fields", *columns])
        for change, sheet, key, fields, record in items:
            writer.writerow([change, sheet, key, fields, *(_value(record.get(c)) for c in columns)])
        path = folder / csv_name(out.output)
        write_atomic(path, buffer.getvalue().encode("utf-8"), "diff")
        written.append(path)
    return written


def dumps(diff: Diff) -> str:
    return json.dumps(as_json(diff), indent=2, ensure_ascii=False, default=str)
