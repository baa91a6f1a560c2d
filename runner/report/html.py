"""``run-report.html``: the run report as one self-contained page for people.

Built from the same report dict as ``run-report.json`` (so it holds nothing the JSON does
not, and no secret), plus the risk queries' output files for their charts.  One file: CSS
inline, pictures as inline SVG drawn in Python, no script and no external reference; its
Content-Security-Policy forbids both, so a browser never reaches the network for it.
Every value is escaped: task names, outputs, errors and tenant data may hold markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runner import catalog
from runner.execute.outputs import FileInfo, write_atomic
from runner.report import _duration, human_size
from runner.report.digest import FAILURES_KEPT as FAILURES_SHOWN
from runner.report.digest import TASK_ROWS_KEPT as ROWS_PER_TASK
from runner.report.digest import ReportDigest
from runner.report.digest import epoch as _epoch
from runner.report.entries import digest_of
from runner.report.risk import LEVELS, SITE_COUNTS, TaskRisk, ordered_levels, risk_tasks
from runner.report.svg import Bar, assign_lanes, bar_chart, esc, timeline

# FAILURES_SHOWN failed Steps are listed, ROWS_PER_TASK Steps of a task, and the jobs drawn
# one by one only up to digest.TIMELINE_JOBS (more are summed up): the JSON report has all.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
 color:#222;background:#fafafa}
main{max-width:1040px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
 #ddd;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}
.s-succeeded{background:#2e7d32}.s-failed{background:#c62828}.s-interrupted{background:#ef6c00}
.s-other{background:#616161}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px 0}
dl.facts dt{color:#666}dl.facts dd{margin:0;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #e0e0e0;
 border-radius:6px;padding:8px 14px;min-width:90px}.card b{display:block;font-size:20px}
.card span{color:#666;font-size:12px}.card.bad{border-color:#c62828}.card.bad b{color:#c62828}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:4px 6px;text-align:left;vertical-align:top}
table.task{table-layout:fixed}table.task th:first-child{width:26%}
table.task th:nth-child(2){width:11%}table.task th:last-child{width:20%}
th{background:#f0f0f0}td.num{text-align:right;white-space:nowrap}
td.err,pre{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;
 font-size:12px;margin:0}
tr.failed td{background:#fdecea}tr.ignored td{background:#fff8e1}
.note{color:#666;font-size:13px}.problem{color:#b71c1c}
svg{max-width:100%;height:auto;background:#fff;border:1px solid #e0e0e0;border-radius:4px;
 margin:4px 0}
.charts{display:flex;flex-wrap:wrap;gap:8px}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
"""


def write_html(path: Path, report: Mapping[str, Any], output_dir: Path,
               body: str | None = None) -> FileInfo:
    """Write the page atomically (a reader never sees half of it).  ``body``: the page
    below its header, made before (``render_body``; a sealed plan's re-run)."""
    return write_atomic(path, render(report, output_dir, body).encode("utf-8"),
                        "run-report-html")


def render(report: Mapping[str, Any], output_dir: Path, body: str | None = None) -> str:
    title = str(report.get("name") or report["playbook"])
    if body is None:
        body = render_body(report, output_dir)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Run report: {esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{_header(report, title)}{body}</main></body></html>\n")


def render_body(report: Mapping[str, Any], output_dir: Path) -> str:
    """The page below its header: what the Steps did (the header names the run)."""
    digest = digest_of(report["steps"])
    return "".join([
        _summary(report, digest),
        _failures(digest),
        _slots(report, digest),
        _risk(risk_tasks(digest.risk_steps, output_dir)),
        _tasks(digest),
        '<p class="note">Written by insights-runner from the same data as run-report.json, '
        'which holds every field of every Step.</p>',
    ])


# ----------------------------------------------------------------------------- parts


def _header(report: Mapping[str, Any], title: str) -> str:
    status = str(report["status"])
    css = status if status in ("succeeded", "failed", "interrupted") else "other"
    facts = [("Playbook", report["playbook"]), ("Run", report.get("run_id")),
             ("Started", report.get("started")), ("Finished", report.get("finished"))]
    started, finished = _epoch(report.get("started")), _epoch(report.get("finished"))
    if started is not None and finished is not None:
        facts.append(("Duration", _duration(finished - started)))
    if report.get("error"):
        facts.append(("Stopped by", report["error"]))
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts if v is not None)
    return (f'<header><h1>{esc(title)}</h1><span class="status s-{css}" id="run-status">'
            f'{esc(status)}</span><dl class="facts">{rows}</dl></header>')


