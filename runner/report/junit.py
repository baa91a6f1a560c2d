"""JUnit XML of a run report, for CI: one testcase per Step."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - writes XML only, never parses it
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.execute.outputs import FileInfo
from runner.report import _as_report, _write

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: Any) -> str:
    return _XML_ILLEGAL.sub("?", str(value))


def junit_xml(report: Any) -> bytes:
    """JUnit XML for CI: one testcase per Step (classname = task, name = operation + output).

    ``failed`` Steps carry a ``failure`` (but a ``skipped`` when the task ignores errors, so
    CI agrees with the exit code); ``skipped`` (tags, ``when``) a ``skipped``; a Step the run
    did not finish (pending, interrupted) an ``error``.
    """
    report = _as_report(report)
    steps = list(report["steps"])  # (read three times: made once)
    counts = Counter(_junit_kind(step) for step in steps)
    total = sum(step["seconds"] or 0 for step in steps)
    suites = ET.Element("testsuites", name="insights-runner", tests=str(len(steps)),
                        failures=str(counts["failure"]), errors=str(counts["error"]),
                        skipped=str(counts["skipped"]), time=f"{total:.3f}")
    suite = ET.SubElement(
        suites, "testsuite", name=_xml_text(report.get("name") or report["playbook"]),
        tests=str(len(steps)), failures=str(counts["failure"]), errors=str(counts["error"]),
        skipped=str(counts["skipped"]), time=f"{total:.3f}",
        timestamp=(report.get("started") or "").rstrip("Z"))
    for step in steps:
        case = ET.SubElement(
            suite, "testcase", classname=_xml_text(step["task"] or step["operation"]),
            name=_xml_text(f"{step['operation']} {step['output'] or step['id']}"),
            time=f"{step['seconds'] or 0:.3f}")
        kind = _junit_kind(step)
        error = step["error"] or ""
        if step.get("ignored"):
            error = f"failed (errors ignored): {error}"
        if kind == "failure":
            element = ET.SubElement(case, "failure", message=_xml_text(error.split("\n")[0]),
                                    type="StepFailed")
            element.text = _xml_text(error)
        elif kind == "error":
            ET.SubElement(case, "error", message=f"not finished: {step['status']}",
                          type="StepNotFinished")
        elif kind == "skipped":
            ET.SubElement(case, "skipped", message=_xml_text(error or "skipped"))
        details = [f"step {step['id']}"]
        if step["job_id"] is not None:
            details.append(f"job {step['job_id']}")
        if step["sha256"]:
            details.append(f"{step['bytes']} bytes, sha256 {step['sha256']}")
        details.extend(f"warning: {w}" for w in step["warnings"])
        ET.SubElement(case, "system-out").text = _xml_text("\n".join(details))
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def _junit_kind(step: Mapping[str, Any]) -> str:
    if step.get("ignored"):
        return "skipped"
    kinds = {"succeeded": "pass", "failed": "failure", "skipped": "skipped"}
    return kinds.get(step["status"], "error")


def write_junit(path: str | Path, report: Any) -> FileInfo:
    """Write JUnit XML (of a report dict or a ``RunResult``) atomically."""
    return _write(Path(path), junit_xml(report), "junit")
