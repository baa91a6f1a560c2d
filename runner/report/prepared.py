"""A report's Step entries made once and kept: ``PreparedSteps``.

A re-run of a sealed plan (``runner.execute.sealed``) reports the same entries every time:
every Step reused, as the state recorded it.  So the seal keeps what the report makes of
them (their JSON text exactly as ``report_json`` writes it, the HTML page's body, the
terminal summary's lines and totals) and the re-run writes its reports around those,
without an entry per Step in memory.  Anything that wants the entries themselves (JUnit,
``--json``) still gets them by iterating, decoded then.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PreparedSteps(Sequence[Mapping[str, Any]]):
    """The ``steps`` of a report, prepared: stands in for the list of entries."""

    text: str  # the JSON array as report_json writes it ("[\n    {...},\n    {...}\n  ]")
    length: int  # entries
    summary: dict[str, int]  # the report's "summary" (entries per status)
    html_body: str  # runner.report.html.render_body of the report
    summary_lines: list[str]  # runner.report.summary_body of the report
    totals: tuple[int, int, int]  # (reused, files, bytes), for the summary's last line
    _entries: list[Mapping[str, Any]] | None = field(default=None, repr=False)

    def entries(self) -> list[Mapping[str, Any]]:
        if self._entries is None:
            self._entries = json.loads(self.text)
        return self._entries

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.entries())

    def __getitem__(self, index: Any) -> Any:
        return self.entries()[index]

    def as_json(self) -> dict[str, Any]:
        """What the seal keeps of it, but the text (written on its own, as it is)."""
        return {"length": self.length, "summary": self.summary, "html_body": self.html_body,
                "summary_lines": self.summary_lines, "totals": list(self.totals)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any], text: str) -> PreparedSteps:
        reused, files, size = document["totals"]
        return cls(text, int(document["length"]), dict(document["summary"]),
                   str(document["html_body"]), [str(line) for line in
                                                document["summary_lines"]],
                   (int(reused), int(files), int(size)))


def prepare(report: Mapping[str, Any], output_dir: Path) -> PreparedSteps:
    """Everything the reports make of ``report``'s entries, made now (the same functions
    write them when nothing is prepared)."""
    from runner.report import _steps_text, step_totals, summary_body
    from runner.report.html import render_body

    steps = report["steps"]
    return PreparedSteps(_steps_text(steps), len(steps), dict(report["summary"]),
                         render_body(report, output_dir), summary_body(report),
                         step_totals(steps))