def _summary(report: Mapping[str, Any], digest: ReportDigest) -> str:
    cards: list[tuple[Any, str]] = [(digest.count, "Steps")]
    cards += [(n, key) for key, n in report["summary"].items() if n]
    cards.append((digest.done_reused, "from an earlier run"))
    cards.append((human_size(digest.done_bytes), "written"))
    cards.append((digest.done_records, "records"))
    html = "".join(f'<div class="card{" bad" if k == "failed" else ""}"><b>{esc(v)}</b>'
                   f"<span>{esc(k)}</span></div>" for v, k in cards)
    parts = [f'<section id="summary"><h2>Summary</h2><div class="cards">{html}</div>']
    tenants = report.get("tenants")
    if tenants:
        rows = "".join(
            f"<tr><td>{esc(name)}</td><td>{esc(t['status'])}</td>"
            f"<td>{esc(', '.join(f'{n} {k}' for k, n in t['summary'].items() if n))}</td>"
            f"<td class=\"err\">{esc(t.get('error') or '')}</td></tr>"
            for name, t in tenants.items())
        parts.append("<h3>Tenants</h3><table><tr><th>Tenant</th><th>Status</th><th>Steps</th>"
                     f"<th>Error</th></tr>{rows}</table>")
    if report.get("skipped_tasks"):
        items = "".join(f"<li>{esc(t)}</li>" for t in report["skipped_tasks"])
        parts.append(f"<h3>Tasks not run</h3><ul>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def _failures(digest: ReportDigest) -> str:
    failed, count = digest.failed, digest.by_status["failed"]
    if not count:
        return '<section id="failed"><h2>Failed Steps</h2><p>None.</p></section>'
    rows = "".join(
        f'<tr class="{"ignored" if s.get("ignored") else "failed"}">'
        f"{_tenant_cell(s)}<td>{esc(s['task'])}</td><td>{esc(s['output'] or s['id'])}</td>"
        f"<td>{esc(s['operation'])}</td><td class=\"num\">{esc(s['attempts'])}</td>"
        f"<td class=\"err\">{esc(s['error'] or 'no error recorded')}"
        f"{' (errors ignored)' if s.get('ignored') else ''}</td></tr>"
        for s in failed[:FAILURES_SHOWN])
    if count > FAILURES_SHOWN:
        rows += (f'<tr><td colspan="6">… and {count - FAILURES_SHOWN} more '
                 "(see run-report.json)</td></tr>")
    tenant = "<th>Tenant</th>" if digest.failed_tenant else ""
    return (f'<section id="failed"><h2>Failed Steps ({count})</h2>'
            f'<table id="failures"><tr>{tenant}<th>Task</th><th>Output</th><th>Operation</th>'
            f"<th>Attempts</th><th>Error</th></tr>{rows}</table></section>")


def _tenant_cell(step: Mapping[str, Any]) -> str:
    return f"<td>{esc(step['tenant'])}</td>" if "tenant" in step else ""


def _slots(report: Mapping[str, Any], digest: ReportDigest) -> str:
    """The timeline of export slots, and how busy they were."""
    head = '<section id="slots"><h2>Export slots</h2>'
    if not digest.jobs:
        return head + "<p>No export job ran in this run.</p></section>"
    assert digest.first_submit is not None
    run_start = _epoch(report.get("started")) or digest.first_submit
    origin = min(run_start, digest.earliest_submit)
    finish = max(_epoch(report.get("finished")) or digest.latest_moment, digest.latest_moment)
    slots = catalog.MAX_CONCURRENT_EXPORTS
    if digest.spans is None:
        return head + (f"<p>{digest.jobs} export jobs: too many to draw one by one "
                       "(see run-report.json).</p>" + _busy_note(digest, slots, finish)
                       + "</section>")
    groups = []
    for tenant, items in sorted(digest.spans.items()):
        closed = [(b, e if e is not None else finish) for b, e, _, _ in items]
        lanes = assign_lanes(closed)
        bars = []
        for (begin, end), lane, (_, ended, job, step) in zip(closed, lanes, items, strict=True):
            status = job["status"] or ("running" if ended is None else "unknown")
            name = Path(str(step["output"] or step["id"])).name
            tip = (f"job {job['job_id']} · {step['task']} · {step['output'] or step['id']} · "
                   f"{_duration(end - begin)} · "
                   f"{status if ended is not None else 'still running when the run stopped'}"
                   + (" · submitted by an earlier run" if begin < run_start else ""))
            bars.append(Bar(lane, begin - origin, end - origin, status, name, tip))
        groups.append((f"tenant {tenant}" if tenant else "this tenant", slots, bars))
    # Jobs re-attached from an earlier run began before this one: show where it began.
    marks = [(run_start - origin, "this run started")] if origin < run_start - 0.5 else []
    legend = "".join(f'<span><i style="background:{colour}"></i>{esc(name)}</span>'
                     for name, colour in (("succeeded", "#2e7d32"), ("failed", "#c62828"),
                                          ("with exceptions", "#f9a825"),
                                          ("still running", "#1565c0")))
    return (head + '<p class="note">Each bar is one export job, from its submit to the poll '
            "that saw it end (the download goes on beside the slots). Hover a bar for the "
            f'job.</p><div class="legend">{legend}</div>'
            + timeline(groups, finish - origin, marks) + _busy_note(digest, slots, finish)
            + "</section>")


def _busy_note(digest: ReportDigest, slots: int, finish: float) -> str:
    notes = []
    for tenant, jobs in sorted(digest.slots.items()):
        window = jobs.window(finish)
        share = jobs.busy(finish) / (slots * window) if window > 0 else 1.0
        who = f"Tenant {tenant}: " if tenant else ""
        notes.append(f"{who}{jobs.jobs} jobs; the {slots} slots were busy {share:.0%} of the "
                     f"{_duration(window)} from the first submit to the last job's end.")
    return "".join(f'<p class="note slot-use">{esc(n)}</p>' for n in notes)


def _risk(tasks: Sequence[TaskRisk]) -> str:
    if not tasks:
        return ""
    parts = ['<section id="risk"><h2>Risk</h2>']
    for task in tasks:
        parts.append(f"<h3>{esc(task.task)}</h3><p class=\"note\">{task.records} records "
                     f"in {task.files} file{'s' if task.files != 1 else ''} "
                     f"({esc(task.operation)})</p>")
        parts.extend(f'<p class="problem">{esc(p)}</p>' for p in task.problems)
        if task.operation == "site_overview":
            totals = [(label, [task.totals.get(name, 0.0)]) for name, label in SITE_COUNTS]
            parts.append('<div class="charts">')
            parts.append(bar_chart("Items, every site", totals, ["items"], compact=True,
                                   css_class="chart risk-totals"))
            parts.append(bar_chart(f"Top {len(task.top_sites)} sites by risk items",
                                   task.top_sites, [label for _, label in SITE_COUNTS],
                                   css_class="chart risk-sites"))
            parts.append("</div>")
        else:
            parts.append('<div class="charts">')
            for name, label, enum in LEVELS:
                counts = task.levels.get(name, Counter())
                rows = [(level, [float(n)]) for level, n in ordered_levels(enum, counts)]
                parts.append(bar_chart(f"{label} level", rows, ["records"], compact=True,
                                       css_class=f"chart risk-{label.lower()}"))
            parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _tasks(digest: ReportDigest) -> str:
    parts = ['<section id="tasks"><h2>Tasks</h2>']
    for number, (task, tally) in enumerate(digest.tables.items(), 1):
        count = tally.count
        said = ", ".join(f"{n} {k}" for k, n in sorted(tally.statuses.items()))
        rows = "".join(_step_row(s) for s in tally.rows[:ROWS_PER_TASK])
        more = (f'<p class="note">… and {count - ROWS_PER_TASK} more Steps '
                "(see run-report.json)</p>" if count > ROWS_PER_TASK else "")
        parts.append(
            f'<h3 id="task-{number}">{esc(task)}</h3><p class="note">{esc(tally.operation)}'
            f" · {count} Step{'s' if count != 1 else ''}: {esc(said)}</p>"
            '<table class="task"><tr><th>Output</th><th>Status</th><th>Job</th>'
            "<th>Attempts</th><th>Time</th><th>Size</th><th>Records</th><th>Notes</th></tr>"
            f"{rows}</table>{more}")
    parts.append("</section>")
    return "".join(parts)


def _step_row(step: Mapping[str, Any]) -> str:
    status = step["status"] + (" (reused)" if step["reused"] else "")
    notes = list(step["warnings"])
    if step["status"] != "succeeded" and step["error"]:
        notes.insert(0, step["error"])
    css = "ignored" if step.get("ignored") else "failed" if step["status"] == "failed" else ""
    seconds = step.get("seconds")
    return (f'<tr class="{css}"><td>{esc(step["output"] or step["id"])}</td>'
            f"<td>{esc(status)}</td><td>{esc(step['job_id'] if step['job_id'] is not None else '')}"
            f"</td><td class=\"num\">{esc(step['attempts'])}</td>"
            f"<td class=\"num\">{esc(_duration(seconds) if seconds is not None else '')}</td>"
            f"<td class=\"num\">{esc(human_size(step['bytes']) if step['bytes'] else '')}</td>"
            f"<td class=\"num\">{esc(step['records'] if step.get('records') is not None else '')}"
            f"</td><td class=\"err\">{esc(chr(10).join(notes))}</td></tr>")
