"""A report's Step entries made once and kept: ``PreparedSteps``.

A re-run of a sealed plan (``runner.execute.sealed``) reports the same entries every time:
every Step reused, as the state recorded it.  So the seal keeps what the report makes of
them (their JSON text exactly as ``report_json`` writes it, in a file of its own; the HTML
page's body, the terminal summary's lines and totals) and the re-run writes its reports
around those: the entries' text is copied from that file in pieces, never held whole, and
no entry is a dict in memory.  Anything that wants the entries themselves (JUnit,
``--json``) still gets them by iterating, decoded then.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from runner.execute.outputs import AtomicFile, own_partial_id, remove_stale_partials

PIECE = 4 << 20  # bytes of the entries' text copied at a time


@dataclass
class PreparedSteps(Sequence[Mapping[str, Any]]):
    """The ``steps`` of a report, prepared: stands in for the list of entries."""

    source: IO[bytes]  # the JSON array as report_json writes it ("[\n    {...},\n    {...}\n  ]")
    size: int  # its bytes
    length: int  # entries
    summary: dict[str, int]  # the report's "summary" (entries per status)
    html_body: str  # runner.report.html.render_body of the report
    summary_lines: list[str]  # runner.report.summary_body of the report
    totals: tuple[int, int, int]  # (reused, files, bytes), for the summary's last line
    _entries: list[Mapping[str, Any]] | None = field(default=None, repr=False)

    def pieces(self, start: int = 0) -> Iterator[bytes]:
        """The entries' text from byte ``start``, a piece at a time.  The file is open since
        it was found whole (``open_prepared``): a seal made meanwhile by another runner
        writes files of other names, and unlinking this one leaves it readable."""
        descriptor = self.source.fileno()
        while start < self.size:
            piece = os.pread(descriptor, min(PIECE, self.size - start), start)
            if not piece:
                raise OSError(f"{self.source.name}: cut short at {start} of {self.size} bytes")
            start += len(piece)
            yield piece

    def close(self) -> None:
        self.source.close()

    def entries(self) -> list[Mapping[str, Any]]:
        if self._entries is None:
            self._entries = json.loads(b"".join(self.pieces()))
        return self._entries

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.entries())

    def __getitem__(self, index: Any) -> Any:
        return self.entries()[index]

    def as_json(self) -> dict[str, Any]:
        """What the seal's header keeps of it (the text is a file of its own)."""
        return {"length": self.length, "bytes": self.size, "summary": self.summary,
                "html_body": self.html_body, "summary_lines": self.summary_lines,
                "totals": list(self.totals)}


def open_prepared(document: Mapping[str, Any], path: Path) -> PreparedSteps | None:
    """The prepared entries ``document`` (``as_json``) describes, their text in ``path``;
    None when that file is gone or not the size it was written."""
    reused, files, size = document["totals"]
    try:
        source = open(path, "rb")  # noqa: SIM115 - kept open by the PreparedSteps
    except OSError:
        return None
    if os.fstat(source.fileno()).st_size != int(document["bytes"]):
        source.close()
        return None
    return PreparedSteps(source, int(document["bytes"]), int(document["length"]),
                         dict(document["summary"]), str(document["html_body"]),
                         [str(line) for line in document["summary_lines"]],
                         (int(reused), int(files), int(size)))


def prepare(report: Mapping[str, Any], output_dir: Path, path: Path) -> PreparedSteps:
    """Everything the reports make of ``report``'s entries, made now (by the functions that
    write them when nothing is prepared); the entries' text written to ``path``."""
    from runner.report import step_chunks, step_totals, summary_body
    from runner.report.html import render_body

    steps = report["steps"]
    size = _write_text(path, step_chunks(steps))
    document = {"length": len(steps), "bytes": size, "summary": dict(report["summary"]),
                "html_body": render_body(report, output_dir),
                "summary_lines": summary_body(report), "totals": list(step_totals(steps))}
    prepared = open_prepared(document, path)
    if prepared is None:
        raise OSError(f"{path}: not as it was just written")
    return prepared


def _write_text(path: Path, chunks: Iterable[str | bytes]) -> int:
    with AtomicFile(path, own_partial_id("seal")) as out:
        for chunk in chunks:
            out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
    remove_stale_partials(path, "seal")
    return out.size
